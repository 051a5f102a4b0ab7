"""Which reconstruction loss? Squared error or binary cross-entropy, and how to reduce it to one number.

The same per-pixel loss can be turned into a scalar in three ways, which differ only by a constant factor
for a fixed minibatch size B and number of pixels P per image:

=================  ================================================  =========================
``reduction``      definition (l = per-pixel loss, shape (B, P))      relative to ``sample_sum``
=================  ================================================  =========================
``"pixel_mean"``   ``l.sum() / (B * P)``: mean over every pixel of    ``1 / P``
                   every image (PyTorch's default ``"mean"``)
``"sample_sum"``   ``l.sum() / B``: sum over the pixels of an image,  ``1``
                   mean over the images (the ELBO's reduction)
``"batch_sum"``    ``l.sum()``: sum over every pixel of every image   ``B``
                   (what you optimise when a framework is handed
                   the unreduced loss tensor)
=================  ================================================  =========================

A constant factor does not move the minimum, but it scales every gradient: with plain SGD that is the same
as changing the learning rate, with Adam it is almost invisible, and in a VAE it changes the weight of the
reconstruction term against the KL term (:func:`effective_beta`).
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn

from ..infra.activations import activation_from_name
from ..infra.checks import (check_finite, check_positive_int, check_same_device, check_same_shape, check_seed,
                      check_tensor, check_unit_interval)
from ..core.autoencoder import AutoEncoder
from ..infra.checkpoint import register_model
from ..core.losses import _bernoulli_nll, _gaussian_kl
from ..core.reparameterize import _gaussian
from ..core.vae import VAE

__all__ = ["KINDS", "REDUCTIONS", "reconstruction_loss", "effective_beta", "ReconstructionLoss",
           "ReconstructionAE", "ReductionVAE", "train_steps"]

KINDS = ("bce", "mse")
REDUCTIONS = ("pixel_mean", "sample_sum", "batch_sum")


def _check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f'kind must be "bce" (binary cross-entropy) or "mse" (squared error), got {kind!r}')
    return kind


def _check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f'reduction must be "pixel_mean" (mean over all pixels), "sample_sum" (sum over pixels, mean over '
            f'images) or "batch_sum" (sum over everything), got {reduction!r}'
        )
    return reduction


def _per_pixel(x: torch.Tensor, logits: torch.Tensor, kind: str) -> torch.Tensor:
    # BCE on logits is finite for any logit; MSE compares the sigmoid output (the image) with x.
    if kind == "bce":
        return _bernoulli_nll(x, logits)
    return (torch.sigmoid(logits) - x) ** 2


def _reduce(per_pixel: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "pixel_mean":
        return per_pixel.mean()
    if reduction == "sample_sum":
        return per_pixel.sum() / per_pixel.shape[0]
    return per_pixel.sum()


def reconstruction_loss(x: torch.Tensor, logits: torch.Tensor, kind: str = "bce",
                        reduction: str = "sample_sum") -> torch.Tensor:
    """The reconstruction loss of a batch, as one scalar.

    Per pixel, ``kind="bce"`` is the binary cross-entropy ``softplus(y) - x*y`` computed from the logits y
    (the stable form of ``-(x log s + (1-x) log(1-s))`` with ``s = sigmoid(y)``, as :func:`vae_lesson.bernoulli_nll`),
    and ``kind="mse"`` is the squared error ``(sigmoid(y) - x)**2`` of the output image.

    With B images of P pixels each (P = product of all dimensions after the first):

    - ``"pixel_mean"``: ``sum / (B*P)``, the mean over every pixel of every image. This is PyTorch's default
      (``F.binary_cross_entropy_with_logits(y, x)``, ``F.mse_loss(s, x)``, both ``reduction="mean"``).
    - ``"sample_sum"``: ``sum / B``, summed over the pixels of each image and averaged over the images, in
      units per image: the reduction of the ELBO (and of ``vl.VAE.loss`` and ``vl.AutoEncoder.loss``).
    - ``"batch_sum"``: ``sum``, over every pixel of every image; it grows with the batch size.

    So ``batch_sum = B * sample_sum = B * P * pixel_mean`` for the same batch.

    Args:
        x: (B, P) or (B, H, W) targets in [0, 1].
        logits: the decoder's outputs before the sigmoid, same shape as ``x``.
        kind: ``"bce"`` or ``"mse"``.
        reduction: ``"pixel_mean"``, ``"sample_sum"`` or ``"batch_sum"``.

    Returns:
        A scalar tensor (differentiable with respect to ``logits``).
    """
    _check_kind(kind)
    _check_reduction(reduction)
    check_tensor(x, "x")
    check_tensor(logits, "logits")
    check_same_shape(x, logits, "x", "logits")
    check_same_device(x, logits, "x", "logits")
    if x.dim() < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"x must be a non-empty batch of images (batch, pixels...), got shape {tuple(x.shape)}")
    check_unit_interval(x, "x")
    check_finite(logits, "logits")
    return _reduce(_per_pixel(x, logits, kind), reduction)


def effective_beta(reduction: str, n_pixels: int, batch_size: int) -> float:
    """The weight the KL term effectively gets when the reconstruction term uses ``reduction``.

    Take a VAE loss whose KL term is summed over the latent dimensions and averaged over the batch,
    ``K = (1/B) sum_b KL_b``, and whose reconstruction term is the per-pixel loss l reduced with ``reduction``.
    Write ``R = (1/B) sum_b sum_p l_bp`` for the ELBO's reconstruction term (``"sample_sum"``). Then

    - ``"sample_sum"``: loss = R + K, the negative ELBO: beta = 1;
    - ``"pixel_mean"``: loss = R / P + K = (1/P) (R + P K): beta = P (784 for MNIST);
    - ``"batch_sum"``:  loss = B R + K = B (R + K / B): beta = 1 / B.

    Multiplying a loss by a positive constant does not move its minimum, so each loss is minimised by the
    same parameters as ``R + beta * K``, a beta-VAE objective (and, with Adam, trained almost identically).

    Args:
        reduction: ``"pixel_mean"``, ``"sample_sum"`` or ``"batch_sum"``.
        n_pixels: P, the number of pixels per image (784 for MNIST).
        batch_size: B, the number of images per minibatch.

    Returns:
        beta as a float.
    """
    _check_reduction(reduction)
    check_positive_int(n_pixels, "n_pixels")
    check_positive_int(batch_size, "batch_size")
    return {"pixel_mean": float(n_pixels), "sample_sum": 1.0, "batch_sum": 1.0 / batch_size}[reduction]


class ReconstructionLoss(NamedTuple):
    """``total``: the loss being optimised (its kind and reduction); the other two are common yardsticks,
    the same whatever the model trains on: mean squared error and binary cross-entropy *per pixel*."""

    total: torch.Tensor
    mse_per_pixel: torch.Tensor
    bce_per_pixel: torch.Tensor


@register_model
class ReconstructionAE(AutoEncoder):
    """:class:`vae_lesson.AutoEncoder` whose ``loss(x)`` uses a chosen kind and reduction.

    Args:
        n_in, n_latent, n_h, act_func: as for :class:`vae_lesson.AutoEncoder` (same layers, same init).
        kind: ``"bce"`` or ``"mse"``.
        reduction: ``"pixel_mean"``, ``"sample_sum"`` or ``"batch_sum"`` (see :func:`reconstruction_loss`).
    """

    def __init__(self, n_in: int, n_latent: int, n_h: int, act_func=torch.tanh, kind: str = "bce",
                 reduction: str = "sample_sum"):
        _check_kind(kind)
        _check_reduction(reduction)
        super().__init__(n_in, n_latent, n_h, act_func, loss=kind)
        self.kind, self.reduction = kind, reduction
        self.config = {**self.config, "reduction": reduction}

    @classmethod
    def from_config(cls, config: dict) -> "ReconstructionAE":
        return cls(config["n_in"], config["n_latent"], config["n_h"], activation_from_name(config["act_func"]),
                   config["loss"], config["reduction"])

    def loss(self, x: torch.Tensor) -> ReconstructionLoss:
        """x: (batch, n_in) in [0, 1] -> ReconstructionLoss of scalars."""
        self._check_data(x, "x")
        logits = self._decode(self._encode(x), sigmoid=False)
        total = _reduce(_per_pixel(x, logits, self.kind), self.reduction)
        with torch.no_grad():
            mse = _per_pixel(x, logits, "mse").mean()
            bce = _per_pixel(x, logits, "bce").mean()
        return ReconstructionLoss(total, mse, bce)


class ReductionVAELoss(NamedTuple):
    """``total`` is what is optimised; ``reconstruction`` and ``kl`` are in ELBO units (nats per image),
    whatever the reduction, so runs can be compared: reconstruction + kl is the negative ELBO."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


@register_model
class ReductionVAE(VAE):
    """:class:`vae_lesson.VAE` whose Bernoulli reconstruction term is reduced with ``reduction``.

    The KL term is always summed over latent dimensions and averaged over the batch, as in ``VAE.loss``,
    so ``reduction="sample_sum"`` gives exactly ``VAE.loss(x, C=1)`` and ``"pixel_mean"`` gives
    ``VAE.loss(x, C=n_in) / n_in`` (see :func:`effective_beta`).

    Args:
        n_in, n_latent, n_h, act_func: as for :class:`vae_lesson.VAE`.
        reduction: ``"pixel_mean"``, ``"sample_sum"`` or ``"batch_sum"``.
    """

    def __init__(self, n_in: int, n_latent: int, n_h: int, act_func=torch.tanh, reduction: str = "sample_sum"):
        _check_reduction(reduction)
        super().__init__(n_in, n_latent, n_h, act_func)
        self.reduction = reduction
        self.config = {**self.config, "reduction": reduction}

    @classmethod
    def from_config(cls, config: dict) -> "ReductionVAE":
        return cls(config["n_in"], config["n_latent"], config["n_h"], activation_from_name(config["act_func"]),
                   config["reduction"])

    def loss(self, x: torch.Tensor) -> ReductionVAELoss:
        """x: (batch, n_in) in [0, 1] -> ReductionVAELoss of scalars (one sample of z per image)."""
        self._check_data(x, "x")
        mean, ln_var = self._encode(x)
        logits = self._decode(_gaussian(mean, ln_var), sigmoid=False)
        per_pixel = _bernoulli_nll(x, logits)
        kl = _gaussian_kl(mean, ln_var).sum() / x.shape[0]
        total = _reduce(per_pixel, self.reduction) + kl
        return ReductionVAELoss(total, per_pixel.detach().sum() / x.shape[0], kl.detach())


def train_steps(model: nn.Module, x: torch.Tensor, *, optimizer: str = "sgd", lr: float, num_steps: int,
                batch_size: int = 50, seed: int = 0, copy_model: bool = True):
    """A few optimiser steps on a fixed, seeded sequence of minibatches, for comparing optimisers.

    Unlike :func:`vae_lesson.train` (always Adam), this lets you pick plain SGD. The minibatch order depends
    only on ``seed``, so two calls see exactly the same batches.

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
        raise TypeError(f"model must be a torch.nn.Module with a loss(x) method, got {type(model).__name__}")
    check_tensor(x, "x")
    if x.dim() != 2 or len(x) < batch_size:
        raise ValueError(f"x must have shape (N, n_in) with N >= batch_size={batch_size}, got {tuple(x.shape)}")
    check_finite(x, "x")
    check_unit_interval(x, "x")
    model = copy.deepcopy(model) if copy_model else model
    model.train()
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    order, position, losses = torch.randperm(len(x), generator=generator), 0, []
    for _ in range(num_steps):
        if position + batch_size > len(x):
            order, position = torch.randperm(len(x), generator=generator), 0
        terms = model.loss(x[order[position:position + batch_size]])
        position += batch_size
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
        losses.append(float(terms.total.detach()))
    model.eval()
    return model, losses
