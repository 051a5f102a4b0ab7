"""What the KL term does: the aggregate posterior, the ELBO's surgery, learned priors, collapse and
the amortization gap (chapter 06, notebooks/06_kl_term.ipynb).

Chapter 06 defines what this module keeps for later chapters: :func:`log_aggregate_posterior` and
:func:`elbo_surgery` (E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || p(z))), :func:`active_units`
(Burda et al. 2016), :func:`kl_per_dimension` and :class:`RemedyVAE` (the loss with free bits),
:func:`warmup_weight` and :func:`train_with_warmup`, :func:`fit_mixture_prior` (a learned prior),
:func:`optimize_posteriors` (the per-image q behind the amortization gap) and
:func:`fit_linear_encoder` (the same on chapter 03's linear-Gaussian model). The rest is the
chapter's plumbing: bounds under any prior, a figure per experiment.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import distributions as D

from ..core.losses import bernoulli_nll, gaussian_kl_divergence
from ..core.reparameterize import gaussian
from ..core.training import set_seed, train_epoch
from ..core.vae import VAE, VAELoss
from ..infra.checkpoint import from_keywords, register_model
from ..infra.checks import (
    check_codes_like,
    check_finite,
    check_kl_weight,
    check_number,
    check_positive_int,
    check_posteriors,
    check_seed,
    check_tensor,
)
from ..infra.device import pick_device
from ..infra.plots import COLUMN_WIDTH, OKABE_ITO, legend_below
from .elbo import LinearGaussianModel, elbo
from .iwae import importance_log_weights
from .swiss_roll import gaussian_nll

__all__ = [
    "log_aggregate_posterior",
    "Surgery",
    "elbo_surgery",
    "active_units",
    "kl_per_dimension",
    "RemedyVAE",
    "warmup_weight",
    "train_with_warmup",
    "fit_mixture_prior",
    "PriorBounds",
    "bounds_under_prior",
    "optimize_posteriors",
    "neg_elbo_of",
    "fit_linear_encoder",
    "plot_aggregate_posterior",
    "plot_marginals",
    "plot_rate_distortion",
    "plot_gaps",
]

_BLUE, _ORANGE, _VERMILLION = (OKABE_ITO[i] for i in (0, 1, 3))


# ----------------------------------------------------------------------------------------------
# Defined in chapter 06: the aggregate posterior and the ELBO's surgery
# ----------------------------------------------------------------------------------------------


def log_aggregate_posterior(z, mean, ln_var, chunk_size=256):
    """log q(z) = log (1/N) sum_n N(z; mean_n, exp(ln_var_n)).

    z: (S, d) codes; mean, ln_var: (N, d), the encoder's outputs
    for N images. Returns (S,). Defined in chapter 06
    (notebooks/06_kl_term.ipynb).
    """
    check_posteriors(mean, ln_var)
    check_codes_like(z, mean)
    check_positive_int(chunk_size, "chunk_size")
    out = []
    for zc in z.split(chunk_size):  # s codes: s * N * d numbers
        # log q(z | x_n) for every code and every image: (s, N)
        log_q_n = -gaussian_nll(zc[:, None], mean, ln_var).sum(-1)
        log_q = torch.logsumexp(log_q_n, 1) - math.log(len(mean))
        out.append(log_q)
    return torch.cat(out)


class Surgery(NamedTuple):
    """The average KL term split in two, in nats per image.

    Defined in chapter 06 (notebooks/06_kl_term.ipynb).
    """

    average_kl: float  # E_x KL(q(z | x) || p(z)), in closed form
    mutual_information: float  # I_q(x; z), Monte Carlo
    marginal_kl: float  # KL(q(z) || p(z)), Monte Carlo
    ceiling: float  # log N: I_q can be no larger


def elbo_surgery(mean, ln_var, n_draws=10, generator=None):
    """Split E_x KL(q(z|x) || p(z)) into I_q(x; z) and
    KL(q(z) || p(z)).


    x is one of the N images of mean, ln_var (N, d), each with
    probability 1/N. Both terms are averages over n_draws codes
    z ~ q(z | x_n) per image; log q(z) is exact for this q(z).
    Defined in chapter 06 (notebooks/06_kl_term.ipynb).
    """
    check_posteriors(mean, ln_var)
    check_positive_int(n_draws, "n_draws")
    N, d = mean.shape
    eps = torch.randn(n_draws, N, d, generator=generator, dtype=mean.dtype)
    z = gaussian(mean.expand_as(eps), ln_var.expand_as(eps), eps)
    # three log densities of every code: (n_draws, N) each
    log_q_x = -gaussian_nll(z, mean, ln_var).sum(-1)  # q(z | x_n)
    flat = z.reshape(-1, d)
    log_q = log_aggregate_posterior(flat, mean, ln_var)
    log_q = log_q.reshape(n_draws, N)  # q(z)
    zero = torch.zeros_like(z)
    log_p = -gaussian_nll(z, zero, zero).sum(-1)  # p(z) = N(0, I)
    average_kl = gaussian_kl_divergence(mean, ln_var) / N
    return Surgery(
        average_kl=average_kl.item(),
        mutual_information=(log_q_x - log_q).mean().item(),
        marginal_kl=(log_q - log_p).mean().item(),
        ceiling=math.log(N),
    )


def active_units(mean, threshold=0.01):
    """Burda et al.'s activity of each latent dimension.

    mean: (N, d), the encoder's means E_q[z] of N images. Returns
    the variance of each dimension's mean over the images, (d,),
    and the number of dimensions above threshold: the units that
    the code uses. Defined in chapter 06
    (notebooks/06_kl_term.ipynb).
    """
    check_tensor(mean, "mean")
    if mean.dim() != 2 or len(mean) < 2:
        raise ValueError(f"mean must have shape (N, d) with N >= 2 images, got {tuple(mean.shape)}")
    check_number(threshold, "threshold", minimum=0.0)
    activity = mean.var(dim=0)  # Cov_x(E_q[z]), its diagonal
    return activity, int((activity > threshold).sum())


# ----------------------------------------------------------------------------------------------
# Defined in chapter 06: remedies for collapse
# ----------------------------------------------------------------------------------------------


def kl_per_dimension(mean, ln_var):
    """KL(q(z_j | x) || N(0, 1)) of each latent dimension j,
    averaged over the batch: (batch, d) -> (d,).

    Defined in chapter 06 (notebooks/06_kl_term.ipynb).
    """
    kl = gaussian_kl_divergence(mean, ln_var, reduce="no")
    return kl.mean(0)


class RemedyVAE(VAE):
    """Chapter 05's VAE with free bits: in training, each latent
    dimension's KL counts as at least free_bits nats.

    With free_bits=0 the loss is the VAE's, with k = 1.
    Defined in chapter 06 (notebooks/06_kl_term.ipynb).
    """

    def loss(self, x, C=1.0, free_bits=0.0):
        check_kl_weight(C)
        check_number(free_bits, "free_bits", minimum=0.0)
        mean, ln_var = self.encode(x)
        z = gaussian(mean, ln_var)
        y = self.decode(z, sigmoid=False)
        reconstruction = bernoulli_nll(x, y) / len(x)
        kl_dims = kl_per_dimension(mean, ln_var)  # (n_latent,)
        # a dimension below free_bits gets no push towards the prior
        kl = C * torch.clamp(kl_dims, min=free_bits).sum()
        return VAELoss(reconstruction + kl, reconstruction, kl)


register_model(RemedyVAE, from_config=from_keywords(RemedyVAE))


def warmup_weight(epoch, warmup_epochs):
    """The KL weight C of a linear warm-up: 0 in the first epoch
    (epoch = 0), rising to 1 after warmup_epochs epochs.

    Defined in chapter 06 (notebooks/06_kl_term.ipynb).
    """
    check_number(epoch, "epoch", minimum=0.0)
    check_number(warmup_epochs, "warmup_epochs", minimum=0.0)
    if warmup_epochs == 0:
        return 1.0
    return min(1.0, epoch / warmup_epochs)


def train_with_warmup(
    model, x_train, num_epochs, warmup_epochs, C=1.0, batch_size=50, lr=1e-3, seed=0, **loss_kwargs
):
    """05's loop, with the KL weight C * warmup_weight(epoch, ...)
    in each epoch; returns the weights used. Defined in chapter 06
    (notebooks/06_kl_term.ipynb).
    """
    check_positive_int(num_epochs, "num_epochs")
    check_kl_weight(C)
    check_seed(seed)
    set_seed(seed)
    device = pick_device()  # a GPU if there is one
    model.to(device)
    x_train = x_train.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    weights = []
    for epoch in range(num_epochs):
        weight = C * warmup_weight(epoch, warmup_epochs)
        train_epoch(model, optimizer, x_train, batch_size, shuffle, C=weight, **loss_kwargs)
        weights.append(weight)
    model.to("cpu").eval()  # back where the chapter uses it
    return weights


# ----------------------------------------------------------------------------------------------
# Defined in chapter 06: a learned prior
# ----------------------------------------------------------------------------------------------


def fit_mixture_prior(codes, n_components=10, seed=0):
    """A mixture of n_components full-covariance Gaussians fitted
    to codes (n, d) by EM (scikit-learn), as a torch distribution
    with log_prob and sample. Defined in chapter 06
    (notebooks/06_kl_term.ipynb).
    """
    from sklearn.mixture import GaussianMixture

    check_tensor(codes, "codes")
    check_positive_int(n_components, "n_components")
    check_seed(seed)
    if codes.dim() != 2 or len(codes) < 2 * n_components:
        raise ValueError(
            "codes must have shape (n, d) with n >= 2 * n_components"
            f" = {2 * n_components}, got {tuple(codes.shape)}"
        )
    check_finite(codes, "codes")
    em = GaussianMixture(n_components, covariance_type="full", random_state=seed)
    em.fit(codes.detach().double().cpu().numpy())

    def tensor(a):
        return torch.as_tensor(a, dtype=codes.dtype)

    which = D.Categorical(probs=tensor(em.weights_))
    gaussians = D.MultivariateNormal(tensor(em.means_), covariance_matrix=tensor(em.covariances_))
    return D.MixtureSameFamily(which, gaussians)


class PriorBounds(NamedTuple):
    """-ELBO and -IWAE_K of each image under one prior, (n,) nats each."""

    neg_elbo: torch.Tensor
    neg_iwae: torch.Tensor


@torch.inference_mode()
def bounds_under_prior(model, x, log_prior, K=100, *, batch_size=100, seed=0) -> PriorBounds:
    """The negative ELBO and the negative IWAE bound of a trained VAE under any prior.

    ``log_prior(z)``: log p(z) for codes (..., d) -> (...), e.g. a torch distribution's
    ``log_prob``. From K codes z_k ~ q(z | x) per image and their log weights
    log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x): the ELBO is the mean of the log weights
    (a K-sample Monte Carlo estimate, the KL term included), the IWAE bound their log-mean-exp.
    Same seed, same codes for every prior, so differences between priors are not sampling noise.
    """
    if not callable(log_prior):
        raise TypeError(f"log_prior must be a function of z, got {type(log_prior).__name__}")
    check_positive_int(K, "K")
    check_positive_int(batch_size, "batch_size")
    check_seed(seed)
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    elbos, iwaes = [], []
    try:
        for xb in x.split(batch_size):
            mean, ln_var = model.encode(xb)

            def log_joint(z, xb=xb):
                return model.log_likelihood(xb, z) + log_prior(z)

            log_w = importance_log_weights(log_joint, mean, ln_var, K, generator=generator)
            elbos.append(log_w.mean(0))
            iwaes.append(torch.logsumexp(log_w, 0) - math.log(K))
    finally:
        model.train(was_training)
    return PriorBounds(-torch.cat(elbos), -torch.cat(iwaes))


# ----------------------------------------------------------------------------------------------
# Defined in chapter 06: the amortization gap
# ----------------------------------------------------------------------------------------------


def optimize_posteriors(model, x, steps=300, k=4, lr=0.05, seed=0):
    """Each image's own q(z | x): its (mean, ln_var), started at
    the encoder's, moved by Adam to maximize that image's ELBO
    (k codes per step). The decoder stays as it is.

    Returns (mean, ln_var), each (n, n_latent).
    Defined in chapter 06 (notebooks/06_kl_term.ipynb).
    """
    check_positive_int(steps, "steps")
    check_positive_int(k, "k")
    check_number(lr, "lr", positive=True)
    check_seed(seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        start_mean, start_ln_var = model.encode(x)
    mean = start_mean.clone().requires_grad_()
    ln_var = start_ln_var.clone().requires_grad_()
    optimizer = torch.optim.Adam([mean, ln_var], lr=lr)
    model.requires_grad_(False)  # only the q's move
    try:
        for _ in range(steps):
            z = gaussian(mean.expand(k, -1, -1), ln_var.expand(k, -1, -1))  # (k, n, d)
            reconstruction = -model.log_likelihood(x, z).mean(0)
            kl = gaussian_kl_divergence(mean, ln_var, reduce="no")
            # the sum over images: each q gets its own gradient
            loss = (reconstruction + kl.sum(-1)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        model.requires_grad_(True)
    return mean.detach(), ln_var.detach()


@torch.inference_mode()
def neg_elbo_of(model, x, mean, ln_var, n_samples=100, seed=0) -> torch.Tensor:
    """-ELBO of each image for a given q(z | x) = N(mean, exp(ln_var)): (n,) nats.

    The reconstruction term by Monte Carlo with ``n_samples`` codes per image, the KL in closed
    form; seeded, so two q's of the same images are compared on the same noise.
    """
    check_positive_int(n_samples, "n_samples")
    check_seed(seed)
    check_posteriors(mean, ln_var)
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn((n_samples, *mean.shape), generator=generator, dtype=mean.dtype)
    z = gaussian(mean.expand_as(eps), ln_var.expand_as(eps), eps)
    reconstruction = -model.log_likelihood(x, z).mean(0)
    return reconstruction + gaussian_kl_divergence(mean, ln_var, reduce="no").sum(-1)


def fit_linear_encoder(model, x, steps=2000, lr=0.01, seed=0):
    """An amortized encoder for chapter 03's linear-Gaussian
    model: mean = x A + a and ln_var = x B + b, trained by Adam to
    maximize the average closed-form ELBO of the data x (n, D).

    Returns a function x -> (mean, ln_var). Defined in chapter 06
    (notebooks/06_kl_term.ipynb).
    """
    if not isinstance(model, LinearGaussianModel):
        raise TypeError(
            f"model must be a LinearGaussianModel (chapter 03), got {type(model).__name__}"
        )
    check_positive_int(steps, "steps")
    check_number(lr, "lr", positive=True)
    check_seed(seed)
    torch.manual_seed(seed)
    D_, d = model.data_dim, model.latent_dim
    zeros = dict(dtype=model.dtype)
    A = (0.01 * torch.randn(D_, d, **zeros)).requires_grad_()
    B = torch.zeros(D_, d, **zeros, requires_grad=True)
    a = torch.zeros(d, **zeros, requires_grad=True)
    b = torch.zeros(d, **zeros, requires_grad=True)
    optimizer = torch.optim.Adam([A, a, B, b], lr=lr)

    def encoder(x):
        return x @ A + a, x @ B + b

    for _ in range(steps):
        mean, ln_var = encoder(x)
        loss = -elbo(model, x, mean, q_ln_var=ln_var).elbo.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def trained(x):
        with torch.no_grad():
            return encoder(x)

    return trained


# ----------------------------------------------------------------------------------------------
# The chapter's figures (plumbing)
# ----------------------------------------------------------------------------------------------


def plot_aggregate_posterior(log_q, log_p, extent, low=None, high=None) -> Figure:
    """Two heat maps side by side: log q(z) and log p(z) on one grid, one colour scale.

    log_q, log_p: (n, n) log densities on the grid ``extent`` = (lo, hi) in both coordinates (row
    = second coordinate). ``low``, ``high``: optional (m, 2) codes to mark (prior samples where
    q(z) is low and high).
    """
    log_q, log_p = np.asarray(log_q, dtype=float), np.asarray(log_p, dtype=float)
    if log_q.shape != log_p.shape or log_q.ndim != 2:
        raise ValueError(
            f"log_q and log_p must be two grids of one shape, got {log_q.shape} and {log_p.shape}"
        )
    lo, hi = extent
    floor = float(np.max(log_p)) - 12.0  # 12 nats below the prior's peak: dark
    top = max(float(np.max(log_q)), float(np.max(log_p)))
    fig = Figure(figsize=(COLUMN_WIDTH, 3.7), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    titles = ("aggregate posterior log q(z)", "prior log p(z) = log N(z; 0, I)")
    for ax, grid, title in zip(axes, (log_q, log_p), titles):
        image = ax.imshow(
            np.clip(grid, floor, None),
            origin="lower",
            extent=(lo, hi, lo, hi),
            cmap="cividis",
            vmin=floor,
            vmax=top,
        )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("$z_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$z_2$")
    marks = []
    for codes, colour, marker, label in (
        (low, _VERMILLION, "x", "prior samples where q(z) is lowest"),
        (high, "#FFFFFF", "o", "prior samples where q(z) is highest"),
    ):
        if codes is not None:
            codes = np.asarray(codes, dtype=float)
            for ax in axes:
                handle = ax.scatter(
                    codes[:, 0],
                    codes[:, 1],
                    s=22,
                    marker=marker,
                    c=colour,
                    edgecolors="black" if marker == "o" else None,
                    linewidths=0.6,
                    label=label,
                )
            marks.append(handle)
    bar = fig.colorbar(image, ax=list(axes), orientation="horizontal", shrink=0.6, pad=0.02)
    bar.set_label("log density (nats); darkest: 12 nats or more below the prior's peak")
    if marks:
        fig.legend(handles=marks, loc="outside lower center", ncols=1, fontsize=9, frameon=False)
    return fig


def plot_marginals(mean, ln_var, activity, order, grid=None) -> Figure:
    """The marginal q(z_j) of each latent dimension (a 1-D mixture over the images) against N(0, 1).

    mean, ln_var: (N, d); activity: (d,) from :func:`active_units`; order: the dimensions to show,
    in order (at most 20, four rows of five).
    """
    mean, ln_var = torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(ln_var).double()
    grid = torch.linspace(-4, 4, 401, dtype=torch.float64) if grid is None else grid
    order = list(order)[:20]
    n_rows = math.ceil(len(order) / 5)
    fig = Figure(figsize=(COLUMN_WIDTH, 1.25 * n_rows + 0.9), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, 5, sharex=True, sharey=True))
    prior = torch.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    for ax in axes.flat[len(order) :]:
        ax.set_visible(False)
    for ax, j in zip(axes.flat, order):
        m, v = mean[:, j][:, None], ln_var[:, j][:, None].exp()
        q = (torch.exp(-0.5 * (grid - m) ** 2 / v) / torch.sqrt(2 * math.pi * v)).mean(0)
        ax.fill_between(grid, q, color=_BLUE, alpha=0.35, linewidth=0)
        ax.plot(grid, q, color=_BLUE, linewidth=1.2, label="q($z_j$)")
        ax.plot(grid, prior, color=_VERMILLION, linewidth=1.0, linestyle="--", label="N(0, 1)")
        ax.set_title(f"$z_{{{j + 1}}}$: {float(activity[j]):.2f}", fontsize=9)
        ax.tick_params(labelsize=9)
        ax.set_yticks([])
    fig.suptitle(
        "marginals of q(z) (blue) against N(0, 1) (dashed); title: dimension and its activity",
        fontsize=9,
    )
    fig.supxlabel("$z_j$", fontsize=10)
    return fig


def plot_rate_distortion(points, marked=None) -> Figure:
    """Distortion (-E_q[log p(x|z)]) against rate (KL) for models trained with different C.

    points: list of (C, rate, distortion), one line through them; marked: optional list of
    (label, rate, distortion) for other models of the book. Dotted lines: equal -ELBO
    (rate + distortion).
    """
    points = sorted(points, key=lambda p: p[1])
    rates = np.array([p[1] for p in points])
    distortions = np.array([p[2] for p in points])
    fig = Figure(figsize=(COLUMN_WIDTH, 4.3), layout="constrained")
    ax = fig.subplots()
    ax.plot(rates, distortions, "-o", color=_BLUE, label="20-D VAE trained with weight C")
    for C, rate, distortion in points:
        ax.annotate(
            f"C = {C:g}", (rate, distortion), textcoords="offset points", xytext=(6, 4), fontsize=9
        )
    styles = iter(("s", "D", "^", "v"))
    for label, rate, distortion in marked or ():
        ax.plot(
            rate,
            distortion,
            next(styles),
            color=_VERMILLION,
            markersize=7,
            label=label,
            linestyle="none",
        )
    all_r = np.concatenate([rates, [m[1] for m in marked or ()]])
    all_d = np.concatenate([distortions, [m[2] for m in marked or ()]])
    best = float(np.min(all_r + all_d))
    r_max = float(np.max(all_r)) * 1.08 + 1
    for level in best + np.array([0.0, 10.0, 20.0]):
        r = np.linspace(0, r_max, 50)
        ax.plot(r, level - r, ":", color="grey", linewidth=0.9)
    ax.set_xlim(0, r_max)
    ax.set_ylim(float(np.min(all_d)) * 0.95, float(np.max(all_d)) * 1.05)
    ax.set_xlabel("rate: KL(q(z|x) || p(z)), nats per image")
    ax.set_ylabel("distortion: -E_q[log p(x|z)], nats")
    ax.set_title("The price of information (dotted: equal -ELBO, 10 nats apart)", fontsize=10)
    legend_below(ax, ncols=1)
    return fig


def plot_gaps(rows) -> Figure:
    """Horizontal stacked bars: the gap between log p(x) and the encoder's ELBO, split in two.

    rows: list of (label, approximation gap, amortization gap), nats per data point.
    """
    fig = Figure(figsize=(COLUMN_WIDTH, 0.8 * len(rows) + 1.3), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    approx = np.array([r[1] for r in rows])
    amort = np.array([r[2] for r in rows])
    ax.barh(y, approx, color=_BLUE, height=0.55, label="approximation gap (the family of q)")
    ax.barh(
        y,
        amort,
        left=approx,
        color=_ORANGE,
        height=0.55,
        label="amortization gap (one encoder for all images)",
    )
    for yi, a, m in zip(y, approx, amort):
        ax.annotate(
            f"{a:.2f} + {m:.2f}",
            (a + m, yi),
            textcoords="offset points",
            xytext=(4, -3),
            fontsize=9,
        )
    ax.set_yticks(y, [r[0] for r in rows], fontsize=9)
    ax.set_xlim(0, float(np.max(approx + amort)) * 1.3)
    ax.set_xlabel("log p(x) - ELBO of the encoder's q, nats per data point")
    legend_below(ax, ncols=1)
    return fig
