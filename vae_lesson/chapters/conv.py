"""The convolutional VAE and autoencoder for (batch, channels, H, W) images, and what is needed to
compare them.

Chapter 08 (notebooks/08_conv_vae.ipynb) defines :class:`ConvVAE` and :class:`ConvAutoEncoder`; this
module keeps the same code for later chapters, with the helpers the chapter only calls (the input
check, the weight initialization, sampling codes for an autoencoder, losses per pixel, image rows).

Encoder (ReLU after every layer except the two linear heads); the channel counts are multiples of
``width`` = w, 32 in the original article (so 32, 64, 128, 256 there):

    x (channels, H, W)
    1x1 conv  -> w channels    (H, W)       a per-pixel bottleneck: mixes the colour channels only
    3x3 conv, stride 2, padding 1 -> 2w     ceil(H/2)    28 -> 14,  32 -> 16
    3x3 conv, stride 2, padding 1 -> 4w     ceil(H/4)    14 -> 7,   16 -> 8
    3x3 conv, stride 2, padding 1 -> 8w     ceil(H/8)    7 -> 4,    8 -> 4
    flatten 8w * s * s (s = 4 for 28 and 32) -> linear heads: mean, ln_var (n_latent each)

Decoder, mirrored (transposed convolutions with kernel = stride = 2, so each output pixel comes from
exactly one input pixel and there are no checkerboard overlaps):

    z -> linear -> 8w x s x s -> 4w x 2s x 2s -> 2w x 4s x 4s -> w x 8s x 8s
    center crop 8s x 8s -> H x W  (28: 32 -> 28, 2 pixels off each border; 32, 48, 96: no crop)
    1x1 conv -> channels logits; sigmoid gives the Bernoulli pixel probabilities

Downsampling uses strided convolutions, not pooling. Weights start He-normal (Xavier for the output
layers), see :func:`he_init_`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..core.autoencoder import AELoss
from ..core.losses import bernoulli_nll, gaussian_kl_divergence
from ..core.reparameterize import gaussian
from ..core.vae import VAELoss
from ..infra.checkpoint import register_model
from ..infra.checks import (
    check_codes,
    check_finite,
    check_generator,
    check_image_shape,
    check_int,
    check_kl_weight,
    check_model_input,
    check_number,
    check_pixel_values,
    check_positive_int,
    check_tensor,
    check_unit_interval,
)
from ..infra.plots import _numpy, labelled_rows

__all__ = [
    "ConvVAE",
    "ConvAutoEncoder",
    "check_image_batch",
    "he_init_",
    "bootstrap_codes",
    "uniform_codes",
    "per_pixel",
    "history_per_pixel",
    "plot_loss_per_pixel",
    "image_rows",
    "count_parameters",
]


# -------------------------------------------------------------------------------------------------
# what the chapter's models call: the check of their input images, the initialization of weights
# -------------------------------------------------------------------------------------------------


def check_image_batch(x, model: nn.Module, name: str = "x") -> torch.Tensor:
    """What a convolutional model's ``encode`` takes: a non-empty float batch of shape
    (batch, model.in_channels, model.image_size, model.image_size) in [0, 1], with the dtype and
    device of the model's weights. The error says how to fix the common wrong layouts (no channel
    axis, flat images, channels last)."""
    check_tensor(x, name)
    c, n = model.in_channels, model.image_size
    if x.dim() != 4 or tuple(x.shape[1:]) != (c, n, n):
        hint = ""
        if x.dim() == 3 and tuple(x.shape[1:]) == (n, n) and c == 1:
            hint = f"; add the channel axis with {name}.unsqueeze(1)"
        elif x.dim() == 2 and x.shape[1] == c * n * n:
            hint = f"; reshape flat images with {name}.reshape(-1, {c}, {n}, {n})"
        elif x.dim() == 4 and x.shape[-1] == c and tuple(x.shape[1:3]) == (n, n):
            hint = f"; channels come first in PyTorch: {name}.permute(0, 3, 1, 2)"
        raise ValueError(
            f"{name} must have shape (batch, {c}, {n}, {n}) for in_channels={c}, "
            f"image_size={n}; got {tuple(x.shape)}{hint}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")
    check_model_input(x, name, model)
    check_unit_interval(x, name)
    return x


def he_init_(model: nn.Module, outputs=()) -> nn.Module:
    """Initialize ``model`` in place for a ReLU network, and return it.

    Every convolution and linear layer gets He (Kaiming) normal weights, variance 2 / fan-in: a
    ReLU follows it and halves the variance again, so each layer keeps the scale of its input and
    the signal neither fades nor explodes through the eight layers. (A transposed convolution whose
    kernel equals its stride puts exactly one kernel position of each input channel into every
    output pixel, so its fan-in is its number of input channels.) The layers in ``outputs``, which
    no ReLU follows (the heads, the logits), then get Xavier-uniform weights instead. Biases start
    at zero. Training leaves its first plateau (the average image) much sooner than with PyTorch's
    default initialization.
    """
    for module in model.modules():
        if isinstance(module, nn.ConvTranspose2d):
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / module.in_channels))
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        else:
            continue
        nn.init.zeros_(module.bias)
    for module in outputs:
        nn.init.xavier_uniform_(module.weight)
    return model


# -------------------------------------------------------------------------------------------------
# the models of chapter 08
# -------------------------------------------------------------------------------------------------


# The two classes are laid out as in the chapter, whose code lines are at most 68 characters.
# fmt: off
class ConvVAE(nn.Module):
    """A convolutional VAE: Gaussian q(z | x), Bernoulli pixels, and
    a N(0, I) prior, for images of shape (batch, in_channels,
    image_size, image_size) with values in [0, 1].

    Defined in chapter 08 (notebooks/08_conv_vae.ipynb).
    """

    def __init__(self, in_channels=1, image_size=28, n_latent=64,
                 width=32):
        super().__init__()
        for name, size in [("in_channels", in_channels),
                           ("n_latent", n_latent), ("width", width)]:
            check_positive_int(size, name)
        check_int(image_size, "image_size", minimum=8)  # 3 halvings
        # the constructor's arguments as plain data, for checkpoints
        self.config = {"in_channels": in_channels,
                       "image_size": image_size,
                       "n_latent": n_latent, "width": width}
        self.in_channels, self.n_latent = in_channels, n_latent
        self.image_size = image_size
        s = math.ceil(image_size / 8)  # the last feature map: s x s
        w = width  # channels: w, 2w, 4w, 8w (the article: w = 32)
        # encoder: 1x1 bottleneck, three 3x3 convolutions, stride 2
        down = dict(kernel_size=3, stride=2, padding=1)  # halves H, W
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, w, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, **down), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, **down), nn.ReLU(),
            nn.Conv2d(4 * w, 8 * w, **down), nn.ReLU(),
            nn.Flatten())  # (batch, 8w * s * s)
        self.enc_mean = nn.Linear(8 * w * s * s, n_latent)
        self.enc_ln_var = nn.Linear(8 * w * s * s, n_latent)
        # decoder: the mirror image, upsampling with kernel = stride
        self.dec_linear = nn.Linear(n_latent, 8 * w * s * s)
        up = dict(kernel_size=2, stride=2)  # doubles H and W
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.Unflatten(1, (8 * w, s, s)),
            nn.ConvTranspose2d(8 * w, 4 * w, **up), nn.ReLU(),
            nn.ConvTranspose2d(4 * w, 2 * w, **up), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, **up), nn.ReLU())
        self.dec_out = nn.Conv2d(w, in_channels, 1)  # the logits
        self.crop = (8 * s - image_size) // 2  # pixels off a border
        he_init_(self, outputs=[self.enc_mean, self.enc_ln_var,
                                self.dec_out])

    def encode(self, x):
        """x: (batch, in_channels, H, W) -> mean and ln_var of q."""
        check_image_batch(x, self)
        h = self.encoder(x)
        return self.enc_mean(h), self.enc_ln_var(h)

    def decode(self, z, sigmoid=True):
        """z: (batch, n_latent) -> pixel probabilities (batch,
        in_channels, H, W), or logits if sigmoid=False."""
        check_codes(z, self)
        h = self.decoder(self.dec_linear(z))  # (batch, w, 8s, 8s)
        c, n = self.crop, self.image_size
        y = self.dec_out(h[..., c:c + n, c:c + n])  # centre n x n
        return torch.sigmoid(y) if sigmoid else y

    def forward(self, x):
        """Reconstruct x by decoding the mean of q(z | x)."""
        mean, _ = self.encode(x)
        return self.decode(mean)

    def loss(self, x, C=1.0, k=1):
        """-𝓛 of the batch x: reconstruction + C * KL, per image."""
        check_kl_weight(C)
        check_positive_int(k, "k")
        mean, ln_var = self.encode(x)
        batch_size = len(x)
        # the k samples of z in one pass: (k * batch_size, n_latent)
        z = gaussian(mean.repeat(k, 1), ln_var.repeat(k, 1))
        y = self.decode(z, sigmoid=False)
        reconstruction = (bernoulli_nll(x.repeat(k, 1, 1, 1), y)
                          / (k * batch_size))
        kl = C * gaussian_kl_divergence(mean, ln_var) / batch_size
        return VAELoss(reconstruction + kl, reconstruction, kl)

    def log_likelihood(self, x, z):
        """log p(x | z) summed over channels and pixels, for chapter
        12's IWAE; z: (k, batch, n_latent) -> (k, batch)."""
        y = self.decode(z.reshape(-1, self.n_latent), sigmoid=False)
        y = y.reshape(*z.shape[:-1], *x.shape[1:])
        nll = bernoulli_nll(x.expand_as(y), y, reduce="no")
        return -nll.sum(dim=(-3, -2, -1))


class ConvAutoEncoder(ConvVAE):
    """ConvVAE's network as a plain autoencoder: the code is the
    mean head's output, with no sampling and no KL term. (The ln_var
    head is left unused, so the two models have the same layers.)

    Defined in chapter 08 (notebooks/08_conv_vae.ipynb).
    """

    def encode(self, x):
        """x: (batch, in_channels, H, W) -> z: (batch, n_latent)."""
        mean, _ = super().encode(x)
        return mean

    def forward(self, x):
        """Reconstruct x: decode its code."""
        return self.decode(self.encode(x))

    def loss(self, x):
        """Bernoulli NLL summed over channels, pixels; per image."""
        y = self.decode(self.encode(x), sigmoid=False)
        reconstruction = bernoulli_nll(x, y) / len(x)
        return AELoss(reconstruction, reconstruction)


# fmt: on


register_model(ConvVAE, from_config=lambda config: ConvVAE(**config))
register_model(ConvAutoEncoder, from_config=lambda config: ConvAutoEncoder(**config))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable numbers in ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# -------------------------------------------------------------------------------------------------
# sampling codes for a plain autoencoder
# -------------------------------------------------------------------------------------------------


def bootstrap_codes(
    codes: torch.Tensor, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n new codes whose every coordinate is drawn, independently, from that coordinate's values
    in ``codes``.

    codes: (N, n_latent) codes of real images -> (n, n_latent). Each column keeps its marginal
    distribution, but the dependence between columns is destroyed (resampling whole rows would only
    return the originals).
    """
    check_tensor(codes, "codes")
    check_positive_int(n, "n")
    check_generator(generator)
    if codes.dim() != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(
            f"codes must have shape (N, n_latent) with N >= 1 and n_latent >= 1, got "
            f"{tuple(codes.shape)}" + (" (empty)" if codes.numel() == 0 else "")
        )
    check_finite(codes, "codes")
    rows = torch.randint(
        0, codes.shape[0], (n, codes.shape[1]), generator=generator, device=codes.device
    )
    return codes.gather(0, rows)


def uniform_codes(
    n: int,
    n_latent: int,
    low: float = -1.0,
    high: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, n_latent) codes drawn uniformly from the box [low, high)^n_latent."""
    check_positive_int(n, "n")
    check_positive_int(n_latent, "n_latent")
    check_generator(generator)
    low, high = check_number(low, "low"), check_number(high, "high")
    if not low < high:
        raise ValueError(f"low and high must be finite with low < high, got {low!r} and {high!r}")
    return low + (high - low) * torch.rand(n, n_latent, generator=generator)


# -------------------------------------------------------------------------------------------------
# losses per pixel, so that data sets of different sizes compare
# -------------------------------------------------------------------------------------------------


def per_pixel(nats_per_image, image_shape) -> float:
    """A loss in nats per image divided by the numbers per image (channels * H * W): nats per pixel
    and channel.

    image_shape: (channels, H, W) or (H, W). 100 nats per 28x28 image is 100 / 784 = 0.128 nats
    per pixel.
    """
    dims = check_image_shape(image_shape, n_dims=(3, 2))
    if isinstance(nats_per_image, torch.Tensor) and nats_per_image.numel() == 1:
        nats_per_image = float(nats_per_image)
    return check_number(nats_per_image, "nats_per_image") / math.prod(dims)


def history_per_pixel(history, image_shape) -> dict:
    """``history.as_dict()`` with every loss divided by channels * H * W (see :func:`per_pixel`)."""
    data = history.as_dict() if hasattr(history, "as_dict") else history
    n_values = math.prod(check_image_shape(image_shape, n_dims=(3, 2)))
    return {
        split: {key: [v / n_values for v in values] for key, values in data[split].items()}
        for split in ("train", "test")
    } | {"epoch_seconds": list(data.get("epoch_seconds", []))}


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
                ax.plot(
                    np.arange(1, len(values) + 1),
                    values,
                    style,
                    marker="o",
                    markersize=3,
                    color=f"C{i}",
                    label=f"{label}, {split}",
                )
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per pixel and channel")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=9)
    ax.set_title(title or "Loss per pixel (loss per image / (channels x H x W))")
    return fig


# -------------------------------------------------------------------------------------------------
# images of any number of channels
# -------------------------------------------------------------------------------------------------


def _tile(images, name: str) -> np.ndarray:
    """(n, channels, H, W) or (n, H, W) in [0, 1] -> (n, H, W) or (n, H, W, 3) NumPy floats for
    imshow."""
    array = _numpy(images, name)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 4 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)
    elif array.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n, 1 or 3, H, W) or (n, H, W), got {array.shape}"
        )
    if len(array) == 0 or array[0].size == 0:
        raise ValueError(f"{name} must be a non-empty batch of images, got shape {array.shape}")
    check_pixel_values(array, name)
    return array


def image_rows(rows: dict, n: int = 10, title: str | None = None) -> Figure:
    """Rows of images, one row per entry of ``rows`` ({"label": (N, channels, H, W) images}),
    labelled on the left.

    Greyscale is drawn white on black (cmap gray, vmin 0, vmax 1); colour images as they are.
    """
    if not rows:
        raise ValueError("rows must hold at least one batch of images")
    check_positive_int(n, "n")
    arrays = {label: _tile(images, f"rows[{label!r}]") for label, images in rows.items()}
    return labelled_rows(arrays, min([n, *(len(a) for a in arrays.values())]), title)
