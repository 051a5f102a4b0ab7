"""The evidence lower bound, checked on a model whose log p(x) is known exactly (chapter 03).

The linear-Gaussian latent variable model

    p(z) = N(0, I_d),        p(x | z) = N(W z + b, sigma^2 I_D)

is the one latent variable model where everything a VAE approximates has a closed form: the
evidence p(x) = N(b, W W^T + sigma^2 I), the posterior p(z | x) (a Gaussian), the ELBO of any
Gaussian q(z | x) and the KL divergence between q and the posterior. So the identity

    log p(x) = ELBO(q) + KL(q(z | x) || p(z | x))

can be verified to rounding error. Work in float64: the checks are meant to hold to ~1e-10.

Shapes: D = data_dim, d = latent_dim. A single data point is (D,); a batch is (n, D). A Gaussian
q(z | x) is given by ``q_mean`` (d,) or (n, d) and either a full covariance ``q_cov`` (d, d) or
(n, d, d), or diagonal log variances ``q_ln_var`` shaped like ``q_mean`` (the encoder's output).

Chapter 03 defines the math on the page: the Gaussian log-density, the model, the Gaussian KL
divergence, the ELBO and its gap, the best diagonal q and the Monte Carlo estimate of the ELBO.
This module keeps the same code for later chapters, with what the chapter uses without showing:
the argument checks (one line at the start of each public function), the tables and the figures.
The tables and figures take the chapter's functions as arguments, so the chapter runs its own code.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from matplotlib.figure import Figure

from ..infra.checks import (
    check_finite,
    check_generator,
    check_positive_int,
    check_seed,
    check_tensor,
)
from ..infra.plots import COLUMN_WIDTH, OKABE_ITO, legend_below

__all__ = [
    # defined in chapter 03
    "gaussian_log_density",
    "LinearGaussianModel",
    "ELBO",
    "gaussian_kl",
    "elbo",
    "kl_to_posterior",
    "best_mean_field",
    "MonteCarloELBO",
    "elbo_monte_carlo",
    # argument checks the chapter's code calls
    "check_linear_gaussian",
    "check_random_model",
    "check_sampling",
    "check_data",
    "check_latents",
    "check_gaussian",
    "check_gaussians",
    "check_q",
    # helpers, tables and figures
    "diagonal_covariance",
    "identity_table",
    "monte_carlo_convergence",
    "convergence_table",
    "plot_monte_carlo_convergence",
    "plot_elbo_along_line",
]


# ----------------------------------------------------------------------------------------------
# Argument checks: each public function of the chapter calls one of these on its first line
# ----------------------------------------------------------------------------------------------


def _check_vector(value, name: str, size: int, dtype: torch.dtype, what: str) -> torch.Tensor:
    """``value`` must be a float tensor of shape (size,) or (n, size) with the given dtype."""
    check_tensor(value, name)
    if value.dim() not in (1, 2) or value.shape[-1] != size:
        raise ValueError(
            f"{name} must have shape ({size},) or (n, {size}) ({what}), got {tuple(value.shape)}"
        )
    if value.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype} but the model uses {dtype}; "
            f"convert it with {name}.to({dtype})"
        )
    check_finite(value, name)
    return value


def _check_covariance(cov, name: str, dtype: Optional[torch.dtype] = None) -> None:
    """``cov`` must be a symmetric positive-definite (..., d, d) float tensor."""
    check_tensor(cov, name)
    if cov.dim() < 2 or cov.shape[-1] != cov.shape[-2] or cov.shape[-1] == 0:
        raise ValueError(
            f"{name} must be a square matrix of size >= 1 (or a batch of them), "
            f"got shape {tuple(cov.shape)}" + (" (empty)" if cov.numel() == 0 else "")
        )
    if dtype is not None and cov.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {cov.dtype} but the model uses {dtype}; "
            f"convert it with {name}.to({dtype})"
        )
    check_finite(cov, name)
    scale = cov.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(cov.dtype).tiny)
    if not torch.allclose(cov / scale, cov.transpose(-1, -2) / scale, rtol=0, atol=1e-8):
        raise ValueError(
            f"{name} must be symmetric (a covariance matrix); symmetrize it with 0.5 * (C + C.T)"
        )
    _, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        raise ValueError(
            f"{name} is not positive definite: a covariance needs strictly positive eigenvalues"
        )


def _exp_variances(ln_var: torch.Tensor, name: str) -> torch.Tensor:
    """exp(ln_var), refusing log variances so large that the variance overflows to infinity."""
    var = torch.exp(ln_var)
    if not bool(torch.isfinite(var).all()):
        raise ValueError(
            f"{name} is too large: exp({name}) overflows {ln_var.dtype} (largest entry "
            f"{float(ln_var.max()):g})"
        )
    return var


def _check_function(value, name: str) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be a function, got {type(value).__name__}")


def check_linear_gaussian(W, b, sigma) -> float:
    """The arguments of ``LinearGaussianModel(W, b, sigma)``; returns sigma as a float."""
    check_tensor(W, "W")
    if W.dim() != 2 or W.numel() == 0:
        raise ValueError(
            "W must be a (data_dim, latent_dim) matrix with both sizes >= 1, "
            f"got shape {tuple(W.shape)}" + (" (empty)" if W.numel() == 0 else "")
        )
    check_finite(W, "W")
    check_tensor(b, "b")
    if b.shape != (W.shape[0],):
        raise ValueError(
            f"b must have shape ({W.shape[0]},) to match W {tuple(W.shape)}, got {tuple(b.shape)}"
        )
    if b.dtype != W.dtype:
        raise TypeError(
            f"b has dtype {b.dtype} but W has {W.dtype}; use one dtype (float64 for exact checks)"
        )
    check_finite(b, "b")
    if b.device != W.device:
        raise ValueError(f"b is on {b.device} but W is on {W.device}; move both to one device")
    if isinstance(sigma, torch.Tensor) and sigma.numel() == 1 and sigma.is_floating_point():
        sigma = sigma.item()
    if (
        isinstance(sigma, bool)
        or not isinstance(sigma, (int, float))
        or not (sigma > 0 and math.isfinite(sigma))
    ):
        raise ValueError(f"sigma must be a finite positive number, got {sigma!r}")
    return float(sigma)


def check_random_model(data_dim, latent_dim, seed, dtype) -> None:
    """The arguments of ``LinearGaussianModel.random``."""
    check_positive_int(data_dim, "data_dim")
    check_positive_int(latent_dim, "latent_dim")
    check_seed(seed)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating-point torch.dtype such as torch.float64, got {dtype!r}"
        )


def check_sampling(n, generator, name: str = "n") -> None:
    """A number of draws ``n`` (a positive int) and a torch.Generator or None."""
    check_positive_int(n, name)
    check_generator(generator)


def check_data(x, model) -> torch.Tensor:
    """A data point (D,) or a batch (n, D) with the model's dtype, finite."""
    return _check_vector(x, "x", model.data_dim, model.dtype, "data_dim")


def check_latents(z, model, x=None) -> torch.Tensor:
    """Latent points z (..., d) with the model's dtype, finite; given data x, x is checked too and
    the batch shapes of x and z must broadcast."""
    if x is not None:
        check_data(x, model)
    check_tensor(z, "z")
    if z.dim() < 1 or z.shape[-1] != model.latent_dim:
        raise ValueError(f"z must have shape (..., {model.latent_dim}), got {tuple(z.shape)}")
    if z.dtype != model.dtype:
        raise TypeError(
            f"z has dtype {z.dtype} but the model uses {model.dtype}; "
            f"convert it with z.to({model.dtype})"
        )
    check_finite(z, "z")
    if x is not None:
        try:
            torch.broadcast_shapes(x.shape[:-1], z.shape[:-1])
        except RuntimeError:
            raise ValueError(
                f"the batch shapes of x {tuple(x.shape)} and z {tuple(z.shape)} do not broadcast"
            ) from None
    return z


def check_gaussian(x, mean, cov) -> None:
    """The arguments of ``gaussian_log_density``: x and mean (..., D) of one dtype and device whose
    batch shapes broadcast, and a symmetric positive-definite cov (D, D) or (..., D, D)."""
    for value, name in ((x, "x"), (mean, "mean")):
        check_tensor(value, name)
        if value.dim() < 1 or value.shape[-1] == 0:
            raise ValueError(
                f"{name} must have shape (..., D) with D >= 1, got {tuple(value.shape)}"
            )
        check_finite(value, name)
    if x.shape[-1] != mean.shape[-1]:
        raise ValueError(
            f"x and mean must have the same last dimension D, got shapes {tuple(x.shape)} "
            f"and {tuple(mean.shape)}"
        )
    _check_covariance(cov, "cov")
    if cov.shape[-1] != x.shape[-1]:
        raise ValueError(f"cov must be ({x.shape[-1]}, {x.shape[-1]}), got {tuple(cov.shape[-2:])}")
    _check_one_kind({"x": x, "mean": mean, "cov": cov})
    try:
        torch.broadcast_shapes(x.shape[:-1], mean.shape[:-1], cov.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the batch shapes of x {tuple(x.shape)}, mean {tuple(mean.shape)} and cov "
            f"{tuple(cov.shape)} do not broadcast"
        ) from None


def _check_one_kind(tensors: dict) -> None:
    """One dtype and one device for all the named tensors."""
    names = " and ".join(", ".join(tensors).rsplit(", ", 1))
    dtypes = {value.dtype for value in tensors.values()}
    if len(dtypes) > 1:
        raise TypeError(f"{names} must share one dtype, got {sorted(map(str, dtypes))}")
    devices = {value.device for value in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f"{names} must be on one device, got {sorted(map(str, devices))}")


def check_gaussians(mean_q, cov_q, mean_p, cov_p) -> None:
    """The arguments of ``gaussian_kl``: means (..., d), symmetric positive-definite covariances
    (..., d, d) of the same d, one dtype and device, batch shapes that broadcast."""
    for value, name in ((mean_q, "mean_q"), (mean_p, "mean_p")):
        check_tensor(value, name)
        check_finite(value, name)
        if value.dim() < 1 or value.shape[-1] == 0:
            raise ValueError(
                f"{name} must have shape (..., d) with d >= 1, got {tuple(value.shape)}"
            )
    d = mean_q.shape[-1]
    if mean_p.shape[-1] != d:
        raise ValueError(
            "mean_q and mean_p must have the same last dimension d (shapes (..., d)), "
            f"got shapes {tuple(mean_q.shape)} and {tuple(mean_p.shape)}"
        )
    for cov, name in ((cov_q, "cov_q"), (cov_p, "cov_p")):
        _check_covariance(cov, name)
        if cov.shape[-1] != d:
            raise ValueError(
                f"{name} must be ({d}, {d}) to match the means, got {tuple(cov.shape[-2:])}"
            )
    _check_one_kind({"mean_q": mean_q, "cov_q": cov_q, "mean_p": mean_p, "cov_p": cov_p})
    try:
        torch.broadcast_shapes(
            mean_q.shape[:-1], mean_p.shape[:-1], cov_q.shape[:-2], cov_p.shape[:-2]
        )
    except RuntimeError:
        raise ValueError(
            f"the batch shapes of mean_q {tuple(mean_q.shape)}, cov_q {tuple(cov_q.shape)}, "
            f"mean_p {tuple(mean_p.shape)} and cov_p {tuple(cov_p.shape)} do not broadcast"
        ) from None


def check_q(model, x, q_mean, q_cov, q_ln_var) -> None:
    """Data x and a Gaussian q(z | x) given by q_mean and exactly one of q_cov (a full covariance)
    and q_ln_var (diagonal log variances), all in the model's shapes and dtype."""
    check_data(x, model)
    _check_vector(q_mean, "q_mean", model.latent_dim, model.dtype, "latent_dim")
    if q_mean.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"q_mean {tuple(q_mean.shape)} must have one row per data point of x {tuple(x.shape)}"
        )
    if (q_cov is None) == (q_ln_var is None):
        raise ValueError(
            "give exactly one of q_cov (a full covariance) and q_ln_var (diagonal log variances)"
        )
    d = model.latent_dim
    if q_ln_var is not None:
        _check_vector(q_ln_var, "q_ln_var", d, model.dtype, "latent_dim")
        if q_ln_var.shape != q_mean.shape:
            raise ValueError(
                f"q_ln_var must have the shape of q_mean {tuple(q_mean.shape)}, "
                f"got {tuple(q_ln_var.shape)}"
            )
        _exp_variances(q_ln_var, "q_ln_var")
        return
    _check_covariance(q_cov, "q_cov", model.dtype)
    if q_cov.shape not in ((d, d), (*q_mean.shape[:-1], d, d)):
        raise ValueError(
            f"q_cov must have shape ({d}, {d}) or {(*q_mean.shape[:-1], d, d)}, "
            f"got {tuple(q_cov.shape)}"
        )


def _check_model(model) -> None:
    """A linear-Gaussian model: the package's class, or the chapter's own (same methods)."""
    needed = ("W", "b", "sigma", "data_dim", "latent_dim", "dtype", "log_marginal", "posterior")
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise TypeError(
            f"model must be a LinearGaussianModel, got {type(model).__name__} "
            f"(it has no {', '.join(missing)})"
        )


def diagonal_covariance(ln_var: torch.Tensor) -> torch.Tensor:
    """(..., d) log variances -> (..., d, d) diagonal covariance diag(exp(ln_var))."""
    check_tensor(ln_var, "ln_var")
    if ln_var.dim() < 1 or ln_var.shape[-1] == 0:
        raise ValueError(f"ln_var must have shape (..., d) with d >= 1, got {tuple(ln_var.shape)}")
    check_finite(ln_var, "ln_var")
    return torch.diag_embed(_exp_variances(ln_var, "ln_var"))


# ----------------------------------------------------------------------------------------------
# Defined in chapter 03: the Gaussian log-density and the model
# ----------------------------------------------------------------------------------------------


def gaussian_log_density(x, mean, cov):
    """log N(x; mean, cov) for a full covariance matrix cov.

    x and mean: (..., D), broadcasting; cov: (D, D) or (..., D, D).
    Returns (...). Full covariances are why the chapter writes its
    own: a VAE's Gaussians are diagonal, one formula per element.
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """
    check_gaussian(x, mean, cov)
    D = x.shape[-1]
    diff = (x - mean).unsqueeze(-1)  # (..., D, 1)
    # (x - mean)^T cov^-1 (x - mean), solving instead of inverting
    solved = torch.linalg.solve(cov, diff)
    mahalanobis = (diff * solved).sum((-2, -1))
    log_det = torch.logdet(cov)
    const = D * math.log(2 * math.pi)
    return -0.5 * (const + log_det + mahalanobis)


class LinearGaussianModel:
    """p(z) = N(0, I_d), p(x | z) = N(W z + b, sigma^2 I_D).

    W: (D, d) weights, b: (D,) bias, sigma > 0: the noise level.
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """

    def __init__(self, W, b, sigma):
        sigma = check_linear_gaussian(W, b, sigma)
        self.W, self.b, self.sigma = W, b, sigma
        self.data_dim, self.latent_dim = W.shape  # D, d
        self.dtype = W.dtype

    @classmethod
    def random(cls, data_dim, latent_dim, sigma=0.5, seed=0, dtype=torch.float64):
        """A model with standard-normal W and b (a seeded draw)."""
        check_random_model(data_dim, latent_dim, seed, dtype)
        g = torch.Generator().manual_seed(seed)
        W = torch.randn(data_dim, latent_dim, generator=g, dtype=dtype)
        b = torch.randn(data_dim, generator=g, dtype=dtype)
        return cls(W, b, sigma)

    def sample(self, n, generator=None):
        """z ~ p(z), then x ~ p(x | z): z (n, d), x (n, D)."""
        check_sampling(n, generator)
        draw = dict(generator=generator, dtype=self.dtype)
        z = torch.randn(n, self.latent_dim, **draw)
        eta = torch.randn(n, self.data_dim, **draw)  # the noise
        return z, z @ self.W.T + self.b + self.sigma * eta

    def marginal_covariance(self):
        """The covariance of p(x): W W^T + sigma^2 I, (D, D)."""
        eye = torch.eye(self.data_dim, dtype=self.dtype)
        return self.W @ self.W.T + self.sigma**2 * eye

    def log_marginal(self, x):
        """log p(x), exactly: x (D,) -> (), x (n, D) -> (n,)."""
        check_data(x, self)
        cov = self.marginal_covariance()
        return gaussian_log_density(x, self.b, cov)

    def posterior_precision(self):
        """S^-1 = I + W^T W / sigma^2, the precision of p(z | x)."""
        eye = torch.eye(self.latent_dim, dtype=self.dtype)
        return eye + self.W.T @ self.W / self.sigma**2

    def posterior(self, x):
        """p(z | x) = N(mean, S): mean (d,) or (n, d), S (d, d)."""
        check_data(x, self)
        S = torch.linalg.inv(self.posterior_precision())
        S = 0.5 * (S + S.T)  # symmetric to the last digit
        # m_x = S W^T (x - b) / sigma^2, written for rows x
        mean = (x - self.b) @ self.W @ S / self.sigma**2
        return mean, S

    def log_likelihood(self, x, z):
        """log p(x | z); x (..., D) and z (..., d) broadcast."""
        check_latents(z, self, x)
        decoded = z @ self.W.T + self.b  # the mean W z + b
        eye = torch.eye(self.data_dim, dtype=self.dtype)
        cov = self.sigma**2 * eye
        return gaussian_log_density(x, decoded, cov)

    def log_prior(self, z):
        """log p(z) = log N(z; 0, I): z (..., d) -> (...)."""
        check_latents(z, self)
        zero = torch.zeros(self.latent_dim, dtype=self.dtype)
        eye = torch.eye(self.latent_dim, dtype=self.dtype)
        return gaussian_log_density(z, zero, eye)


# ----------------------------------------------------------------------------------------------
# Defined in chapter 03: KL divergence, the ELBO, its gap, the best diagonal q
# ----------------------------------------------------------------------------------------------


def gaussian_kl(mean_q, cov_q, mean_p, cov_p):
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p)) in nats.

    Means (..., d) and covariances (..., d, d) broadcast. The VAE's
    KL term, vl.gaussian_kl_divergence, is the special case of a
    diagonal q and p = N(0, I); the posterior here is not diagonal.
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """
    check_gaussians(mean_q, cov_q, mean_p, cov_p)
    d = mean_q.shape[-1]
    ratio = torch.linalg.solve(cov_p, cov_q)  # cov_p^-1 cov_q
    trace = ratio.diagonal(dim1=-2, dim2=-1).sum(-1)
    diff = (mean_p - mean_q).unsqueeze(-1)
    solved = torch.linalg.solve(cov_p, diff)
    mahalanobis = (diff * solved).sum((-2, -1))
    log_dets = torch.logdet(cov_p) - torch.logdet(cov_q)
    return 0.5 * (trace + mahalanobis - d + log_dets)


class ELBO(NamedTuple):
    """The ELBO and its two terms, per data point, in nats.

    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """

    elbo: torch.Tensor  # = expected_log_likelihood - kl_to_prior
    expected_log_likelihood: torch.Tensor  # E_q[log p(x | z)]
    kl_to_prior: torch.Tensor  # KL(q(z | x) || p(z))


def elbo(model, x, q_mean, q_cov=None, *, q_ln_var=None):
    """The ELBO of q(z | x) = N(q_mean, q_cov) in closed form.

    x: (D,) or (n, D); q_mean: (d,) or (n, d); q_cov: (d, d) or
    (n, d, d), or instead q_ln_var: diagonal log variances shaped
    like q_mean (what a VAE's encoder outputs).
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """
    check_q(model, x, q_mean, q_cov, q_ln_var)
    if q_ln_var is not None:  # a diagonal q, as an encoder gives it
        q_cov = torch.diag_embed(q_ln_var.exp())
    m, V = q_mean, q_cov
    W, b, s2 = model.W, model.b, model.sigma**2
    D, d = model.data_dim, model.latent_dim
    # E_q ||x - W z - b||^2 = ||x - W m - b||^2 + tr(W V W^T)
    residual = x - (m @ W.T + b)
    spread = (W @ V @ W.T).diagonal(dim1=-2, dim2=-1).sum(-1)
    squares = (residual**2).sum(-1) + spread
    log_2pi_s2 = math.log(2 * math.pi * s2)
    expected = -0.5 * (D * log_2pi_s2 + squares / s2)
    # KL(q || p(z)) with the prior p(z) = N(0, I)
    zero = torch.zeros(d, dtype=model.dtype)
    eye = torch.eye(d, dtype=model.dtype)
    kl = gaussian_kl(m, V, zero, eye)
    return ELBO(expected - kl, expected, kl)


def kl_to_posterior(model, x, q_mean, q_cov=None, *, q_ln_var=None):
    """KL(q(z | x) || p(z | x)), the gap below log p(x).

    Arguments as in elbo.
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """
    check_q(model, x, q_mean, q_cov, q_ln_var)
    if q_ln_var is not None:
        q_cov = torch.diag_embed(q_ln_var.exp())
    post_mean, post_cov = model.posterior(x)
    return gaussian_kl(q_mean, q_cov, post_mean, post_cov)


def best_mean_field(model, x):
    """The diagonal q closest to p(z | x) in KL(q || p(z | x)).

    Returns (mean, ln_var), each like the posterior mean: the
    posterior's mean, and variances 1 / diag(posterior precision).
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """
    mean, _ = model.posterior(x)
    precision = model.posterior_precision()
    ln_var = -torch.log(torch.diagonal(precision))
    return mean, ln_var.expand_as(mean).clone()


# ----------------------------------------------------------------------------------------------
# Defined in chapter 03: the Monte Carlo estimate of the ELBO
# ----------------------------------------------------------------------------------------------


class MonteCarloELBO(NamedTuple):
    """A Monte Carlo estimate of the ELBO per data point, in nats.

    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """

    estimate: torch.Tensor  # the mean of the k terms
    standard_error: torch.Tensor  # their std / sqrt(k)
    num_samples: int  # k


def elbo_monte_carlo(
    model, x, q_mean, q_cov=None, *, q_ln_var=None, num_samples, generator=None, analytic_kl=False
):
    """The ELBO estimated from k = num_samples draws z = m + L eps.

    analytic_kl=False averages log p(x, z) - log q(z | x);
    analytic_kl=True averages log p(x | z), minus KL(q || p(z)).
    Other arguments as in elbo.
    Defined in chapter 03 (notebooks/03_elbo_check.ipynb).
    """
    check_q(model, x, q_mean, q_cov, q_ln_var)
    check_sampling(num_samples, generator, "num_samples")
    if q_ln_var is not None:
        q_cov = torch.diag_embed(q_ln_var.exp())
    k = num_samples
    L = torch.linalg.cholesky(q_cov)  # q_cov = L L^T
    eps = torch.randn(k, *q_mean.shape, generator=generator, dtype=model.dtype)  # (k, ..., d)
    z = q_mean + (L @ eps.unsqueeze(-1)).squeeze(-1)  # z ~ q
    log_likelihood = model.log_likelihood(x, z)  # (k, ...)
    if analytic_kl:
        kl = elbo(model, x, q_mean, q_cov).kl_to_prior
        terms = log_likelihood - kl
    else:
        log_q = gaussian_log_density(z, q_mean, q_cov)
        terms = log_likelihood + model.log_prior(z) - log_q
    nan = torch.full_like(terms[0], float("nan"))
    sd = terms.std(0) if k > 1 else nan  # one draw: no spread
    return MonteCarloELBO(terms.mean(0), sd / math.sqrt(k), k)


# ----------------------------------------------------------------------------------------------
# Tables and figures for the chapter. Each takes the chapter's functions as keyword arguments
# (the package's by default), so the chapter's page runs the code it shows.
# ----------------------------------------------------------------------------------------------

# Okabe-Ito colours (colour-vision-deficiency safe).
_BLUE, _ORANGE, _GREEN, _VERMILLION, _PURPLE = OKABE_ITO[:5]


def _check_one_point(model, x) -> None:
    _check_model(model)
    check_data(x, model)
    if x.dim() != 1:
        raise ValueError(
            f"x must be one data point of shape ({model.data_dim},), got {tuple(x.shape)}"
        )


def identity_table(
    model, x: torch.Tensor, candidates: dict, *, elbo=elbo, kl_to_posterior=kl_to_posterior
) -> str:
    """A text table checking log p(x) = ELBO + KL(q || p(z|x)) for named q's at one point x (D,).

    ``candidates`` maps a name to the keyword arguments of :func:`elbo` (q_mean and q_cov or
    q_ln_var). Columns: E_q log p = E_q[log p(x|z)] (the reconstruction term with its sign
    flipped), KL prior = KL(q || p(z)), ELBO, gap = KL(q || p(z|x)), residual = log p(x) - (ELBO +
    gap), all in nats.
    ``elbo`` and ``kl_to_posterior``: the functions that compute them (the chapter passes its own).
    """
    _check_one_point(model, x)
    _check_function(elbo, "elbo")
    _check_function(kl_to_posterior, "kl_to_posterior")
    log_px = model.log_marginal(x).item()
    header = ("E_q log p", "KL prior", "ELBO", "gap", "residual")
    lines = [f"{'q':26s}" + "".join(f"{name:>10s}" for name in header)]
    for name, q in candidates.items():
        terms = elbo(model, x, **q)
        gap = kl_to_posterior(model, x, **q).item()
        residual = log_px - (terms.elbo.item() + gap)
        lines.append(
            f"{name[:25]:26s}{terms.expected_log_likelihood.item():10.4f}"
            f"{terms.kl_to_prior.item():10.4f}{terms.elbo.item():10.4f}{gap:10.4f}{residual:10.1e}"
        )
    lines.append(f"log p(x) = {log_px:.5f} nats")
    return "\n".join(lines)


def monte_carlo_convergence(
    model,
    x: torch.Tensor,
    q_mean: torch.Tensor,
    q_cov: Optional[torch.Tensor] = None,
    *,
    q_ln_var: Optional[torch.Tensor] = None,
    sample_sizes=(10, 100, 1000),
    seed: int = 0,
    elbo=elbo,
    elbo_monte_carlo=elbo_monte_carlo,
) -> dict:
    """Monte Carlo ELBO estimates of one data point x (D,) for each k in ``sample_sizes``, both
    estimators.

    Returns a dict with "sample_sizes" and, for "full" (every term sampled) and "analytic_kl", the
    lists "estimate" and "standard_error" (floats), plus "exact": the closed-form ELBO.
    ``elbo`` and ``elbo_monte_carlo``: the functions that compute them (the chapter passes its own).
    """
    _check_one_point(model, x)
    if isinstance(sample_sizes, (str, bytes)) or not hasattr(sample_sizes, "__iter__"):
        raise TypeError(
            "sample_sizes must be a sequence of numbers of samples such as (10, 100), "
            f"got {sample_sizes!r}"
        )
    sample_sizes = [check_positive_int(k, "sample_sizes entries") for k in sample_sizes]
    if not sample_sizes:
        raise ValueError("sample_sizes must name at least one number of samples k")
    check_seed(seed)
    _check_function(elbo, "elbo")
    _check_function(elbo_monte_carlo, "elbo_monte_carlo")
    exact = elbo(model, x, q_mean, q_cov, q_ln_var=q_ln_var).elbo.item()
    table = {"sample_sizes": list(sample_sizes), "exact": exact}
    for index, (name, analytic) in enumerate((("full", False), ("analytic_kl", True))):
        g = torch.Generator().manual_seed(seed + index)
        runs = [
            elbo_monte_carlo(
                model,
                x,
                q_mean,
                q_cov,
                q_ln_var=q_ln_var,
                num_samples=int(k),
                generator=g,
                analytic_kl=analytic,
            )
            for k in sample_sizes
        ]
        table[name] = {
            "estimate": [r.estimate.item() for r in runs],
            "standard_error": [r.standard_error.item() for r in runs],
        }
    return table


def convergence_table(table: dict) -> str:
    """:func:`monte_carlo_convergence`'s result as text: estimate, s.e., |error| / s.e. per k."""
    exact = table["exact"]
    lines = [
        f"{'':8s}{'all sampled':^30s}  {'KL in closed form':^30s}",
        f"{'k':>8s}" + f"{'estimate':>12s}{'s.e.':>9s}{'|err|/se':>9s}  " * 2,
    ]
    for i, k in enumerate(table["sample_sizes"]):
        row = f"{k:8,d}"
        for name in ("full", "analytic_kl"):
            est, se = table[name]["estimate"][i], table[name]["standard_error"][i]
            row += f"{est:12.5f}{se:9.5f}{abs(est - exact) / se:9.2f}  "
        lines.append(row.rstrip())
    return "\n".join(lines)


def plot_monte_carlo_convergence(table: dict) -> Figure:
    """Left: each estimate +- 2 standard errors against k (log axis), with the closed form.
    Right: |error| and the standard error against k, log-log, with a 1/sqrt(k) guide."""
    ks = torch.tensor(table["sample_sizes"], dtype=torch.float64)
    exact = table["exact"]
    fig = Figure(figsize=(COLUMN_WIDTH - 0.2, 5.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    styles = {
        "full": (_BLUE, "o", 0.93, "log p(x, z) − log q(z|x), all sampled", "all sampled"),
        "analytic_kl": (
            _ORANGE,
            "s",
            1.07,
            "log p(x|z) sampled, KL in closed form",
            "KL in closed form",
        ),
    }
    for name, (color, marker, shift, label, short) in styles.items():
        est = torch.tensor(table[name]["estimate"])
        se = torch.tensor(table[name]["standard_error"])
        left.errorbar(
            ks * shift,
            est,
            yerr=2 * se,
            color=color,
            marker=marker,
            ls="none",
            capsize=3,
            label=label,
        )
        right.plot(
            ks,
            (est - exact).abs(),
            color=color,
            marker=marker,
            ls="none",
            label=f"|error|, {short}",
        )
        right.plot(ks, se, color=color, ls="-", lw=1.2, label=f"standard error, {short}")
    left.axhline(exact, color="black", lw=1, label=f"closed-form ELBO = {exact:.4f}")
    left.set_xscale("log")
    left.set_xlabel("Monte Carlo samples k")
    left.set_ylabel("ELBO estimate (nats), ± 2 s.e.")
    left.set_title("Estimates close in on the closed form", fontsize=10.5)
    legend_below(left)
    left.grid(True, alpha=0.3)
    guide = table["full"]["standard_error"][0] * (ks[0] / ks).sqrt()
    right.plot(ks, guide, color="0.5", ls=":", label=r"$\propto 1/\sqrt{k}$")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("Monte Carlo samples k")
    right.set_ylabel("nats")
    right.set_title("Error and standard error fall like 1/√k", fontsize=10.5)
    legend_below(right)
    right.grid(True, which="major", alpha=0.3)
    return fig


def plot_elbo_along_line(
    model,
    x: torch.Tensor,
    t: Optional[torch.Tensor] = None,
    *,
    elbo=elbo,
    best_mean_field=best_mean_field,
) -> Figure:
    """The ELBO as q's mean moves along the line m(t) = t * (posterior mean), for one point x (D,).

    t = 0 is the prior mean 0, t = 1 the posterior mean; ``t`` may have any floating-point dtype
    (it is converted to the model's). Left: the ELBO for three covariances of q (the posterior's,
    the best diagonal one, the identity) under the horizontal line log p(x); the gap of the first
    is shaded. Right: the two terms of the ELBO for the posterior covariance.
    ``elbo`` and ``best_mean_field``: the functions to use (the chapter passes its own).
    """
    _check_one_point(model, x)
    if t is None:
        t = torch.linspace(-0.25, 1.75, 201, dtype=model.dtype)
    check_tensor(t, "t")
    if t.dim() != 1 or len(t) < 2:
        raise ValueError(
            f"t must be a 1-D tensor of at least 2 positions, got shape {tuple(t.shape)}"
        )
    check_finite(t, "t")
    _check_function(elbo, "elbo")
    _check_function(best_mean_field, "best_mean_field")
    # Positions in the model's dtype: the ELBO is computed in it, and NumPy (which draws the
    # curves) has no bfloat16.
    t = t.to(model.dtype)
    post_mean, post_cov = model.posterior(x)
    _, mf_ln_var = best_mean_field(model, x)
    means = t.unsqueeze(-1) * post_mean  # (T, d)
    xs = x.expand(len(t), -1)
    log_px = model.log_marginal(x).item()
    covs = [
        ("q covariance = posterior covariance", post_cov, _BLUE, "-"),
        ("q covariance = best diagonal", torch.diag(mf_ln_var.exp()), _GREEN, "--"),
        (
            "q covariance = I (the prior's)",
            torch.eye(model.latent_dim, dtype=model.dtype),
            _VERMILLION,
            "-.",
        ),
    ]
    fig = Figure(figsize=(COLUMN_WIDTH - 0.2, 5.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    tt = t.numpy()
    for label, cov, color, ls in covs:
        left.plot(
            tt, elbo(model, xs, means, cov).elbo.numpy(), color=color, ls=ls, lw=2, label=label
        )
    best = elbo(model, xs, means, post_cov)
    left.axhline(log_px, color="black", lw=1.2, label=f"log p(x) = {log_px:.3f}")
    left.fill_between(
        tt, best.elbo.numpy(), log_px, color=_BLUE, alpha=0.15, label="gap = KL(q ‖ p(z|x))"
    )
    left.axvline(1.0, color="0.5", lw=0.8, ls=":")
    lowest = min(min(line.get_ydata()) for line in left.get_lines())
    # a margin above log p(x) (the legend is under the panel)
    left.set_ylim(lowest - 0.5, log_px + 0.08 * (log_px - lowest))
    xlabel = "position of q's mean:\nt in m = t · (posterior mean)"
    left.set_xlabel(xlabel)
    left.set_ylabel("nats")
    left.set_title("The ELBO touches log p(x)\nonly at q = p(z|x)", fontsize=11)
    legend_below(left, xlabel_lines=2)
    right.plot(
        tt,
        best.expected_log_likelihood.numpy(),
        color=_ORANGE,
        lw=2,
        label="E_q[log p(x|z)] (expected log-likelihood)",
    )
    right.plot(
        tt,
        -best.kl_to_prior.numpy(),
        color=_PURPLE,
        lw=2,
        ls="--",
        label="−KL(q ‖ p(z)) (regularization)",
    )
    right.plot(tt, best.elbo.numpy(), color=_BLUE, lw=2, label="ELBO = sum of the two")
    right.axvline(1.0, color="0.5", lw=0.8, ls=":")
    right.set_xlabel(xlabel)
    right.set_ylabel("nats")
    right.set_title("Its two terms pull\nin opposite directions", fontsize=11)
    legend_below(right, xlabel_lines=2)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    return fig
