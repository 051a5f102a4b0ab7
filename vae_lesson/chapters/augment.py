"""A VAE as a data augmenter: does a classifier trained on few labelled digits gain from VAE
samples?

The pieces:

* :class:`SmallCNN`, a two-convolution classifier for 1 x 28 x 28 images, with
  :func:`train_classifier` (seeded, a fixed number of epochs *or* of gradient steps) and
  :func:`accuracy`;
* :func:`augment_with_vae`: for each training image, ``factor`` decoded draws z ~ q(z|x) around its
  code, with the image's label; :func:`shift_augment`, the classic reference (random small shifts);
* :func:`run_augmentation_experiment`, the experiment's loop, which chapter 10
  (notebooks/10_augmentation.ipynb) defines: for every training-set size, augmentation and seed, a
  class-balanced subset, a VAE trained on that subset only (:func:`train_subset_vae`), the augmented
  set, a classifier and its test accuracy; :func:`load_or_run_experiment` runs it (or the loop it is
  given) and caches the results table as JSON; :func:`summarize`, :func:`results_table` and
  :func:`plot_accuracy_vs_n` report it.

Everything works on preloaded tensors (no DataLoader) and is deterministic for a given seed.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import itertools
import json
import math
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..core.training import train as train_vae
from ..core.vae import VAE
from ..infra.atomic import write_text_atomically
from ..infra.checks import (
    check_class_labels,
    check_finite,
    check_generator,
    check_model_input,
    check_positive_int,
    check_seed,
    check_tensor,
    check_unit_interval,
)
from ..infra.loaded_work import record_loaded_work
from ..infra.plots import COLUMN_WIDTH, IMAGE_STYLE, OKABE_ITO, wrap_text

__all__ = [
    "SmallCNN",
    "train_classifier",
    "accuracy",
    "balanced_subset",
    "vae_codes",
    "augment_with_vae",
    "shift_augment",
    "DEFAULTS",
    "parse_augmentation",
    "experiment_settings",
    "check_experiment_data",
    "train_subset_vae",
    "train_subset_cvae",
    "augment_with_cvae",
    "run_augmentation_experiment",
    "load_or_run_experiment",
    "experiment_seconds",
    "summarize",
    "results_table",
    "plot_accuracy_vs_n",
    "plot_variants",
    "record_reference",
    "augmentation_label",
]

_KIND_NAMES = {"vae": "VAE", "cvae": "CVAE", "shift": "shifts"}


def augmentation_label(name: str) -> str:
    """How a figure or table names an augmentation: "none" -> "no augmentation", "vae-10" ->
    "VAE ×10", "cvae-2" -> "CVAE ×2", "shift-10" -> "shifts ×10"."""
    kind, factor = parse_augmentation(name)
    if kind == "none":
        return "no augmentation"
    return f"{_KIND_NAMES[kind]} ×{factor}"


# ------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------


def _as_images(x, name: str) -> torch.Tensor:
    """(n, 1, 28, 28), (n, 28, 28) or (n, 784) float images in [0, 1] -> a (n, 1, 28, 28) view."""
    check_tensor(x, name)
    if x.dim() == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 1, 28, 28)
    elif x.dim() == 3 and tuple(x.shape[1:]) == (28, 28):
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28) or x.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch of 28x28 images, shaped (n, 1, 28, 28), (n, 28, 28) "
            f"or (n, 784), got {tuple(x.shape)}"
        )
    return x


_check_generator = check_generator


# ------------------------------------------------------------------------------
# the classifier
# ------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """A small convolutional classifier for 28x28 grey images (about 18,000 parameters for 10
    classes).

    Shapes for a batch of n images:
        (n, 1, 28, 28) -conv 3x3, 8 channels, ReLU, max-pool 2-> (n, 8, 14, 14)
                       -conv 3x3, 32 channels, ReLU, max-pool 2-> (n, 32, 7, 7)
                       -flatten, linear-> (n, n_classes) logits.
    ``forward`` also accepts (n, 28, 28) or (n, 784) images. No dropout or batch norm: training is
    deterministic and the comparison between augmentations is not blurred by extra regularizers.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()
        check_positive_int(n_classes, "n_classes")
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.n_classes = n_classes
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 32, kernel_size=3, padding=1)
        self.head = nn.Linear(32 * 7 * 7, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, 1, 28, 28), (n, 28, 28) or (n, 784) images in [0, 1] -> (n, n_classes) logits."""
        x = check_model_input(_as_images(x, "x"), "x", self)
        check_unit_interval(x, "x")
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.head(h.flatten(1))


def _check_classifier_data(model, x, y, name_x="x", name_y="y"):
    x = _as_images(x, name_x)
    check_model_input(x, name_x, model)
    check_finite(x, name_x)
    check_unit_interval(x, name_x)
    y = check_class_labels(y, getattr(model, "n_classes", None), name=name_y, n=len(x))
    return x, y


@torch.inference_mode()
def _predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([model(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of the images ``x`` (n, 28, 28) etc. whose predicted class equals ``y`` (n,), in
    [0, 1]."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x, y = _check_classifier_data(model, x, y)
    check_positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    correct = (_predict(model, x, batch_size) == y).float().mean()
    model.train(was_training)
    return float(correct)


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    num_epochs: int | None = None,
    num_steps: int | None = None,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
) -> dict:
    """Train a classifier with Adam on the cross-entropy, either for ``num_epochs`` or for
    ``num_steps``.

    Give exactly one of ``num_epochs`` (passes over the data) and ``num_steps`` (gradient steps,
    whatever the size of the data: the fair budget when data sets of different sizes are compared).
    Minibatches are slices of a seeded permutation of the preloaded tensors, reshuffled after each
    pass; the same seed and initial weights give identical weights.

    Args:
        model: e.g. a :class:`SmallCNN`; must map (batch, 1, 28, 28) images to
            (batch, n_classes) logits.
        x: (n, 1, 28, 28), (n, 28, 28) or (n, 784) float images in [0, 1].
        y: (n,) integer labels 0 .. n_classes - 1.
        batch_size: images per step (at most n are used).
        x_val, y_val: optional held-out images and labels; their accuracy is recorded after
            each pass.

    Returns:
        ``{"train_loss": [mean cross-entropy (nats per image) of each pass], "val_accuracy": [...],
        "steps": steps taken, "seconds": wall time}``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (num_epochs is None) == (num_steps is None):
        raise ValueError("give exactly one of num_epochs and num_steps")
    if num_epochs is not None:
        check_positive_int(num_epochs, "num_epochs")
    else:
        check_positive_int(num_steps, "num_steps")
    check_positive_int(batch_size, "batch_size")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    check_seed(seed)
    x, y = _check_classifier_data(model, x, y)
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val, y_val = _check_classifier_data(model, x_val, y_val, "x_val", "y_val")

    n = len(x)
    batch_size = min(batch_size, n)
    steps_per_pass = math.ceil(n / batch_size)
    total_steps = num_steps if num_steps is not None else num_epochs * steps_per_pass
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"train_loss": [], "val_accuracy": [], "steps": 0, "seconds": 0.0}
    started = time.perf_counter()
    model.train()
    step = 0
    while step < total_steps:
        order = torch.randperm(n, generator=shuffle)
        loss_sum, seen = torch.zeros(()), 0
        for start in range(0, n, batch_size):
            if step == total_steps:
                break
            index = order[start : start + batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(index)  # no per-step .item(): keep the loop tight
            seen += len(index)
            step += 1
        history["train_loss"].append(float(loss_sum) / seen)
        if x_val is not None:
            history["val_accuracy"].append(accuracy(model, x_val, y_val))
            model.train()
    model.eval()
    history["steps"] = step
    history["seconds"] = time.perf_counter() - started
    return history


# ------------------------------------------------------------------------------
# augmentation
# ------------------------------------------------------------------------------


def balanced_subset(
    y: torch.Tensor, n: int, *, seed: int, n_classes: int | None = None
) -> torch.Tensor:
    """Indices of ``n`` examples, as equally many of each class as possible, drawn without
    replacement.

    With K classes each gets n // K examples, and the first n % K classes one more. The result is
    sorted by position in ``y``. Raises a ValueError if a class has too few examples.
    """
    if n_classes is not None:
        check_positive_int(n_classes, "n_classes")
    y = check_class_labels(y, n_classes, name="y")
    if len(y) == 0:
        raise ValueError("y is empty: there are no labelled examples to choose from")
    check_positive_int(n, "n")
    check_seed(seed)
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    if n < n_classes:
        raise ValueError(
            f"n must be at least the number of classes ({n_classes}) for a balanced subset, got {n}"
        )
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(n_classes):
        members = torch.nonzero(y == c).flatten()
        want = n // n_classes + (1 if c < n % n_classes else 0)
        if len(members) < want:
            raise ValueError(
                f"class {c} has {len(members)} examples but the balanced subset needs {want}"
            )
        chosen.append(members[torch.randperm(len(members), generator=generator)[:want]])
    return torch.cat(chosen).sort().values


def _check_vae_input(vae, x) -> torch.Tensor:
    if (
        not isinstance(vae, nn.Module)
        or not callable(getattr(vae, "encode", None))
        or not callable(getattr(vae, "decode", None))
        or not isinstance(getattr(vae, "n_in", None), int)
    ):
        raise TypeError(
            f"vae must be a trained VAE (with encode, decode and n_in), got {type(vae).__name__}"
        )
    check_tensor(x, "x")
    if x.dim() < 2 or x.shape[0] == 0 or x[0].numel() != vae.n_in:
        raise ValueError(
            f"x must be a non-empty batch of images with {vae.n_in} pixels each (the VAE's n_in), "
            f"got shape {tuple(x.shape)}" + (" (empty)" if x.numel() == 0 else "")
        )
    check_model_input(x, "x", vae)
    check_finite(x, "x")
    check_unit_interval(x, "x")
    return x.reshape(len(x), -1)


def vae_codes(
    vae: nn.Module,
    x: torch.Tensor,
    factor: int,
    *,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``factor`` codes around each image's code: z = mean + scale * sigma * eps, eps ~ N(0, I).

    Args:
        vae: a trained VAE; x: (n, ...) images with ``vae.n_in`` pixels each, in [0, 1].
        factor: codes per image; scale: multiplies the standard deviation of q(z|x) (0: the
            mean only).

    Returns:
        z (n, factor, n_latent), and the mean and standard deviation of q(z|x), each (n, n_latent).
    """
    flat = _check_vae_input(vae, x)
    check_positive_int(factor, "factor")
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not (0 <= scale < math.inf)
    ):
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
    _check_generator(generator)
    was_training = vae.training
    vae.eval()
    with torch.inference_mode():
        encoded = vae.encode(flat)
    vae.train(was_training)
    if not (isinstance(encoded, tuple) and len(encoded) == 2):
        raise TypeError(
            "vae must be a VAE whose encode returns (mean, ln_var), got "
            f"{type(vae).__name__}, whose encode returns {type(encoded).__name__}"
        )
    mean, ln_var = encoded
    mean, std = mean.clone(), torch.exp(0.5 * ln_var).clone()
    eps = torch.randn(len(flat), factor, mean.shape[1], generator=generator)
    return mean.unsqueeze(1) + scale * std.unsqueeze(1) * eps, mean, std


def augment_with_vae(
    vae: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    factor: int,
    *,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``factor`` new images per training image with a trained VAE, each keeping its
    image's label.

    Each image is encoded to q(z|x); ``factor`` codes are drawn from it (its standard deviation
    multiplied by ``scale``) and decoded to pixel probabilities (not binarized). Only the generated
    images are returned: concatenate them with the originals yourself.

    Args:
        vae: a trained :class:`vae_lesson.VAE`.
        x: (n, ...) images with ``vae.n_in`` pixels each (e.g. (n, 28, 28) or (n, 784)), in [0, 1].
        y: (n,) integer labels.
        factor: generated images per original, >= 1.
        scale: multiplies sigma of q(z|x); 0 decodes the mean every time.
        generator: a seeded ``torch.Generator`` for reproducible samples.

    Returns:
        x_aug (n * factor, *x.shape[1:]) in [0, 1] and y_aug (n * factor,); rows
        i * factor ... (i + 1) * factor - 1 come from image i.
    """
    z, _, _ = vae_codes(vae, x, factor, scale=scale, generator=generator)
    y = check_class_labels(y, name="y", n=len(x))
    if z.shape[2] != vae.n_latent:
        raise ValueError(
            f"the encoder returned {z.shape[2]} latent dimensions but the VAE has "
            f"n_latent={vae.n_latent}"
        )
    was_training = vae.training
    vae.eval()
    with torch.inference_mode():
        images = vae.decode(z.reshape(-1, z.shape[2]))
    vae.train(was_training)
    return images.clone().reshape(len(images), *x.shape[1:]), y.repeat_interleave(factor)


def shift_augment(
    x: torch.Tensor,
    y: torch.Tensor,
    factor: int,
    *,
    max_shift: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classic augmentation: ``factor`` copies of each image shifted by whole pixels, each
    keeping its label.

    Each copy moves by (dy, dx) drawn uniformly from -max_shift .. max_shift, filling with black
    (0).

    Args:
        x: (n, H, W) images in [0, 1]; y: (n,) labels.

    Returns:
        x_aug (n * factor, H, W) and y_aug (n * factor,), ordered as in :func:`augment_with_vae`.
    """
    check_tensor(x, "x")
    if x.dim() != 3 or x.numel() == 0:
        raise ValueError(
            f"x must be a non-empty batch of (H, W) images, shaped (n, H, W), got {tuple(x.shape)}"
            + (" (empty)" if x.numel() == 0 else "")
        )
    check_unit_interval(x, "x")
    y = check_class_labels(y, name="y", n=len(x))
    check_positive_int(factor, "factor")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0, got {max_shift!r}")
    _check_generator(generator)
    n, height, width = x.shape
    m = max_shift
    padded = F.pad(x, (m, m, m, m)).repeat_interleave(factor, 0)  # (n * factor, H + 2m, W + 2m)
    offsets = torch.randint(0, 2 * m + 1, (n * factor, 2), generator=generator)
    rows = (offsets[:, 0, None] + torch.arange(height)).unsqueeze(2)  # (N, H, 1)
    cols = (offsets[:, 1, None] + torch.arange(width)).unsqueeze(1)  # (N, 1, W)
    shifted = padded[torch.arange(n * factor)[:, None, None], rows, cols]
    return shifted, y.repeat_interleave(factor)


# ------------------------------------------------------------------------------
# the experiment
# ------------------------------------------------------------------------------


def parse_augmentation(name: str) -> tuple[str, int]:
    """``"none"`` -> ("none", 0); ``"vae-<factor>"``, ``"cvae-<factor>"`` and
    ``"shift-<factor>"`` -> (kind, factor)."""
    if name == "none":
        return "none", 0
    kind, _, factor = name.partition("-") if isinstance(name, str) else (None, "", "")
    if kind in ("vae", "cvae", "shift") and factor.isdigit() and int(factor) >= 1:
        return kind, int(factor)
    raise ValueError(
        'augmentation must be "none", "vae-<factor>", "cvae-<factor>" or "shift-<factor>", '
        f"got {name!r}"
    )


# Each augmenter's IWAE estimate uses the first N_IWAE_TEST images of the test set (the VAEs' and
# the CVAEs' alike, so the two are compared on the same images).
N_IWAE_TEST = 1000

# What a row of the results measures; a cached table of another version is computed again. 2: the
# CVAEs' IWAE estimate ("cvae_iwae") joined the VAEs'.
MEASURES = 2

DEFAULTS = {
    "n_trains": (100, 200, 400, 800),
    "augmentations": ("none", "vae-10", "vae-50"),
    "seeds": (0, 1, 2),
    "vae_latent": 8,
    "vae_hidden": 128,
    "vae_steps": 500,
    "vae_batch_size": 50,
    "vae_lr": 3e-3,
    "scale": 1.0,
    "classifier_steps": 125,
    "batch_size": 32,
    "lr": 3e-3,
    "vae_iwae_k": 50,
}
"""The experiment's settings, what :func:`run_augmentation_experiment` uses for those not given.

``n_trains``: sizes of the labelled subsets; ``augmentations``: "none", "vae-<factor>",
"cvae-<factor>", "shift-<factor>"; ``seeds``: one run of everything per seed. The VAE (and the
conditional VAE, with the same sizes and budget) of each (n_train, seed):
``vae_latent``-D codes, ``vae_hidden`` hidden units, about ``vae_steps`` gradient steps (whole
epochs) of ``vae_batch_size`` images with Adam at ``vae_lr``, and an IWAE estimate with
``vae_iwae_k`` samples on the first 1,000 test images; ``scale`` multiplies the spread of q(z|x)
when sampling variants. The classifiers: ``classifier_steps`` steps of ``batch_size`` images, Adam
at ``lr``.
"""


def experiment_settings(settings: dict) -> dict:
    """:data:`DEFAULTS` updated with ``settings``, checked: an unknown name is a TypeError, a bad
    augmentation name or a size that is not a positive integer a ValueError."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown experiment setting(s): {sorted(unknown)}; known: {sorted(DEFAULTS)}"
        )
    full = {**DEFAULTS, **settings}
    for name in ("vae_steps", "classifier_steps", "vae_iwae_k"):
        check_positive_int(full[name], name)
    for n_train in full["n_trains"]:
        check_positive_int(n_train, "n_train")
    for name in full["augmentations"]:
        parse_augmentation(name)
    return full


def check_experiment_data(x_train, y_train, x_test, y_test):
    """The experiment's data, checked: 28x28 images in [0, 1] (any layout :class:`SmallCNN` takes)
    and labels 0 .. 9; returns the images as (n, 28, 28) and the labels as int64."""
    x_train = _as_images(x_train, "x_train")[:, 0]
    x_test = _as_images(x_test, "x_test")[:, 0]
    y_train = check_class_labels(y_train, 10, name="y_train", n=len(x_train))
    y_test = check_class_labels(y_test, 10, name="y_test", n=len(x_test))
    return x_train, y_train, x_test, y_test


def _train_on_subset(model: nn.Module, rows: torch.Tensor, seed: int, settings: dict) -> int:
    """Train a generator of the experiment on ``rows`` for the whole number of epochs closest to
    ``settings["vae_steps"]`` gradient steps (at least one); returns the epochs."""
    batch = min(settings["vae_batch_size"], len(rows))
    epochs = max(1, round(settings["vae_steps"] / math.ceil(len(rows) / batch)))
    train_vae(
        model,
        rows,
        num_epochs=epochs,
        batch_size=batch,
        lr=settings["vae_lr"],
        seed=seed,
        quiet=True,
    )
    return epochs


def train_subset_vae(x: torch.Tensor, x_test: torch.Tensor, seed: int, settings: dict):
    """The augmenter of one (n_train, seed): a VAE trained on the images ``x`` only, and its
    numbers.

    The VAE (784 pixels, ``settings["vae_latent"]``-D codes, ``settings["vae_hidden"]`` hidden
    units) starts from ``torch.manual_seed(seed)`` and is trained with :func:`vae_lesson.train` for
    the number of whole epochs closest to ``settings["vae_steps"]`` gradient steps (at least one).
    Then it is measured on the test images, for the book's reference table.

    Returns:
        (vae, {"vae_epochs", "vae_seconds" (wall time of its training), "vae_neg_elbo" (test -ELBO)
        and "vae_iwae" (IWAE estimate of -log p(x) on the first 1,000 test images), in nats per
        image}).
    """
    from .iwae import iwae_bound, neg_elbo

    started = time.perf_counter()
    torch.manual_seed(seed)
    vae = VAE(784, settings["vae_latent"], settings["vae_hidden"])
    epochs = _train_on_subset(vae, x.reshape(len(x), -1), seed, settings)
    vae_seconds = time.perf_counter() - started
    x_test_flat = x_test.reshape(len(x_test), -1)
    iwae = iwae_bound(vae, x_test_flat[:N_IWAE_TEST], K=settings["vae_iwae_k"])
    return vae, {
        "vae_epochs": epochs,
        "vae_seconds": vae_seconds,
        "vae_neg_elbo": neg_elbo(vae, x_test_flat).mean().item(),
        "vae_iwae": -iwae.mean().item(),
    }


def train_subset_cvae(x: torch.Tensor, y: torch.Tensor, x_test, y_test, seed: int, settings):
    """The conditional augmenter of one (n_train, seed): a :class:`~vae_lesson.chapters.cvae.CVAE`
    trained on the labelled images ``x``, ``y`` only, with the sizes and the budget of
    :func:`train_subset_vae`.

    Returns:
        (cvae, {"cvae_epochs", "cvae_seconds" (wall time of its training), "cvae_neg_elbo" (test
        -ELBO of log p(x | y)) and "cvae_iwae" (IWAE estimate of -log p(x | y) on the first 1,000
        test images, through :class:`~vae_lesson.chapters.cvae.GivenLabels`), in nats per image}).
    """
    from ..core.training import evaluate
    from .cvae import CVAE, GivenLabels, with_labels
    from .iwae import iwae_bound

    started = time.perf_counter()
    torch.manual_seed(seed)
    cvae = CVAE(784, 10, settings["vae_latent"], settings["vae_hidden"])
    epochs = _train_on_subset(cvae, with_labels(x.reshape(len(x), -1), y), seed, settings)
    seconds = time.perf_counter() - started
    rows_test = with_labels(x_test.reshape(len(x_test), -1), y_test)
    iwae = iwae_bound(GivenLabels(cvae), rows_test[:N_IWAE_TEST], K=settings["vae_iwae_k"])
    return cvae, {
        "cvae_epochs": epochs,
        "cvae_seconds": seconds,
        "cvae_neg_elbo": evaluate(cvae, rows_test)["total"],
        "cvae_iwae": -iwae.mean().item(),
    }


def augment_with_cvae(
    cvae: nn.Module, y: torch.Tensor, factor: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``factor`` class-conditional samples per label of ``y``: codes drawn from the prior
    N(0, I), decoded with the label (pixel probabilities, not binarized).

    Unlike :func:`augment_with_vae`, a sample does not start from a training image: only from its
    class. Returns x_aug (n * factor, 28, 28) in [0, 1] and y_aug (n * factor,), ordered as in
    :func:`augment_with_vae`.
    """
    from .cvae import CVAE, one_hot

    if not isinstance(cvae, CVAE):
        raise TypeError(f"cvae must be a trained CVAE, got {type(cvae).__name__}")
    y = check_class_labels(y, cvae.n_classes, name="y")
    check_positive_int(factor, "factor")
    _check_generator(generator)
    labels = y.repeat_interleave(factor)
    z = torch.randn(len(labels), cvae.n_latent, generator=generator)
    was_training = cvae.training
    cvae.eval()
    with torch.inference_mode():
        images = cvae.decode(z, one_hot(labels, cvae.n_classes))
    cvae.train(was_training)
    return images.clone().reshape(len(labels), 28, 28), labels


def run_augmentation_experiment(x_train, y_train, x_test, y_test, *, verbose=True, **settings):
    """Test accuracy of a SmallCNN for every training-set size,
    augmentation and seed: one dict (a row) per classifier.

    settings: any of augment.DEFAULTS; the others keep theirs.
    Defined in chapter 10 (notebooks/10_augmentation.ipynb).
    """
    s = experiment_settings(settings)
    x_train, y_train, x_test, y_test = check_experiment_data(x_train, y_train, x_test, y_test)
    rows = []
    for n_train, seed in itertools.product(s["n_trains"], s["seeds"]):
        # 1. n_train labelled images, as many of each digit
        subset = balanced_subset(y_train, n_train, seed=seed, n_classes=10)
        x, y = x_train[subset], y_train[subset]
        # 2. a VAE that sees only these images
        vae, vae_row = None, {}
        if any(a.startswith("vae") for a in s["augmentations"]):
            vae, vae_row = train_subset_vae(x, x_test, seed, s)
        # 2'. a conditional VAE that sees them with their labels
        cvae, cvae_row = None, {}
        if any(a.startswith("cvae") for a in s["augmentations"]):
            cvae, cvae_row = train_subset_cvae(x, y, x_test, y_test, seed, s)
        for name in s["augmentations"]:
            # 3. the originals and their variants, same labels
            started = time.perf_counter()
            kind, factor = parse_augmentation(name)
            generator = torch.Generator().manual_seed(seed)
            if kind == "vae":
                x_new, y_new = augment_with_vae(
                    vae, x, y, factor, scale=s["scale"], generator=generator
                )
            elif kind == "cvae":  # new digits of each label
                x_new, y_new = augment_with_cvae(cvae, y, factor, generator=generator)
            elif kind == "shift":
                x_new, y_new = shift_augment(x, y, factor, generator=generator)
            else:  # "none"
                x_new, y_new = x[:0], y[:0]
            x_all = torch.cat([x, x_new])
            y_all = torch.cat([y, y_new])
            # 4. a classifier: one start per seed, a fixed budget
            torch.manual_seed(1000 + seed)
            model = SmallCNN(10)
            trained = time.perf_counter()
            train_classifier(
                model,
                x_all,
                y_all,
                num_steps=s["classifier_steps"],
                batch_size=s["batch_size"],
                lr=s["lr"],
                seed=seed,
            )
            # 5. its accuracy on all the test images
            acc = accuracy(model, x_test, y_test)
            now = time.perf_counter()
            rows.append(
                {
                    "n_train": n_train,
                    "augmentation": name,
                    "seed": seed,
                    "n_images": len(x_all),
                    "accuracy": acc,
                    "seconds": now - started,
                    "classifier_seconds": now - trained,
                    **vae_row,
                    **cvae_row,
                }
            )
            if kind == "vae":  # these rows share the VAE's training
                rows[-1]["seconds"] += vae_row["vae_seconds"]
            if kind == "cvae":
                rows[-1]["seconds"] += cvae_row["cvae_seconds"]
            if verbose:
                print(f"{n_train} images, {name}, seed {seed}: test accuracy {acc:.3f}")
    return rows


def _fingerprint(x: torch.Tensor) -> list:
    return [list(x.shape), round(float(x.double().sum()), 3)]


def _syntax(function) -> str | None:
    """The syntax tree of ``function``'s source as text (comments and blank lines do not count), or
    None when its source cannot be read."""
    try:
        return ast.dump(ast.parse(textwrap.dedent(inspect.getsource(function))))
    except (OSError, TypeError, SyntaxError):
        return None


def _loop_key(run) -> str | None:
    """None for the book's loop, so that its cached tables stay valid; for any other loop, a hash of
    its code, so that an edited loop never reloads numbers computed by another one."""
    ours, theirs = _syntax(run_augmentation_experiment), _syntax(run)
    if theirs is not None and theirs == ours:
        return None
    if theirs is None:  # no source to read: the compiled code, or the object itself
        code = getattr(run, "__code__", None)
        theirs = repr((code.co_code, code.co_consts, code.co_names)) if code else repr(run)
    return hashlib.sha256(theirs.encode()).hexdigest()[:12]


def load_or_run_experiment(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    cache_dir=None,
    data_source: str = "",
    verbose: bool = True,
    run=None,
    **settings,
) -> tuple[list[dict], Path, bool]:
    """``run(x_train, y_train, x_test, y_test, verbose=..., **settings)``, its rows cached as JSON
    keyed by the settings and the data.

    ``run`` is the experiment's loop, :func:`run_augmentation_experiment` unless another is given
    (chapter 10 passes the loop it defines). A loop whose code differs from the book's also puts a
    hash of its code in the key, so that editing it computes a new table.

    The file ``augmentation_<key>.json`` in ``cache_dir`` (default
    ``vae_lesson.infra.settings.output_dir("10_augmentation")``) holds the settings, a fingerprint
    of the data and the rows; it is written atomically (a temporary file, then a rename), so an
    interrupted run never leaves a half-written table. A rebuild with the same settings and data
    reloads it. With the default ``cache_dir``, a file of that name in the checkpoint folder
    (``vae_lesson.infra.checkpoint.checkpoint_dir()``, where a teacher's handed-out folder is
    put) is read too, so students can load the table instead of computing it.

    Returns:
        (rows, path of the JSON file, True if the rows were loaded rather than computed).
    """
    from ..infra.checkpoint import checkpoint_dir
    from ..infra.settings import output_dir

    run = run_augmentation_experiment if run is None else run
    if not callable(run):
        raise TypeError(f"run must be a function (the experiment's loop), got {type(run).__name__}")
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown experiment setting(s): {sorted(unknown)}; known: {sorted(DEFAULTS)}"
        )
    full = {**DEFAULTS, **settings}
    full = {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in full.items()}
    key = {
        "settings": full,
        "data": {
            "x_train": _fingerprint(x_train),
            "y_train": _fingerprint(y_train),
            "x_test": _fingerprint(x_test),
            "y_test": _fingerprint(y_test),
        },
        "torch": torch.__version__.split("+")[0],
        "measures": MEASURES,
    }
    loop = _loop_key(run)
    if loop is not None:
        key["loop"] = loop
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(cache_dir) if cache_dir is not None else output_dir("10_augmentation")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"augmentation_{digest}.json"
    # by default, also a table handed out with the trained models (a teacher's checkpoints folder)
    handed_out = [] if cache_dir is not None else [checkpoint_dir() / path.name]
    for found in [path, *handed_out]:
        if not found.is_file():
            continue
        try:
            stored = json.loads(found.read_text())
            if stored.get("key") == key:
                if verbose:
                    print(f"loaded the results table from {found}")
                # what computing it took, for the build-times appendix
                record_loaded_work(found.name, experiment_seconds(stored["rows"]))
                return stored["rows"], found, True
        except (json.JSONDecodeError, KeyError, TypeError):
            pass  # a damaged file: compute again (and replace it, if it is in the cache)
    rows = run(x_train, y_train, x_test, y_test, verbose=verbose, **settings)
    payload = json.dumps({"key": key, "data_source": data_source, "rows": rows}, indent=1)
    write_text_atomically(path, payload)
    if verbose:
        print(f"saved the results table to {path}")
    return rows, path, False


def experiment_seconds(rows: list[dict]) -> float:
    """The wall time the experiment behind ``rows`` took. A row's "seconds" holds its own work
    plus, for VAE or CVAE rows, the training of the generator they use; the rows of one labelled
    set and seed share that generator, so its time is counted once here."""
    total, generators = 0.0, {}
    for row in rows:
        seconds = row.get("seconds", 0.0)
        kind, _ = parse_augmentation(row["augmentation"])
        if kind in ("vae", "cvae") and f"{kind}_seconds" in row:
            generator = row[f"{kind}_seconds"]
            seconds -= generator
            generators[kind, row["n_train"], row["seed"]] = generator
        total += seconds
    return total + sum(generators.values())


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof=1; 0 for a single seed) of the accuracy per
    (n_train, augmentation).

    Returns one dict per group, ``n_train, augmentation, n_seeds, mean, sd, n_images``, ordered by
    n_train and then by the order in which the augmentations first appear.
    """
    if not rows:
        raise ValueError("rows is empty: there is nothing to summarize")
    order = list(dict.fromkeys(r["augmentation"] for r in rows))
    groups = {}
    for r in rows:
        groups.setdefault((r["n_train"], r["augmentation"]), []).append(r)
    summary = []
    for n_train, name in sorted(groups, key=lambda k: (k[0], order.index(k[1]))):
        acc = np.array([r["accuracy"] for r in groups[(n_train, name)]])
        summary.append(
            {
                "n_train": n_train,
                "augmentation": name,
                "n_seeds": len(acc),
                "mean": float(acc.mean()),
                "sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "n_images": groups[(n_train, name)][0]["n_images"],
            }
        )
    return summary


def results_table(rows: list[dict], fmt: str = "markdown") -> str:
    """One row per n_train, one column per augmentation, "mean ± sd" test accuracy in %.

    ``fmt="markdown"`` gives a Markdown table (for printing or a README); ``fmt="html"`` an HTML
    table, which a notebook shows with ``IPython.display.HTML`` and the book renders as a table.
    """
    if fmt not in ("markdown", "html"):
        raise ValueError(f'fmt must be "markdown" or "html", got {fmt!r}')
    summary = summarize(rows)
    names = list(dict.fromkeys(s["augmentation"] for s in summary))
    cells = {(s["n_train"], s["augmentation"]): s for s in summary}
    header = ["labelled images"] + [augmentation_label(a) for a in names]
    body = []
    for n_train in sorted({s["n_train"] for s in summary}):
        values = [str(n_train)]
        for a in names:
            s = cells.get((n_train, a))
            values.append("" if s is None else f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}")
        body.append(values)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---:" for _ in header) + " |"]
        return "\n".join(lines + ["| " + " | ".join(v) + " |" for v in body])
    cell = '<td style="text-align: right; white-space: nowrap">{}</td>'
    rows_html = [
        "<tr>" + "".join(f'<th style="text-align: right">{h}</th>' for h in header) + "</tr>"
    ]
    rows_html += ["<tr>" + "".join(cell.format(v) for v in values) + "</tr>" for values in body]
    # A little smaller than the text: its seven columns fit the 676 px column at 1280 px.
    table = '<table class="table" style="font-size: 0.85em">'
    return table + "\n" + "\n".join(rows_html) + "\n</table>"


def _seeds_text(seeds) -> str:
    seeds = sorted(set(seeds))
    contiguous = seeds == list(range(seeds[0], seeds[-1] + 1))
    return (
        str(seeds[0])
        if len(seeds) == 1
        else (f"{seeds[0]}–{seeds[-1]}" if contiguous else ", ".join(map(str, seeds)))
    )


def record_reference(
    rows: list[dict], *, data: str, settings: dict | None = None, chapter: str = "10_augmentation"
) -> list[dict]:
    """Add the experiment's models to the book's reference table
    (:mod:`vae_lesson.chapters.reference`); return the rows.

    One row per training-set size for its VAEs (test -ELBO and IWAE estimate averaged over the
    seeds, total training time), the same for its CVAEs (of -log p(x | y)), and one per augmentation
    for its classifiers (mean test accuracy for each size). ``data`` names the data set, e.g.
    "MNIST (offline subset)"; ``settings`` are the experiment's (defaults filled in from
    :data:`DEFAULTS`). Sizes without VAE (or CVAE) measurements get no VAE (or CVAE) row.
    """
    from .reference import record_row

    if not rows:
        raise ValueError("rows is empty: run the experiment first")
    full = {**DEFAULTS, **(settings or {})}
    recorded = []
    for model, key in (("VAE", "vae"), ("CVAE", "cvae")):
        for n_train in sorted({r["n_train"] for r in rows}):
            runs = {
                r["seed"]: r
                for r in rows
                if r["n_train"] == n_train and r.get(f"{key}_neg_elbo") is not None
            }
            if not runs:
                continue
            runs = list(runs.values())
            metric = f"mean of {len(runs)} {model}{'s' if len(runs) > 1 else ''} (one per seed)"
            if model == "CVAE":
                metric += "; its bounds are on -log p(x | label)"
            recorded.append(
                record_row(
                    chapter,
                    f"{model} on {n_train} labelled digits",
                    model=model,
                    data=f"{data}, {n_train} training images",
                    latent=full["vae_latent"],
                    epochs=runs[0][f"{key}_epochs"],
                    seed=_seeds_text(r["seed"] for r in runs),
                    train_seconds=sum(r[f"{key}_seconds"] for r in runs),
                    test_neg_elbo=float(np.mean([r[f"{key}_neg_elbo"] for r in runs])),
                    test_iwae=float(np.mean([r[f"{key}_iwae"] for r in runs])),
                    iwae_k=full["vae_iwae_k"],
                    metric=metric,
                )
            )
    summary = summarize(rows)
    for name in dict.fromkeys(r["augmentation"] for r in rows):
        group = [r for r in rows if r["augmentation"] == name]
        sizes = sorted({r["n_train"] for r in group})
        accuracies = ", ".join(
            f"{100 * s['mean']:.1f}% (n = {s['n_train']})"
            for s in summary
            if s["augmentation"] == name
        )
        recorded.append(
            record_row(
                chapter,
                f"small CNN, {augmentation_label(name)}",
                model="SmallCNN",
                data=f"{data}, {'/'.join(map(str, sizes))} labelled images",
                latent=None,
                epochs=f"{full['classifier_steps']} steps",
                seed=_seeds_text(r["seed"] for r in group),
                train_seconds=sum(r.get("classifier_seconds", r["seconds"]) for r in group),
                metric=f"test accuracy {accuracies}",
            )
        )
    return recorded


def plot_accuracy_vs_n(rows: list[dict], title: str | None = None) -> Figure:
    """Test accuracy against the number of labelled images, one line per augmentation.

    Points are the mean over seeds, error bars one sample standard deviation (hidden when there is
    one seed); the lines are nudged sideways so that the bars do not overlap. Colours are Okabe and
    Ito's (colour-blind safe), each line with its own marker as well.
    """
    summary = summarize(rows)
    names = list(dict.fromkeys(s["augmentation"] for s in summary))
    n_values = sorted({s["n_train"] for s in summary})
    markers = "osD^vP"
    fig = Figure(figsize=(COLUMN_WIDTH - 0.1, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        points = [s for s in summary if s["augmentation"] == name]
        # multiplicative: the x axis is logarithmic
        nudge = 2 ** (0.04 * (i - (len(names) - 1) / 2))
        x = np.array([s["n_train"] for s in points]) * nudge
        mean = 100 * np.array([s["mean"] for s in points])
        sd = 100 * np.array([s["sd"] for s in points])
        ax.errorbar(
            x,
            mean,
            yerr=sd if max(s["n_seeds"] for s in points) > 1 else None,
            color=OKABE_ITO[i % len(OKABE_ITO)],
            marker=markers[i % len(markers)],
            capsize=3,
            label=augmentation_label(name),
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(n_values, [str(v) for v in n_values])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images (balanced over the 10 digits)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    seeds = max(s["n_seeds"] for s in summary)
    # outside the axes: the lines can run anywhere between 0 and 100%
    ax.legend(
        title=f"mean ± sd over\n{seeds} seeds" if seeds > 1 else "one seed",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    if title:
        ax.set_title(title)
    return fig


def plot_variants(originals, variants: dict, title: str | None = None) -> Figure:
    """Training images in the first column and generated variants of each to its right.

    Args:
        originals: (m, 28, 28) images in [0, 1].
        variants: {"column group label": (m, k, 28, 28) images}; each group adds k columns.
    """
    originals = torch.as_tensor(originals).detach().reshape(len(originals), 28, 28).cpu().numpy()
    groups = {
        label: torch.as_tensor(v).detach().reshape(len(originals), -1, 28, 28).cpu().numpy()
        for label, v in variants.items()
    }
    n_cols = 1 + sum(v.shape[1] for v in groups.values())
    m = len(originals)
    tile = min(0.75, (COLUMN_WIDTH - 0.3) / n_cols)  # the rows fit the page's column
    width = tile * n_cols + 0.3
    fig = Figure(figsize=(width, tile * m + (0.75 if title else 0.4)), layout="constrained")
    axes = fig.subplots(m, n_cols, squeeze=False)
    for r in range(m):
        axes[r, 0].imshow(originals[r], **IMAGE_STYLE)
        c = 1
        for label, images in groups.items():
            for j in range(images.shape[1]):
                axes[r, c].imshow(images[r, j], **IMAGE_STYLE)
                if r == 0:
                    axes[r, c].set_title(
                        f"{label} {j + 1}" if images.shape[1] > 1 else label, fontsize=9
                    )
                c += 1
    axes[0, 0].set_title("original", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(wrap_text(title))
    return fig
