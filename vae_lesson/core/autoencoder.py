"""A plain (deterministic) MLP autoencoder, the starting point of the book.

It has the same layer sizes as :class:`vae_lesson.VAE` (n_in -> n_h -> n_h -> n_latent -> n_h -> n_h -> n_in)
so the two can be compared fairly; the only difference is that the code z is a point, not a distribution.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..infra.activations import activation_from_name, activation_name
from ..infra.checkpoint import register_model
from ..infra.checks import check_batch, check_model_input, check_positive_int, check_unit_interval
from .initializers import xavier_init_
from .losses import _bernoulli_nll
from .vae import _check_codes

__all__ = ["AutoEncoder", "AELoss"]

RECONSTRUCTION_LOSSES = ("bce", "mse")


class AELoss(NamedTuple):
    """An autoencoder's loss: summed over pixels, averaged over the batch. ``total == reconstruction``."""

    total: torch.Tensor
    reconstruction: torch.Tensor


@register_model
class AutoEncoder(nn.Module):
    """An MLP autoencoder: x -> z = encode(x) -> decode(z) ~ x.

    Args:
        n_in: input size (784 for flattened MNIST).
        n_latent: size of the code z (2 to draw it on a plane).
        n_h: width of the hidden layers.
        act_func: hidden activation.
        loss: ``"bce"`` (binary cross-entropy, i.e. Bernoulli NLL, on logits) or ``"mse"``
            (squared error of the sigmoid output), each summed over pixels.
    """

    def __init__(self, n_in: int, n_latent: int, n_h: int, act_func=torch.tanh, loss: str = "bce"):
        super().__init__()
        check_positive_int(n_in, "n_in")
        check_positive_int(n_latent, "n_latent")
        check_positive_int(n_h, "n_h")
        if loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f'loss must be "bce" or "mse", got {loss!r}')
        self.config = {
            "n_in": n_in, "n_latent": n_latent, "n_h": n_h, "act_func": activation_name(act_func), "loss": loss,
        }
        self.n_in, self.n_latent, self.loss_name = n_in, n_latent, loss
        self.act_func = act_func
        self.le1 = nn.Linear(n_in, n_h)
        self.le2 = nn.Linear(n_h, n_h)
        self.le3 = nn.Linear(n_h, n_latent)
        self.ld1 = nn.Linear(n_latent, n_h)
        self.ld2 = nn.Linear(n_h, n_h)
        self.ld3 = nn.Linear(n_h, n_in)
        xavier_init_(self)

    @classmethod
    def from_config(cls, config: dict) -> "AutoEncoder":
        return cls(config["n_in"], config["n_latent"], config["n_h"],
                   activation_from_name(config["act_func"]), config["loss"])

    def forward(self, x: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """Reconstruct x: (batch, n_in) -> (batch, n_in)."""
        return self._decode(self.encode(x), sigmoid)  # x is checked; the code comes from the weights

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, n_in) -> z: (batch, n_latent)."""
        self._check_data(x, "x")
        return self._encode(x)

    def _check_data(self, x, name: str) -> torch.Tensor:
        """A (batch, n_in) batch of pixel intensities in [0, 1], with the weights' dtype and device."""
        check_batch(x, name, self.n_in)
        check_model_input(x, name, self)
        check_unit_interval(x, name)
        return x

    def _encode(self, x):
        return self.le3(self.act_func(self.le2(self.act_func(self.le1(x)))))

    def decode(self, z: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """z: (batch, n_latent) -> (batch, n_in) pixel values in [0, 1], or logits if ``sigmoid=False``."""
        _check_codes(self, z, "z")
        return self._decode(z, sigmoid)

    def _decode(self, z, sigmoid=True):
        logits = self.ld3(self.act_func(self.ld2(self.act_func(self.ld1(z)))))
        return torch.sigmoid(logits) if sigmoid else logits

    def loss(self, x: torch.Tensor) -> AELoss:
        """Reconstruction loss of a batch x: (batch, n_in) in [0, 1], summed over pixels, mean over the batch."""
        self._check_data(x, "x")
        logits = self._decode(self._encode(x), sigmoid=False)
        if self.loss_name == "bce":
            per_pixel = _bernoulli_nll(x, logits)
        else:
            per_pixel = (torch.sigmoid(logits) - x) ** 2
        reconstruction = per_pixel.sum() / x.shape[0]
        return AELoss(reconstruction, reconstruction)
