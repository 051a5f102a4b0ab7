"""Two unbiased estimators of the gradient of an expectation, and an experiment on their variance.

The quantity is the gradient with respect to the mean of a Gaussian,

    g(mu) = d/d mu  E_{z ~ N(mu, diag sigma^2)}[ f(z) ],

which is what a VAE needs for its encoder (with f the decoder's loss). Two per-sample estimators:

* pathwise (reparameterized): write z = mu + sigma * eps, eps ~ N(0, I); then
  g = E_eps[ grad f(z) ], so each draw gives grad f(mu + sigma * eps). Needs a differentiable f.
* score function (REINFORCE):
  g = E_z[ f(z) * grad_mu log N(z; mu, sigma^2) ] = E_z[ f(z) (z - mu) / sigma^2 ].
  Needs only values of f. A baseline b (not depending on z) may be subtracted from f without bias,
  because E[grad log q] = 0.

Both are computed with autograd, as one would in a real model (the score function from a surrogate
loss). With k draws the estimate is the average of k per-sample estimates; its variance is the
per-sample variance over k.

Shapes: ``mean`` and ``sigma`` are (d,); ``f`` maps (..., d) -> (...).

Chapter 04 defines the two estimators (and the test objective ``square``) on the page; this module
keeps the same code, with what the chapter uses without showing: the argument checks, the closed
forms, the batched estimates, the experiment, its table and its figure. The experiment takes the
estimators as arguments (the package's by default), so the chapter runs the ones it defines.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from matplotlib.figure import Figure

from ..infra.checks import (
    check_finite,
    check_generator,
    check_int,
    check_not_meta,
    check_number,
    check_positive_int,
    check_seed,
    check_tensor,
    check_unit_interval,
)
from ..infra.plots import COLUMN_WIDTH, OKABE_ITO, legend_below, wrap_text

__all__ = [
    "ESTIMATORS",
    "square",
    "square_exact_gradient",
    "square_per_sample_variance",
    "square_leave_one_out_variance",
    "check_gradient_args",
    "check_values",
    "pathwise_samples",
    "score_function_samples",
    "gradient_estimates",
    "quadrature_gradient",
    "DecoderLoss",
    "VarianceResult",
    "variance_experiment",
    "variance_table",
    "variance_ratio",
    "plot_variance",
]

ESTIMATORS = ("pathwise", "score", "score_baseline")
_LABELS = {
    "pathwise": "pathwise (reparameterized)",
    "score": "score function (REINFORCE)",
    "score_baseline": "score function, leave-one-out baseline",
}
# Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
_COLORS = {"pathwise": OKABE_ITO[0], "score": OKABE_ITO[3], "score_baseline": OKABE_ITO[2]}
_MARKERS = {"pathwise": "o", "score": "s", "score_baseline": "^"}

Baseline = Union[None, float, str]


# ----------------------------------------------------------------------------------------------
# The test objective f(z) = ||z||^2 and its closed forms
# ----------------------------------------------------------------------------------------------


def square(z):
    """f(z) = ||z||^2, the sum of squares: (..., d) -> (...).

    Defined in chapter 04 (notebooks/04_reparameterization.ipynb).
    """
    return (z * z).sum(-1)


def square_exact_gradient(mean: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """d/d mu E[||z||^2] = d/d mu (||mu||^2 + sum sigma^2) = 2 mu. Returns (d,)."""
    mean, _ = _check_mean_sigma(mean, sigma)
    return 2 * mean


def square_per_sample_variance(mean, sigma, estimator: str, baseline: float = 0.0):
    """Variance of ONE draw of an estimator of d/d mu_j E[z_j^2], for z_j ~ N(mu_j, sigma_j^2).

    pathwise:  2 (mu + sigma eps)                    -> Var = 4 sigma^2
    score:     (f(z) - c) eps / sigma with a = mu^2 - c
               -> Var = (a^2 + 6 a sigma^2) / sigma^2 + 8 mu^2 + 15 sigma^2
               (c = 0: mu^4 / sigma^2 + 14 mu^2 + 15 sigma^2).
    Valid for d = 1 (for d > 1 the other coordinates add to f and so to the score estimator's
    variance).
    Works elementwise on floats, arrays or tensors (finite values, sigma > 0).
    """
    _check_reals(mean, "mean")
    _check_reals(sigma, "sigma", positive=True)
    check_number(baseline, "baseline")
    mean, sigma = _arithmetic(mean), _arithmetic(sigma)
    if estimator == "pathwise":
        return 4 * sigma**2 + 0 * mean
    if estimator == "score":
        a = mean**2 - baseline
        return (a**2 + 6 * a * sigma**2) / sigma**2 + 8 * mean**2 + 15 * sigma**2
    raise ValueError(
        f'estimator must be "pathwise" or "score" for the closed form, got {estimator!r}'
    )


def square_leave_one_out_variance(mean, sigma, k):
    """k times the variance of the k-draw score-function estimate with a leave-one-out baseline,
    for f(z) = z^2, z ~ N(mu, sigma^2) (d = 1); k >= 2.

    With s_i = (z_i - mu) / sigma^2 and b_i the mean of f over the other k - 1 draws, the estimate
    (1/k) sum_i (f_i - b_i) s_i = 1/(k-1) sum_i (f_i - mean f) s_i is an unbiased sample
    covariance of f and s, a U-statistic, whose variance gives

        k Var = V_c + (Var f / sigma^2 + g^2) / (k - 1),

    V_c the per-draw variance with the constant baseline c = E f = mu^2 + sigma^2 (the limit as k
    grows), Var f = 4 mu^2 sigma^2 + 2 sigma^4 and g = 2 mu the gradient. At mu = sigma = 1 it is
    18 + 10 / (k - 1). The draws of one estimate share their baselines, so unlike the other
    estimators its variance is not a per-draw variance over k. Works elementwise like
    :func:`square_per_sample_variance`.
    """
    _check_reals(mean, "mean")
    _check_reals(sigma, "sigma", positive=True)
    k = check_int(k, "k", minimum=2)
    mean, sigma = _arithmetic(mean), _arithmetic(sigma)
    # V_c: square_per_sample_variance's score formula at c = mu^2 + sigma^2, i.e. a = -sigma^2.
    constant = 8 * mean**2 + 10 * sigma**2
    var_f = 4 * mean**2 * sigma**2 + 2 * sigma**4
    return constant + (var_f / sigma**2 + (2 * mean) ** 2) / (k - 1)


# ----------------------------------------------------------------------------------------------
# Argument checks: each estimator calls check_gradient_args on its first line
# ----------------------------------------------------------------------------------------------


def _arithmetic(value):
    """Lists and tuples have no arithmetic: arrays of float64 instead (anything else as given)."""
    return np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value


def _check_reals(value, name: str, positive: bool = False) -> None:
    """Floats, arrays or tensors of finite real numbers (strictly positive if ``positive``)."""
    if isinstance(value, torch.Tensor):
        check_not_meta(value, name)
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        array = value.detach().cpu().double().numpy()
    else:
        if isinstance(value, (bool, str, bytes)) or value is None or np.iscomplexobj(value):
            raise TypeError(f"{name} must be a real number, array or tensor, got {value!r:.40}")
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a real number, array or tensor, got {type(value).__name__}"
            ) from None
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if positive and not (array > 0).all():
        raise ValueError(
            f"{name} must be strictly positive (a standard deviation), got {value!r:.40}"
        )


def _check_mean_sigma(mean, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor(mean, "mean")
    if mean.dim() != 1 or len(mean) == 0:
        raise ValueError(
            f"mean must have shape (d,) with d >= 1, got {tuple(mean.shape)}"
            + (" (empty)" if mean.numel() == 0 else "")
            + "; use torch.tensor([mu]) for d = 1"
        )
    check_finite(mean, "mean")
    if not isinstance(sigma, torch.Tensor):
        if isinstance(sigma, bool) or isinstance(sigma, str):
            raise TypeError(
                f"sigma must be a number or a tensor of standard deviations, got {sigma!r}"
            )
        try:
            sigma = torch.as_tensor(sigma, dtype=mean.dtype)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                "sigma must be a number or a tensor of standard deviations, "
                f"got {type(sigma).__name__}"
            ) from None
    check_tensor(sigma, "sigma")
    if sigma.device != mean.device:
        raise ValueError(
            f"sigma is on {sigma.device} but mean is on {mean.device}; move both to one device"
        )
    sigma = sigma.to(mean.dtype)
    sigma = sigma.expand_as(mean) if sigma.dim() == 0 else sigma
    if sigma.shape != mean.shape:
        raise ValueError(
            f"sigma must be a number or have the shape of mean {tuple(mean.shape)}, "
            f"got {tuple(sigma.shape)}"
        )
    if not bool((sigma > 0).all()) or not bool(torch.isfinite(sigma).all()):
        raise ValueError("sigma must be finite and strictly positive (a standard deviation)")
    return mean, sigma


def _check_eps(eps, mean) -> None:
    check_tensor(eps, "eps")
    if eps.dim() < 2 or eps.shape[-1] != mean.shape[0]:
        raise ValueError(
            f"eps must have shape (..., k, d) with d = len(mean) = {mean.shape[0]}, "
            f"got {tuple(eps.shape)}"
        )
    if eps.numel() == 0:
        raise ValueError(
            f"eps is empty (shape {tuple(eps.shape)}): an estimate needs at least one draw"
        )
    if eps.device != mean.device:
        raise ValueError(
            f"eps is on {eps.device} but mean is on {mean.device}; move both to one device"
        )
    check_finite(eps, "eps")


def _check_estimator_functions(pathwise, score_function) -> None:
    for value, name in ((pathwise, "pathwise"), (score_function, "score_function")):
        if not callable(value):
            raise TypeError(
                f"{name} must be a function (a per-draw gradient estimator), "
                f"got {type(value).__name__}"
            )


def _checked_draws(draws, eps: torch.Tensor, name: str) -> torch.Tensor:
    """What an estimator returned: one gradient per draw, a tensor shaped like eps (..., k, d)."""
    if not isinstance(draws, torch.Tensor) or draws.shape != eps.shape:
        got = tuple(draws.shape) if isinstance(draws, torch.Tensor) else type(draws).__name__
        raise ValueError(
            f"{name} must return one gradient per draw, a tensor of shape {tuple(eps.shape)} "
            f"(the shape of eps), got {got}"
        )
    return draws


def _check_f(f) -> None:
    if not callable(f):
        raise TypeError(
            f"f must be a function of z (..., d) returning (...), got {type(f).__name__}"
        )


def _check_baseline(baseline, eps) -> None:
    if baseline is None:
        return
    if isinstance(baseline, str):
        if baseline != "leave-one-out":
            raise ValueError(
                f'baseline must be None, a number or "leave-one-out", got {baseline!r}'
            )
        if eps.shape[-2] < 2:
            raise ValueError(
                "a leave-one-out baseline needs at least 2 draws per estimate (k >= 2)"
            )
        return
    check_number(baseline, "baseline")


def check_gradient_args(f, mean, sigma, eps, baseline: Baseline = None) -> tuple:
    """The arguments of :func:`pathwise_samples` and :func:`score_function_samples`.

    f must be callable, mean a finite (d,) tensor, sigma a positive number or (d,) tensor, eps a
    finite (..., k, d) tensor on mean's device, baseline None, a number or "leave-one-out" (k >= 2).
    Returns mean and sigma, sigma as a (d,) tensor of mean's dtype.
    """
    _check_f(f)
    mean, sigma = _check_mean_sigma(mean, sigma)
    _check_eps(eps, mean)
    _check_baseline(baseline, eps)
    return mean, sigma


def check_values(values, z: torch.Tensor) -> torch.Tensor:
    """f(z), checked: a tensor of shape z.shape[:-1] (one finite value per draw)."""
    if not isinstance(values, torch.Tensor) or values.shape != z.shape[:-1]:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(
            f"f must map z of shape (..., d) to a tensor of shape (...) = {tuple(z.shape[:-1])}, "
            f"got {got}"
        )
    if not bool(torch.isfinite(values.detach()).all()):
        raise ValueError(
            "f returned NaN or infinite values: its gradient estimates would be NaN too"
        )
    return values


# ----------------------------------------------------------------------------------------------
# Defined in chapter 04: the two estimators
# ----------------------------------------------------------------------------------------------


def pathwise_samples(f, mean, sigma, eps):
    """Per-draw pathwise gradients grad f(mean + sigma * eps).

    f: (..., d) -> (...), differentiable; mean: (d,); sigma: (d,)
    or a number; eps: (..., k, d) standard-normal noise.
    Returns (..., k, d): one estimate of the gradient per draw.
    Defined in chapter 04 (notebooks/04_reparameterization.ipynb).
    """
    mean, sigma = check_gradient_args(f, mean, sigma, eps)
    # one copy of mean per draw, so that autograd returns each
    # draw's own gradient rather than their sum
    mu = mean.detach().expand(eps.shape).clone().requires_grad_()
    with torch.enable_grad():
        z = mu + sigma * eps  # the reparameterization
        values = check_values(f(z), z)  # f of each draw: (..., k)
        (grad,) = torch.autograd.grad(values.sum(), mu)
    return grad


def score_function_samples(f, mean, sigma, eps, baseline=None):
    """Per-draw score-function gradients (f(z) - b) grad log q(z).

    z = mean + sigma * eps; arguments as in pathwise_samples, but f
    need not be differentiable. baseline: None (b = 0), a number b,
    or "leave-one-out": for draw i, b is the mean of f over the
    other k - 1 draws of the same estimate (needs k >= 2).
    Defined in chapter 04 (notebooks/04_reparameterization.ipynb).
    """
    mean, sigma = check_gradient_args(f, mean, sigma, eps, baseline)
    mu = mean.detach().expand(eps.shape).clone().requires_grad_()
    z = (mean + sigma * eps).detach()  # a plain draw: no path to mu
    with torch.no_grad():
        values = check_values(f(z), z)  # (..., k)
        if baseline == "leave-one-out":
            k = values.shape[-1]
            b = (values.sum(-1, keepdim=True) - values) / (k - 1)
        else:
            b = 0.0 if baseline is None else baseline
    with torch.enable_grad():
        log_q = torch.distributions.Normal(mu, sigma).log_prob(z)
        # a surrogate loss, its gradient (f(z) - b) grad log q(z)
        surrogate = ((values - b) * log_q.sum(-1)).sum()
        (grad,) = torch.autograd.grad(surrogate, mu)
    return grad


# ----------------------------------------------------------------------------------------------
# Many estimates at once, and a reference gradient by quadrature
# ----------------------------------------------------------------------------------------------


def gradient_estimates(
    f: Callable,
    mean: torch.Tensor,
    sigma,
    *,
    estimator: str,
    num_samples: int,
    num_trials: int,
    generator: Optional[torch.Generator] = None,
    max_draws_per_chunk: int = 2**18,
    pathwise: Callable = pathwise_samples,
    score_function: Callable = score_function_samples,
) -> torch.Tensor:
    """``num_trials`` independent gradient estimates, each the average of ``num_samples`` (k) draws.

    Args:
        f: (..., d) -> (...).
        mean: (d,); sigma: (d,) or a number.
        estimator: "pathwise", "score" or "score_baseline" (leave-one-out baseline, k >= 2).
        num_samples: k draws per estimate.
        num_trials: how many independent estimates.
        generator: torch.Generator for the noise.
        max_draws_per_chunk: trials are processed in chunks of at most this many draws (memory).
        pathwise, score_function: the per-draw estimators, called as
            ``pathwise(f, mean, sigma, eps)`` and ``score_function(f, mean, sigma, eps, baseline)``
            (chapter 04 passes its own).
    Returns:
        (num_trials, d) estimates of d/d mean E[f(z)].
    """
    _check_f(f)
    mean, sigma = _check_mean_sigma(mean, sigma)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    check_positive_int(num_samples, "num_samples")
    check_positive_int(num_trials, "num_trials")
    check_positive_int(max_draws_per_chunk, "max_draws_per_chunk")
    check_generator(generator)
    _check_estimator_functions(pathwise, score_function)
    chunk = max(1, max_draws_per_chunk // num_samples)
    out = []
    for start in range(0, num_trials, chunk):
        n = min(chunk, num_trials - start)
        eps = torch.randn(n, num_samples, mean.shape[0], generator=generator, dtype=mean.dtype)
        if estimator == "pathwise":
            draws = _checked_draws(pathwise(f, mean, sigma, eps), eps, "pathwise")
        else:
            baseline = "leave-one-out" if estimator == "score_baseline" else None
            draws = _checked_draws(
                score_function(f, mean, sigma, eps, baseline), eps, "score_function"
            )
        out.append(draws.mean(-2))
    return torch.cat(out)


def quadrature_gradient(
    f: Callable, mean: torch.Tensor, sigma, num_nodes: int = 60
) -> torch.Tensor:
    """d/d mean E[f(z)] by Gauss-Hermite quadrature of E_eps[grad f(mean + sigma eps)] (d <= 3).

    Deterministic and, for smooth f, accurate to many digits: a reference "true gradient" when no
    closed form exists. Costs num_nodes**d gradient evaluations.
    """
    _check_f(f)
    mean, sigma = _check_mean_sigma(mean, sigma)
    d = mean.shape[0]
    if d > 3:
        raise ValueError(f"quadrature needs num_nodes**d points; use d <= 3, got d = {d}")
    check_positive_int(num_nodes, "num_nodes")
    # Probabilists' Hermite nodes/weights integrate against exp(-x^2 / 2); normalize to N(0, 1).
    nodes, weights = np.polynomial.hermite_e.hermegauss(num_nodes)
    nodes = torch.as_tensor(nodes, dtype=mean.dtype)
    weights = torch.as_tensor(weights / math.sqrt(2 * math.pi), dtype=mean.dtype)
    grids = torch.meshgrid(*([nodes] * d), indexing="ij")
    eps = torch.stack([g.reshape(-1) for g in grids], -1).unsqueeze(0)  # (1, num_nodes**d, d)
    w = torch.ones(1, dtype=mean.dtype)
    for _ in range(d):
        w = (w.unsqueeze(-1) * weights).reshape(-1)
    grads = pathwise_samples(f, mean, sigma, eps)[0]  # (num_nodes**d, d)
    return (w.unsqueeze(-1) * grads).sum(0)


class DecoderLoss(torch.nn.Module):
    """f(z) = Bernoulli negative log-likelihood of a fixed image under a fixed, random decoder.

    The kind of function a VAE's encoder gradient runs through: latent (d) -> tanh(hidden)
    -> tanh(hidden) -> logits (n_pixels), then sum_i softplus(y_i) - x_i y_i. The weights are
    frozen (seeded Xavier-like normal init), so f is an ordinary deterministic function of z.

    Args:
        target: (n_pixels,) image in [0, 1].
        latent_dim: d.
        hidden: width of the two hidden layers.
        seed: seed of the weights.
    """

    def __init__(self, target: torch.Tensor, latent_dim: int = 2, hidden: int = 32, seed: int = 0):
        super().__init__()
        check_tensor(target, "target")
        if target.dim() != 1 or len(target) == 0:
            raise ValueError(
                "target must be a non-empty flat image (n_pixels,), "
                f"got shape {tuple(target.shape)}"
            )
        check_unit_interval(target, "target")
        check_positive_int(latent_dim, "latent_dim")
        check_positive_int(hidden, "hidden")
        g = torch.Generator().manual_seed(seed)
        sizes = [latent_dim, hidden, hidden, target.shape[0]]
        self.weights = [
            torch.randn(a, b, generator=g, dtype=target.dtype) * math.sqrt(2.0 / (a + b))
            for a, b in zip(sizes[:-1], sizes[1:])
        ]
        self.biases = [0.1 * torch.randn(b, generator=g, dtype=target.dtype) for b in sizes[1:]]
        self.target = target

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (..., latent_dim), the target's dtype and device -> (...) negative log-likelihoods
        in nats."""
        check_tensor(z, "z")
        latent_dim = self.weights[0].shape[0]
        if z.dim() < 1 or z.shape[-1] != latent_dim:
            raise ValueError(f"z must have shape (..., {latent_dim}), got {tuple(z.shape)}")
        if z.dtype != self.target.dtype or z.device != self.target.device:
            raise TypeError(
                f"z must have the target's dtype {self.target.dtype} on {self.target.device}, got "
                f"{z.dtype} on {z.device}; convert it with z.to(target)"
            )
        check_finite(z, "z")
        h = z
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = torch.tanh(h)
        return torch.nn.functional.binary_cross_entropy_with_logits(
            h, self.target.expand_as(h), reduction="none"
        ).sum(-1)


# ----------------------------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------------------------


class VarianceResult(NamedTuple):
    """Results of :func:`variance_experiment`, one row per k.

    ``stats[name]`` holds (len(sample_sizes), d) tensors: ["mean"], the mean of the trial
    estimates; ["mean_se"], its standard error; ["variance"], the variance of one estimate across
    trials; ["variance_se"], the standard error of that variance (from the fourth central moment).
    """

    sample_sizes: list
    stats: dict
    exact_gradient: Optional[torch.Tensor]
    num_trials: int
    seconds: float


def variance_experiment(
    f: Callable,
    mean: torch.Tensor,
    sigma,
    *,
    sample_sizes: Sequence[int] = (1, 10, 100, 1000),
    num_trials: int = 2000,
    estimators: Sequence[str] = ESTIMATORS,
    seed: int = 0,
    exact_gradient: Optional[torch.Tensor] = None,
    pathwise: Callable = pathwise_samples,
    score_function: Callable = score_function_samples,
) -> VarianceResult:
    """Mean and variance of each estimator over ``num_trials`` repetitions, for each k in
    ``sample_sizes``.

    Seeded: the same arguments give the same numbers. The leave-one-out baseline skips k = 1.
    ``pathwise`` and ``score_function`` are the per-draw estimators the experiment runs (see
    :func:`gradient_estimates`): chapter 04 passes the ones it defines.
    """
    import time

    _check_f(f)
    mean, sigma = _check_mean_sigma(mean, sigma)
    if isinstance(estimators, str):
        raise TypeError(
            f"estimators must be a sequence of names such as ({estimators!r},), got the string "
            f"{estimators!r}"
        )
    for name in estimators:
        if name not in ESTIMATORS:
            raise ValueError(f"unknown estimator {name!r}; choose from {ESTIMATORS}")
    sizes = [check_positive_int(k, "sample_sizes entries") for k in sample_sizes]
    if not sizes:
        raise ValueError("sample_sizes must name at least one number of draws k")
    check_positive_int(num_trials, "num_trials")
    if num_trials < 2:
        raise ValueError(
            f"num_trials must be at least 2 (a variance needs two estimates), got {num_trials}"
        )
    check_seed(seed)
    _check_estimator_functions(pathwise, score_function)
    start = time.perf_counter()
    stats = {}
    for e_index, name in enumerate(estimators):
        rows = {key: [] for key in ("mean", "mean_se", "variance", "variance_se")}
        for k_index, k in enumerate(sizes):
            if name == "score_baseline" and k < 2:
                for key in rows:
                    rows[key].append(torch.full_like(mean, float("nan")))
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + 1000 * e_index + k_index)
            est = gradient_estimates(
                f,
                mean,
                sigma,
                estimator=name,
                num_samples=k,
                num_trials=num_trials,
                generator=g,
                pathwise=pathwise,
                score_function=score_function,
            )
            centred = est - est.mean(0)
            var = centred.pow(2).sum(0) / (num_trials - 1)
            m4 = centred.pow(4).mean(0)
            rows["mean"].append(est.mean(0))
            rows["mean_se"].append(var.sqrt() / math.sqrt(num_trials))
            rows["variance"].append(var)
            rows["variance_se"].append(((m4 - var**2).clamp_min(0) / num_trials).sqrt())
        stats[name] = {key: torch.stack(value) for key, value in rows.items()}
    return VarianceResult(sizes, stats, exact_gradient, num_trials, time.perf_counter() - start)


def variance_table(result: VarianceResult, component: int = 0) -> str:
    """Two text tables, one row per k: the mean of the estimates +- its standard error, then
    k * variance of one estimate (constant in k when the variance falls like 1/k), for each
    estimator. "-" where not measured."""
    names = list(result.stats)
    short = {"pathwise": "pathwise", "score": "score", "score_baseline": "score+LOO"}
    width = 18
    header = f"{'k':>5s}" + "".join(f"{short[n]:>{width}s}" for n in names)
    means, kvars = [header], [header]
    for i, k in enumerate(result.sample_sizes):
        row_m, row_v = f"{k:5d}", f"{k:5d}"
        for n in names:
            m = result.stats[n]["mean"][i, component].item()
            se = result.stats[n]["mean_se"][i, component].item()
            v = result.stats[n]["variance"][i, component].item()
            if math.isnan(m):
                row_m += f"{'-':>{width}s}"
                row_v += f"{'-':>{width}s}"
            else:
                row_m += f"{f'{m:+.4f} ± {se:.4f}':>{width}s}"
                row_v += f"{k * v:{width}.4g}"
        means.append(row_m)
        kvars.append(row_v)
    return "\n".join(
        ["mean of the estimates ± standard error"]
        + means
        + ["", "k × variance of one estimate"]
        + kvars
    )


def variance_ratio(result: VarianceResult, numerator: str, denominator: str = "pathwise") -> tuple:
    """Var[numerator] / Var[denominator] over every k (and component) where both were measured:
    (geometric mean, smallest, largest)."""
    ratio = result.stats[numerator]["variance"] / result.stats[denominator]["variance"]
    ratio = ratio[~torch.isnan(ratio)]
    return math.exp(ratio.log().mean().item()), ratio.min().item(), ratio.max().item()


def plot_variance(
    result: VarianceResult,
    component: int = 0,
    closed_form: Optional[dict] = None,
    title: str = "Gradient estimators of d/dμ E[f(z)]",
) -> Figure:
    """Two panels: variance of one estimate vs k (log-log), and the mean estimate +- 2 s.e. vs k.

    Args:
        result: from :func:`variance_experiment`.
        component: which coordinate of the gradient to show.
        closed_form: optional {estimator name: per-sample variance, or a function of k giving k
            times the variance (for the leave-one-out baseline, whose draws are not
            independent)}; drawn as wide pale lines variance / k, at the k the estimator was
            measured.
        title: figure title.
    """
    ks = np.asarray(result.sample_sizes, dtype=float)
    fig = Figure(figsize=(COLUMN_WIDTH - 0.2, 5.2), layout="constrained")
    ax_var, ax_mean = fig.subplots(1, 2)
    offsets = {"pathwise": 0.94, "score": 1.0, "score_baseline": 1.06}  # keep error bars apart
    for name, s in result.stats.items():
        var = s["variance"][:, component].numpy()
        var_se = s["variance_se"][:, component].numpy()
        ax_var.errorbar(
            ks,
            var,
            yerr=2 * var_se,
            marker=_MARKERS[name],
            color=_COLORS[name],
            label=_LABELS[name],
            capsize=3,
            lw=1.5,
        )
        m, se = s["mean"][:, component].numpy(), s["mean_se"][:, component].numpy()
        ax_mean.errorbar(
            ks * offsets[name],
            m,
            yerr=2 * se,
            marker=_MARKERS[name],
            color=_COLORS[name],
            label=_LABELS[name],
            capsize=3,
            lw=1.2,
            ls="none",
        )
        if closed_form and name in closed_form:
            # a wide pale band under the measurements, so both stay visible where they coincide
            measured = np.isfinite(var)
            form = closed_form[name]
            k_var = [form(int(k)) if callable(form) else form for k in ks[measured]]
            ax_var.plot(
                ks[measured],
                np.asarray(k_var, dtype=float) / ks[measured],
                ls="-",
                color=_COLORS[name],
                lw=7,
                alpha=0.25,
                zorder=0,
            )
    if closed_form:
        ax_var.plot(
            [], [], ls="-", color="0.3", lw=7, alpha=0.25, label="closed form, variance / k"
        )
    ax_var.set_xscale("log")
    ax_var.set_yscale("log")
    ax_var.set_xlabel("draws per estimate k")
    ax_var.set_ylabel("variance of one gradient estimate")
    ax_var.set_title(f"Variance over {result.num_trials:,}\nrepeated estimates", fontsize=11)
    ax_var.grid(True, which="major", alpha=0.3)
    legend_below(ax_var)
    if result.exact_gradient is not None:
        ax_mean.axhline(
            float(result.exact_gradient[component]), color="black", lw=1, label="exact gradient"
        )
    ax_mean.set_xscale("log")
    ax_mean.set_xlabel("draws per estimate k")
    ax_mean.set_ylabel("mean of the estimates (± 2 s.e.)")
    ax_mean.set_title("Every estimator\nis unbiased", fontsize=11)
    ax_mean.grid(True, alpha=0.3)
    legend_below(ax_mean)
    fig.suptitle(wrap_text(title))
    return fig
