"""The variational autoencoder of the original Chainer article, in PyTorch.

Encoder: n_in -> n_h -> n_h -> (mean, ln_var), each of size n_latent.
Decoder: n_latent -> n_h -> n_h -> n_in logits (a sigmoid turns them into pixel probabilities).
Layer names (le1, le2, le3_mu, le3_ln_var, ld1, ld2, ld3) are the article's, so its code and this
one can be read side by side. Weights start Xavier-uniform, biases at zero, as in the article.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..infra.activations import activation_from_name, activation_name
from ..infra.checkpoint import register_model
from ..infra.checks import (check_batch, check_finite, check_kl_weight, check_model_input, check_positive_int,
                      check_unit_interval)
from .initializers import xavier_init_
from .losses import _bernoulli_nll, _gaussian_kl
from .reparameterize import _gaussian as gaussian  # unchecked: a NaN must reach the loss, where train() reports it

__all__ = ["VAE", "VAELoss"]


class VAELoss(NamedTuple):
    """The loss and its two parts, each summed over pixels (or latents) and averaged over the batch.

    ``total == reconstruction + kl``. ``kl`` is the KL term *as it enters the loss*, C * KL(q(z|x) || p(z)),
    like the article's ``latent_loss``; with the default C = 1 it is the KL divergence itself and
    ``total`` is the negative ELBO per image (in nats).
    """

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def _check_codes(model: nn.Module, z, name: str) -> torch.Tensor:
    """Latent codes for ``model.decode``: a finite (batch, n_latent) batch with the weights' dtype and device."""
    check_batch(z, name, model.n_latent)
    check_model_input(z, name, model)
    check_finite(z, name)
    return z


@register_model
class VAE(nn.Module):
    """A 3-layer MLP variational autoencoder with Bernoulli pixels and a N(0, I) prior.

    Args:
        n_in: input size, e.g. 784 for flattened 28x28 images.
        n_latent: size of the latent code z.
        n_h: width of the hidden layers.
        act_func: hidden activation (torch.tanh in the article).
    """

    def __init__(self, n_in: int, n_latent: int, n_h: int, act_func=torch.tanh):
        super().__init__()
        check_positive_int(n_in, "n_in")
        check_positive_int(n_latent, "n_latent")
        check_positive_int(n_h, "n_h")
        self.config = {"n_in": n_in, "n_latent": n_latent, "n_h": n_h, "act_func": activation_name(act_func)}
        self.n_in, self.n_latent = n_in, n_latent
        self.act_func = act_func
        # encoder
        self.le1 = nn.Linear(n_in, n_h)
        self.le2 = nn.Linear(n_h, n_h)
        self.le3_mu = nn.Linear(n_h, n_latent)
        self.le3_ln_var = nn.Linear(n_h, n_latent)
        # decoder
        self.ld1 = nn.Linear(n_latent, n_h)
        self.ld2 = nn.Linear(n_h, n_h)
        self.ld3 = nn.Linear(n_h, n_in)
        xavier_init_(self)

    @classmethod
    def from_config(cls, config: dict) -> "VAE":
        """Rebuild a model from ``model.config`` (what a checkpoint stores)."""
        return cls(config["n_in"], config["n_latent"], config["n_h"], activation_from_name(config["act_func"]))

    def forward(self, x: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """Reconstruct ``x`` (batch, n_in) by decoding the mean of q(z|x): no sampling."""
        # x is checked; the code is not: weights that diverged give NaN here, which the caller should see
        return self._decode(self.encode(x)[0], sigmoid)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, n_in) -> (mean, ln_var), each (batch, n_latent): the Gaussian q(z|x)."""
        self._check_data(x, "x")
        return self._encode(x)

    def _check_data(self, x, name: str) -> torch.Tensor:
        """A (batch, n_in) batch of pixel intensities in [0, 1], with the weights' dtype and device."""
        check_batch(x, name, self.n_in)
        check_model_input(x, name, self)
        check_unit_interval(x, name)
        return x

    def _encode(self, x):
        h1 = self.act_func(self.le1(x))
        h2 = self.act_func(self.le2(h1))
        return self.le3_mu(h2), self.le3_ln_var(h2)  # ln_var = log(sigma**2)

    def decode(self, z: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        """z: (batch, n_latent) -> (batch, n_in) pixel probabilities, or logits if ``sigmoid=False``."""
        _check_codes(self, z, "z")
        return self._decode(z, sigmoid)

    def _decode(self, z, sigmoid=True):
        h1 = self.act_func(self.ld1(z))
        h2 = self.act_func(self.ld2(h1))
        logits = self.ld3(h2)
        return torch.sigmoid(logits) if sigmoid else logits

    def loss(self, x: torch.Tensor, C: float = 1.0, k: int = 1) -> VAELoss:
        """The negative ELBO of a batch, split into its reconstruction and KL terms.

        reconstruction = (1/k) sum_l bernoulli_nll(x, decode(z_l)) / batch, with z_l = gaussian(mean, ln_var)
        kl             = C * gaussian_kl_divergence(mean, ln_var) / batch

        Args:
            x: (batch, n_in) pixel intensities in [0, 1].
            C: weight of the KL term (1 gives the ELBO; the article's regularization knob).
            k: number of Monte Carlo samples of z per image for the reconstruction term.
        """
        self._check_data(x, "x")
        check_positive_int(k, "k")
        check_kl_weight(C)
        batch_size = x.shape[0]
        mean, ln_var = self._encode(x)
        # All k samples in one batched pass: z has shape (k, batch, n_latent).
        z = gaussian(mean.expand(k, *mean.shape), ln_var.expand(k, *ln_var.shape))
        reconstruction = -self.log_likelihood(x, z).sum() / (k * batch_size)
        kl = C * _gaussian_kl(mean, ln_var).sum() / batch_size
        return VAELoss(reconstruction + kl, reconstruction, kl)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) under the Bernoulli decoder, summed over pixels.

        x: (batch, n_in) in [0, 1]; z: (..., batch, n_latent), e.g. (k, batch, n_latent) for k samples.
        Returns (..., batch). Unchecked inputs: ``loss`` and ``vae_lesson.chapters.iwae.iwae_bound`` call it.
        """
        logits = self._decode(z, sigmoid=False)
        return -_bernoulli_nll(x.expand_as(logits), logits).sum(-1)

    def get_loss_func(self, C: float = 1.0, k: int = 1):
        """The article's ``get_loss_func(C, k)``: a function of a batch returning its VAELoss."""
        return lambda x: self.loss(x, C=C, k=k)
