"""Importance-weighted estimates of log p(x): the IWAE bound (Burda, Grosse & Salakhutdinov, 2016).

With K samples z_1..z_K from the encoder's q(z|x) and weights w_k = p(x, z_k) / q(z_k|x),

    L_K = log (1/K) sum_k w_k  <=  log p(x),

and E[L_1] is the ELBO, E[L_K] grows with K, and L_K -> log p(x) as K -> infinity. It turns a
trained VAE's encoder into a proposal for estimating the likelihood the ELBO only bounds.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.losses import gaussian_kl_divergence
from ..core.reparameterize import gaussian
from ..infra.checks import (
    check_finite,
    check_generator,
    check_not_empty,
    check_positive_int,
    check_same_device,
    check_same_shape,
    check_seed,
    check_tensor,
)
from .swiss_roll import gaussian_nll

__all__ = [
    "importance_log_weights",
    "importance_weighted_bound",
    "nested_bounds",
    "iwae_bound",
    "iwae_log_weights",
    "neg_elbo",
]


def importance_log_weights(
    log_joint,
    q_mean: torch.Tensor,
    q_ln_var: torch.Tensor,
    K: int,
    *,
    generator: torch.Generator | None = None,
    chunk_size: int = 100,
) -> torch.Tensor:
    """The log importance weights log w_k = log p(x, z_k) - log q(z_k | x), z_k ~ q(z | x): (K, n).

    The proposal is the diagonal Gaussian q(z|x) = N(q_mean, exp(q_ln_var)).

    Args:
        log_joint: function of z (k, n, d) returning log p(x, z) of shape (k, n) for the n
            data points.
        q_mean, q_ln_var: (n, d) mean and log variance of q(z|x) for each data point.
        K: number of importance samples per data point.
        generator: torch.Generator for the samples (reproducible estimates).
        chunk_size: samples passed to ``log_joint`` at once (bounds memory: chunk_size * n
            decoder outputs).
    """
    if not callable(log_joint):
        raise TypeError(
            "log_joint must be a function of z returning log p(x, z), "
            f"got {type(log_joint).__name__}"
        )
    check_tensor(q_mean, "q_mean")
    check_tensor(q_ln_var, "q_ln_var")
    check_same_shape(q_mean, q_ln_var, "q_mean", "q_ln_var")
    check_same_device(q_mean, q_ln_var, "q_mean", "q_ln_var")
    if q_ln_var.dtype != q_mean.dtype:
        raise TypeError(
            f"q_ln_var has dtype {q_ln_var.dtype} but q_mean has {q_mean.dtype}; "
            "use one dtype for both"
        )
    if q_mean.dim() != 2 or q_mean.shape[1] == 0:
        raise ValueError(f"q_mean must have shape (n, d) with d >= 1, got {tuple(q_mean.shape)}")
    check_finite(q_mean, "q_mean")
    check_finite(q_ln_var, "q_ln_var")
    check_positive_int(K, "K")
    check_positive_int(chunk_size, "chunk_size")
    check_generator(generator)
    n, d = q_mean.shape
    # All noise drawn up front (K * n * d numbers is small), so chunking never changes the estimate.
    eps = torch.randn(K, n, d, generator=generator, dtype=q_mean.dtype, device=q_mean.device)
    z = gaussian(q_mean.expand_as(eps), q_ln_var.expand_as(eps), eps)  # mean + sigma * eps
    log_q = -gaussian_nll(z, q_mean, q_ln_var).sum(-1)  # (K, n)
    log_w = []
    for start in range(0, K, chunk_size):
        k = min(chunk_size, K - start)
        log_p = log_joint(z[start : start + k])
        if not isinstance(log_p, torch.Tensor) or log_p.shape != (k, n):
            got = tuple(log_p.shape) if isinstance(log_p, torch.Tensor) else type(log_p).__name__
            raise ValueError(
                f"log_joint must return a tensor of shape (k, n) = {(k, n)}, got {got}"
            )
        if bool(torch.isnan(log_p).any()) or bool((log_p == float("inf")).any()):
            # -inf is a legitimate log density (an impossible x); NaN and +inf are not.
            raise ValueError(
                "log_joint returned NaN or +infinite log densities; check the model and the data"
            )
        log_w.append(log_p - log_q[start : start + k])
    return torch.cat(log_w)


def importance_weighted_bound(
    log_joint,
    q_mean: torch.Tensor,
    q_ln_var: torch.Tensor,
    K: int,
    *,
    generator: torch.Generator | None = None,
    chunk_size: int = 100,
) -> torch.Tensor:
    """L_K for each of n data points, given a diagonal Gaussian proposal q(z|x): (n,) nats.

    L_K = log (1/K) sum_k w_k, computed as a log-sum-exp of :func:`importance_log_weights`
    (the arguments are the same).
    """
    log_w = importance_log_weights(
        log_joint, q_mean, q_ln_var, K, generator=generator, chunk_size=chunk_size
    )
    return torch.logsumexp(log_w, dim=0) - math.log(K)


def nested_bounds(log_w: torch.Tensor, ks) -> dict:
    """L_K for every K in ``ks`` from one set of log weights ``log_w`` (M, n): {K: (n,) nats}.

    The M samples are split into M // K disjoint groups of K, and L_K is averaged over the
    groups, so every estimate uses all M samples. ``ks`` must increase, each K dividing the next
    and the last dividing M. Then every group of a larger K is a union of groups of the smaller
    one, and by Jensen's inequality (the log of a mean of means is at least the mean of their logs)
    the estimates can only grow with K, for every data point: the curve is monotone by
    construction, not only in expectation. K = 1 gives the mean of the M single-sample ELBOs.
    """
    check_tensor(log_w, "log_w")
    if log_w.dim() != 2 or log_w.shape[0] == 0:
        raise ValueError(f"log_w must have shape (M, n) with M >= 1, got {tuple(log_w.shape)}")
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty: give at least one number of samples K")
    for K in ks:
        check_positive_int(K, "K")
    M = log_w.shape[0]
    for small, large in zip(ks, ks[1:] + [M]):
        if large % small:
            raise ValueError(
                f"each K in ks must divide the next and the last must divide M = {M}, so the "
                f"groups are nested; {small} does not divide {large} (try powers of two)"
            )
    return {
        K: (torch.logsumexp(log_w.reshape(M // K, K, -1), dim=1) - math.log(K)).mean(0) for K in ks
    }


def _check_vae_like(model) -> None:
    if not (
        callable(getattr(model, "encode", None))
        and callable(getattr(model, "log_likelihood", None))
    ):
        raise TypeError(
            "model must have encode(x) and log_likelihood(x, z) methods, "
            f"got {type(model).__name__}"
        )


def _over_batches(
    model: nn.Module, x: torch.Tensor, batch_size: int, seed: int, per_batch
) -> torch.Tensor:
    """``per_batch(xb, mean, ln_var, generator)`` -> (b,) for each batch of ``x``; (n,) in all.

    The model runs in eval mode (its mode is restored afterwards), with a generator seeded by
    ``seed``.
    """
    _check_vae_like(model)
    check_tensor(x, "x")
    check_not_empty(x, "x")
    check_positive_int(batch_size, "batch_size")
    check_seed(seed)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    try:
        out = []
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            mean, ln_var = model.encode(xb)
            out.append(per_batch(xb, mean, ln_var, generator))
        return torch.cat(out)
    finally:
        model.train(was_training)


@torch.inference_mode()
def neg_elbo(
    model: nn.Module, x: torch.Tensor, *, n_samples: int = 1, batch_size: int = 500, seed: int = 0
) -> torch.Tensor:
    """The negative ELBO with C = 1 of each example, (n,) nats, whatever loss trained the model.

    -ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)): the expectation by Monte Carlo with
    ``n_samples`` codes z = mean + exp(ln_var / 2) * eps per example (:func:`gaussian`), the KL in
    closed form (:func:`gaussian_kl_divergence`). Works for any model with
    ``encode(x) -> (mean, ln_var)`` and ``log_likelihood(x, z) -> log p(x|z)`` (z of shape
    (k, n, d) gives (k, n)), so models trained with a reweighted KL or another reduction of the
    reconstruction term are reported on one scale. Seeded.
    """
    check_positive_int(n_samples, "n_samples")

    def per_batch(xb, mean, ln_var, generator):
        eps = torch.randn(
            (n_samples, *mean.shape), generator=generator, dtype=mean.dtype, device=mean.device
        )
        z = gaussian(mean.expand_as(eps), ln_var.expand_as(eps), eps)  # (n_samples, b, d)
        reconstruction = -model.log_likelihood(xb, z).mean(0)
        kl = gaussian_kl_divergence(mean, ln_var, reduce="no").sum(-1)
        return reconstruction + kl

    return _over_batches(model, x, batch_size, seed, per_batch)


@torch.inference_mode()
def iwae_bound(
    model: nn.Module,
    x: torch.Tensor,
    K: int = 100,
    *,
    batch_size: int = 100,
    seed: int = 0,
    chunk_size: int = 50,
) -> torch.Tensor:
    """L_K per example for a trained VAE, with the standard normal prior. Returns (n,) nats.

    Works for any model with ``encode(x) -> (mean, ln_var)`` and
    ``log_likelihood(x, z) -> log p(x|z)``. Averaging the result over a test set gives an estimate
    of the test log-likelihood that is tighter than the ELBO; report it as "IWAE bound, K = ...".
    Seeded, so the same weights give the same number.
    """
    check_positive_int(K, "K")
    check_positive_int(chunk_size, "chunk_size")

    def per_batch(xb, mean, ln_var, generator):
        return importance_weighted_bound(
            _log_joint(model, xb), mean, ln_var, K, generator=generator, chunk_size=chunk_size
        )

    return _over_batches(model, x, batch_size, seed, per_batch)


@torch.inference_mode()
def iwae_log_weights(
    model: nn.Module,
    x: torch.Tensor,
    K: int,
    *,
    batch_size: int = 100,
    seed: int = 0,
    chunk_size: int = 50,
) -> torch.Tensor:
    """The K log importance weights of each example for a trained VAE: (K, n) nats.

    The same samples as :func:`iwae_bound` with the same ``K``, ``batch_size`` and ``seed``:
    ``logsumexp(w, 0) - log K`` of the result is its L_K. Pass them to :func:`nested_bounds` to
    get L_K for several K from one set of samples.
    """
    check_positive_int(K, "K")
    check_positive_int(chunk_size, "chunk_size")

    def per_batch(xb, mean, ln_var, generator):
        return importance_log_weights(
            _log_joint(model, xb), mean, ln_var, K, generator=generator, chunk_size=chunk_size
        ).t()  # (b, K): _over_batches joins batches along dim 0

    return _over_batches(model, x, batch_size, seed, per_batch).t()


def _log_joint(model: nn.Module, xb: torch.Tensor):
    """log p(x, z) = log p(x | z) + log N(z; 0, I) as a function of z (k, b, d) -> (k, b)."""

    def log_joint(z):
        log_prior = -gaussian_nll(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
        return model.log_likelihood(xb, z) + log_prior

    return log_joint
