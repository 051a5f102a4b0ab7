"""The plain (deterministic) MLP autoencoder, the book's starting point (chapter 01 defines it).

Encoder: n_in -> n_hidden -> n_hidden -> n_latent; decoder: n_latent -> n_hidden -> n_hidden ->
n_in logits (a sigmoid turns them into pixel values). The layer sizes and names are those of
:class:`vae_lesson.VAE`, so the two can be compared fairly: the only difference is that the code z
is a point, not a distribution. Weights start Xavier-uniform, biases at zero.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..infra.checkpoint import from_keywords, model_config, register_model
from ..infra.checks import check_codes, check_images
from .initializers import xavier_init_
from .losses import bernoulli_nll

__all__ = ["AutoEncoder", "AELoss"]


class AELoss(NamedTuple):
    """An autoencoder's loss of a batch: the reconstruction error,
    summed over pixels, averaged over the images.

    Defined in chapter 01 (notebooks/01_autoencoder.ipynb).
    """

    total: torch.Tensor  # what training minimizes
    reconstruction: torch.Tensor  # all of it, for an autoencoder


class AutoEncoder(nn.Module):
    """An MLP autoencoder: a code z = encode(x), an image decode(z).

    Defined in chapter 01 (notebooks/01_autoencoder.ipynb).
    """

    def __init__(self, n_in, n_latent, n_hidden, act_func=torch.tanh, loss="bce"):
        super().__init__()
        if loss not in ("bce", "mse"):
            raise ValueError(f'loss must be "bce" or "mse", got {loss!r}')
        # the arguments, checked, as plain data for checkpoints
        self.config = model_config(
            n_in=n_in, n_latent=n_latent, n_hidden=n_hidden, act_func=act_func, loss=loss
        )
        self.n_in, self.n_latent = n_in, n_latent
        self.act_func, self.loss_name = act_func, loss
        # encoder: n_in -> n_hidden -> n_hidden -> n_latent
        self.le1 = nn.Linear(n_in, n_hidden)
        self.le2 = nn.Linear(n_hidden, n_hidden)
        self.le3 = nn.Linear(n_hidden, n_latent)
        # decoder: n_latent -> n_hidden -> n_hidden -> n_in
        self.ld1 = nn.Linear(n_latent, n_hidden)
        self.ld2 = nn.Linear(n_hidden, n_hidden)
        self.ld3 = nn.Linear(n_hidden, n_in)
        xavier_init_(self)  # U(-a, a) weights, zero biases

    def encode(self, x):
        """x: (batch, n_in) in [0, 1] -> z: (batch, n_latent)."""
        check_images(x, self)
        h1 = self.act_func(self.le1(x))
        h2 = self.act_func(self.le2(h1))
        return self.le3(h2)  # no activation: z is any real vector

    def decode(self, z, sigmoid=True):
        """z: (batch, n_latent) -> pixels (batch, n_in) in [0, 1],
        or their logits if sigmoid=False."""
        check_codes(z, self)
        h1 = self.act_func(self.ld1(z))
        h2 = self.act_func(self.ld2(h1))
        y = self.ld3(h2)  # logits: one real number per pixel
        return torch.sigmoid(y) if sigmoid else y

    def forward(self, x):
        """The reconstruction of x: decode(encode(x)), in [0, 1]."""
        return self.decode(self.encode(x))

    def loss(self, x):
        """The reconstruction error of the batch x: summed over
        pixels, averaged over the images."""
        y = self.decode(self.encode(x), sigmoid=False)
        if self.loss_name == "bce":
            error = bernoulli_nll(x, y)  # sum over pixels, images
        else:
            error = ((torch.sigmoid(y) - x) ** 2).sum()
        reconstruction = error / len(x)
        return AELoss(reconstruction, reconstruction)


register_model(AutoEncoder, from_config=from_keywords(AutoEncoder))
