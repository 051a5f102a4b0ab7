"""The variational autoencoder of the original Chainer article, in PyTorch (chapter 05 defines it).

Encoder: n_in -> n_hidden -> n_hidden -> (mean, ln_var), each of size n_latent.
Decoder: n_latent -> n_hidden -> n_hidden -> n_in logits (a sigmoid turns them into pixel
probabilities).
Layer names (le1, le2, le3_mu, le3_ln_var, ld1, ld2, ld3) are the article's, so its code and this
one can be read side by side. Weights start Xavier-uniform, biases at zero, as in the article.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..infra.checkpoint import from_keywords, model_config, register_model
from ..infra.checks import check_codes, check_images, check_kl_weight, check_positive_int
from .initializers import xavier_init_
from .losses import bernoulli_nll, gaussian_kl_divergence
from .reparameterize import gaussian

__all__ = ["VAE", "VAELoss"]


class VAELoss(NamedTuple):
    """-𝓛 of a batch and its two terms, in nats per image.

    Each term is summed over pixels (or latents) and averaged
    over the images. Defined in chapter 05
    (notebooks/05_vae.ipynb).
    """

    total: torch.Tensor  # reconstruction + kl
    reconstruction: torch.Tensor  # -E_q[log p(x | z)], k samples
    kl: torch.Tensor  # C * KL(q(z | x) || p(z))


class VAE(nn.Module):
    """The article's MLP VAE: a Gaussian encoder q(z | x),
    Bernoulli pixels p(x | z) and a N(0, I) prior.

    Defined in chapter 05 (notebooks/05_vae.ipynb).
    """

    def __init__(self, n_in, n_latent, n_hidden, act_func=torch.tanh):
        super().__init__()
        # the arguments, checked, as plain data for checkpoints
        self.config = model_config(
            n_in=n_in, n_latent=n_latent, n_hidden=n_hidden, act_func=act_func
        )
        self.n_in, self.n_latent = n_in, n_latent
        self.act_func = act_func
        # encoder: x -> h1 -> h2 -> (mean, ln_var)
        self.le1 = nn.Linear(n_in, n_hidden)
        self.le2 = nn.Linear(n_hidden, n_hidden)
        self.le3_mu = nn.Linear(n_hidden, n_latent)
        self.le3_ln_var = nn.Linear(n_hidden, n_latent)
        # decoder: z -> h1 -> h2 -> y, one logit per pixel
        self.ld1 = nn.Linear(n_latent, n_hidden)
        self.ld2 = nn.Linear(n_hidden, n_hidden)
        self.ld3 = nn.Linear(n_hidden, n_in)
        xavier_init_(self)  # U(-a, a) weights, zero biases

    def encode(self, x):
        """x: (batch, n_in) in [0, 1] -> mean and ln_var of
        q(z | x), each (batch, n_latent)."""
        check_images(x, self)  # shape, dtype, device, [0, 1]
        h1 = self.act_func(self.le1(x))
        h2 = self.act_func(self.le2(h1))
        mean = self.le3_mu(h2)
        ln_var = self.le3_ln_var(h2)  # ln(sigma ** 2)
        return mean, ln_var

    def decode(self, z, sigmoid=True):
        """z: (batch, n_latent) -> pixel probabilities
        (batch, n_in), or their logits if sigmoid=False."""
        check_codes(z, self)  # shape, dtype, device, finite
        h1 = self.act_func(self.ld1(z))
        h2 = self.act_func(self.ld2(h1))
        y = self.ld3(h2)
        return torch.sigmoid(y) if sigmoid else y

    def forward(self, x):
        """Reconstruct x from the mean of q(z | x): no sampling."""
        mean, _ = self.encode(x)
        return self.decode(mean)

    def loss(self, x, C=1.0, k=1):
        """-𝓛 of the batch x, split into its two terms."""
        check_kl_weight(C)
        check_positive_int(k, "k")
        mean, ln_var = self.encode(x)
        batch_size = len(x)
        reconstruction = 0.0
        for _ in range(k):  # k samples of z per image
            z = gaussian(mean, ln_var)  # mean + sigma * eps
            y = self.decode(z, sigmoid=False)
            reconstruction += bernoulli_nll(x, y) / (k * batch_size)
        kl = C * gaussian_kl_divergence(mean, ln_var) / batch_size
        return VAELoss(reconstruction + kl, reconstruction, kl)

    def log_likelihood(self, x, z):
        """log p(x | z) summed over pixels, for codes z of shape
        (K, batch, n_latent): (K, batch). Chapter 12 uses it."""
        y = self.decode(z.flatten(0, -2), sigmoid=False)
        y = y.reshape(*z.shape[:-1], -1)
        nll = bernoulli_nll(x.expand_as(y), y, reduce="no")
        return -nll.sum(-1)

    def get_loss_func(self, C=1.0, k=1):
        """The article's get_loss_func(C, k)."""
        return lambda x: self.loss(x, C=C, k=k)


register_model(VAE, from_config=from_keywords(VAE))
