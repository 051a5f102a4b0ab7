"""Training: one seeded, deterministic loop for every model in the book, with a history of each loss term.

A model only needs a ``loss(x, **loss_kwargs)`` method returning a NamedTuple of scalar tensors whose
first field is ``total`` (``VAELoss`` or ``AELoss``); every field is recorded per epoch for the
training and the test set, so the reconstruction and KL curves can be plotted separately.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ._checks import (check_batch, check_finite, check_model_input, check_number, check_positive_int, check_seed,
                      check_tensor, check_unit_interval)
from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, resolve_checkpoint_path, save_checkpoint
from .manual_backward import ManualStep, unsupported_reason

__all__ = ["History", "NonFiniteLossError", "set_seed", "train", "evaluate", "load_or_train"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stops before the weights are corrupted."""


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
    """Per-epoch means of each loss term: ``train["kl"][e]`` is the mean KL term in epoch e (0-based)."""

    train: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    epoch_seconds: list = field(default_factory=list)

    @property
    def num_epochs(self) -> int:
        return len(self.epoch_seconds)

    def as_dict(self) -> dict:
        return {"train": {k: list(v) for k, v in self.train.items()},
                "test": {k: list(v) for k, v in self.test.items()},
                "epoch_seconds": list(self.epoch_seconds)}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        return cls({k: list(v) for k, v in data["train"].items()},
                   {k: list(v) for k, v in data["test"].items()},
                   list(data["epoch_seconds"]))

    def _append(self, split: dict, means: dict) -> None:
        for key, value in means.items():
            split.setdefault(key, []).append(value)


def _check_model(model) -> None:
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
        raise TypeError(f"model must be a torch.nn.Module with a loss(x) method, got {type(model).__name__}")


def _check_data(x, name: str, model: nn.Module) -> None:
    check_tensor(x, name)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of examples (examples along dim 0), got shape {tuple(x.shape)}")
    if hasattr(model, "n_in") and x.dim() > 2:  # an MLP takes flat examples: (batch, n_in)
        raise ValueError(f"{name} must have shape (batch, {model.n_in}) for this model, got {tuple(x.shape)}; "
                         f"flatten the examples with {name}.reshape(len({name}), -1)")
    if x.dim() == 2 and hasattr(model, "n_in"):
        check_batch(x, name, model.n_in)
    check_model_input(x, name, model)
    # One aminmax pass proves the data finite and inside [0, 1] (NaN fails the comparison, inf lies outside);
    # the two full checks (an isfinite pass each, ~15x slower than aminmax here) run only to word the error.
    if x.numel() and not _finite_unit_interval(x):
        check_finite(x, name)
        check_unit_interval(x, name)


def _finite_unit_interval(x: torch.Tensor) -> bool:
    lo, hi = torch.aminmax(x.detach())
    return 0.0 <= float(lo) and float(hi) <= 1.0


def _batches(x: torch.Tensor, batch_size: int):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000, seed: int = 0, **loss_kwargs) -> dict:
    """Mean of each loss term over the examples ``x`` (weighted by batch size), as Python floats.

    The model's sampling uses its own seeded generator state, so the result depends only on the weights,
    and the caller's random stream is left untouched.
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
    return {"model_class": type(model).__name__, "config": dict(getattr(model, "config", {})),
            "batch_size": batch_size, "lr": lr, "seed": seed, "loss_kwargs": dict(loss_kwargs),
            "x_train": fingerprint(x_train), "x_test": fingerprint(x_test)}


def train(model: nn.Module, x_train: torch.Tensor, x_test: torch.Tensor | None = None, *, num_epochs: int,
          batch_size: int = 100, lr: float = 1e-3, seed: int = 0, loss_kwargs: dict | None = None,
          quiet: bool = False, checkpoint_path=None, resume: bool = True, callback=None,
          backward: str = "auto") -> History:
    """Train ``model`` with Adam on shuffled minibatches and return the per-epoch History.

    Args:
        model: a VAE, AutoEncoder or any module with ``loss(x, **loss_kwargs)`` (see module docstring).
        x_train: (n, ...) training examples in [0, 1], e.g. ``mnist.x_train_flat``.
        x_test: optional held-out examples, evaluated after every epoch.
        num_epochs: passes over ``x_train``.
        batch_size, lr: minibatch size and Adam's learning rate.
        seed: seeds the shuffling and the model's sampling: the same seed (and initial weights) give an
            identical history.
        loss_kwargs: passed to ``model.loss``, e.g. ``{"C": 1.0, "k": 1}`` for a VAE.
        quiet: no progress bar.
        checkpoint_path: save a checkpoint after every epoch (atomically). If one from the same settings
            exists and ``resume`` is true, training continues from it.
        callback: called as ``callback(epoch, history)`` after each epoch (0-based epoch).
        backward: how the gradients are computed. ``"autograd"``: ``model.loss(x).total.backward()``.
            ``"manual"``: the hand-derived gradients of :mod:`vae_lesson.manual_backward` (a plain
            ``VAE`` with tanh, ``k=1``, on the CPU; the same numbers to float32 rounding, about 1.2x as
            fast). ``"auto"`` (default): manual where it applies, else autograd.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (before the step that would spread it).
    """
    _check_model(model)
    check_positive_int(num_epochs, "num_epochs")
    check_positive_int(batch_size, "batch_size")
    check_number(lr, "lr", positive=True)
    check_seed(seed)
    _check_data(x_train, "x_train", model)
    if x_test is not None:
        _check_data(x_test, "x_test", model)
    loss_kwargs = dict(loss_kwargs or {})
    use_manual = _use_manual(model, loss_kwargs, backward)

    # The data fingerprint costs a pass over the data in float64: only checkpoints need it.
    settings = None if checkpoint_path is None else _settings(model, x_train, x_test, batch_size, lr, seed, loss_kwargs)
    optimizer = _adam(model, lr)
    shuffle = torch.Generator().manual_seed(seed)
    _seed_sampling(model, seed)
    history, start_epoch = History(), 0
    if checkpoint_path is not None and resume and Path(checkpoint_path).is_file():
        start_epoch, history = _resume(checkpoint_path, model, optimizer, shuffle, settings, num_epochs, quiet)

    epochs = tqdm(range(start_epoch, num_epochs), desc=f"training {type(model).__name__}", unit="epoch",
                  disable=quiet or start_epoch == num_epochs, initial=start_epoch, total=num_epochs)
    n = len(x_train)
    manual = ManualStep(model, loss_kwargs.get("C", 1.0)) if use_manual else None  # .grad buffers, released below
    adam_step = _AdamStep(optimizer) if manual is not None else optimizer.step
    try:
        for epoch in epochs:
            _train_epoch(model, x_train, x_test, history, adam_step, manual, epoch=epoch,
                         order=torch.randperm(n, generator=shuffle), batch_size=batch_size, lr=lr, seed=seed,
                         loss_kwargs=loss_kwargs)
            epochs.set_postfix(train=f"{history.train['total'][-1]:.2f}",
                               **({"test": f"{history.test['total'][-1]:.2f}"} if x_test is not None else {}))
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, epoch=epoch + 1, history=history.as_dict(), settings=settings,
                                optimizer=optimizer,
                                rng_state={"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()})
            if callback is not None:
                callback(epoch, history)
    finally:
        if manual is not None:
            manual.release()
    model.eval()
    return history


def _seed_sampling(model: nn.Module, seed: int) -> None:
    """Seed the generator the model's sampling draws from: the CPU one alone for a CPU model.

    ``torch.manual_seed`` also queues a seeding of every accelerator backend, recording a stack trace
    for each: about half a millisecond per call, a few percent of a short training call.
    """
    if all(p.device.type == "cpu" for p in model.parameters()):
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


def _use_manual(model: nn.Module, loss_kwargs: dict, backward: str) -> bool:
    """Whether ``train`` computes the gradients by hand (see its ``backward``); a ValueError for a bad choice."""
    if backward not in ("auto", "manual", "autograd"):
        raise ValueError(f"backward must be 'auto', 'manual' or 'autograd', got {backward!r}")
    if backward == "autograd":
        return False
    reason = unsupported_reason(model, loss_kwargs)
    if reason is not None and backward == "manual":
        raise ValueError(f"backward='manual' cannot train this model: {reason}; use backward='autograd'")
    return reason is None


def _train_epoch(model, x_train, x_test, history, adam_step, manual, *, epoch, order, batch_size, lr, seed,
                 loss_kwargs):
    """One pass over ``x_train`` in the order ``order``; appends the epoch's means (and test means) to ``history``."""
    started = time.perf_counter()
    model.train()
    sums = None
    for step, index in enumerate(order.split(batch_size)):
        # Slicing a preloaded tensor is far cheaper than a per-example DataLoader on a CPU.
        terms = manual(x_train, index) if manual is not None else model.loss(x_train[index], **loss_kwargs)
        # The NaN guard reads the loss once per step (a CPU has it already); the epoch's means add these numbers.
        values = [t if isinstance(t, float) else t.detach().item() for t in terms]
        if not math.isfinite(values[0]):
            raise NonFiniteLossError(
                f"the loss became {values[0]} at epoch {epoch + 1}, batch {step + 1}; training stopped "
                f"before the update. Try a smaller learning rate (lr={lr}) or check the data for extreme values."
            )
        if manual is None:
            model.zero_grad(set_to_none=True)
            terms.total.backward()
        adam_step()
        sums = [v * len(index) for v in values] if sums is None else [s + v * len(index) for s, v in zip(sums, values)]
    history._append(history.train, {key: total / len(x_train) for key, total in zip(terms._fields, sums)})
    if x_test is not None:
        history._append(history.test, evaluate(model, x_test, seed=seed, **loss_kwargs))
    history.epoch_seconds.append(time.perf_counter() - started)


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with torch's fused kernel where it supports these parameters (CPU since torch 2.4), else the default.

    The fused step makes one pass over the parameter, gradient and moment buffers; the default CPU
    implementation makes about ten and allocates parameter-sized temporaries. For the book's
    784-500-500-20 VAE at batch 100 on one thread that is about 1.7 ms instead of 5.6 ms of a
    roughly 19 ms step (``python -m benchmarks --only ablation`` measures it).
    """
    params = list(model.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch: fused Adam only for CUDA parameters
        return torch.optim.Adam(params, lr=lr)


class _AdamStep:
    """``optimizer.step()`` for the fused Adam of :func:`_adam` in the manual path, without its per-call bookkeeping.

    ``torch.optim.Adam.step`` re-collects its state lists and re-checks its options on every call: a
    few percent of a step of the book's VAE on a CPU. The first call is ``optimizer.step()`` itself
    (which creates the state); after it, this calls the same fused kernel on the optimizer's own state
    tensors, collected once. The weights, ``optimizer.state_dict()`` and the checkpoints are exactly
    those of ``optimizer.step()`` (``tests/test_manual_backward.py`` compares them bit for bit).
    Only for the manual path, whose weights all have a gradient at every step and whose optimizer
    nobody else touches during training; anything but plain fused Adam, or a torch without the
    kernel, keeps ``optimizer.step()``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self._plan = None  # None: not captured yet; False: use optimizer.step(); else the kernel's arguments

    def _capture(self):
        kernel = getattr(torch, "_fused_adam_", None)
        groups, state = self.optimizer.param_groups, self.optimizer.state
        if kernel is None or len(groups) != 1:
            return False
        g = groups[0]
        plain = not (g.get("amsgrad") or g.get("maximize") or g.get("capturable") or g.get("differentiable")
                     or g.get("decoupled_weight_decay"))
        params = list(g["params"])
        if not (g.get("fused") and plain and not isinstance(g["lr"], torch.Tensor)
                and all(p.grad is not None and "exp_avg" in state.get(p, {}) for p in params)):
            return False
        lists = [params, [p.grad for p in params], [state[p]["exp_avg"] for p in params],
                 [state[p]["exp_avg_sq"] for p in params], [], [state[p]["step"] for p in params]]
        beta1, beta2 = g["betas"]
        options = dict(amsgrad=False, lr=g["lr"], beta1=beta1, beta2=beta2, weight_decay=g["weight_decay"],
                       eps=g["eps"], maximize=False, grad_scale=None, found_inf=None)
        return kernel, lists, options

    def __call__(self) -> None:
        if not self._plan:
            self.optimizer.step()
            if self._plan is None:
                self._plan = self._capture()
            return
        kernel, lists, options = self._plan
        with torch.no_grad():
            torch._foreach_add_(lists[-1], 1)  # the step counts, as torch's fused Adam increments them
            kernel(*lists, **options)


def _resume(path, model, optimizer, shuffle, settings, num_epochs, quiet):
    """Restore weights, optimizer, history and random state from a checkpoint of the same run."""
    try:
        payload = read_checkpoint(path)
    except CheckpointError as exc:
        if not quiet:
            print(f"ignoring the checkpoint: {exc}")
        return 0, History()
    if payload.get("settings") != settings or payload.get("epoch") is None or payload["epoch"] > num_epochs:
        if not quiet:
            print(f"{path} comes from other training settings; training from scratch and replacing it")
        return 0, History()
    loaded = load_checkpoint(path, model)
    model.train()
    if loaded.optimizer_state is not None:
        # The saved groups carry the saving process's implementation flags; keep this process's choice.
        implementation = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
        optimizer.load_state_dict(loaded.optimizer_state)
        for group, flags in zip(optimizer.param_groups, implementation):
            group.update(flags)
    torch.set_rng_state(loaded.rng_state["torch"])
    shuffle.set_state(loaded.rng_state["shuffle"])
    if not quiet:
        print(f"loaded the trained model from {path} ({loaded.epoch} epochs)" if loaded.epoch == num_epochs
              else f"resuming from {path} after epoch {loaded.epoch} of {num_epochs}")
    return loaded.epoch, History.from_dict(loaded.history)


def load_or_train(checkpoint, model: nn.Module, x_train: torch.Tensor, x_test: torch.Tensor | None = None, *,
                  num_epochs: int, **train_kwargs) -> History:
    """Load a finished run from ``checkpoint`` if it matches, else train (resuming a partial run) and save it.

    ``checkpoint`` is a path, or a bare name such as ``"vae_2d"`` kept in :func:`vae_lesson.checkpoint_dir`.
    The checkpoint counts only if it comes from the same model configuration, data and training settings;
    otherwise the model is trained from scratch and the checkpoint replaced. Returns the History either way.
    Other keyword arguments are those of :func:`train`.
    """
    path = resolve_checkpoint_path(checkpoint)
    return train(model, x_train, x_test, num_epochs=num_epochs, checkpoint_path=path, resume=True, **train_kwargs)
