"""The two terms of the VAE loss, with Chainer's names, argument order and reductions.

``gaussian_kl_divergence(mean, ln_var)`` is KL(N(mean, exp(ln_var)) || N(0, I)) in closed form, and
``bernoulli_nll(x, y)`` is the negative log-likelihood of targets ``x`` under Bernoulli pixels with
*logits* ``y``. Both sum over every element by default, exactly like ``chainer.functions``: dividing
by the batch size is the caller's job, so it is visible where the loss is assembled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..infra.checks import (
    check_finite,
    check_mean_ln_var,
    check_reduce,
    check_same_device,
    check_same_shape,
    check_tensor,
    check_unit_interval,
)

__all__ = ["gaussian_kl_divergence", "bernoulli_nll"]


def _check_mean_of_empty(value: torch.Tensor, name: str, reduce: str) -> None:
    # The mean over no elements is 0 / 0: refuse it rather than return NaN.
    if reduce == "mean" and value.numel() == 0:
        raise ValueError(
            f'{name} is empty (shape {tuple(value.shape)}), so reduce="mean" has nothing to '
            'average; use reduce="sum" or "no"'
        )


def _reduce(loss: torch.Tensor, reduce: str) -> torch.Tensor:
    if reduce == "sum":
        return loss.sum()
    if reduce == "mean":
        return loss.mean()
    return loss


def gaussian_kl_divergence(
    mean: torch.Tensor, ln_var: torch.Tensor, reduce: str = "sum"
) -> torch.Tensor:
    """KL divergence of N(mean, exp(ln_var)) from the standard normal N(0, I), element by element.

    Each element contributes ``0.5 * (mean**2 + exp(ln_var) - ln_var - 1)`` (Kingma & Welling,
    App. B).

    Args:
        mean: (batch, n_latent) means of the diagonal Gaussian q(z|x) (any shape works).
        ln_var: same shape as ``mean``: log variances, ln_var = log(sigma**2).
        reduce: ``"sum"`` over every element (not divided by the batch size), ``"mean"`` over every
            element, or ``"no"`` for the elementwise values.

    NaN or infinite entries raise a ValueError (an infinite log variance has no finite KL to
    report), and so does ``reduce="mean"`` of empty tensors; the sum over no elements is 0.

    Returns:
        A scalar tensor, or a tensor shaped like ``mean`` when ``reduce="no"``.
    """
    check_reduce(reduce)
    check_mean_ln_var(mean, ln_var)
    _check_mean_of_empty(mean, "mean", reduce)
    return _reduce(0.5 * (mean * mean + torch.exp(ln_var) - ln_var - 1.0), reduce)


def bernoulli_nll(x: torch.Tensor, y: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Negative log-likelihood of ``x`` under independent Bernoulli variables with logits ``y``.

    Each element contributes ``softplus(y) - x * y``, which equals
    ``-(x * log(sigmoid(y)) + (1 - x) * log(1 - sigmoid(y)))`` but never takes the log of 0,
    so it stays finite for logits of +-100 and beyond.

    Note the argument order: target first, logits second (Chainer's order). It is the reverse of
    ``torch.nn.functional.binary_cross_entropy_with_logits(input=logits, target=x)``.

    Args:
        x: (batch, n_in) targets in [0, 1]; grey values are allowed (continuous Bernoulli targets).
        y: same shape as ``x``: the decoder's logits, before the sigmoid; finite (a ValueError
            otherwise).
        reduce: ``"sum"`` over every element (not divided by the batch size), ``"mean"``, or
            ``"no"``.
    """
    check_reduce(reduce)
    check_tensor(x, "x")
    check_tensor(y, "y")
    check_same_shape(x, y, "x", "y")
    check_same_device(x, y, "x", "y")
    check_unit_interval(x, "x")
    check_finite(y, "y")
    _check_mean_of_empty(x, "x", reduce)
    # torch's fused kernel computes softplus(y) - x * y in the stable form
    # max(y, 0) - x * y + log1p(exp(-|y|))
    return _reduce(F.binary_cross_entropy_with_logits(y, x, reduction="none"), reduce)
