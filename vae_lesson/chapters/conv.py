"""A convolutional VAE and autoencoder for (batch, C, H, W) images, and what is needed to compare them.

Encoder (ReLU after every layer except the two linear heads):

    x (C, H, W)
    1x1 conv  -> 32 channels   (H, W)       a per-pixel bottleneck: mixes the colour channels only
    3x3 conv, stride 2, padding 1 -> 64     ceil(H/2)    28 -> 14,  32 -> 16
    3x3 conv, stride 2, padding 1 -> 128    ceil(H/4)    14 -> 7,   16 -> 8
    3x3 conv, stride 2, padding 1 -> 256    ceil(H/8)    7 -> 4,    8 -> 4
    flatten 256 * s * s (s = 4 for 28 and 32) -> linear heads: mean, ln_var (n_latent each)

Decoder, mirrored (transposed convolutions with kernel = stride = 2, so each output pixel comes from exactly
one input pixel and there are no checkerboard overlaps):

    z -> linear -> 256 x s x s -> 128 x 2s x 2s -> 64 x 4s x 4s -> 32 x 8s x 8s
    center crop 8s x 8s -> H x W  (28: 32 -> 28, 2 pixels off each border; 32, 48, 96: nothing to crop)
    1x1 conv -> C logits; sigmoid gives the Bernoulli pixel probabilities

Downsampling uses strided convolutions, not pooling. Weights start He-normal (Xavier for the output layers).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..infra.checks import (check_finite, check_generator, check_image_shape, check_kl_weight, check_model_input,
                      check_number, check_positive_int, check_tensor, check_unit_interval)
from ..core.autoencoder import AELoss
from ..infra.checkpoint import register_model
from ..core.losses import _bernoulli_nll, _gaussian_kl
from ..infra.plots import _numpy, labelled_rows
from ..core.reparameterize import _gaussian as gaussian  # unchecked: a NaN must reach the loss, where train() reports it
from ..core.vae import VAELoss

__all__ = ["ConvVAE", "ConvAutoEncoder", "bootstrap_codes", "uniform_codes", "per_pixel", "history_per_pixel",
           "plot_loss_per_pixel", "image_rows", "count_parameters", "nearest_distance"]

ENCODER_CHANNELS = (64, 128, 256)  # the three strided 3x3 convolutions
BOTTLENECK_CHANNELS = 32  # the 1x1 convolutions at the input and the output


def _encoded_size(image_size: int) -> int:
    """Side of the last feature map: three times ceil(n / 2) (3x3 kernel, stride 2, padding 1)."""
    for _ in ENCODER_CHANNELS:
        image_size = (image_size + 1) // 2
    return image_size


class _ConvNet(nn.Module):
    """The encoder and decoder shared by ConvVAE and ConvAutoEncoder (the AE simply ignores ln_var)."""

    def __init__(self, in_channels: int, image_size: int, n_latent: int):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_latent, "n_latent")
        check_positive_int(image_size, "image_size")
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 (three halvings), got {image_size}")
        self.config = {"in_channels": in_channels, "image_size": image_size, "n_latent": n_latent}
        self.in_channels, self.image_size, self.n_latent = in_channels, image_size, n_latent
        self.encoded_size = s = _encoded_size(image_size)
        c1, c2, c3 = ENCODER_CHANNELS
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, BOTTLENECK_CHANNELS, 1), nn.ReLU(),
            nn.Conv2d(BOTTLENECK_CHANNELS, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        self.enc_mean = nn.Linear(c3 * s * s, n_latent)
        self.enc_ln_var = nn.Linear(c3 * s * s, n_latent)
        self.dec_linear = nn.Linear(n_latent, c3 * s * s)
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.Unflatten(1, (c3, s, s)),
            nn.ConvTranspose2d(c3, c2, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(c1, BOTTLENECK_CHANNELS, 2, stride=2), nn.ReLU(),
        )
        self.dec_out = nn.Conv2d(BOTTLENECK_CHANNELS, in_channels, 1)
        self.crop = (8 * s - image_size) // 2  # pixels removed from each border after upsampling
        self._init_weights()

    def _init_weights(self) -> None:
        """He (Kaiming) normal weights for the layers followed by a ReLU, Xavier for the linear outputs, zero biases.

        Each ReLU layer then keeps the scale of its input, so the signal neither fades nor explodes through
        the eight layers, and training leaves its first plateau (the average image) much sooner than with
        PyTorch's default initialization.
        """
        for module in self.modules():
            if isinstance(module, nn.ConvTranspose2d):
                # kernel = stride: every output pixel sees one kernel position of each input channel
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / module.in_channels))
            elif isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            else:
                continue
            nn.init.zeros_(module.bias)
        for module in (self.enc_mean, self.enc_ln_var, self.dec_out):
            nn.init.xavier_uniform_(module.weight)

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild a model from ``model.config`` (what a checkpoint stores)."""
        return cls(config["in_channels"], config["image_size"], config["n_latent"])

    @property
    def n_values(self) -> int:
        """Numbers per image, C * H * W: what a loss per image is divided by to give a loss per pixel."""
        return self.in_channels * self.image_size ** 2

    def check_images(self, x, name: str = "x") -> torch.Tensor:
        """Raise a clear error unless ``x`` is a non-empty (batch, C, H, W) float batch in [0, 1]."""
        check_tensor(x, name)
        c, n = self.in_channels, self.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, n, n):
            hint = ""
            if x.dim() == 3 and tuple(x.shape[1:]) == (n, n) and c == 1:
                hint = f"; add the channel axis with {name}.unsqueeze(1)"
            elif x.dim() == 2 and x.shape[1] == c * n * n:
                hint = f"; reshape flat images with {name}.reshape(-1, {c}, {n}, {n})"
            elif x.dim() == 4 and x.shape[-1] == c and tuple(x.shape[1:3]) == (n, n):
                hint = f"; channels come first in PyTorch: {name}.permute(0, 3, 1, 2)"
            raise ValueError(f"{name} must have shape (batch, {c}, {n}, {n}) for in_channels={c}, "
                             f"image_size={n}; got {tuple(x.shape)}{hint}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")
        check_model_input(x, name, self)
        check_unit_interval(x, name)
        return x

    def _check_codes(self, z, name: str = "z") -> torch.Tensor:
        check_tensor(z, name)
        if z.dim() != 2 or z.shape[1] != self.n_latent:
            raise ValueError(f"{name} must have shape (batch, {self.n_latent}), got {tuple(z.shape)}")
        if z.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch (shape {tuple(z.shape)})")
        check_model_input(z, name, self)
        check_finite(z, name)
        return z

    def _features(self, x):
        return self.encoder(x)  # (batch, 256 * s * s)

    def decode(self, z: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """z: (batch, n_latent) -> (batch, C, H, W) pixel probabilities, or logits if ``sigmoid=False``."""
        return self._decode(self._check_codes(z), sigmoid)

    def _decode(self, z, sigmoid=True):
        h = self.decoder(self.dec_linear(z))  # (batch, 32, 8s, 8s)
        if self.crop:
            h = h[..., self.crop:self.crop + self.image_size, self.crop:self.crop + self.image_size]
        logits = self.dec_out(h)
        return torch.sigmoid(logits) if sigmoid else logits


@register_model
class ConvVAE(_ConvNet):
    """A convolutional VAE with Bernoulli pixels and a N(0, I) prior (architecture in the module docstring).

    Args:
        in_channels: 1 for greyscale, 3 for colour.
        image_size: side of the square input images (28 for MNIST, 32 for CIFAR-10).
        n_latent: size of z (64 by default).
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_latent: int = 64):
        super().__init__(in_channels, image_size, n_latent)

    def forward(self, x: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """Reconstruct ``x`` (batch, C, H, W) by decoding the mean of q(z|x): no sampling."""
        return self._decode(self.encode(x)[0], sigmoid)  # x is checked; the code comes from the weights

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, C, H, W) in [0, 1] -> (mean, ln_var), each (batch, n_latent)."""
        h = self._features(self.check_images(x))
        return self.enc_mean(h), self.enc_ln_var(h)

    def loss(self, x: torch.Tensor, C: float = 1.0, k: int = 1) -> VAELoss:
        """The negative ELBO of a batch: Bernoulli NLL summed over pixels and channels, KL summed over latents,
        both averaged over the batch (nats per image); ``k`` samples of z per image, KL weighted by ``C``."""
        check_positive_int(k, "k")
        check_kl_weight(C)
        mean, ln_var = self.encode(x)
        batch_size = x.shape[0]
        # all k samples in one pass: (k * batch, n_latent)
        z = gaussian(mean.repeat(k, 1), ln_var.repeat(k, 1))
        logits = self._decode(z, sigmoid=False)
        reconstruction = _bernoulli_nll(x.repeat(k, 1, 1, 1), logits).sum() / (k * batch_size)
        kl = C * _gaussian_kl(mean, ln_var).sum() / batch_size
        return VAELoss(reconstruction + kl, reconstruction, kl)


    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) under the Bernoulli decoder, summed over channels and pixels.

        x: (batch, C, H, W) in [0, 1]; z: (..., batch, n_latent), e.g. (k, batch, n_latent). Returns (..., batch).
        Used by ``vae_lesson.chapters.iwae.iwae_bound``.
        """
        lead = z.shape[:-1]
        logits = self._decode(z.reshape(-1, z.shape[-1]), sigmoid=False).reshape(*lead, *x.shape[1:])
        return -_bernoulli_nll(x.expand_as(logits), logits).sum(dim=(-3, -2, -1))

@register_model
class ConvAutoEncoder(_ConvNet):
    """The same network as :class:`ConvVAE` without sampling or KL: the code is the mean head's output.

    (The ln_var head exists but is unused, so the two models have the same layers and checkpoints.)
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_latent: int = 64):
        super().__init__(in_channels, image_size, n_latent)

    def forward(self, x: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """Reconstruct x: (batch, C, H, W) -> (batch, C, H, W)."""
        return self._decode(self.encode(x), sigmoid)  # x is checked; the code comes from the weights

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, C, H, W) in [0, 1] -> z: (batch, n_latent)."""
        return self.enc_mean(self._features(self.check_images(x)))

    def loss(self, x: torch.Tensor) -> AELoss:
        """Bernoulli NLL (binary cross-entropy) summed over pixels and channels, averaged over the batch."""
        logits = self._decode(self.encode(x), sigmoid=False)
        reconstruction = _bernoulli_nll(x, logits).sum() / x.shape[0]
        return AELoss(reconstruction, reconstruction)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable numbers in ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------------
# sampling codes for a plain autoencoder
# ---------------------------------------------------------------------------------------------------

def bootstrap_codes(codes: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n new codes whose every coordinate is drawn, independently, from that coordinate's values in ``codes``.

    codes: (N, n_latent) codes of real images -> (n, n_latent). Each column keeps its marginal distribution,
    but the dependence between columns is destroyed (resampling whole rows would only return the originals).
    """
    check_tensor(codes, "codes")
    check_positive_int(n, "n")
    check_generator(generator)
    if codes.dim() != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"codes must have shape (N, n_latent) with N >= 1 and n_latent >= 1, got "
                         f"{tuple(codes.shape)}" + (" (empty)" if codes.numel() == 0 else ""))
    check_finite(codes, "codes")
    rows = torch.randint(0, codes.shape[0], (n, codes.shape[1]), generator=generator, device=codes.device)
    return codes.gather(0, rows)


def uniform_codes(n: int, n_latent: int, low: float = -1.0, high: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, n_latent) codes drawn uniformly from the box [low, high)^n_latent."""
    check_positive_int(n, "n")
    check_positive_int(n_latent, "n_latent")
    check_generator(generator)
    low, high = check_number(low, "low"), check_number(high, "high")
    if not low < high:
        raise ValueError(f"low and high must be finite with low < high, got {low!r} and {high!r}")
    return low + (high - low) * torch.rand(n, n_latent, generator=generator)


@torch.inference_mode()
def nearest_distance(images: torch.Tensor, reference: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """For each of ``images`` (n, ...) the Euclidean pixel distance to the closest of ``reference`` (m, ...).

    Both are float tensors of finite values with at least one image each; the distance is computed in float32.
    """
    for value, name in ((images, "images"), (reference, "reference")):
        check_tensor(value, name)
        if value.dim() < 2 or value.shape[0] == 0 or value[0].numel() == 0:
            raise ValueError(f"{name} must be a non-empty batch of images (n, ...), got shape {tuple(value.shape)}"
                             + (" (empty)" if value.numel() == 0 else ""))
        check_finite(value, name)
    check_positive_int(batch_size, "batch_size")
    a, b = images.reshape(len(images), -1).float(), reference.reshape(len(reference), -1).float()
    if a.device != b.device:
        raise ValueError(f"images is on {a.device} but reference is on {b.device}; move both to one device")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"images and reference must have the same image size, got {tuple(images.shape[1:])} "
                         f"and {tuple(reference.shape[1:])}")
    return torch.cat([torch.cdist(chunk, b).min(dim=1).values for chunk in a.split(batch_size)])


# ---------------------------------------------------------------------------------------------------
# losses per pixel, so that data sets of different sizes compare
# ---------------------------------------------------------------------------------------------------

def per_pixel(nats_per_image, image_shape) -> float:
    """A loss in nats per image divided by the numbers per image (C * H * W): nats per pixel and channel.

    image_shape: (C, H, W) or (H, W). 100 nats per 28x28 image is 100 / 784 = 0.128 nats per pixel.
    """
    dims = check_image_shape(image_shape, n_dims=(3, 2))
    if isinstance(nats_per_image, torch.Tensor) and nats_per_image.numel() == 1:
        nats_per_image = float(nats_per_image)
    return check_number(nats_per_image, "nats_per_image") / math.prod(dims)


def history_per_pixel(history, image_shape) -> dict:
    """``history.as_dict()`` with every loss divided by C * H * W (see :func:`per_pixel`)."""
    data = history.as_dict() if hasattr(history, "as_dict") else history
    n_values = math.prod(check_image_shape(image_shape, n_dims=(3, 2)))
    return {split: {key: [v / n_values for v in values] for key, values in data[split].items()}
            for split in ("train", "test")} | {"epoch_seconds": list(data.get("epoch_seconds", []))}


def plot_loss_per_pixel(runs: dict, title: str | None = None, field: str = "total") -> Figure:
    """One panel of loss curves per pixel: one colour per run, training solid, test dashed.

    runs: {"label": (history, image_shape)}, e.g. {"MNIST": (history, (1, 28, 28))}.
    """
    if not runs:
        raise ValueError("runs must name at least one (history, image_shape) pair")
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, (label, (history, shape)) in enumerate(runs.items()):
        data = history_per_pixel(history, shape)
        for split, style in (("train", "-"), ("test", "--")):
            values = data[split].get(field)
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", markersize=3,
                        color=f"C{i}", label=f"{label}, {split}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per pixel and channel")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    ax.set_title(title or "Loss per pixel (loss per image / (C x H x W))")
    return fig


# ---------------------------------------------------------------------------------------------------
# images of any number of channels
# ---------------------------------------------------------------------------------------------------

def _tile(images, name: str) -> np.ndarray:
    """(n, C, H, W) or (n, H, W) in [0, 1] -> (n, H, W) or (n, H, W, 3) NumPy floats for imshow."""
    array = _numpy(images, name)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 4 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    elif array.ndim != 3:
        raise ValueError(f"{name} must have shape (n, 1 or 3, H, W) or (n, H, W), got {array.shape}")
    if len(array) == 0 or array[0].size == 0:
        raise ValueError(f"{name} must be a non-empty batch of images, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold pixel values in [0, 1], but it contains "
                         f"{int((~np.isfinite(array)).sum())} NaN or infinite value(s)")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(f"{name} must hold pixel values in [0, 1], got values in [{array.min():g}, {array.max():g}]")
    return array


def image_rows(rows: dict, n: int = 10, title: str | None = None) -> Figure:
    """Rows of images, one row per entry of ``rows`` ({"label": (N, C, H, W) images}), labelled on the left.

    Greyscale is drawn white on black (cmap gray, vmin 0, vmax 1); colour images as they are.
    """
    if not rows:
        raise ValueError("rows must hold at least one batch of images")
    check_positive_int(n, "n")
    arrays = {label: _tile(images, f"rows[{label!r}]") for label, images in rows.items()}
    return labelled_rows(arrays, min([n, *(len(a) for a in arrays.values())]), title)
