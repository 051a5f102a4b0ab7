"""The ELBO's gap on a model small enough to see: one latent number, a posterior with two modes.

The figure of the ELBO chapter (``book/elbo.md``). The model is

    z ~ N(0, 1),    x | z ~ N(z^2, s^2),

observed at one x. Because x depends on z only through z^2, the codes z and -z explain x equally
well and the posterior p(z | x) has two mirror-image modes. Every quantity is a one-dimensional
integral, computed on a fine grid: the evidence log p(x), the ELBO of a Gaussian q(z) and its
gap KL(q || p(z | x)). Two Gaussians are compared: the one with the highest ELBO (it sits on one
mode) and the one with the posterior's mean and variance (it covers both modes and the valley
between them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from scipy.integrate import trapezoid
from scipy.optimize import minimize

from ..infra.plots import OKABE_ITO

__all__ = ["GapExample", "gap_example", "gap_figure"]

_BLUE, _ORANGE = OKABE_ITO[:2]


@dataclass(frozen=True)
class GapExample:
    """The numbers of the example; ``z`` is the grid, the densities are evaluated on it."""

    x: float
    noise: float
    z: np.ndarray
    posterior: np.ndarray
    log_evidence: float
    best: tuple  # (mean, variance) of the Gaussian with the highest ELBO
    best_elbo: float
    matched: tuple  # (mean, variance) of the Gaussian with the posterior's first two moments
    matched_elbo: float


def _log_joint(z: np.ndarray, x: float, noise: float) -> np.ndarray:
    """log p(x, z) = log N(z; 0, 1) + log N(x; z^2, noise^2)."""
    log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    log_lik = -0.5 * ((x - z**2) / noise) ** 2 - math.log(noise) - 0.5 * math.log(2 * math.pi)
    return log_prior + log_lik


def _gaussian(z: np.ndarray, mean: float, var: float) -> np.ndarray:
    return np.exp(-0.5 * (z - mean) ** 2 / var) / math.sqrt(2 * math.pi * var)


def _elbo(mean: float, var: float, z: np.ndarray, log_joint: np.ndarray) -> float:
    """E_q[log p(x, z)] + H[q] for q = N(mean, var), the expectation by the trapezoid rule."""
    expected = trapezoid(_gaussian(z, mean, var) * log_joint, z)
    entropy = 0.5 * math.log(2 * math.pi * math.e * var)
    return float(expected + entropy)


def gap_example(x: float = 1.5, noise: float = 0.5, points: int = 60_001) -> GapExample:
    """Evidence, posterior and the two Gaussians' ELBOs for the observation ``x``."""
    if not (x > 0 and noise > 0):
        raise ValueError(f"x and noise must be positive (got x={x}, noise={noise})")
    # Wide enough that a Gaussian of variance ~1 has no mass left where log p(x, z) ~ -2 z^4.
    z = np.linspace(-10.0, 10.0, points)
    log_joint = _log_joint(z, x, noise)
    peak = log_joint.max()
    log_evidence = float(peak + np.log(trapezoid(np.exp(log_joint - peak), z)))
    posterior = np.exp(log_joint - log_evidence)
    # The best Gaussian: maximize the ELBO over (mean, log variance), from the positive mode.
    result = minimize(
        lambda p: -_elbo(p[0], math.exp(p[1]), z, log_joint),
        x0=[math.sqrt(x), math.log(0.1)],
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000},
    )
    best = (float(result.x[0]), float(math.exp(result.x[1])))
    mean = float(trapezoid(z * posterior, z))
    matched = (mean, float(trapezoid((z - mean) ** 2 * posterior, z)))
    return GapExample(
        x=x,
        noise=noise,
        z=z,
        posterior=posterior,
        log_evidence=log_evidence,
        best=best,
        best_elbo=_elbo(*best, z, log_joint),
        matched=matched,
        matched_elbo=_elbo(*matched, z, log_joint),
    )


def _minus(text: str) -> str:
    return text.replace("-", "\u2212")


def gap_figure(example: GapExample | None = None) -> Figure:
    """Left: the posterior and the two Gaussians. Right: evidence = ELBO + gap for each."""
    ex = example or gap_example()
    fig = Figure(figsize=(7.2, 3.3), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    # Every 20th grid point is plenty for the eye (and keeps the SVG file small).
    keep = (np.abs(ex.z) <= 3) & (np.arange(ex.z.size) % 20 == 0)
    z = ex.z
    left.fill_between(z[keep], ex.posterior[keep], color="0.85", label="true posterior p(z | x)")
    left.plot(z[keep], ex.posterior[keep], color="0.1", lw=1.2)
    left.plot(
        z[keep], _gaussian(z[keep], *ex.best), color=_BLUE, lw=2.2, label="q with the best ELBO"
    )
    left.plot(
        z[keep],
        _gaussian(z[keep], *ex.matched),
        color=_ORANGE,
        lw=2.2,
        ls="--",
        label="q with the posterior's\nmean and variance",
    )
    left.set_xlabel("latent z")
    left.set_ylabel("density")
    left.set_title(f"Two Gaussian guesses at p(z | x = {ex.x:g})", fontsize=11)
    left.legend(fontsize=9.5, loc="upper left", frameon=False)
    left.set_ylim(0, 1.4 * _gaussian(ex.best[0], *ex.best))

    rows = [("best q", ex.best_elbo, _BLUE), ("matched q", ex.matched_elbo, _ORANGE)]
    for y, (name, elbo, colour) in enumerate(rows):
        gap = ex.log_evidence - elbo
        right.barh(y, gap, left=elbo, height=0.22, color=colour, alpha=0.35, edgecolor=colour)
        right.plot([elbo], [y], marker="o", color=colour, ms=7)
        right.annotate(
            _minus(f"ELBO {elbo:.2f}"),
            (elbo, y),
            xytext=(6, -15),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=9.5,
        )
        right.annotate(
            f"gap = KL(q ‖ p(z | x)) = {gap:.2f}",
            (ex.log_evidence, y),
            xytext=(-3, 15),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=9.5,
            color="0.2",
        )
    right.axvline(ex.log_evidence, color="0.1", lw=1.5)
    right.annotate(
        _minus(f"log p(x) = {ex.log_evidence:.2f}"),
        (ex.log_evidence, len(rows) - 0.45),
        xytext=(-4, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=9.5,
    )
    lowest = min(elbo for _, elbo, _ in rows)
    span = ex.log_evidence - lowest
    right.set_xlim(lowest - 0.45 * span, ex.log_evidence + 0.08 * span)
    right.set_ylim(-0.6, len(rows) - 0.2)
    right.set_yticks(range(len(rows)), [name for name, _, _ in rows], fontsize=10)
    right.invert_yaxis()
    right.set_xlabel("nats")
    right.set_title("ELBO + gap = log p(x)", fontsize=11)
    right.grid(axis="x", alpha=0.3)
    return fig
