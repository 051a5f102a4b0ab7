"""The manifold hypothesis on a toy example: the swiss roll, its unrolling, a VAE for 3-D points.

The swiss roll is a 2-D sheet rolled up in 3-D: a point is fixed by its position along the roll, t,
and its height. This module makes the roll, measures distances on it and through the air, unrolls it
with Isomap or LLE, and keeps what chapter 02 defines on the page: :func:`gaussian_nll` and
:class:`PointVAE`, a small VAE with a Gaussian decoder for continuous points (the book's
:class:`vae_lesson.VAE` has Bernoulli pixels, which points are not).
Figure helpers return a ``matplotlib.figure.Figure`` (not pyplot), so a notebook shows each once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..core.initializers import xavier_init_
from ..core.losses import gaussian_kl_divergence
from ..core.reparameterize import gaussian
from ..core.vae import VAELoss
from ..infra.checkpoint import from_keywords, model_config, register_model
from ..infra.checks import (
    check_batch,
    check_codes,
    check_finite,
    check_generator,
    check_kl_weight,
    check_model_has_values,
    check_model_input,
    check_not_meta,
    check_number,
    check_positive_int,
    check_same_device,
    check_tensor,
)
from ..infra.gif import figure_to_array
from ..infra.plots import CLASS_COLOURS, COLUMN_WIDTH, row_layout

__all__ = [
    "make_roll",
    "arc_length",
    "CubeScaling",
    "to_unit_cube",
    "from_unit_cube",
    "shortcut_pair",
    "graph_geodesic",
    "unroll",
    "spearman",
    "fit_direction",
    "neighbour_r2",
    "gaussian_nll",
    "PointVAE",
    "latent_grid",
    "rotating_roll_frames",
    "plot_roll_3d",
    "plot_two_distances",
    "plot_unrolled",
    "plot_latent_means",
    "plot_learned_surface",
    "plot_prior_samples",
    "plot_loss_curves",
    "plot_image_rows",
    "plot_embedding_by_class",
]

ROLL_CMAP = "viridis"  # position along the roll, t
HEIGHT_CMAP = "cividis"  # height: a second perceptually uniform map, so the two are not confused
UNROLL_METHODS = ("isomap", "lle")


# --------------------------------------------------------------------------------------------------
# Input checks for NumPy arrays (the torch ones live in _checks.py)


def _to_numpy(value, name: str):
    """A tensor's values as a NumPy array (a meta tensor has none); anything else unchanged."""
    if isinstance(value, torch.Tensor):
        check_not_meta(value, name)
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return value


def _points(points, name: str = "points", dims: int = 3) -> np.ndarray:
    """``points`` as a float64 array of shape (n, dims) with finite entries, or a clear error."""
    array = np.asarray(_to_numpy(points, name))
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != dims or len(array) == 0:
        raise ValueError(
            f"{name} must have shape (n, {dims}) with n >= 1, got {array.shape}"
            + (" (empty)" if array.size == 0 else "")
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array.astype(np.float64)


def _check_float_dtype(value, name: str) -> None:
    """A tensor or array of coordinates or positions must hold float32 or float64 numbers.

    Checked before anything else, so that a search over the values never reports on numbers that
    were rounded: half precision keeps about 3 significant digits, and integers or bools are not
    positions on the roll. Lists and other sequences are converted (and checked) later.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None or dtype in (torch.float32, torch.float64, np.float32, np.float64):
        return
    convert = f"{name}.double()" if isinstance(value, torch.Tensor) else f"{name}.astype(float)"
    raise TypeError(
        f"{name} must hold float32 or float64 numbers, got dtype {dtype}; half precision is too "
        f"coarse and integers are not positions on the roll (convert it with {convert})"
    )


def _n_columns(points, default: int) -> int:
    """The number of columns of a 2-D array-like (checked later by _points), else ``default``."""
    shape = tuple(points.shape) if isinstance(points, torch.Tensor) else np.shape(points)
    return shape[-1] if len(shape) == 2 else default


def _values(values, n: int, name: str, partner: str = "points") -> np.ndarray:
    """A finite 1-D array of length ``n`` (one value per point), or a clear error."""
    return _real_array(
        values,
        name,
        what="a sequence of numbers",
        shape=(n,),
        shape_note=f"one value per row of {partner}",
    )


def _int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------
# The roll and its geometry


def make_roll(n: int = 2000, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on scikit-learn's swiss roll and their position along it.

    A point is (t cos t, h, t sin t) with t uniform in [1.5 pi, 4.5 pi] (one and a half turns) and
    height h uniform in [0, 21], plus N(0, noise**2) on every coordinate.

    Args:
        n: number of points.
        noise: standard deviation of the Gaussian noise on each coordinate (0 for a clean sheet).
        seed: seed of the draw; the same seed gives the same points.

    Returns:
        points: (n, 3) float64, columns x, height, z.
        t: (n,) float64, the position along the roll (also the distance from the roll's axis).
    """
    from sklearn.datasets import make_swiss_roll

    n = _int(n, "n")
    if (
        isinstance(noise, bool)
        or not isinstance(noise, (int, float))
        or not (math.isfinite(noise) and noise >= 0)
    ):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    seed = _int(seed, "seed", minimum=0)
    points, t = make_swiss_roll(n_samples=n, noise=float(noise), random_state=seed)
    return points, t


def arc_length(t) -> np.ndarray:
    """Length of the spiral r = t from 0 to ``t``: 0.5 * (t sqrt(1 + t**2) + asinh t), elementwise.

    With the height it gives the roll's exact flat coordinates (arc_length(t), h), in which
    distances on the sheet are straight-line distances.
    """
    t = _real_array(t, "t")
    return 0.5 * (t * np.sqrt(1.0 + t * t) + np.arcsinh(t))


def _real_array(
    value,
    name: str,
    *,
    what: str = "a number or an array of numbers",
    shape: tuple | None = None,
    shape_note: str = "",
) -> np.ndarray:
    """Finite real numbers (a number, an array, a tensor) as float64, of ``shape`` if given,
    or a clear error."""
    value = _to_numpy(value, name)
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    if np.iscomplexobj(value) or np.asarray(value).dtype == bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {np.asarray(value).dtype}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {what}, got {value!r:.60}") from None
    if shape is not None and array.shape != shape:
        shape_text = f"({shape[0]},)" if len(shape) == 1 else str(shape)
        raise ValueError(f"{name} must have shape {shape_text}, {shape_note}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def shortcut_pair(points, t, min_gap: float = math.pi) -> tuple[int, int]:
    """Indices (i, j) of the two points closest in 3-D among pairs ``min_gap`` or more apart in t.

    On the roll these sit on neighbouring layers: near through the air, far along the sheet.
    Uses an (n, n) distance matrix, so keep n to a few thousand.
    """
    # the dtypes first: a search over rounded values would report on the wrong numbers
    for value, name in ((points, "points"), (t, "t")):
        _check_float_dtype(value, name)
    points = _points(points)
    t = _values(t, len(points), "t")
    if isinstance(min_gap, bool) or not (
        isinstance(min_gap, (int, float)) and 0 < min_gap < math.inf
    ):
        raise ValueError(f"min_gap must be a positive number, got {min_gap!r}")
    dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    dist[np.abs(t[:, None] - t[None, :]) < min_gap] = np.inf
    if not np.isfinite(dist).any():
        raise ValueError(f"no two points are at least min_gap={min_gap:g} apart along t")
    i, j = np.unravel_index(np.argmin(dist), dist.shape)
    return (int(i), int(j)) if t[i] <= t[j] else (int(j), int(i))


def graph_geodesic(points, i: int, j: int, n_neighbors: int = 10) -> tuple[np.ndarray, float]:
    """Shortest path from point ``i`` to ``j`` hopping between nearest neighbours (Isomap's idea).

    Each point is joined to its ``n_neighbors`` nearest neighbours by an edge as long as their 3-D
    distance; on a densely sampled sheet the shortest path approximates the distance along the
    sheet.

    Returns:
        path: (m,) indices of the points on the path, from i to j.
        length: its length, in the units of ``points``.
    """
    from scipy.sparse.csgraph import dijkstra
    from sklearn.neighbors import kneighbors_graph

    points = _points(points)
    n = len(points)
    i, j = _int(i, "i", 0), _int(j, "j", 0)
    if i >= n or j >= n:
        raise ValueError(f"i and j must be point indices below {n}, got {i} and {j}")
    n_neighbors = _int(n_neighbors, "n_neighbors")
    if n_neighbors >= n:
        raise ValueError(
            f"n_neighbors must be smaller than the number of points ({n}), got {n_neighbors}"
        )
    graph = kneighbors_graph(points, n_neighbors, mode="distance")
    dist, previous = dijkstra(graph, directed=False, indices=i, return_predecessors=True)
    if not np.isfinite(dist[j]):
        raise ValueError(
            f"points {i} and {j} are not connected in the {n_neighbors}-neighbour graph; "
            "use more neighbours or more points"
        )
    path = [j]
    while path[-1] != i:
        path.append(previous[path[-1]])
    return np.array(path[::-1]), float(dist[j])


# --------------------------------------------------------------------------------------------------
# Scaling into the unit cube


@dataclass(frozen=True)
class CubeScaling:
    """x_cube = (x - offset) / scale, with one ``scale`` for all three axes (see
    :func:`to_unit_cube`)."""

    offset: np.ndarray  # (3,) the smallest value on each axis
    scale: float  # the largest range over the axes

    @property
    def log_det(self) -> float:
        """log |d x / d x_cube| = 3 log(scale): subtract it from a log-density per point in cube
        units to get the log-density in the original units (negative log-likelihoods: add it)."""
        return len(self.offset) * math.log(self.scale)


def to_unit_cube(
    points, scaling: CubeScaling | None = None, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, CubeScaling]:
    """Shift and shrink ``points`` (n, d) into [0, 1]^d and return them as a torch tensor.

    ``vl.train`` insists on data in [0, 1] because it was written for pixel intensities. The same
    factor divides every axis, so the roll keeps its shape: distances shrink by one number and a
    decoder variance means the same in every direction. Without ``scaling`` the offset and factor
    are fitted to ``points`` (fit them on all the data, training and test, so every point lands
    inside); with it, the given scaling is applied and points outside the cube raise a ValueError.

    Returns:
        cube: (n, d) tensor of ``dtype`` with entries in [0, 1].
        scaling: what :func:`from_unit_cube` needs to undo it.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}"
        )
    points = _points(points, dims=_n_columns(points, 3))
    if scaling is None:
        offset = points.min(axis=0)
        scale = float((points.max(axis=0) - offset).max())
        if scale == 0:
            raise ValueError("all points are identical, so there is no range to scale")
        scaling = CubeScaling(offset, scale)
    elif not isinstance(scaling, CubeScaling):
        raise TypeError(
            "scaling must be a CubeScaling (returned by to_unit_cube), "
            f"got {type(scaling).__name__}"
        )
    elif scaling.offset.shape != (points.shape[1],):
        raise ValueError(
            f"scaling is for {len(scaling.offset)}-D points, got points of shape {points.shape}"
        )
    cube = (points - scaling.offset) / scaling.scale
    if cube.min() < 0 or cube.max() > 1:
        raise ValueError(
            "with this scaling the points fall outside [0, 1] "
            f"(range [{cube.min():g}, {cube.max():g}]); "
            "fit the scaling on all the points at once"
        )
    return torch.as_tensor(cube, dtype=dtype), scaling


def from_unit_cube(cube, scaling: CubeScaling) -> np.ndarray:
    """Undo :func:`to_unit_cube`: (n, d) cube coordinates (tensor or array) -> (n, d) points.

    Points outside the cube are allowed (a decoder's output can leave it).
    """
    if not isinstance(scaling, CubeScaling):
        raise TypeError(
            "scaling must be a CubeScaling (returned by to_unit_cube), "
            f"got {type(scaling).__name__}"
        )
    cube = _points(cube, "cube", dims=len(scaling.offset))
    return cube * scaling.scale + scaling.offset


# --------------------------------------------------------------------------------------------------
# Unrolling and measuring order


def unroll(points, method: str = "isomap", n_neighbors: int = 10, seed: int = 0) -> np.ndarray:
    """Flatten ``points`` (n, D) to (n, 2) with scikit-learn's Isomap or locally linear embedding.

    isomap: keeps graph-geodesic distances (see :func:`graph_geodesic`) as well as 2-D allows.
    lle: writes each point as a weighted mean of its neighbours and keeps those weights.
    ``seed`` fixes LLE's iterative eigensolver; Isomap is deterministic.
    """
    from sklearn.manifold import Isomap, LocallyLinearEmbedding

    if method not in UNROLL_METHODS:
        raise ValueError(f'method must be "isomap" or "lle", got {method!r}')
    points = _points(points, dims=_n_columns(points, 3))
    n_neighbors = _int(n_neighbors, "n_neighbors")
    if n_neighbors >= len(points):
        raise ValueError(
            f"n_neighbors must be smaller than the number of points ({len(points)}), "
            f"got {n_neighbors}"
        )
    if method == "isomap":
        estimator = Isomap(n_neighbors=n_neighbors, n_components=2)
    else:
        estimator = LocallyLinearEmbedding(
            n_neighbors=n_neighbors, n_components=2, random_state=seed
        )
    return estimator.fit_transform(points)


def spearman(a, b) -> float:
    """Spearman's rank correlation of two length-n sequences: +-1 when one orders the other."""
    from scipy.stats import spearmanr

    a = _real_array(a, "a")
    if a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a must be a 1-D sequence of at least 2 values, got shape {a.shape}")
    b = _values(b, len(a), "b", partner="a")
    for values, name in ((a, "a"), (b, "b")):
        if np.all(values == values[0]):
            raise ValueError(
                f"{name} is constant, so it has no ranks to correlate (Spearman's rho is undefined)"
            )
    return float(spearmanr(a, b)[0])


def fit_direction(coords, target) -> np.ndarray:
    """Project ``coords`` (n, d) on the direction that best predicts ``target`` (n,), least squares.

    Returns (n,) values c @ w + w0. A VAE's latent space can be rotated freely (the prior N(0, I)
    looks the same from every angle), so "its first coordinate" means nothing; this is the best
    direction.
    """
    coords = _points(coords, "coords", dims=_n_columns(coords, 2))
    target = _values(target, len(coords), "target", partner="coords")
    design = np.c_[coords, np.ones(len(coords))]
    weights = np.linalg.lstsq(design, target, rcond=None)[0]
    return design @ weights


def neighbour_r2(coords, target, n_neighbors: int = 10) -> float:
    """How well a point's neighbours in ``coords`` (n, d) predict its ``target`` (n,): R^2 <= 1.

    Each point's target is guessed as the mean target of its ``n_neighbors`` nearest other points in
    ``coords``; R^2 = 1 - (sum of squared errors) / (sum of squares around the mean). Close to 1
    when the target varies smoothly over the embedding, whatever its shape (a straight strip or a
    spiral); close to 0 when neighbours in the embedding say nothing about the target.
    """
    from sklearn.neighbors import NearestNeighbors

    coords = _points(coords, "coords", dims=_n_columns(coords, 2))
    target = _values(target, len(coords), "target", partner="coords")
    n_neighbors = _int(n_neighbors, "n_neighbors")
    if n_neighbors >= len(coords):
        raise ValueError(
            f"n_neighbors must be smaller than the number of points ({len(coords)}), "
            f"got {n_neighbors}"
        )
    if np.all(target == target[0]):
        raise ValueError(
            "target is constant, so there is no variation to predict (R^2 is undefined)"
        )
    _, index = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(coords).kneighbors(coords)
    guess = target[index[:, 1:]].mean(axis=1)  # column 0 is the point itself
    return float(1.0 - ((target - guess) ** 2).sum() / ((target - target.mean()) ** 2).sum())


# --------------------------------------------------------------------------------------------------
# A VAE for continuous points
#
# Chapter 02 defines gaussian_nll and PointVAE on the page; the definitions below are the same code
# (tools/chapter_code.py checks it). Their argument checks come first: one line each, calling the
# check_* helpers of this section, so a wrong argument gets a sentence naming it.


def check_nll_args(x, mean, ln_var) -> None:
    """gaussian_nll's arguments: finite float tensors on one device whose shapes broadcast."""
    for value, name in ((x, "x"), (mean, "mean"), (ln_var, "ln_var")):
        check_tensor(value, name)
        check_finite(value, name)
    check_same_device(x, mean, "x", "mean")
    check_same_device(x, ln_var, "x", "ln_var")
    try:
        torch.broadcast_shapes(x.shape, mean.shape, ln_var.shape)
    except RuntimeError:
        raise ValueError(
            f"the shapes of x {tuple(x.shape)}, mean {tuple(mean.shape)} and ln_var "
            f"{tuple(ln_var.shape)} do not broadcast"
        ) from None


def check_point_vae_args(learn_variance, init_ln_var) -> None:
    """PointVAE's own constructor arguments: a bool and a finite log variance (``model_config``
    checks the sizes and the activation)."""
    if not isinstance(learn_variance, bool):
        raise TypeError(f"learn_variance must be True or False, got {learn_variance!r}")
    check_number(init_ln_var, "init_ln_var")


def check_points(x, model: nn.Module, name: str = "x") -> torch.Tensor:
    """What PointVAE.encode takes: finite points of shape (batch, model.n_in) with the weights'
    dtype and device. Any real values: points are not pixels, so there is no [0, 1] check."""
    check_batch(x, name, model.n_in)
    check_model_input(x, name, model)
    check_finite(x, name)
    return x


def check_noise(eps, shape: tuple, model: nn.Module, name: str = "eps") -> None:
    """A loss's optional fixed noise: None (fresh noise is drawn), or a finite tensor of ``shape``
    (k, batch, n_latent) with the weights' dtype and device."""
    if eps is None:
        return
    check_tensor(eps, name)
    if tuple(eps.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape (k, batch, n_latent) = {tuple(shape)}, got {tuple(eps.shape)}"
        )
    check_model_input(eps, name, model)
    check_finite(eps, name)


def check_sample_args(n, generator, model: nn.Module) -> None:
    """PointVAE.sample's arguments: a positive int n, a torch.Generator or None, and a model
    whose weights hold values (not on the meta device)."""
    check_positive_int(n, "n")
    check_generator(generator)
    check_model_has_values(model)


def gaussian_nll(x, mean, ln_var):
    """-log N(x | mean, exp(ln_var)), element by element.

    x, mean and ln_var are tensors whose shapes broadcast, e.g.
    ln_var of shape (n_in,): one variance per coordinate.
    Chainer's F.gaussian_nll returns the sum of these terms.

    Defined in chapter 02 (notebooks/02_manifold.ipynb).
    """
    check_nll_args(x, mean, ln_var)
    squared_error = (x - mean) ** 2
    # the constant last, so it is added in the widest dtype
    return 0.5 * (squared_error * torch.exp(-ln_var) + ln_var + math.log(2 * math.pi))


class PointVAE(nn.Module):
    """A VAE for points in R^n_in: a Gaussian q(z | x), a Gaussian
    p(x | z) = N(decode(z), diag(exp(x_ln_var))), a N(0, I) prior.
    learn_variance=False keeps x_ln_var at init_ln_var.

    Defined in chapter 02 (notebooks/02_manifold.ipynb).
    """

    def __init__(
        self,
        n_in=3,
        n_latent=2,
        n_hidden=64,
        act_func=torch.tanh,
        learn_variance=True,
        init_ln_var=-4.0,
    ):
        super().__init__()
        check_point_vae_args(learn_variance, init_ln_var)
        # the arguments, checked, as plain data for checkpoints
        self.config = model_config(
            n_in=n_in,
            n_latent=n_latent,
            n_hidden=n_hidden,
            act_func=act_func,
            learn_variance=learn_variance,
            init_ln_var=float(init_ln_var),
        )
        self.n_in, self.n_latent = n_in, n_latent
        self.act_func = act_func
        # encoder
        self.le1 = nn.Linear(n_in, n_hidden)
        self.le2 = nn.Linear(n_hidden, n_hidden)
        self.le3_mu = nn.Linear(n_hidden, n_latent)
        self.le3_ln_var = nn.Linear(n_hidden, n_latent)
        # decoder
        self.ld1 = nn.Linear(n_latent, n_hidden)
        self.ld2 = nn.Linear(n_hidden, n_hidden)
        self.ld3 = nn.Linear(n_hidden, n_in)
        xavier_init_(self)  # U(-a, a) weights, zero biases
        # log sigma_i**2 of p(x | z): one per coordinate, for all z
        ln_var = torch.full((n_in,), float(init_ln_var))
        if learn_variance:
            self.x_ln_var = nn.Parameter(ln_var)
        else:  # saved with the model, never trained
            self.register_buffer("x_ln_var", ln_var)

    def encode(self, x):
        """x: (batch, n_in) -> mean, ln_var of q(z | x), each
        (batch, n_latent)."""
        check_points(x, self)
        h1 = self.act_func(self.le1(x))
        h2 = self.act_func(self.le2(h1))
        return self.le3_mu(h2), self.le3_ln_var(h2)

    def decode(self, z):
        """z: (batch, n_latent) -> the mean of p(x | z)."""
        check_codes(z, self)
        h1 = self.act_func(self.ld1(z))
        h2 = self.act_func(self.ld2(h1))
        return self.ld3(h2)  # no sigmoid: a point is not a pixel

    def forward(self, x):
        """Reconstruct x from its mean code, without sampling."""
        mean, _ = self.encode(x)
        return self.decode(mean)

    def log_likelihood(self, x, z):
        """log p(x | z) summed over coordinates; z: (..., batch,
        n_latent) -> (..., batch). Chapter 12's IWAE uses it."""
        x_mean = self.decode(z.reshape(-1, self.n_latent))
        x_mean = x_mean.reshape(*z.shape[:-1], self.n_in)
        return -gaussian_nll(x, x_mean, self.x_ln_var).sum(-1)

    def loss(self, x, C=1.0, k=1, eps=None):
        """-𝓛 of the batch x: reconstruction + C * KL, each averaged
        over the points. eps: optional fixed noise for the k samples
        of z, (k, batch, n_latent); drawn afresh when None."""
        check_kl_weight(C)
        check_positive_int(k, "k")
        mean, ln_var = self.encode(x)
        check_noise(eps, (k, *mean.shape), self)
        batch_size = len(x)
        reconstruction = 0.0
        for i in range(k):  # k samples of z per point
            eps_i = None if eps is None else eps[i]
            z = gaussian(mean, ln_var, eps_i)
            nll = -self.log_likelihood(x, z).sum()
            reconstruction = reconstruction + nll / (k * batch_size)
        kl = C * gaussian_kl_divergence(mean, ln_var) / batch_size
        return VAELoss(reconstruction + kl, reconstruction, kl)

    @property
    def decoder_std(self):
        """(n_in,) standard deviations sigma_i of p(x | z)."""
        return torch.exp(0.5 * self.x_ln_var.detach())

    @torch.no_grad()
    def sample(self, n, generator=None, noise=False):
        """n new points: z ~ N(0, I), x = decode(z), plus the
        decoder's noise N(0, sigma_i**2) per coordinate if noise."""
        check_sample_args(n, generator, self)
        weight = self.ld1.weight  # draw on the CPU, then move
        z = torch.randn(n, self.n_latent, generator=generator)
        x = self.decode(z.to(weight))
        if noise:
            eps = torch.randn(x.shape, generator=generator)
            x = x + self.decoder_std * eps.to(weight)
        return x


register_model(PointVAE, from_config=from_keywords(PointVAE))


def latent_grid(n: int = 21, limit: float = 2.5) -> torch.Tensor:
    """(n * n, 2) points of a square grid over [-limit, limit]^2, row by row (the second coordinate
    varies fastest)."""
    n = _int(n, "n", minimum=2)
    if isinstance(limit, bool) or not (isinstance(limit, (int, float)) and 0 < limit < math.inf):
        raise ValueError(f"limit must be a finite positive number, got {limit!r}")
    ticks = torch.linspace(-limit, limit, n)
    return torch.cartesian_prod(ticks, ticks)


# --------------------------------------------------------------------------------------------------
# Figures

# In every 3-D plot the roll lies on its side, its axis (the height) running into the picture, as in
# scikit-learn's own figures: from the front you look along the axis and see the spiral; turning the
# camera (the azimuth) shows the sheet's layers from the side.


def _roll_axes(fig, spec=111, title=None, elev=12.0, azim=-70.0, extent=None, zoom=0.88):
    ax = fig.add_subplot(spec, projection="3d")
    ax.view_init(elev=elev, azim=azim)
    ax.set_xlabel("x")
    ax.set_ylabel("height")
    ax.set_zlabel("z")
    ax.set_yticks(
        [0, 10, 20]
    )  # the height axis is foreshortened in most views: three ticks stay legible
    if extent is not None:
        # Equal units on all axes, so the roll is not squashed into the default cube.
        ax.set_box_aspect(np.ptp(extent, axis=0), zoom=zoom)
    if title:
        ax.set_title(title)
    return ax


def plot_roll_3d(
    points,
    t,
    title: str = "The swiss roll: 3-D points on a rolled-up sheet",
    elev: float = 12.0,
    azim: float = -70.0,
    size: float = 4.0,
) -> Figure:
    """One 3-D view of ``points`` (n, 3; columns x, height, z) coloured by their position ``t`` (n,)
    along the roll."""
    points = _points(points)
    t = _values(t, len(points), "t")
    fig = Figure(figsize=(6.4, 5.0), layout="constrained")
    ax = _roll_axes(fig, title=title, elev=elev, azim=azim, extent=points)
    dots = ax.scatter(*points.T, c=t, cmap=ROLL_CMAP, s=size, depthshade=False)
    fig.colorbar(dots, ax=ax, shrink=0.6, pad=0.1, label="position along the roll, t")
    return fig


def rotating_roll_frames(
    points,
    t,
    n_frames: int = 40,
    elev: float = 12.0,
    figsize=(4.8, 4.4),
    dpi: int = 80,
    size: float = 4.0,
    title: str | None = "A 2-D sheet rolled up in 3-D",
    axis_labels: bool = True,
) -> list[np.ndarray]:
    """RGB frames (H, W, 3) uint8 of ``points`` coloured by ``t``, the camera going once around.

    The first frame looks along the roll's axis (the spiral); a quarter turn later the layers are
    seen from the side. ``title=None, axis_labels=False`` draws frames without text, for showing
    several of them side by side at a size where their text could not be read.

    One figure is drawn and re-rendered from ``n_frames`` evenly spaced azimuths, so all frames have
    the same size; pass the list to :func:`vae_lesson.infra.gif.write_gif`. Tick labels are left
    out: they would only flicker as the view turns (and make the GIF larger).
    """
    points = _points(points)
    t = _values(t, len(points), "t")
    n_frames = _int(n_frames, "n_frames", minimum=2)
    dpi = _int(dpi, "dpi")
    fig = Figure(figsize=figsize)
    fig.subplots_adjust(
        left=0.0, right=0.97, bottom=0.04, top=0.95
    )  # fixed layout: no jitter between frames
    ax = _roll_axes(fig, title=title, elev=elev, extent=points)
    ax.scatter(*points.T, c=t, cmap=ROLL_CMAP, s=size, depthshade=False)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    if not axis_labels:
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_zlabel("")
    frames = []
    for azim in np.linspace(-90.0, 270.0, n_frames, endpoint=False):
        ax.view_init(elev=elev, azim=float(azim))
        frames.append(figure_to_array(fig, dpi=dpi))
    return frames


def plot_two_distances(points, t, i: int, j: int, path, along: float, straight: float) -> Figure:
    """Two points on neighbouring layers: the short line through the air, the long way on the sheet.

    Left: the roll in 3-D with both routes. Right: the sheet laid flat, (arc_length(t), height),
    where the route along the sheet is a (nearly) straight line.

    Args:
        points, t: (n, 3) points and (n,) positions along the roll.
        i, j: indices of the two points, as from :func:`shortcut_pair`.
        path: (m,) indices of the route along the sheet, as from :func:`graph_geodesic`.
        along, straight: the two lengths, printed in the legend.
    """
    points = _points(points)
    t = _values(t, len(points), "t")
    path = np.asarray(path, dtype=int)
    if path.ndim != 1 or len(path) < 2 or path.min() < 0 or path.max() >= len(points):
        raise ValueError(
            f"path must be a 1-D array of at least 2 point indices below {len(points)}"
        )
    # one above the other, so that both fit the page's column: the flat sheet is long and low
    fig = Figure(figsize=(COLUMN_WIDTH - 0.2, 6.2), layout="constrained")
    fig.get_layout_engine().set(hspace=0.08)  # the 3-D tick labels reach out of their Axes
    grid = fig.add_gridspec(2, 1, height_ratios=(2.1, 1.0))
    ax = _roll_axes(
        fig, grid[0], "In 3-D: two routes from A to B", elev=10, azim=-80, extent=points, zoom=0.95
    )
    up = points
    ax.scatter(*up.T, c=t, cmap=ROLL_CMAP, s=2, alpha=0.25, depthshade=False)
    ax.plot(*up[path].T, color="black", lw=2.5, label=f"along the sheet: {along:.1f}")
    ax.plot(*up[[i, j]].T, color="#ff7f0e", lw=2.5, ls="--", label=f"straight line: {straight:.1f}")
    for index, name in ((i, "A"), (j, "B")):
        ax.scatter(*up[index], color="black", s=40, depthshade=False)
        ax.text(*up[index], f"  {name}", fontsize=12, fontweight="bold")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=10)

    flat = np.c_[arc_length(t), points[:, 1]]
    ax2 = fig.add_subplot(grid[1])
    dots = ax2.scatter(*flat.T, c=t, cmap=ROLL_CMAP, s=3)
    ax2.plot(*flat[path].T, color="black", lw=2.5)
    for index, name in ((i, "A"), (j, "B")):
        ax2.scatter(*flat[index], color="black", s=40, zorder=3)
        ax2.annotate(
            name,
            flat[index],
            xytext=(4, 6),
            textcoords="offset points",
            fontsize=12,
            fontweight="bold",
        )
    ax2.set_aspect("equal")
    ax2.set_xlabel("distance along the spiral, arc_length(t)")
    ax2.set_ylabel("height")
    ax2.set_title("Laid flat: the route along the sheet is nearly straight")
    fig.colorbar(dots, ax=ax2, location="bottom", shrink=0.5, label="position along the roll, t")
    return fig


def plot_unrolled(embeddings: dict, t, height=None) -> Figure:
    """Side-by-side 2-D embeddings (name -> (n, 2) array) coloured by ``t`` (n,).

    Each title gives |Spearman| between the first coordinate and ``t`` and, if ``height`` (n,) is
    given, between the second coordinate and the height (absolute values: an embedding's sign is
    arbitrary).
    """
    if not isinstance(embeddings, dict) or not embeddings:
        raise ValueError(
            "embeddings must be a non-empty dict mapping a method name to an (n, 2) array"
        )
    arrays = {name: _points(e, f"embeddings[{name!r}]", dims=2) for name, e in embeddings.items()}
    t = _values(t, len(next(iter(arrays.values()))), "t")
    if height is not None:
        height = _values(height, len(t), "height")
    fig = Figure(figsize=(COLUMN_WIDTH - 0.3, 3.9), layout="constrained")
    # Equal units on both axes; a wide embedding (Isomap's unrolled strip) gets a wider panel.
    ratios = [
        max(1.0, min(2.5, float(np.ptp(e[:, 0]) / max(np.ptp(e[:, 1]), 1e-12)) / 2))
        for e in arrays.values()
    ]
    axes = fig.subplots(1, len(arrays), squeeze=False, width_ratios=ratios)[0]
    for ax, (name, emb) in zip(axes, arrays.items()):
        if len(emb) != len(t):
            raise ValueError(f"embeddings[{name!r}] has {len(emb)} points but t has {len(t)}")
        dots = ax.scatter(*emb.T, c=t, cmap=ROLL_CMAP, s=4)
        ax.set_aspect("equal", adjustable="box")
        score = f"|Spearman(1st coordinate, t)| = {abs(spearman(emb[:, 0], t)):.3f}"
        if height is not None:
            score += (
                f"\n|Spearman(2nd coordinate, height)| = {abs(spearman(emb[:, 1], height)):.3f}"
            )
        ax.set_title(f"{name}\n{score}", fontsize=9)
        ax.set_xlabel("first coordinate")
        ax.set_ylabel("second coordinate")
    fig.colorbar(
        dots, ax=list(axes), location="bottom", shrink=0.5, label="position along the roll, t"
    )
    return fig


def plot_latent_means(
    mean, t, height, title: str = "Where the encoder puts each point (means of q(z|x))"
) -> Figure:
    """Latent means (n, 2) twice: coloured by position ``t`` (n,) along the roll and by ``height``
    (n,)."""
    mean = _points(mean, "mean", dims=2)
    t = _values(t, len(mean), "t")
    height = _values(height, len(mean), "height")
    fig = Figure(figsize=(COLUMN_WIDTH - 0.2, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, values, cmap, label in (
        (axes[0], t, ROLL_CMAP, "position along the roll, t"),
        (axes[1], height, HEIGHT_CMAP, "height"),
    ):
        dots = ax.scatter(*mean.T, c=values, cmap=cmap, s=4)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.set_title(f"coloured by {label.split(',')[0]}", fontsize=11)
        fig.colorbar(dots, ax=ax, location="bottom", shrink=0.8, label=label)
    fig.suptitle(title)
    return fig


def _two_views(fig, points, title_left, title_right):
    """The same scene from the side (height running left to right) and along the roll's axis;
    returns both axes."""
    left = _roll_axes(fig, 121, title_left, elev=8, azim=-12, extent=points, zoom=0.95)
    right = _roll_axes(fig, 122, title_right, elev=0, azim=-90, extent=points, zoom=0.95)
    # Axes that point (almost) straight at the viewer only show a pile of overlapping tick labels.
    left.set_xticks([])
    right.set_yticks([])
    right.set_ylabel("")
    return left, right


def plot_learned_surface(
    points, t, surface, title: str = "The decoder's 2-D surface (black) on the data"
) -> Figure:
    """The decoded latent grid ``surface`` (g, g, 3) as a wireframe over the data (n, 3) coloured by
    ``t``; side and top views."""
    points = _points(points)
    t = _values(t, len(points), "t")
    surface = np.asarray(surface, dtype=np.float64)
    if surface.ndim != 3 or surface.shape[2] != 3 or min(surface.shape[:2]) < 2:
        raise ValueError(f"surface must have shape (g, g, 3) with g >= 2, got {surface.shape}")
    fig = Figure(figsize=(COLUMN_WIDTH, 3.6), layout="constrained")
    for ax in _two_views(fig, points, "seen from the side", "seen along the roll's axis"):
        ax.scatter(*points.T, c=t, cmap=ROLL_CMAP, s=2, alpha=0.35, depthshade=False)
        ax.plot_wireframe(*np.moveaxis(surface, -1, 0), color="black", linewidth=0.5, alpha=0.7)
    fig.suptitle(title)
    return fig


def plot_prior_samples(
    points, samples, title: str = "Points generated by the model (orange) and the data (dark grey)"
) -> Figure:
    """Generated points (m, 3) over the data (n, 3) in light grey; side and top views."""
    points = _points(points)
    samples = _points(samples, "samples")
    fig = Figure(figsize=(COLUMN_WIDTH, 3.6), layout="constrained")
    for ax in _two_views(fig, points, "seen from the side", "seen along the roll's axis"):
        ax.scatter(*samples.T, color="#ff7f0e", s=4, alpha=0.5, depthshade=False)
        ax.scatter(
            *points.T, color="0.3", s=1.5, depthshade=False
        )  # drawn last, so the data stays visible
    fig.suptitle(title)
    return fig


def plot_loss_curves(history, unit: str = "nats per point") -> Figure:
    """Reconstruction and KL terms per epoch (training solid, test dashed) from a
    :class:`vae_lesson.History`."""
    if not hasattr(history, "train") or not all(
        k in history.train for k in ("reconstruction", "kl")
    ):
        raise ValueError(
            "history must be a vae_lesson.History with 'reconstruction' and 'kl' terms"
        )
    fig = Figure(figsize=(COLUMN_WIDTH, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    colours = {"reconstruction": "#1f77b4", "kl": "#ff7f0e"}
    names = {"reconstruction": "reconstruction term (Gaussian NLL)", "kl": "KL term"}
    for ax, key in zip(axes, ("reconstruction", "kl")):
        epochs = np.arange(1, len(history.train[key]) + 1)
        ax.plot(epochs, history.train[key], color=colours[key], label="training set")
        if history.test.get(key):
            ax.plot(epochs, history.test[key], color=colours[key], ls="--", label="test set")
        ax.set_title(names[key], fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def plot_image_rows(rows, col_titles=None, image_size: float | None = None) -> Figure:
    """A grid of grey images: ``rows`` is a list of (label, images (m, H, W) in [0, 1]); each row is
    labelled on the left. ``image_size``: inches per image; default 1, less if the rows would be
    wider than the page's column."""
    rows = [
        (
            str(label),
            np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images),
        )
        for label, images in rows
    ]
    if not rows or any(images.ndim != 3 or len(images) == 0 for _, images in rows):
        raise ValueError(
            "rows must be a non-empty list of (label, images) with images of shape (m, H, W)"
        )
    n_cols = max(len(images) for _, images in rows)
    label_width, fitted = row_layout([label for label, _ in rows], n_cols, largest=1.0)
    if image_size is None:
        image_size = fitted
    fig = Figure(
        figsize=(
            image_size * n_cols + label_width,
            image_size * len(rows) + 0.3 * bool(col_titles),
        ),
        layout="constrained",
    )
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
            if r == 0 and col_titles is not None and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=9)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    return fig


def plot_embedding_by_class(
    embedding, labels, classes, title: str, method: str = "Isomap"
) -> Figure:
    """A 2-D embedding (n, 2) coloured by class label (n,) with the book's ten class colours, one
    legend entry per class."""
    embedding = _points(embedding, "embedding", dims=2)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.shape != (len(embedding),):
        raise ValueError(f"labels must have shape ({len(embedding)},), got {labels.shape}")
    fig = Figure(figsize=(7.2, 5.6), layout="constrained")
    ax = fig.add_subplot()
    for k, name in enumerate(classes):
        chosen = labels == k
        ax.scatter(*embedding[chosen].T, color=CLASS_COLOURS[k % 10], s=8, label=str(name))
        if chosen.any():
            ax.annotate(
                str(name),
                np.median(embedding[chosen], axis=0),
                fontsize=13,
                fontweight="bold",
                ha="center",
                va="center",
                color="black",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0},
            )
    ax.set_xlabel(f"first {method} coordinate")
    ax.set_ylabel(f"second {method} coordinate")
    ax.set_title(title)
    ax.legend(title="digit", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2)
    return fig
