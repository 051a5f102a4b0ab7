"""Which reconstruction loss? Squared error or binary cross-entropy, and how to reduce it to
one number.

Chapter 09 (notebooks/09_loss_choice.ipynb) defines what this module keeps: :func:`per_pixel_loss`,
:func:`reconstruction_loss` with its three reductions, :func:`effective_beta`, and the two models
trained with them, :class:`ReconstructionAE` and :class:`ReductionVAE`. The rest is plumbing: the
argument checks, checkpoint registration and :func:`train_steps`.

The same per-pixel loss can be turned into a scalar in three ways, which differ only by a constant
factor for a fixed minibatch size B and number of pixels P per image:

================  ===============================================  ========================
``reduction``     definition (l = per-pixel loss, shape (B, P))     relative to sample_sum
================  ===============================================  ========================
``"pixel_mean"``  ``l.sum() / (B * P)``: mean over every pixel of   ``1 / P``
                  every image (PyTorch's default ``"mean"``)
``"sample_sum"``  ``l.sum() / B``: sum over the pixels of an        ``1``
                  image, mean over the images (the ELBO's)
``"batch_sum"``   ``l.sum()``: sum over every pixel of every        ``B``
                  image (what you optimize when a framework is
                  handed the unreduced loss tensor)
================  ===============================================  ========================

A constant factor does not move the minimum, but it scales every gradient: with plain SGD that is
the same as changing the learning rate, with Adam it is almost invisible, and in a VAE it changes
the weight of the reconstruction term against the KL term (:func:`effective_beta`).
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
from torch import nn

from ..core.autoencoder import AutoEncoder
from ..core.losses import bernoulli_nll, gaussian_kl_divergence
from ..core.reparameterize import gaussian
from ..core.vae import VAE
from ..infra.activations import activation_from_name
from ..infra.checkpoint import from_keywords, register_model
from ..infra.checks import (
    NonFiniteError,
    check_finite,
    check_positive_int,
    check_same_device,
    check_same_shape,
    check_seed,
    check_tensor,
    check_unit_interval,
)

__all__ = [
    "KINDS",
    "REDUCTIONS",
    "per_pixel_loss",
    "reconstruction_loss",
    "effective_beta",
    "ReconstructionLoss",
    "ReconstructionAE",
    "ReductionVAELoss",
    "ReductionVAE",
    "train_steps",
]

KINDS = ("bce", "mse")
REDUCTIONS = ("pixel_mean", "sample_sum", "batch_sum")


# ------------------------------------------------------------------------------
# argument checks (the chapter's code calls them in one line each)
# ------------------------------------------------------------------------------


def check_kind(kind) -> str:
    """``kind`` must be ``"bce"`` (binary cross-entropy) or ``"mse"`` (squared error)."""
    if kind not in KINDS:
        raise ValueError(
            f'kind must be "bce" (binary cross-entropy) or "mse" (squared error), got {kind!r}'
        )
    return kind


def check_reduction(reduction) -> str:
    """``reduction`` must be one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            'reduction must be "pixel_mean" (mean over all pixels), "sample_sum" (sum over '
            f'pixels, mean over images) or "batch_sum" (sum over everything), got {reduction!r}'
        )
    return reduction


def check_loss_args(x, logits, kind) -> None:
    """What :func:`per_pixel_loss` takes: a known ``kind``, and a non-empty batch ``x`` of images in
    [0, 1] with finite ``logits`` of the same shape on the same device."""
    check_kind(kind)
    check_tensor(x, "x")
    check_tensor(logits, "logits")
    check_same_shape(x, logits, "x", "logits")
    check_same_device(x, logits, "x", "logits")
    if x.dim() < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(
            f"x must be a non-empty batch of images (batch, pixels...), got shape {tuple(x.shape)}"
        )
    check_unit_interval(x, "x")
    check_finite(logits, "logits")


# ------------------------------------------------------------------------------
# the losses and the models (chapter 09 shows these)
# ------------------------------------------------------------------------------


def per_pixel_loss(x, logits, kind="bce"):
    """The loss of every pixel, shaped like x: binary cross-entropy
    ("bce") or squared error ("mse") of the image sigmoid(logits).

    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """
    check_loss_args(x, logits, kind)  # shapes, [0, 1], finite
    if kind == "bce":  # softplus(y) - x * y: never log(0)
        return bernoulli_nll(x, logits, reduce="no")
    return (torch.sigmoid(logits) - x) ** 2  # "mse"


def reconstruction_loss(x, logits, kind="bce", reduction="sample_sum"):
    """The reconstruction loss of a batch of B images, one scalar.

    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """
    check_reduction(reduction)
    per_pixel = per_pixel_loss(x, logits, kind)  # (B, P)
    if reduction == "pixel_mean":  # sum / (B * P)
        return per_pixel.mean()
    if reduction == "sample_sum":  # sum / B: the ELBO's
        return per_pixel.sum() / len(per_pixel)
    return per_pixel.sum()  # "batch_sum": the sum of everything


def effective_beta(reduction, n_pixels, batch_size):
    """The KL weight beta of a VAE loss whose reconstruction term
    is reduced with `reduction` and whose KL term is summed over
    the latents and averaged over the images.

    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """
    check_reduction(reduction)
    check_positive_int(n_pixels, "n_pixels")
    check_positive_int(batch_size, "batch_size")
    return {
        "pixel_mean": float(n_pixels),  # R / P + K
        "sample_sum": 1.0,  # R + K
        "batch_sum": 1.0 / batch_size,  # B * R + K
    }[reduction]


class ReconstructionLoss(NamedTuple):
    """An autoencoder's training loss and two yardsticks.

    The yardsticks are the same whatever the model trains on.
    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """

    total: torch.Tensor  # the loss training minimizes
    mse_per_pixel: torch.Tensor  # squared error, pixel mean
    bce_per_pixel: torch.Tensor  # cross-entropy, pixel mean


class ReconstructionAE(AutoEncoder):
    """vl.AutoEncoder (same layers, same initial weights) trained
    on the reconstruction loss of one kind and one reduction.

    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """

    def __init__(
        self, n_in, n_latent, n_hidden, act_func=torch.tanh, kind="bce", reduction="sample_sum"
    ):
        check_kind(kind)
        check_reduction(reduction)
        super().__init__(n_in, n_latent, n_hidden, act_func, loss=kind)
        self.kind, self.reduction = kind, reduction
        # what a checkpoint stores: the arguments as plain data
        self.config = {**self.config, "reduction": reduction}

    def loss(self, x):
        """The training loss of the batch x, and the yardsticks."""
        y = self.decode(self.encode(x), sigmoid=False)  # logits
        total = reconstruction_loss(x, y, self.kind, self.reduction)
        with torch.no_grad():  # reported, not trained on
            mse = reconstruction_loss(x, y, "mse", "pixel_mean")
            bce = reconstruction_loss(x, y, "bce", "pixel_mean")
        return ReconstructionLoss(total, mse, bce)


class ReductionVAELoss(NamedTuple):
    """A ReductionVAE's training loss and the two terms of -𝓛.

    reconstruction + kl is -𝓛 (nats per image) whatever the
    reduction, so runs with different reductions can be compared.
    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """

    total: torch.Tensor  # the loss training minimizes
    reconstruction: torch.Tensor  # R: -E_q[log p(x | z)]
    kl: torch.Tensor  # K: KL(q(z | x) || p(z))


class ReductionVAE(VAE):
    """vl.VAE whose reconstruction term is reduced with
    `reduction`; the KL term is reduced as in VAE.loss.

    Defined in chapter 09 (notebooks/09_loss_choice.ipynb).
    """

    def __init__(self, n_in, n_latent, n_hidden, act_func=torch.tanh, reduction="sample_sum"):
        check_reduction(reduction)
        super().__init__(n_in, n_latent, n_hidden, act_func)
        self.reduction = reduction
        self.config = {**self.config, "reduction": reduction}

    def loss(self, x):
        """The training loss of the batch x, and R and KL."""
        mean, ln_var = self.encode(x)
        y = self.decode(gaussian(mean, ln_var), sigmoid=False)
        kl = gaussian_kl_divergence(mean, ln_var) / len(x)  # KL
        total = reconstruction_loss(x, y, "bce", self.reduction) + kl
        with torch.no_grad():  # R, whatever the reduction
            reconstruction = reconstruction_loss(x, y, "bce", "sample_sum")
        return ReductionVAELoss(total, reconstruction, kl.detach())


# ------------------------------------------------------------------------------
# checkpoints and the short optimizer runs
# ------------------------------------------------------------------------------


def _reconstruction_ae_from_config(config: dict) -> ReconstructionAE:
    """Rebuild a ReconstructionAE from ``model.config`` (what a checkpoint stores)."""
    return ReconstructionAE(
        config["n_in"],
        config["n_latent"],
        config["n_hidden"],
        activation_from_name(config["act_func"]),
        config["loss"],
        config["reduction"],
    )


# ReconstructionAE's config says "loss" where its constructor says "kind": it needs its own builder
register_model(ReconstructionAE, from_config=_reconstruction_ae_from_config)
register_model(ReductionVAE, from_config=from_keywords(ReductionVAE))


def train_steps(
    model: nn.Module,
    x: torch.Tensor,
    *,
    optimizer: str = "sgd",
    lr: float,
    num_steps: int,
    batch_size: int = 50,
    seed: int = 0,
    copy_model: bool = True,
):
    """A few optimizer steps on a fixed, seeded sequence of minibatches, for comparing optimizers.

    Unlike :func:`vae_lesson.train` (always Adam), this lets you pick plain SGD, and it records the
    loss of every step. The minibatch order depends only on ``seed``, so two calls see exactly the
    same batches. A run that diverges is not an error here, since showing it is the point: once the
    weights hold NaN or infinite values (the model's loss raises
    :class:`vae_lesson.infra.checks.NonFiniteError`), training stops and every remaining step's loss
    is recorded as NaN.

    Args:
        model: a module with ``loss(x)`` returning a NamedTuple whose first field is ``total``.
        x: (N, n_in) training data in [0, 1].
        optimizer: ``"sgd"`` (no momentum) or ``"adam"`` (PyTorch defaults apart from ``lr``).
        lr: learning rate, > 0.
        num_steps: number of updates.
        batch_size: images per step.
        seed: seeds the minibatch order.
        copy_model: train a deep copy, leaving ``model`` untouched (the default).

    Returns:
        (trained model, list of the ``total`` loss at each step before its update).
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f'optimizer must be "sgd" or "adam", got {optimizer!r}')
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or lr == float("inf"):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    check_positive_int(num_steps, "num_steps")
    check_positive_int(batch_size, "batch_size")
    check_seed(seed)
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
        raise TypeError(
            f"model must be a torch.nn.Module with a loss(x) method, got {type(model).__name__}"
        )
    check_tensor(x, "x")
    if x.dim() != 2 or len(x) < batch_size:
        raise ValueError(
            f"x must have shape (N, n_in) with N >= batch_size={batch_size}, got {tuple(x.shape)}"
        )
    check_finite(x, "x")
    check_unit_interval(x, "x")
    model = copy.deepcopy(model) if copy_model else model
    model.train()
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    order, position, losses = torch.randperm(len(x), generator=generator), 0, []
    for step in range(num_steps):
        if position + batch_size > len(x):
            order, position = torch.randperm(len(x), generator=generator), 0
        try:
            terms = model.loss(x[order[position : position + batch_size]])
        except NonFiniteError:  # the weights have diverged: no step after this one means anything
            losses += [math.nan] * (num_steps - step)
            break
        position += batch_size
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
        losses.append(float(terms.total.detach()))
    model.eval()
    return model, losses
