"""The evidence lower bound, checked on a model whose evidence log p(x) is known exactly.

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
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch

from matplotlib.figure import Figure

from ..infra.checks import check_finite, check_generator, check_positive_int, check_seed, check_tensor

__all__ = [
    "LinearGaussianModel",
    "ELBO",
    "MonteCarloELBO",
    "gaussian_kl",
    "diagonal_covariance",
    "elbo",
    "elbo_monte_carlo",
    "kl_to_posterior",
    "best_mean_field",
    "identity_table",
    "monte_carlo_convergence",
    "convergence_table",
    "plot_monte_carlo_convergence",
    "plot_elbo_along_line",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


def _check_vector(value, name: str, size: int, dtype: torch.dtype, what: str) -> torch.Tensor:
    """``value`` must be a float tensor of shape (size,) or (n, size) with the given dtype."""
    check_tensor(value, name)
    if value.dim() not in (1, 2) or value.shape[-1] != size:
        raise ValueError(f"{name} must have shape ({size},) or (n, {size}) ({what}), got {tuple(value.shape)}")
    if value.dtype != dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but the model uses {dtype}; convert it with {name}.to({dtype})")
    check_finite(value, name)
    return value


def _check_covariance(cov, name: str, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``cov`` must be a symmetric positive-definite (..., d, d) float tensor; returns its Cholesky factor."""
    check_tensor(cov, name)
    if cov.dim() < 2 or cov.shape[-1] != cov.shape[-2] or cov.shape[-1] == 0:
        raise ValueError(f"{name} must be a square matrix of size >= 1 (or a batch of them), got shape {tuple(cov.shape)}"
                         + (" (empty)" if cov.numel() == 0 else ""))
    if dtype is not None and cov.dtype != dtype:
        raise TypeError(f"{name} has dtype {cov.dtype} but the model uses {dtype}; convert it with {name}.to({dtype})")
    check_finite(cov, name)
    scale = cov.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(cov.dtype).tiny)
    if not torch.allclose(cov / scale, cov.transpose(-1, -2) / scale, rtol=0, atol=1e-8):
        raise ValueError(f"{name} must be symmetric (a covariance matrix); symmetrise it with 0.5 * (C + C.T)")
    chol, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        raise ValueError(f"{name} is not positive definite: a covariance needs strictly positive eigenvalues")
    return chol


def _log_det_from_cholesky(chol: torch.Tensor) -> torch.Tensor:
    # log det(L L^T) = 2 * sum(log diag(L))
    return 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)


def diagonal_covariance(ln_var: torch.Tensor) -> torch.Tensor:
    """(..., d) log variances -> (..., d, d) diagonal covariance diag(exp(ln_var))."""
    check_tensor(ln_var, "ln_var")
    if ln_var.dim() < 1 or ln_var.shape[-1] == 0:
        raise ValueError(f"ln_var must have shape (..., d) with d >= 1, got {tuple(ln_var.shape)}")
    check_finite(ln_var, "ln_var")
    return torch.diag_embed(_exp_variances(ln_var, "ln_var"))


def _exp_variances(ln_var: torch.Tensor, name: str) -> torch.Tensor:
    """exp(ln_var), refusing log variances so large that the variance overflows to infinity."""
    var = torch.exp(ln_var)
    if not bool(torch.isfinite(var).all()):
        raise ValueError(f"{name} is too large: exp({name}) overflows {ln_var.dtype} (largest entry "
                         f"{float(ln_var.max()):g})")
    return var


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------


class LinearGaussianModel:
    """p(z) = N(0, I_d), p(x | z) = N(W z + b, sigma^2 I_D): a latent variable model with exact answers.

    Args:
        W: (D, d) loading matrix (the "decoder" weights).
        b: (D,) offset (the "decoder" bias), same dtype as ``W``.
        sigma: observation noise standard deviation, a positive number.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, sigma: float):
        check_tensor(W, "W")
        if W.dim() != 2 or W.numel() == 0:
            raise ValueError(f"W must be a (data_dim, latent_dim) matrix with both sizes >= 1, got shape {tuple(W.shape)}"
                             + (" (empty)" if W.numel() == 0 else ""))
        check_finite(W, "W")
        check_tensor(b, "b")
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},) to match W {tuple(W.shape)}, got {tuple(b.shape)}")
        if b.dtype != W.dtype:
            raise TypeError(f"b has dtype {b.dtype} but W has {W.dtype}; use one dtype (float64 for exact checks)")
        check_finite(b, "b")
        if b.device != W.device:
            raise ValueError(f"b is on {b.device} but W is on {W.device}; move both to one device")
        if isinstance(sigma, torch.Tensor) and sigma.numel() == 1 and sigma.is_floating_point():
            sigma = sigma.item()
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a finite positive number, got {sigma!r}")
        sigma = float(sigma)
        self.W, self.b, self.sigma = W, b, sigma

    @classmethod
    def random(cls, data_dim: int, latent_dim: int, sigma: float = 0.5, seed: int = 0,
               dtype: torch.dtype = torch.float64) -> "LinearGaussianModel":
        """A model with standard-normal W (data_dim, latent_dim) and b, drawn from a seeded generator."""
        check_positive_int(data_dim, "data_dim")
        check_positive_int(latent_dim, "latent_dim")
        check_seed(seed)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype such as torch.float64, got {dtype!r}")
        g = torch.Generator().manual_seed(seed)
        W = torch.randn(data_dim, latent_dim, generator=g, dtype=dtype)
        b = torch.randn(data_dim, generator=g, dtype=dtype)
        return cls(W, b, sigma)

    @property
    def data_dim(self) -> int:
        return self.W.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.W.dtype

    def __repr__(self) -> str:
        return (f"LinearGaussianModel(data_dim={self.data_dim}, latent_dim={self.latent_dim}, "
                f"sigma={self.sigma:g}, dtype={self.dtype})")

    def check_x(self, x) -> torch.Tensor:
        """Validate a data point (D,) or batch (n, D)."""
        return _check_vector(x, "x", self.data_dim, self.dtype, "data_dim")

    def check_z(self, z) -> torch.Tensor:
        """Validate latent points (..., d): finite, with the model's dtype."""
        check_tensor(z, "z")
        if z.dim() < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have shape (..., {self.latent_dim}), got {tuple(z.shape)}")
        if z.dtype != self.dtype:
            raise TypeError(f"z has dtype {z.dtype} but the model uses {self.dtype}; convert it with z.to({self.dtype})")
        check_finite(z, "z")
        return z

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling: z ~ p(z), then x ~ p(x | z). Returns z (n, d) and x (n, D)."""
        check_positive_int(n, "n")
        check_generator(generator)
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.dtype)
        noise = torch.randn(n, self.data_dim, generator=generator, dtype=self.dtype)
        return z, z @ self.W.T + self.b + self.sigma * noise

    def marginal_covariance(self) -> torch.Tensor:
        """(D, D) covariance of p(x): W W^T + sigma^2 I."""
        return self.W @ self.W.T + self.sigma**2 * torch.eye(self.data_dim, dtype=self.dtype)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact evidence log p(x) = log N(x; b, W W^T + sigma^2 I). x: (D,) or (n, D) -> () or (n,)."""
        self.check_x(x)
        chol = torch.linalg.cholesky(self.marginal_covariance())
        diff = (x - self.b).unsqueeze(-1)  # (..., D, 1)
        solved = torch.linalg.solve_triangular(chol, diff, upper=False).squeeze(-1)  # L^{-1}(x - b)
        mahalanobis = (solved**2).sum(-1)
        return -0.5 * (self.data_dim * _LOG_2PI + _log_det_from_cholesky(chol) + mahalanobis)

    def posterior_precision(self) -> torch.Tensor:
        """(d, d) precision of p(z | x): I + W^T W / sigma^2 (the same for every x)."""
        return torch.eye(self.latent_dim, dtype=self.dtype) + self.W.T @ self.W / self.sigma**2

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior p(z | x) = N(mean, cov).

        cov = (I + W^T W / sigma^2)^{-1}, mean = cov W^T (x - b) / sigma^2.

        Args:
            x: (D,) or (n, D).
        Returns:
            mean (d,) or (n, d), and cov (d, d), shared by every x.
        """
        self.check_x(x)
        cov = torch.linalg.inv(self.posterior_precision())
        cov = 0.5 * (cov + cov.T)  # remove rounding asymmetry
        mean = (x - self.b) @ self.W @ cov / self.sigma**2  # row-vector form of cov W^T (x - b) / sigma^2
        return mean, cov

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) = log N(x; W z + b, sigma^2 I). x (..., D) and z (..., d) broadcast; returns (...)."""
        self.check_x(x)
        self.check_z(z)
        try:
            torch.broadcast_shapes(x.shape[:-1], z.shape[:-1])
        except RuntimeError:
            raise ValueError(f"the batch shapes of x {tuple(x.shape)} and z {tuple(z.shape)} do not broadcast") from None
        residual = x - (z @ self.W.T + self.b)
        return -0.5 * (self.data_dim * (_LOG_2PI + 2 * math.log(self.sigma)) + (residual**2).sum(-1) / self.sigma**2)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = log N(z; 0, I). z: (..., d) -> (...)."""
        self.check_z(z)
        return -0.5 * (self.latent_dim * _LOG_2PI + (z**2).sum(-1))

    def expected_log_likelihood(self, x: torch.Tensor, q_mean: torch.Tensor, q_cov: torch.Tensor) -> torch.Tensor:
        """E_{z ~ N(q_mean, q_cov)}[log p(x | z)] in closed form (the "reconstruction" term).

        = -D/2 log(2 pi sigma^2) - (||x - W m - b||^2 + tr(W S W^T)) / (2 sigma^2),
        because E||x - W z - b||^2 = ||x - W m - b||^2 + tr(W S W^T) for z with mean m, covariance S.
        Unvalidated shapes: use :func:`elbo`, which checks its arguments first.
        """
        residual = x - (q_mean @ self.W.T + self.b)
        trace = torch.einsum("ij,...jk,ik->...", self.W, q_cov, self.W)  # tr(W S W^T)
        return -0.5 * (self.data_dim * (_LOG_2PI + 2 * math.log(self.sigma))
                       + ((residual**2).sum(-1) + trace) / self.sigma**2)


# ----------------------------------------------------------------------------------------------
# KL divergence, ELBO
# ----------------------------------------------------------------------------------------------


def gaussian_kl(mean_q: torch.Tensor, cov_q: torch.Tensor, mean_p: torch.Tensor, cov_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_q, cov_q) || N(mean_p, cov_p)) for full covariance matrices, in nats.

    = 0.5 * [tr(cov_p^{-1} cov_q) + (mean_p - mean_q)^T cov_p^{-1} (mean_p - mean_q) - d
             + log det cov_p - log det cov_q]

    Args:
        mean_q, mean_p: (..., d) means (leading dimensions broadcast).
        cov_q, cov_p: (..., d, d) symmetric positive-definite covariances.
    Returns:
        (...) KL divergences (a 0-dim tensor for single Gaussians).
    """
    for value, name in ((mean_q, "mean_q"), (mean_p, "mean_p")):
        check_tensor(value, name)
        check_finite(value, name)
        if value.dim() < 1 or value.shape[-1] == 0:
            raise ValueError(f"{name} must have shape (..., d) with d >= 1, got {tuple(value.shape)}")
    d = mean_q.shape[-1]
    if mean_p.shape[-1] != d:
        raise ValueError(f"mean_q and mean_p must have the same last dimension d (shapes (..., d)), "
                         f"got shapes {tuple(mean_q.shape)} and {tuple(mean_p.shape)}")
    chol_q = _check_covariance(cov_q, "cov_q")
    chol_p = _check_covariance(cov_p, "cov_p")
    for chol, name in ((chol_q, "cov_q"), (chol_p, "cov_p")):
        if chol.shape[-1] != d:
            raise ValueError(f"{name} must be ({d}, {d}) to match the means, got {tuple(chol.shape[-2:])}")
    dtypes = {mean_q.dtype, mean_p.dtype, cov_q.dtype, cov_p.dtype}
    if len(dtypes) > 1:
        raise TypeError(f"mean_q, cov_q, mean_p and cov_p must share one dtype, got {sorted(map(str, dtypes))}")
    devices = {mean_q.device, mean_p.device, cov_q.device, cov_p.device}
    if len(devices) > 1:
        raise ValueError(f"mean_q, cov_q, mean_p and cov_p must be on one device, got {sorted(map(str, devices))}")
    try:
        torch.broadcast_shapes(mean_q.shape[:-1], mean_p.shape[:-1], cov_q.shape[:-2], cov_p.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the batch shapes of mean_q {tuple(mean_q.shape)}, cov_q {tuple(cov_q.shape)}, mean_p "
                         f"{tuple(mean_p.shape)} and cov_p {tuple(cov_p.shape)} do not broadcast") from None
    return _gaussian_kl(mean_q, chol_q, mean_p, chol_p)


def _gaussian_kl(mean_q, chol_q, mean_p, chol_p):
    # With cov_p = Lp Lp^T: tr(cov_p^{-1} cov_q) = ||Lp^{-1} Lq||_F^2, Mahalanobis term = ||Lp^{-1}(mp - mq)||^2.
    d = mean_q.shape[-1]
    a = torch.linalg.solve_triangular(chol_p, chol_q, upper=False)  # batch dimensions broadcast
    m = torch.linalg.solve_triangular(chol_p, (mean_p - mean_q).unsqueeze(-1), upper=False).squeeze(-1)
    trace = (a**2).sum((-2, -1))
    return 0.5 * (trace + (m**2).sum(-1) - d + _log_det_from_cholesky(chol_p) - _log_det_from_cholesky(chol_q))


class ELBO(NamedTuple):
    """The ELBO and its two terms, per data point, in nats: ``elbo == expected_log_likelihood - kl_to_prior``."""

    elbo: torch.Tensor
    expected_log_likelihood: torch.Tensor
    kl_to_prior: torch.Tensor


class MonteCarloELBO(NamedTuple):
    """A Monte Carlo estimate of the ELBO per data point and its standard error (sample std / sqrt(K))."""

    estimate: torch.Tensor
    standard_error: torch.Tensor
    num_samples: int


def _q_covariance(model: LinearGaussianModel, x, q_mean, q_cov, q_ln_var) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate x and q; return q's covariance (..., d, d) and its Cholesky factor."""
    model.check_x(x)
    _check_vector(q_mean, "q_mean", model.latent_dim, model.dtype, "latent_dim")
    if q_mean.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"q_mean {tuple(q_mean.shape)} must have one row per data point of x {tuple(x.shape)}")
    if (q_cov is None) == (q_ln_var is None):
        raise ValueError("give exactly one of q_cov (a full covariance) and q_ln_var (diagonal log variances)")
    if q_ln_var is not None:
        _check_vector(q_ln_var, "q_ln_var", model.latent_dim, model.dtype, "latent_dim")
        if q_ln_var.shape != q_mean.shape:
            raise ValueError(f"q_ln_var must have the shape of q_mean {tuple(q_mean.shape)}, got {tuple(q_ln_var.shape)}")
        q_cov = torch.diag_embed(_exp_variances(q_ln_var, "q_ln_var"))
    d = model.latent_dim
    chol = _check_covariance(q_cov, "q_cov", model.dtype)
    if q_cov.shape not in ((d, d), (*q_mean.shape[:-1], d, d)):
        raise ValueError(f"q_cov must have shape ({d}, {d}) or {(*q_mean.shape[:-1], d, d)}, got {tuple(q_cov.shape)}")
    return q_cov, chol


def elbo(model: LinearGaussianModel, x: torch.Tensor, q_mean: torch.Tensor, q_cov: Optional[torch.Tensor] = None,
         *, q_ln_var: Optional[torch.Tensor] = None) -> ELBO:
    """The ELBO of q(z | x) = N(q_mean, q_cov) under ``model``, in closed form.

    ELBO = E_q[log p(x | z)] - KL(q(z | x) || p(z)); both terms are analytic for a linear-Gaussian model.

    Args:
        model: the linear-Gaussian model.
        x: (D,) or (n, D) data.
        q_mean: (d,) or (n, d), one mean per data point.
        q_cov: (d, d) or (n, d, d) full covariance; or instead
        q_ln_var: (d,) or (n, d) diagonal log variances (what a VAE encoder outputs).
    Returns:
        ELBO(elbo, expected_log_likelihood, kl_to_prior), each () or (n,).
    """
    q_cov, chol_q = _q_covariance(model, x, q_mean, q_cov, q_ln_var)
    expected = model.expected_log_likelihood(x, q_mean, q_cov)
    d = model.latent_dim
    zero, eye = torch.zeros(d, dtype=model.dtype), torch.eye(d, dtype=model.dtype)
    kl = _gaussian_kl(q_mean, chol_q, zero, eye)
    return ELBO(expected - kl, expected, kl)


def kl_to_posterior(model: LinearGaussianModel, x: torch.Tensor, q_mean: torch.Tensor,
                    q_cov: Optional[torch.Tensor] = None, *, q_ln_var: Optional[torch.Tensor] = None) -> torch.Tensor:
    """KL(q(z | x) || p(z | x)), the gap between log p(x) and the ELBO. Arguments as in :func:`elbo`."""
    q_cov, chol_q = _q_covariance(model, x, q_mean, q_cov, q_ln_var)
    post_mean, post_cov = model.posterior(x)
    return _gaussian_kl(q_mean, chol_q, post_mean, torch.linalg.cholesky(post_cov))


def best_mean_field(model: LinearGaussianModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagonal Gaussian q closest to the posterior in KL(q || p(z | x)): (mean, ln_var), each like q_mean.

    Its mean is the posterior mean and its variances are 1 / diag(posterior precision): a
    factorised q matches the posterior's *conditional* spreads, so it is too narrow whenever the
    latents are correlated a posteriori, and the gap stays positive.
    """
    mean, _ = model.posterior(x)
    ln_var = -torch.log(torch.diagonal(model.posterior_precision()))
    return mean, ln_var.expand_as(mean).clone()


def elbo_monte_carlo(model: LinearGaussianModel, x: torch.Tensor, q_mean: torch.Tensor,
                     q_cov: Optional[torch.Tensor] = None, *, q_ln_var: Optional[torch.Tensor] = None,
                     num_samples: int, generator: Optional[torch.Generator] = None,
                     analytic_kl: bool = False) -> MonteCarloELBO:
    """A Monte Carlo estimate of the ELBO from ``num_samples`` reparameterized draws z = m + L eps.

    analytic_kl=False averages log p(x, z) - log q(z | x) (every term sampled);
    analytic_kl=True averages log p(x | z) and subtracts KL(q || p(z)) in closed form, as ``VAE.loss`` does.

    Args:
        model, x, q_mean, q_cov, q_ln_var: as in :func:`elbo`.
        num_samples: K, the number of draws of z per data point.
        generator: a torch.Generator for reproducible draws.
        analytic_kl: which estimator (see above).
    Returns:
        MonteCarloELBO(estimate, standard_error, num_samples), estimate and standard_error () or (n,).
    """
    check_positive_int(num_samples, "num_samples")
    check_generator(generator)
    q_cov, chol_q = _q_covariance(model, x, q_mean, q_cov, q_ln_var)
    eps = torch.randn(num_samples, *q_mean.shape, generator=generator, dtype=model.dtype)  # (K, ..., d)
    z = q_mean + (chol_q @ eps.unsqueeze(-1)).squeeze(-1)
    if analytic_kl:
        d = model.latent_dim
        kl = _gaussian_kl(q_mean, chol_q, torch.zeros(d, dtype=model.dtype), torch.eye(d, dtype=model.dtype))
        terms = model.log_likelihood(x, z) - kl
    else:
        # log q(z) at z = m + L eps: -d/2 log 2pi - 1/2 log det S - ||eps||^2 / 2
        log_q = -0.5 * (model.latent_dim * _LOG_2PI + _log_det_from_cholesky(chol_q) + (eps**2).sum(-1))
        terms = model.log_likelihood(x, z) + model.log_prior(z) - log_q
    std = terms.std(0) if num_samples > 1 else torch.full_like(terms[0], float("nan"))
    return MonteCarloELBO(terms.mean(0), std / math.sqrt(num_samples), num_samples)


# ----------------------------------------------------------------------------------------------
# Experiments and figures for the notebook
# ----------------------------------------------------------------------------------------------

# Okabe-Ito colours (colour-vision-deficiency safe).
_BLUE, _ORANGE, _GREEN, _VERMILLION, _PURPLE = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7"


def _check_one_point(model: LinearGaussianModel, x) -> None:
    if not isinstance(model, LinearGaussianModel):
        raise TypeError(f"model must be a LinearGaussianModel, got {type(model).__name__}")
    model.check_x(x)
    if x.dim() != 1:
        raise ValueError(f"x must be one data point of shape ({model.data_dim},), got {tuple(x.shape)}")


def identity_table(model: LinearGaussianModel, x: torch.Tensor, candidates: dict) -> str:
    """A text table checking log p(x) = ELBO + KL(q || p(z|x)) for named q's at one data point x (D,).

    ``candidates`` maps a name to the keyword arguments of :func:`elbo` (q_mean and q_cov or q_ln_var).
    Columns: recon. = E_q[log p(x|z)], KL prior = KL(q || p(z)), ELBO, gap = KL(q || p(z|x)),
    residual = log p(x) - (ELBO + gap), all in nats.
    """
    _check_one_point(model, x)
    log_px = model.log_marginal(x).item()
    lines = [f"{'q':26s}{'recon.':>10s}{'KL prior':>10s}{'ELBO':>10s}{'gap':>10s}{'residual':>10s}"]
    for name, q in candidates.items():
        terms = elbo(model, x, **q)
        gap = kl_to_posterior(model, x, **q).item()
        residual = log_px - (terms.elbo.item() + gap)
        lines.append(f"{name[:25]:26s}{terms.expected_log_likelihood.item():10.4f}{terms.kl_to_prior.item():10.4f}"
                     f"{terms.elbo.item():10.4f}{gap:10.4f}{residual:10.1e}")
    lines.append(f"log p(x) = {log_px:.5f} nats")
    return "\n".join(lines)


def monte_carlo_convergence(model: LinearGaussianModel, x: torch.Tensor, q_mean: torch.Tensor,
                            q_cov: Optional[torch.Tensor] = None, *, q_ln_var: Optional[torch.Tensor] = None,
                            sample_sizes=(10, 100, 1000), seed: int = 0) -> dict:
    """Monte Carlo ELBO estimates of one data point x (D,) for each K in ``sample_sizes``, both estimators.

    Returns a dict with "sample_sizes" and, for "full" (every term sampled) and "analytic_kl", the lists
    "estimate" and "standard_error" (floats), plus "exact": the closed-form ELBO.
    """
    _check_one_point(model, x)
    if isinstance(sample_sizes, (str, bytes)) or not hasattr(sample_sizes, "__iter__"):
        raise TypeError(f"sample_sizes must be a sequence of numbers of samples such as (10, 100), got {sample_sizes!r}")
    sample_sizes = [check_positive_int(k, "sample_sizes entries") for k in sample_sizes]
    if not sample_sizes:
        raise ValueError("sample_sizes must name at least one number of samples K")
    check_seed(seed)
    exact = elbo(model, x, q_mean, q_cov, q_ln_var=q_ln_var).elbo.item()
    table = {"sample_sizes": list(sample_sizes), "exact": exact}
    for index, (name, analytic) in enumerate((("full", False), ("analytic_kl", True))):
        g = torch.Generator().manual_seed(seed + index)
        runs = [elbo_monte_carlo(model, x, q_mean, q_cov, q_ln_var=q_ln_var, num_samples=int(k), generator=g,
                                 analytic_kl=analytic) for k in sample_sizes]
        table[name] = {"estimate": [r.estimate.item() for r in runs],
                       "standard_error": [r.standard_error.item() for r in runs]}
    return table


def convergence_table(table: dict) -> str:
    """The result of :func:`monte_carlo_convergence` as text: estimate, s.e. and |error| / s.e. per K."""
    exact = table["exact"]
    lines = [f"{'':8s}{'all sampled':^30s}  {'KL in closed form':^30s}",
             f"{'K':>8s}" + f"{'estimate':>12s}{'s.e.':>9s}{'|err|/se':>9s}  " * 2]
    for i, k in enumerate(table["sample_sizes"]):
        row = f"{k:8,d}"
        for name in ("full", "analytic_kl"):
            est, se = table[name]["estimate"][i], table[name]["standard_error"][i]
            row += f"{est:12.5f}{se:9.5f}{abs(est - exact) / se:9.2f}  "
        lines.append(row.rstrip())
    return "\n".join(lines)


def plot_monte_carlo_convergence(table: dict) -> Figure:
    """Left: each estimate +- 2 standard errors against K (log axis), with the closed form.
    Right: |error| and the standard error against K, log-log, with a 1/sqrt(K) guide."""
    ks = torch.tensor(table["sample_sizes"], dtype=torch.float64)
    exact = table["exact"]
    fig = Figure(figsize=(10.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    styles = {"full": (_BLUE, "o", 0.93, "log p(x, z) − log q(z|x), all sampled", "all sampled"),
              "analytic_kl": (_ORANGE, "s", 1.07, "log p(x|z) sampled, KL in closed form", "KL in closed form")}
    for name, (color, marker, shift, label, short) in styles.items():
        est = torch.tensor(table[name]["estimate"])
        se = torch.tensor(table[name]["standard_error"])
        left.errorbar(ks * shift, est, yerr=2 * se, color=color, marker=marker, ls="none", capsize=3, label=label)
        right.plot(ks, (est - exact).abs(), color=color, marker=marker, ls="none", label=f"|error|, {short}")
        right.plot(ks, se, color=color, ls="-", lw=1.2, label=f"standard error, {short}")
    left.axhline(exact, color="black", lw=1, label=f"closed-form ELBO = {exact:.4f}")
    left.set_xscale("log")
    left.set_xlabel("Monte Carlo samples K")
    left.set_ylabel("ELBO estimate (nats), ± 2 s.e.")
    left.set_title("Estimates close in on the closed form")
    left.legend(fontsize=8, loc="lower right")
    left.grid(True, alpha=0.3)
    guide = table["full"]["standard_error"][0] * (ks[0] / ks).sqrt()
    right.plot(ks, guide, color="0.5", ls=":", label=r"$\propto 1/\sqrt{K}$")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("Monte Carlo samples K")
    right.set_ylabel("nats")
    right.set_title("Error and standard error fall like 1/√K")
    right.legend(fontsize=7.5, loc="lower left")
    right.grid(True, which="major", alpha=0.3)
    return fig


def plot_elbo_along_line(model: LinearGaussianModel, x: torch.Tensor, t: Optional[torch.Tensor] = None) -> Figure:
    """The ELBO as q's mean moves along the line m(t) = t * (posterior mean), for one data point x (D,).

    t = 0 is the prior mean 0, t = 1 the posterior mean. Left: the ELBO for three covariances of q (the
    posterior's, the best diagonal one, the identity) under the horizontal line log p(x); the gap of the
    first is shaded. Right: the two terms of the ELBO for the posterior covariance.
    """
    _check_one_point(model, x)
    if t is None:
        t = torch.linspace(-0.25, 1.75, 201, dtype=model.dtype)
    check_tensor(t, "t")
    if t.dim() != 1 or len(t) < 2:
        raise ValueError(f"t must be a 1-D tensor of at least 2 positions, got shape {tuple(t.shape)}")
    check_finite(t, "t")
    post_mean, post_cov = model.posterior(x)
    _, mf_ln_var = best_mean_field(model, x)
    means = t.unsqueeze(-1) * post_mean  # (T, d)
    xs = x.expand(len(t), -1)
    log_px = model.log_marginal(x).item()
    covs = [("q covariance = posterior covariance", post_cov, _BLUE, "-"),
            ("q covariance = best diagonal", torch.diag(mf_ln_var.exp()), _GREEN, "--"),
            ("q covariance = I (the prior's)", torch.eye(model.latent_dim, dtype=model.dtype), _VERMILLION, "-.")]
    fig = Figure(figsize=(10.5, 4.3), layout="constrained")
    left, right = fig.subplots(1, 2)
    tt = t.numpy()
    for label, cov, color, ls in covs:
        left.plot(tt, elbo(model, xs, means, cov).elbo.numpy(), color=color, ls=ls, lw=2, label=label)
    best = elbo(model, xs, means, post_cov)
    left.axhline(log_px, color="black", lw=1.2, label=f"log p(x) = {log_px:.3f}")
    left.fill_between(tt, best.elbo.numpy(), log_px, color=_BLUE, alpha=0.15,
                      label="gap = KL(q ‖ p(z|x))")
    left.axvline(1.0, color="0.5", lw=0.8, ls=":")
    lowest = min(min(line.get_ydata()) for line in left.get_lines())
    left.set_ylim(lowest - 0.5, log_px + 0.3 * (log_px - lowest))  # room for the legend above the curves
    left.set_xlabel("position of q's mean: t in m = t · (posterior mean)")
    left.set_ylabel("nats")
    left.set_title("The ELBO touches log p(x) only at q = p(z|x)")
    left.legend(fontsize=8, loc="upper center", ncols=2)
    right.plot(tt, best.expected_log_likelihood.numpy(), color=_ORANGE, lw=2, label="E_q[log p(x|z)] (reconstruction)")
    right.plot(tt, -best.kl_to_prior.numpy(), color=_PURPLE, lw=2, ls="--", label="−KL(q ‖ p(z)) (regularisation)")
    right.plot(tt, best.elbo.numpy(), color=_BLUE, lw=2, label="ELBO = sum of the two")
    right.axvline(1.0, color="0.5", lw=0.8, ls=":")
    right.set_xlabel("position of q's mean: t in m = t · (posterior mean)")
    right.set_ylabel("nats")
    right.set_title("Its two terms pull in opposite directions")
    right.legend(fontsize=8, loc="lower center")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    return fig
