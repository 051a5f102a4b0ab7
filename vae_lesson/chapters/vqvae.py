"""The vector-quantized VAE (VQ-VAE) of van den Oord, Vinyals and Kavukcuoglu (2017), small enough
for a CPU.

The encoder maps a square image of side ``image_size`` (28 by default; any positive multiple of 4,
e.g. 32 for CIFAR-10) to an (image_size/4) x (image_size/4) grid of ``code_dim``-vectors z_e (7x7
for 28x28 images, 8x8 for 32x32); :class:`VectorQuantizer` replaces each vector by its nearest entry
of a learned codebook of ``n_codes`` vectors, giving z_q and a grid of integer indices of the same
size; the decoder maps z_q back to an image of the input's size.

Chapter 11 (notebooks/11_vq_vae.ipynb) defines :class:`VectorQuantizer`, with its straight-through
gradient and its two losses, and builds :class:`VQVAE` around it (``quantizer_class``); this module
keeps the same quantizer for later chapters and checkpoints.

Reductions (stated once, used everywhere in this module):

- ``reconstruction`` is the squared error averaged over pixels and images (``F.mse_loss``,
  reduction "mean"), as in the paper's reference implementations.
- ``codebook`` = mean over elements of (sg[z_e] - e)^2 and ``commitment`` = beta * mean over
  elements of (z_e - sg[e])^2, where "elements" are all batch x code_dim x h x w entries. Both are
  means, like the reconstruction term, so the three terms live on the same per-element scale and
  beta = 0.25 keeps the meaning it has in the paper. (A reconstruction summed over the 784 pixels of
  a 28x28 image would be hundreds of times larger and drown the commitment term unless beta were
  scaled up by the same factor.)

The codebook starts uniform in [-1/n_codes, 1/n_codes], as in the common PyTorch ports of the
paper's code: all codes start near the origin and are pulled out to the encoder outputs by the
codebook loss. There is no dead-code restart: a code that is never chosen receives no gradient and
stays where it is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..infra.checkpoint import register_model
from ..infra.checks import (
    check_finite,
    check_model_input,
    check_not_meta,
    check_number,
    check_positive_int,
    check_tensor,
    check_unit_interval,
)
from ..infra.plots import COLUMN_WIDTH, wrap_text

__all__ = [
    "Quantized",
    "VectorQuantizer",
    "check_code_map",
    "check_indices",
    "VQVAELoss",
    "VQVAE",
    "codebook_usage",
    "perplexity",
    "plot_code_usage",
    "plot_perplexity",
]


class Quantized(NamedTuple):
    """What :meth:`VectorQuantizer.forward` returns for an encoder map of shape
    (batch, code_dim, h, w).

    z_q: (batch, code_dim, h, w) quantized map; its values are the chosen codes, its gradient w.r.t.
        z_e is the identity (straight-through).
    indices: (batch, h, w) int64 index of the chosen code at every position.
    codebook_loss: scalar, mean over elements of (sg[z_e] - e)^2: trains only the codebook.
    commitment_loss: scalar, beta * mean over elements of (z_e - sg[e])^2: trains only the encoder.
    counts: (n_codes,) how often each code was chosen in this batch (float).
    perplexity: scalar, exp(entropy of counts / counts.sum()), in "effective number of codes".
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    counts: torch.Tensor
    perplexity: torch.Tensor


def perplexity(counts) -> torch.Tensor:
    """exp(H(p)) of the usage distribution p = counts / counts.sum(), with 0 log 0 = 0.

    Equals the number of used codes when they are used equally often, 1 when one code is used for
    everything. counts: (n_codes,) non-negative numbers, not all zero. Returns a scalar tensor.
    """
    if not isinstance(counts, torch.Tensor):
        try:
            counts = torch.as_tensor(counts, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"counts must be a tensor, array or list of code counts, got {counts!r:.60}"
            ) from None
    check_not_meta(counts, "counts")
    if counts.is_complex() or counts.dtype == torch.bool:
        raise TypeError(f"counts must hold real numbers of uses per code, got dtype {counts.dtype}")
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(
            f"counts must be a non-empty 1-D tensor of code counts, got shape {tuple(counts.shape)}"
            + (" (empty)" if counts.numel() == 0 else "")
        )
    counts = counts.double() if not counts.is_floating_point() else counts
    check_finite(counts, "counts")
    if bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError("counts must be non-negative with a positive sum")
    p = counts / counts.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()  # p = 0 contributes 0
    return torch.exp(entropy)


def check_code_map(z_e, quantizer: nn.Module, name: str = "z_e") -> torch.Tensor:
    """What a quantizer takes: a non-empty float map (batch, quantizer.code_dim, h, w) of finite
    values, with the dtype and device of the codebook."""
    check_tensor(z_e, name)
    if z_e.dim() != 4 or z_e.shape[1] != quantizer.code_dim:
        raise ValueError(
            f"{name} must have shape (batch, code_dim={quantizer.code_dim}, h, w), "
            f"got {tuple(z_e.shape)}"
        )
    if z_e.numel() == 0:
        raise ValueError(
            f"{name} is an empty batch (shape {tuple(z_e.shape)}): there is nothing to quantize"
        )
    check_model_input(z_e, name, quantizer)
    check_finite(z_e, name)
    return z_e


def check_indices(indices, quantizer: nn.Module, name: str = "indices") -> torch.Tensor:
    """What ``quantizer.lookup`` takes: a non-empty (batch, h, w) int64 or int32 tensor of code
    indices in 0 .. n_codes - 1, on the device of the codebook."""
    if not isinstance(indices, torch.Tensor) or indices.dtype not in (torch.int64, torch.int32):
        got = (
            f"dtype {indices.dtype}"
            if isinstance(indices, torch.Tensor)
            else type(indices).__name__
        )
        raise TypeError(f"{name} must be an int64 or int32 tensor of code indices, got {got}")
    check_not_meta(indices, name)
    if indices.dim() != 3:
        raise ValueError(f"{name} must have shape (batch, h, w), got {tuple(indices.shape)}")
    if indices.numel() == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(indices.shape)})")
    device = quantizer.codebook.weight.device
    if indices.device != device:
        raise ValueError(
            f"{name} is on device {indices.device} but the codebook is on {device}; "
            f"move it with {name}.to({str(device)!r})"
        )
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= quantizer.n_codes:
        raise ValueError(f"{name} must lie in 0..{quantizer.n_codes - 1}, got {low}..{high}")
    return indices


# The quantizer is laid out as in the chapter, whose code lines are at most 68 characters.
# fmt: off
class VectorQuantizer(nn.Module):
    """Snaps each vector of an encoder map z_e to the nearest of the
    n_codes vectors (of size code_dim) of a learned codebook.

    Defined in chapter 11 (notebooks/11_vq_vae.ipynb).
    """

    def __init__(self, n_codes, code_dim, beta=0.25):
        super().__init__()
        for name, size in [("n_codes", n_codes),
                           ("code_dim", code_dim)]:
            check_positive_int(size, name)
        self.beta = check_number(beta, "beta", minimum=0)
        self.n_codes, self.code_dim = n_codes, code_dim
        self.codebook = nn.Embedding(n_codes, code_dim)  # e_1..e_M
        # small codes near the origin, where the first z_e will be
        nn.init.uniform_(self.codebook.weight,
                         -1.0 / n_codes, 1.0 / n_codes)

    def nearest(self, z_e):
        """z_e: (batch, code_dim, h, w) -> the index of the nearest
        code at every position, (batch, h, w) int64."""
        check_code_map(z_e, self)
        b, d, h, w = z_e.shape
        # one row per position: (b * h * w, d)
        z = z_e.detach().permute(0, 2, 3, 1).reshape(-1, d)
        e = self.codebook.weight.detach()  # (n_codes, d)
        # |z - e|^2 = |z|^2 - 2 z.e + |e|^2, for all pairs at once
        d2 = (z.pow(2).sum(1, keepdim=True) - 2 * z @ e.t()
              + e.pow(2).sum(1))
        return d2.argmin(dim=1).reshape(b, h, w)

    def lookup(self, indices):
        """indices: (batch, h, w) -> the codes, like z_e."""
        check_indices(indices, self)
        return self.codebook(indices).permute(0, 3, 1, 2)

    def forward(self, z_e):
        """Quantize z_e (batch, code_dim, h, w) -> a Quantized."""
        indices = self.nearest(z_e)
        e = self.codebook(indices).permute(0, 3, 1, 2)  # like z_e
        # codebook loss: moves the chosen codes towards sg[z_e]
        codebook_loss = F.mse_loss(e, z_e.detach())
        # commitment loss: keeps z_e close to its code sg[e]
        commitment_loss = self.beta * F.mse_loss(z_e, e.detach())
        # straight through: the value of e, the gradient of z_e
        z_q = z_e + (e - z_e).detach()
        # diagnostics: how often each code was chosen in this batch
        counts = torch.bincount(indices.flatten(),
                                minlength=self.n_codes).float()
        return Quantized(z_q, indices, codebook_loss,
                         commitment_loss, counts,
                         perplexity(counts))


# fmt: on


class VQVAELoss(NamedTuple):
    """The VQ-VAE loss of a batch. ``total = reconstruction + codebook + commitment``.

    reconstruction: squared error, mean over pixels and images.
    codebook, commitment: mean over the elements of the encoder map (commitment includes beta).
    perplexity, codes_used: diagnostics of this batch (not part of ``total``, no gradient): the
        perplexity of the code usage over all positions of the batch, and how many distinct codes it
        used. vl.train averages them over the batches of an epoch, so they describe batches of its
        batch size.
    """

    total: torch.Tensor
    reconstruction: torch.Tensor
    codebook: torch.Tensor
    commitment: torch.Tensor
    perplexity: torch.Tensor
    codes_used: torch.Tensor


@register_model
class VQVAE(nn.Module):
    """A small convolutional VQ-VAE for square images of side S = ``image_size``: SxS ->
    (S/4)x(S/4) grid of codes -> SxS; for the default S = 28, a 7x7 grid; for CIFAR-10's S = 32, an
    8x8 grid.

    Encoder: conv 4x4 stride 2 (-> S/2, ``hidden`` channels), ReLU, conv 4x4 stride 2 (-> S/4),
    ReLU, conv 3x3, ReLU, conv 1x1 to ``code_dim`` channels. Decoder: conv 3x3 from ``code_dim``,
    ReLU, transposed conv 4x4 stride 2 (-> S/2), ReLU, transposed conv 4x4 stride 2 (-> S), sigmoid.

    Args:
        in_channels: image channels (1 for grey images, 3 for colour).
        n_codes: codebook size M.
        code_dim: size d of each code vector.
        hidden: channels of the hidden convolutions.
        beta: commitment weight.
        image_size: side S of the square input images, a positive multiple of 4 (two halvings must
            come out even, or the decoder could not return to the input's size).
        quantizer_class: the vector quantizer's class, called as
            ``quantizer_class(n_codes, code_dim, beta)``; chapter 11 passes the one it defines. (A
            checkpoint rebuilds the model with the default, this module's
            :class:`VectorQuantizer`: the same code.)
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_codes: int = 64,
        code_dim: int = 16,
        hidden: int = 32,
        beta: float = 0.25,
        image_size: int = 28,
        quantizer_class=VectorQuantizer,
    ):
        super().__init__()
        for value, name in (
            (in_channels, "in_channels"),
            (n_codes, "n_codes"),
            (code_dim, "code_dim"),
            (hidden, "hidden"),
        ):
            check_positive_int(value, name)
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int)
            or image_size < 4
            or image_size % 4
        ):
            raise ValueError(
                "image_size must be a positive multiple of 4 (the encoder halves the image "
                f"twice), got {image_size!r}; e.g. 28 for MNIST or 32 for CIFAR-10"
            )
        self.quantizer = quantizer_class(n_codes, code_dim, beta)  # validates beta
        self.config = {
            "in_channels": in_channels,
            "n_codes": n_codes,
            "code_dim": code_dim,
            "hidden": hidden,
            "beta": float(beta),
            "image_size": image_size,
        }
        self.in_channels, self.n_codes, self.code_dim = in_channels, n_codes, code_dim
        self.image_size, self.grid_size = image_size, image_size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * hidden, code_dim, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, 2 * hidden, 3, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(hidden, in_channels, 4, stride=2, padding=1),
        )
        # Channels-last memory makes the convolutions with a single image channel about twice as
        # fast on a CPU.
        self.to(memory_format=torch.channels_last)

    @classmethod
    def from_config(cls, config: dict) -> "VQVAE":
        """Rebuild a model from ``model.config`` (what a checkpoint stores); configs saved before
        ``image_size`` existed were 28x28 models."""
        return cls(
            config["in_channels"],
            config["n_codes"],
            config["code_dim"],
            config["hidden"],
            config["beta"],
            config.get("image_size", 28),
        )

    def _images(self, x, name="x"):
        """The model's input check: accept (batch, S, S) and (batch, S*S) for one channel, or
        (batch, channels, S, S); return (batch, channels, S, S) in channels-last memory."""
        check_tensor(x, name)
        c, s = self.in_channels, self.image_size
        if x.dim() == 2 and c == 1 and x.shape[1] == s * s:
            x = x.reshape(-1, 1, s, s)
        elif x.dim() == 3 and c == 1:
            x = x.unsqueeze(1)
        if x.dim() != 4 or x.shape[1] != c or x.shape[2:] != (s, s) or x.shape[0] == 0:
            raise ValueError(
                f"{name} must be shaped like a non-empty batch of {s}x{s} images with {c} "
                f"channel(s): (batch, {c}, {s}, {s})"
                + (f", (batch, {s}, {s}) or (batch, {s * s})" if c == 1 else "")
                + f", got {tuple(x.shape)}"
            )
        check_model_input(x, name, self)
        check_unit_interval(x, name)
        return x.contiguous(memory_format=torch.channels_last)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the continuous encoder map z_e, (batch, code_dim, S/4, S/4); S/4 = 7 for 28x28
        images."""
        return self.encoder(self._images(x))

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the grid of code indices, (batch, S/4, S/4) int64: (batch, 7, 7) for 28x28
        images."""
        return self.quantizer.nearest(self.encode(x))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """A grid of code indices (batch, h, w) -> images (batch, in_channels, 4h, 4w) in [0, 1]."""
        return torch.sigmoid(self.decoder(self.quantizer.lookup(indices)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct images: (batch, in_channels, S, S) in [0, 1] (deterministic: no sampling)."""
        return torch.sigmoid(self.decoder(self.quantizer(self.encode(x)).z_q))

    def loss(self, x: torch.Tensor) -> VQVAELoss:
        """The VQ-VAE loss of a batch of images in [0, 1]; see :class:`VQVAELoss` for the
        reductions."""
        x = self._images(x)
        q = self.quantizer(self.encoder(x))
        x_hat = torch.sigmoid(self.decoder(q.z_q))
        reconstruction = F.mse_loss(x_hat, x)
        total = reconstruction + q.codebook_loss + q.commitment_loss
        used = (q.counts > 0).sum().to(total.dtype)
        return VQVAELoss(
            total,
            reconstruction,
            q.codebook_loss,
            q.commitment_loss,
            q.perplexity.detach().to(total.dtype),
            used,
        )


@torch.inference_mode()
def codebook_usage(model: VQVAE, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """How often each code is chosen over all positions of the images ``x``: (n_codes,) int64
    counts."""
    if not isinstance(model, VQVAE):
        raise TypeError(f"model must be a VQVAE, got {type(model).__name__}")
    check_positive_int(batch_size, "batch_size")
    x = model._images(x)
    counts = torch.zeros(model.n_codes, dtype=torch.int64)
    for start in range(0, len(x), batch_size):
        idx = model.encode_indices(x[start : start + batch_size])
        counts += torch.bincount(idx.reshape(-1), minlength=model.n_codes)
    return counts


def plot_code_usage(counts, title: str | None = None) -> Figure:
    """Bar chart of the code usage, sorted from the most to the least used code.

    counts: (n_codes,) counts from :func:`codebook_usage`. The legend gives the perplexity and the
    number of codes used at least once.
    """
    perplexity(counts)  # validates counts: real, finite, 1-D, non-negative, positive sum
    counts = (
        counts if isinstance(counts, torch.Tensor) else torch.as_tensor(counts, dtype=torch.float64)
    )
    counts = counts.detach().cpu().double().numpy()
    if counts.ndim != 1 or counts.size == 0 or counts.sum() <= 0 or (counts < 0).any():
        raise ValueError(
            "counts must be a 1-D array of non-negative code counts with a positive sum"
        )
    share = np.sort(counts)[::-1] / counts.sum() * 100
    used = int((counts > 0).sum())
    ppl = float(perplexity(torch.as_tensor(counts)))
    fig = Figure(figsize=(7.0, 3.0), layout="constrained")
    ax = fig.subplots()
    ranks = np.arange(1, len(share) + 1)
    ax.bar(
        ranks,
        share,
        width=0.85,
        color="C0",
        label=f"{used} of {len(share)} codes used, perplexity {ppl:.1f}",
    )
    ax.axhline(100 / len(share), color="C1", linestyle="--", label="equal use of all codes")
    ax.set_xlabel("code rank (most used first)")
    ax.set_ylabel("share of positions (%)")
    ax.set_xlim(0.3, len(share) + 0.7)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(frameon=False)
    ax.set_title(title or "Codebook usage")
    return fig


def plot_perplexity(history, n_codes: int, title: str | None = None) -> Figure:
    """Perplexity and codes used per batch over training, from a History with those fields.

    Left: mean batch perplexity per epoch (train solid, test dashed); right: mean number of
    distinct codes per batch. A dotted line marks the codebook size ``n_codes``.
    """
    data = history.as_dict() if hasattr(history, "as_dict") else history
    train, test = data.get("train", {}), data.get("test") or {}
    if "perplexity" not in train or "codes_used" not in train:
        raise ValueError("history must record the VQVAELoss fields 'perplexity' and 'codes_used'")
    check_positive_int(n_codes, "n_codes")
    fig = Figure(figsize=(COLUMN_WIDTH, 3.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, field, label in (
        (axes[0], "perplexity", "perplexity (effective codes)"),
        (axes[1], "codes_used", "distinct codes per batch"),
    ):
        epochs = np.arange(1, len(train[field]) + 1)
        ax.plot(epochs, train[field], "-o", markersize=3, color="C0", label="train batches")
        if field in test:
            ax.plot(
                np.arange(1, len(test[field]) + 1),
                test[field],
                "--o",
                markersize=3,
                color="C1",
                label="test batches",
            )
        ax.axhline(n_codes, color="0.4", linestyle=":", label=f"codebook size {n_codes}")
        ax.set_ylim(0, n_codes * 1.08)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="lower right")
    axes[0].set_title("Perplexity of code usage")
    axes[1].set_title("Codes used")
    if title:
        fig.suptitle(wrap_text(title))
    return fig
