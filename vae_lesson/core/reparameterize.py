"""The reparameterization trick: a Gaussian sample written as a differentiable function."""

from __future__ import annotations

import torch

from ..infra.checks import (
    check_finite,
    check_mean_ln_var,
    check_same_device,
    check_same_shape,
    check_tensor,
)

__all__ = ["gaussian"]


def gaussian(
    mean: torch.Tensor,
    ln_var: torch.Tensor,
    eps: torch.Tensor | None = None,
    return_eps: bool = False,
):
    """Draw z ~ N(mean, exp(ln_var)) as ``z = mean + exp(ln_var / 2) * eps`` with eps ~ N(0, I).

    The randomness lives in ``eps`` alone, so gradients flow to ``mean`` and ``ln_var``
    (dz/dmean = 1, dz/dln_var = 0.5 * exp(ln_var / 2) * eps). Same name and convention as
    ``chainer.functions.gaussian``.

    Args:
        mean: (batch, n_latent) means.
        ln_var: same shape: log variances, log(sigma**2).
        eps: optional fixed noise of the same shape; drawn from torch's global generator when
            omitted.
        return_eps: also return the noise that was used.

    Returns:
        z with the shape of ``mean`` (and ``eps`` when ``return_eps`` is true).
    """
    check_mean_ln_var(mean, ln_var)
    if eps is not None:
        check_tensor(eps, "eps")
        check_same_shape(mean, eps, "mean", "eps")
        check_same_device(mean, eps, "mean", "eps")
        check_finite(eps, "eps")
    else:
        eps = torch.randn_like(mean)
    z = mean + torch.exp(0.5 * ln_var) * eps
    return (z, eps) if return_eps else z
