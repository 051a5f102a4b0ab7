"""Training: one seeded, deterministic loop for every model in the book, with a history of each
loss term.

:func:`train_epoch` is the loop chapter 01 writes out (zero_grad, backward, step); :func:`train`
runs it for many epochs with what a notebook needs around it: seeding, a progress bar, a test
evaluation per epoch, checkpoints with exact resume, and a clear error when the loss stops being
finite.

A model only needs a ``loss(x, **loss_kwargs)`` method returning a NamedTuple of scalar tensors
whose first field is ``total`` (``VAELoss`` or ``AELoss``); every field is recorded per epoch for
the training and the test set, so the reconstruction and KL curves can be plotted separately.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..infra.checkpoint import (
    CheckpointError,
    checkpoint_name,
    load_checkpoint,
    read_checkpoint,
    resolve_checkpoint_path,
    save_checkpoint,
)
from ..infra.checks import (
    NonFiniteError,
    check_batch,
    check_finite,
    check_model_input,
    check_number,
    check_positive_int,
    check_seed,
    check_tensor,
    check_unit_interval,
)
from ..infra.device import pick_device, use_deterministic_kernels
from ..infra.loaded_work import record_loaded_work
from ..infra.published import fetch_published, published_weights_url, record_in_ledger

__all__ = [
    "History",
    "NonFiniteLossError",
    "GPUMemoryError",
    "set_seed",
    "train_epoch",
    "train",
    "evaluate",
    "load_or_train",
]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stops before the weights are corrupted."""


class GPUMemoryError(MemoryError):
    """The GPU ran out of memory while training; the message names the batch size to lower."""


# torch's out-of-memory error: torch.OutOfMemoryError (torch >= 2.5), torch.cuda.OutOfMemoryError
# before; Apple's MPS reports a RuntimeError whose message says "out of memory".
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


@contextlib.contextmanager
def _on_device(model: nn.Module, device: torch.device, batch_size: int):
    """Move ``model`` to ``device`` for the block and back to where it was after it, even after an
    error; a GPU's out-of-memory error becomes one that says what to change."""
    home = _model_device(model)
    try:
        model.to(device)  # in place: the caller's model object trains
        yield
    except (_OUT_OF_MEMORY, RuntimeError) as exc:
        if not isinstance(exc, _OUT_OF_MEMORY) and "out of memory" not in str(exc).lower():
            raise
        smaller = max(1, batch_size // 2)
        raise GPUMemoryError(
            f"{device} ran out of memory training with batch_size={batch_size}: lower "
            f"batch_size (e.g. batch_size={smaller}), free the GPU's memory (restart the "
            "runtime), or train on the CPU with $VAE_LESSON_DEVICE=cpu. With a checkpoint, the "
            "next run resumes after the last finished epoch"
        ) from None
    finally:
        model.to(home)


def _model_device(model: nn.Module) -> torch.device:
    weight = next(model.parameters(), None)
    return torch.device("cpu") if weight is None else weight.device


def _rng_state(shuffle: torch.Generator, device: torch.device) -> dict:
    """The random state a checkpoint keeps for an exact resume: the CPU's, the shuffle's, and the
    GPU's when the model's sampling draws from it."""
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (call before building a model)."""
    check_seed(seed)
    if not 0 <= seed < 2**32:  # NumPy's range; checked before any generator is touched
        raise ValueError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class History:
    """Per-epoch means of each loss term: ``train["kl"][e]`` is the mean KL term in epoch e
    (0-based)."""

    train: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    epoch_seconds: list = field(default_factory=list)

    @property
    def num_epochs(self) -> int:
        return len(self.epoch_seconds)

    def as_dict(self) -> dict:
        return {
            "train": {k: list(v) for k, v in self.train.items()},
            "test": {k: list(v) for k, v in self.test.items()},
            "epoch_seconds": list(self.epoch_seconds),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls(
            {k: list(v) for k, v in data["train"].items()},
            {k: list(v) for k, v in data["test"].items()},
            list(data["epoch_seconds"]),
        )

    def _append(self, split: dict, means: dict) -> None:
        for key, value in means.items():
            split.setdefault(key, []).append(value)


def _check_model(model) -> None:
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
        raise TypeError(
            f"model must be a torch.nn.Module with a loss(x) method, got {type(model).__name__}"
        )


def _check_data(x, name: str, model: nn.Module) -> None:
    check_tensor(x, name)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch of examples (examples along dim 0), got shape "
            f"{tuple(x.shape)}"
        )
    if hasattr(model, "n_in") and x.dim() > 2:  # an MLP takes flat examples: (batch, n_in)
        raise ValueError(
            f"{name} must have shape (batch, {model.n_in}) for this model, got {tuple(x.shape)}; "
            f"flatten the examples with {name}.reshape(len({name}), -1)"
        )
    if x.dim() == 2 and hasattr(model, "n_in"):
        check_batch(x, name, model.n_in)
    check_model_input(x, name, model)
    # One aminmax pass proves the data finite and inside [0, 1] (NaN fails the comparison, inf lies
    # outside); the two full checks (an isfinite pass each, ~15x slower than aminmax here) run only
    # to word the error.
    if x.numel() and not _finite_unit_interval(x):
        check_finite(x, name)
        check_unit_interval(x, name)


def _finite_unit_interval(x: torch.Tensor) -> bool:
    lo, hi = torch.aminmax(x.detach())
    return 0.0 <= float(lo) and float(hi) <= 1.0


def _batches(x: torch.Tensor, batch_size: int):
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


def train_epoch(model, optimizer, x_train, batch_size, generator=None, **loss_kwargs):
    """One pass over x_train in shuffled minibatches, one optimizer
    step per minibatch; returns the mean of each loss term.

    Defined in chapter 01 (notebooks/01_autoencoder.ipynb): every
    model of the book trains with this loop.
    """
    model.train()  # training mode, which layers like dropout need
    sums = {}
    # a new random order of the examples every epoch
    order = torch.randperm(len(x_train), generator=generator)
    for b, index in enumerate(order.split(batch_size), start=1):
        x = x_train[index]  # a minibatch (the last may be smaller)
        terms = model.loss(x, **loss_kwargs)  # total, and its terms
        total = terms.total.item()
        if not math.isfinite(total):  # stop before a NaN step
            raise NonFiniteLossError(f"the loss became {total} at batch {b}")
        optimizer.zero_grad()  # clear the last batch's gradients
        terms.total.backward()  # d total / d parameter, into .grad
        optimizer.step()  # move each parameter against its gradient
        for name, value in terms._asdict().items():  # running sums
            sums[name] = sums.get(name, 0.0) + value.item() * len(x)
    return {name: s / len(x_train) for name, s in sums.items()}


@torch.inference_mode()
def evaluate(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000, seed: int = 0, **loss_kwargs
) -> dict:
    """Mean of each loss term over the examples ``x`` (weighted by batch size), as Python floats.

    The model's sampling uses its own seeded generator state, so the result depends only on the
    weights, and the caller's random stream is left untouched.
    """
    _check_model(model)
    _check_data(x, "x", model)
    check_positive_int(batch_size, "batch_size")
    check_seed(seed)
    was_training = model.training
    model.eval()
    sums = None
    with torch.random.fork_rng(devices=[]):
        _seed_sampling(model, seed)
        for xb in _batches(x, batch_size):
            terms = model.loss(xb, **loss_kwargs)
            weighted = torch.stack(tuple(terms)) * len(xb)
            sums = weighted if sums is None else sums + weighted
    model.train(was_training)
    return dict(zip(terms._fields, (sums / len(x)).tolist()))


def _settings(model, x_train, x_test, batch_size, lr, seed, loss_kwargs) -> dict:
    # What must match for a checkpoint to count as "this training run" (the epoch count may grow).
    def fingerprint(x):
        return None if x is None else [list(x.shape), round(float(x.double().sum()), 3)]

    return {
        "model_class": type(model).__name__,
        "config": dict(getattr(model, "config", {})),
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "loss_kwargs": dict(loss_kwargs),
        "x_train": fingerprint(x_train),
        "x_test": fingerprint(x_test),
    }


def train(
    model: nn.Module,
    x_train: torch.Tensor,
    x_test: torch.Tensor | None = None,
    *,
    num_epochs: int,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    loss_kwargs: dict | None = None,
    quiet: bool = False,
    checkpoint_path=None,
    resume: bool = True,
    callback=None,
    backward: str = "autograd",
    device=None,
) -> History:
    """Train ``model`` with Adam on shuffled minibatches and return the per-epoch History.

    Each epoch is :func:`train_epoch`, the loop of chapter 01: ``model.loss``, ``zero_grad``,
    ``backward``, ``step``.

    Args:
        model: a VAE, AutoEncoder or any module with ``loss(x, **loss_kwargs)`` (see the module
            docstring).
        x_train: (n, ...) training examples in [0, 1], e.g. ``mnist.x_train_flat``.
        x_test: optional held-out examples, evaluated after every epoch.
        num_epochs: passes over ``x_train``.
        batch_size, lr: minibatch size and Adam's learning rate.
        seed: seeds the shuffling and the model's sampling: the same seed (and initial weights)
            give an identical history.
        loss_kwargs: passed to ``model.loss``, e.g. ``{"C": 1.0, "k": 1}`` for a VAE.
        quiet: no progress bar.
        checkpoint_path: save a checkpoint after every epoch (atomically). If one from the same
            settings exists and ``resume`` is true, training continues from it.
        callback: called as ``callback(epoch, history)`` after each epoch (0-based epoch).
        backward: how the gradients are computed. ``"autograd"`` (default):
            ``loss.total.backward()``. ``"manual"``, an opt-in: the hand-derived gradients of the
            appendix (:mod:`vae_lesson.chapters.manual_backward`), for a plain ``VAE`` with tanh,
            ``k=1``, on the CPU: the same numbers to float32 rounding, about 1.2x as fast.
        device: where to train: ``"cpu"``, ``"cuda"``, ``"mps"``. By default the model's device
            if it is already on a GPU, else :func:`vae_lesson.pick_device`'s choice (a GPU when
            there is one, ``$VAE_LESSON_DEVICE`` to override). The model and data move there for
            the training and the model comes back to where it was, so the code after ``train``
            is the same on every machine.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (before the step that would spread it).
        GPUMemoryError: the GPU ran out of memory; the message names the batch size to lower.
    """
    _check_train_arguments(model, x_train, x_test, num_epochs, batch_size, lr, seed)
    loss_kwargs = dict(loss_kwargs or {})
    home = _model_device(model)
    if device is None and backward == "manual":
        device = "cpu"  # the hand-derived gradients are written for the CPU
    device = home if device is None and home.type != "cpu" else pick_device(device)
    run_epoch = _epoch_function(model, loss_kwargs, backward, device)

    # The data fingerprint costs a pass over the data in float64: only checkpoints need it.
    settings = (
        None
        if checkpoint_path is None
        else _settings(model, x_train, x_test, batch_size, lr, seed, loss_kwargs)
    )
    if device.type != "cpu":
        use_deterministic_kernels()  # only when $VAE_LESSON_DETERMINISTIC asks for it
    with _on_device(model, device, batch_size):
        x_train = x_train.to(device)
        x_test = None if x_test is None else x_test.to(device)
        optimizer = _adam(model, lr)
        shuffle = torch.Generator().manual_seed(seed)
        _seed_sampling(model, seed)
        history, start_epoch = History(), 0
        if checkpoint_path is not None and resume and Path(checkpoint_path).is_file():
            start_epoch, history = _resume(
                checkpoint_path, model, optimizer, shuffle, settings, num_epochs, quiet
            )

        epochs = tqdm(
            range(start_epoch, num_epochs),
            desc=f"training {type(model).__name__}"
            + ("" if device.type == "cpu" else f" on {device.type}"),
            unit="epoch",
            disable=quiet or start_epoch == num_epochs,
            initial=start_epoch,
            total=num_epochs,
        )
        for epoch in epochs:
            started = time.perf_counter()
            try:
                means = run_epoch(model, optimizer, x_train, batch_size, shuffle, **loss_kwargs)
            except NonFiniteLossError as exc:  # the loss itself: "... at batch b"
                raise NonFiniteLossError(
                    f"{exc} of epoch {epoch + 1}; training stopped before the update. "
                    f"{_DIVERGED_HINT.format(lr=lr)}"
                ) from None
            except NonFiniteError as exc:  # a NaN before the loss, e.g. in the encoder's output
                raise NonFiniteLossError(
                    f"the loss could not be computed in epoch {epoch + 1} ({exc}); training "
                    f"stopped before the update. {_DIVERGED_HINT.format(lr=lr)}"
                ) from None
            history._append(history.train, means)
            if x_test is not None:
                history._append(history.test, evaluate(model, x_test, seed=seed, **loss_kwargs))
            history.epoch_seconds.append(time.perf_counter() - started)
            epochs.set_postfix(
                train=f"{history.train['total'][-1]:.2f}",
                **({"test": f"{history.test['total'][-1]:.2f}"} if x_test is not None else {}),
            )
            if checkpoint_path is not None:
                save_checkpoint(
                    checkpoint_path,
                    model,
                    epoch=epoch + 1,
                    history=history.as_dict(),
                    settings=settings,
                    optimizer=optimizer,
                    rng_state=_rng_state(shuffle, device),
                )
            if callback is not None:
                callback(epoch, history)
        model.eval()
        return history


def _check_train_arguments(model, x_train, x_test, num_epochs, batch_size, lr, seed) -> None:
    """What :func:`train` checks before anything else (and ``load_or_train`` before a download)."""
    _check_model(model)
    check_positive_int(num_epochs, "num_epochs")
    check_positive_int(batch_size, "batch_size")
    check_number(lr, "lr", positive=True)
    check_seed(seed)
    _check_data(x_train, "x_train", model)
    if x_test is not None:
        _check_data(x_test, "x_test", model)


_DIVERGED_HINT = "Try a smaller learning rate (lr={lr}) or check the data for extreme values."


def _seed_sampling(model: nn.Module, seed: int) -> None:
    """Seed the generator the model's sampling draws from: the CPU one alone for a CPU model.

    ``torch.manual_seed`` also seeds every accelerator backend; a CPU model's sampling needs only
    the CPU one.
    """
    if all(p.device.type == "cpu" for p in model.parameters()):
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def _epoch_function(model: nn.Module, loss_kwargs: dict, backward: str, device=None):
    """The function that runs one epoch for ``train``'s ``backward`` choice; a ValueError for a bad
    choice."""
    if backward == "autograd":
        return train_epoch
    if backward == "manual" and device is not None and device.type != "cpu":
        raise ValueError(
            f"backward='manual' trains on the CPU only, but the device is {device}; pass "
            "device='cpu' or use backward='autograd'"
        )
    if backward == "manual":
        # The opt-in path (and the private torch kernels it may use) is imported only when
        # asked for.
        from ..chapters.manual_backward import manual_train_epoch, unsupported_reason

        reason = unsupported_reason(model, loss_kwargs)
        if reason is not None:
            raise ValueError(
                f"backward='manual' cannot train this model: {reason}; use backward='autograd'"
            )
        return manual_train_epoch
    raise ValueError(f"backward must be 'autograd' or 'manual', got {backward!r}")


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with torch's fused kernel (its public ``fused=True``) where it supports these
    parameters, else the default.

    The fused step makes one pass over the parameter, gradient and moment buffers, the default CPU
    implementation about ten (``python -m benchmarks --only ablation`` measures the difference).
    """
    params = list(model.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch: fused Adam for CUDA only
        return torch.optim.Adam(params, lr=lr)


def _resume(path, model, optimizer, shuffle, settings, num_epochs, quiet):
    """Restore weights, optimizer, history and random state from a checkpoint of the same run."""
    try:
        payload = read_checkpoint(path)
    except CheckpointError as exc:
        if not quiet:
            print(f"ignoring the checkpoint: {exc}")
        return 0, History()
    if (
        payload.get("settings") != settings
        or payload.get("epoch") is None
        or payload["epoch"] > num_epochs
    ):
        if not quiet:
            print(
                f"{_shown(path)} comes from other training settings; training from scratch and "
                "replacing it"
            )
        return 0, History()
    loaded = load_checkpoint(path, model)
    model.train()
    if loaded.optimizer_state is not None:
        # The saved groups carry the saving process's implementation flags; keep this
        # process's choice.
        implementation = [
            {k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups
        ]
        optimizer.load_state_dict(loaded.optimizer_state)
        for group, flags in zip(optimizer.param_groups, implementation):
            group.update(flags)
    torch.set_rng_state(loaded.rng_state["torch"])
    shuffle.set_state(loaded.rng_state["shuffle"])
    device = _model_device(model)
    if device.type == "cuda" and "cuda" in loaded.rng_state:  # saved on a GPU, resumed on one
        torch.cuda.set_rng_state(loaded.rng_state["cuda"], device)
    if not quiet:
        print(
            f"loaded the trained model from {_shown(path)} ({loaded.epoch} epoch"
            f"{'' if loaded.epoch == 1 else 's'})"
            if loaded.epoch == num_epochs
            else f"resuming from {_shown(path)} after epoch {loaded.epoch} of {num_epochs}"
        )
    return loaded.epoch, History.from_dict(loaded.history)


def _shown(path) -> str:
    """``path`` as a message shows it: under the home folder as ``~/...``, which reads the same on
    every machine (a book page would otherwise print the building machine's home folder)."""
    path = Path(path)
    try:
        return str(Path("~") / path.resolve().relative_to(Path.home().resolve()))
    except (ValueError, RuntimeError, OSError):  # outside home, or no home folder
        return str(path)


def load_or_train(
    checkpoint,
    model: nn.Module,
    x_train: torch.Tensor,
    x_test: torch.Tensor | None = None,
    *,
    num_epochs: int,
    **train_kwargs,
) -> History:
    """Load a finished run from ``checkpoint`` if it matches, else train (resuming a partial run)
    and save it.

    ``checkpoint`` is a path, or a bare name such as ``"vae_2d"`` kept in
    :func:`vae_lesson.checkpoint_dir`. The checkpoint counts only if it comes from the same model
    configuration, data and training settings; otherwise the model is trained from scratch and the
    checkpoint replaced. Returns the History either way. Other keyword arguments are those of
    :func:`train`.

    After :func:`vae_lesson.use_published_weights`, a named checkpoint that is not here yet is
    first downloaded from the published book, if the book trained it with the same model, data
    and settings (see :mod:`vae_lesson.infra.published`); then it loads without training.
    """
    path = resolve_checkpoint_path(checkpoint)
    name = checkpoint_name(checkpoint)
    if name is not None and published_weights_url() is not None:
        _fetch_published_weights(name, path, model, x_train, x_test, num_epochs, train_kwargs)
    before = _file_stamp(path)
    history = train(
        model,
        x_train,
        x_test,
        num_epochs=num_epochs,
        checkpoint_path=path,
        resume=True,
        **train_kwargs,
    )
    if name is not None:
        record_in_ledger(name, path)  # the list of checkpoints a book build publishes
    if before is not None and _file_stamp(path) == before:  # loaded: no epoch was trained
        record_loaded_work(name or str(path), sum(history.epoch_seconds))
    return history


def _file_stamp(path):
    """(modification time, size) of ``path``, None if there is no such file: the stamp changes
    whenever training saves a checkpoint."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _fetch_published_weights(name, path, model, x_train, x_test, num_epochs, train_kwargs):
    """Download the published checkpoint ``name`` to ``path`` unless ``path`` already holds this
    finished run; ``train`` then loads it instead of training."""
    defaults = {
        key: parameter.default for key, parameter in inspect.signature(train).parameters.items()
    }
    options = {**defaults, **train_kwargs}
    # train's own checks first, so that bad arguments get train's messages
    _check_train_arguments(
        model, x_train, x_test, num_epochs, options["batch_size"], options["lr"], options["seed"]
    )
    settings = _settings(
        model,
        x_train,
        x_test,
        options["batch_size"],
        options["lr"],
        options["seed"],
        dict(options["loss_kwargs"] or {}),
    )
    if Path(path).is_file():
        try:
            payload = read_checkpoint(path)
        except CheckpointError:
            payload = {}
        if payload.get("settings") == settings and payload.get("epoch") == num_epochs:
            return  # already here
    fetch_published(name, path, expected_settings=settings, num_epochs=num_epochs, model=model)
