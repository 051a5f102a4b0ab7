"""Figures for the book: loss curves, images, and maps of a latent space.

Every function builds a ``matplotlib.figure.Figure`` directly (never pyplot), so nothing is shown
twice and no figure is left open: a notebook cell that ends with the returned figure displays it
once. (Importing this module inside IPython/Jupyter registers a PNG display for Figure objects,
which pyplot's inline backend would otherwise do, unless a display for them is set up already.)
Digits are drawn in grey (white on black, as MNIST stores them, vmin=0, vmax=1). The ten digit
classes use ``CLASS_COLOURS``, ten colours chosen to stay apart under the common colour blindnesses;
ten colours are still hard to tell apart, so a class scatter also writes each class's name at its
centroid. Figures with fewer lines use the eight Okabe-Ito colours, ``OKABE_ITO``.
Inputs may be torch tensors or NumPy arrays.

Sizes are chosen for the book's page: a notebook shows a figure as a PNG at 100 dpi, and the page's
content column is 676 CSS px wide on a 1280 px window. A figure at most ``COLUMN_WIDTH`` = 6.6 in
wide comes out at most about 676 px (bbox_inches="tight" crops the figure's own margins and pads
0.1 in on each side) and is shown at full size, so its text, 9 pt or larger, reads at 9 pt or more;
a wider figure is shrunk, its text with it. Long titles are wrapped to that width.
tests/book/test_figure_text.py checks every figure the chapters show.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.patheffects as patheffects
import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import offset_copy

from .checks import check_image_shape, check_pixel_values

__all__ = [
    "plot_history",
    "show_reconstructions",
    "labelled_rows",
    "image_grid",
    "plot_latent_scatter",
    "plot_latent_map",
    "plot_frame_strip",
]

LOSS_FIELD_TITLES = {
    "total": "Total loss",
    "reconstruction": "Reconstruction term",
    "kl": "KL term",
}
LOSS_FIELD_UNITS = {  # two lines, so that three panels fit the width of a page
    "total": "nats per image",
    "reconstruction": "nats per image\n(summed over pixels)",
    "kl": "nats per image\n(summed over latents)",
}
IMAGE_STYLE = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0, "interpolation": "nearest"}
# Okabe & Ito's colour-blind-safe palette: blue, orange, bluish green, vermillion, reddish purple,
# sky blue, yellow, black
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
# Ten colours for ten classes: Petroff's sequence (matplotlib's "petroff10" style), chosen so that
# every pair stays apart for readers with red-green or blue-yellow colour blindness (M. A. Petroff,
# "Accessible Color Sequences for Data Visualization", arXiv:2107.02270, 2021). tests/unit/
# test_plots.py measures the pairs' distances under simulated colour blindness.
CLASS_COLOURS = (
    "#3f90da",
    "#ffa90e",
    "#bd1f01",
    "#94a4a2",
    "#832db6",
    "#a96b59",
    "#e76300",
    "#b9ac70",
    "#717581",
    "#92dadd",
)
PATH_COLOR = (
    "#ff7f0e"  # tab10 orange: stands out on grey digits and on the scatter's black arrow alike
)
OUTLINE = [patheffects.withStroke(linewidth=3, foreground="white")]
# The least distance between two class labels of a scatter, as a share of the points' extent: about
# the size of a 14-point digit on a half-column panel.
LABEL_SPACING = 0.08
# inches: the widest figure the book's page shows at full size. Drawn at 100 dpi with
# bbox_inches="tight", which pads 0.1 in on each side, it is at most about 676 px wide.
COLUMN_WIDTH = 6.6


def _register_notebook_display() -> None:
    """Let Jupyter show a bare Figure as a PNG, as pyplot's inline backend does (no pyplot here)."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:  # plain Python: nothing to display
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    formatters = shell.display_formatter.formatters
    for mime in ("image/png", "image/svg+xml", "image/jpeg", "application/pdf"):
        try:
            formatters[mime].lookup_by_type(Figure)
            return  # the user (or %matplotlib inline) chose a format already: keep it
        except KeyError:
            pass
    formatters["image/png"].for_type(Figure, lambda fig: print_figure(fig, fmt="png", base64=True))


_register_notebook_display()


# --------------------------------------------------------------------------------------------------
# layout for the page
# --------------------------------------------------------------------------------------------------


def wrap_text(text: str, width: float = COLUMN_WIDTH, fontsize: float = 12.0) -> str:
    """``text`` with line breaks so that no line is much wider than ``width`` inches at
    ``fontsize`` pt: a long title fits the page's column. Existing line breaks are kept, and no
    break goes inside $...$ (mathtext) or at a hyphen."""
    per_line = max(12, int(width * 72 / (0.6 * fontsize)))  # a character is about 0.6 em wide
    parts = text.split("$")
    # spaces inside mathtext become non-breaking for textwrap (it breaks at ASCII whitespace only)
    protected = "$".join(p.replace(" ", "\xa0") if i % 2 else p for i, p in enumerate(parts))
    lines = [
        textwrap.fill(line, per_line, break_long_words=False, break_on_hyphens=False)
        for line in protected.split("\n")
    ]
    return "\n".join(lines).replace("\xa0", " ")


def legend_below(ax, ncols: int = 1, xlabel_lines: int = 1, **kwargs):
    """A legend centred under ``ax``, below its tick labels and ``xlabel_lines`` lines of x label,
    for a panel too narrow to hold its legend inside; constrained layout makes room for it.
    Keyword arguments go to ``ax.legend``. Returns the Legend."""
    below = offset_copy(ax.transAxes, fig=ax.figure, y=-(22 + 13 * xlabel_lines), units="points")
    options = {"fontsize": 9, "frameon": False, **kwargs}
    return ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncols=ncols, **options
    )


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------


def _numpy(value, name: str, finite: bool = False) -> np.ndarray:
    """A float NumPy copy of a tensor or array-like of real numbers (detached, on the CPU).

    With ``finite=True``, NaN or infinite entries raise a ValueError naming ``name``.
    """
    if hasattr(value, "detach"):
        if getattr(getattr(value, "device", None), "type", None) == "meta":
            raise ValueError(
                f"{name} must hold values, got a tensor on the meta device (a shape without data)"
            )
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            value = value.float()
        value = value.numpy()
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a tensor or array of numbers, got {type(value).__name__}")
    if np.iscomplexobj(value):
        raise TypeError(
            f"{name} must hold real numbers, got complex dtype {np.asarray(value).dtype}"
        )
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a tensor or array of numbers, got {type(value).__name__}"
        ) from None
    if finite and not np.isfinite(array).all():
        raise ValueError(
            f"{name} contains {int((~np.isfinite(array)).sum())} NaN or infinite value(s)"
        )
    return array


def _image_shape(image_shape) -> tuple[int, int]:
    return check_image_shape(image_shape)


def _images(images, image_shape, name: str) -> np.ndarray:
    """(n, H*W) or (n, H, W) images -> (n, H, W) floats in [0, 1]."""
    height, width = _image_shape(image_shape)
    array = _numpy(images, name)
    if array.ndim >= 1 and 0 in array.shape:
        raise ValueError(f"{name} is empty (shape {array.shape}): there are no images to draw")
    if array.ndim < 2 or array.shape[0] == 0 or math.prod(array.shape[1:]) != height * width:
        raise ValueError(
            f"{name} must have shape (n, {height * width}) or (n, {height}, {width}) for "
            f"image_shape {(height, width)}, got {array.shape}"
        )
    check_pixel_values(array, name)
    return array.reshape(len(array), height, width)


def _points_2d(points, name: str) -> np.ndarray:
    array = _numpy(points, name, finite=True)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < 2:
        raise ValueError(
            f"{name} must be a sequence of at least two 2-D points, shape (n, 2), got {array.shape}"
        )
    return array


def _tile_axes(ax) -> None:
    """An image tile: no ticks, no frame (but axis labels still show, unlike axis('off'))."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --------------------------------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------------------------------


def plot_history(
    history, title: str | None = None, fields=None, ylabel: str | None = None
) -> Figure:
    """Loss curves: one panel per loss term, training set solid, test set dashed.

    Args:
        history: a :class:`vae_lesson.History` or its ``as_dict()``.
        title: figure title.
        fields: which terms to draw, e.g. ``("reconstruction", "kl")``. Default: every term
            recorded, in the order total, reconstruction, kl, others, leaving out a term identical
            to ``total`` (an autoencoder's reconstruction) so no panel is drawn twice.
        ylabel: y-axis label for every panel; default "nats per image" and what it is summed over.

    Returns:
        A Figure with one Axes per term (x: epoch, y: loss per image).
    """
    data = history.as_dict() if hasattr(history, "as_dict") else history
    if not isinstance(data, dict) or not isinstance(data.get("train"), dict) or not data["train"]:
        raise ValueError(
            "history must be a History or a dict with a non-empty 'train' dict of per-epoch lists"
        )
    train, test = data["train"], data.get("test") or {}
    if fields is None:
        order = [f for f in LOSS_FIELD_TITLES if f in train] + [
            f for f in train if f not in LOSS_FIELD_TITLES
        ]
        fields = [
            f for f in order if f == "total" or list(train[f]) != list(train.get("total", []))
        ]
    else:
        fields = list(fields)
        unknown = [f for f in fields if f not in train]
        if not fields or unknown:
            raise ValueError(f"fields must name recorded loss terms {sorted(train)}, got {fields}")
    for split_name, split in (("train", train), ("test", test)):
        for field in fields:
            if field in split:
                values = _numpy(split[field], f"history[{split_name!r}][{field!r}]", finite=True)
                if values.ndim != 1:
                    raise ValueError(
                        f"history[{split_name!r}][{field!r}] must be a list of numbers, "
                        f"one per epoch, got shape {values.shape}"
                    )
    # at most three panels side by side in the column's width; four or more in rows of two
    n_cols = len(fields) if len(fields) <= 3 else 2
    n_rows = math.ceil(len(fields) / n_cols)
    width = min(2.75 * n_cols + 0.4, COLUMN_WIDTH)
    fig = Figure(figsize=(width, 3.0 * n_rows), layout="constrained")
    grid = fig.subplots(n_rows, n_cols, squeeze=False)
    for spare in grid.flat[len(fields) :]:
        fig.delaxes(spare)
    axes = grid.flat[: len(fields)]
    for ax, field in zip(axes, fields):
        epochs = np.arange(1, len(train[field]) + 1)
        ax.plot(epochs, train[field], "-", marker="o", markersize=3, color="C0", label="train")
        if field in test:
            ax.plot(
                np.arange(1, len(test[field]) + 1),
                test[field],
                "--",
                marker="o",
                markersize=3,
                color="C1",
                label="test",
            )
        ax.set_title(LOSS_FIELD_TITLES.get(field, field))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel or LOSS_FIELD_UNITS.get(field, "nats per image"))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    if title:
        fig.suptitle(wrap_text(title))
    return fig


# --------------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------------


def show_reconstructions(x, x_hat, image_shape, n: int = 10, title: str | None = None) -> Figure:
    """The first ``n`` inputs in the top row, their reconstructions below, rows labelled at left.

    Args:
        x: (N, H*W) or (N, H, W) input images in [0, 1].
        x_hat: reconstructions of the same shape, or a dict ``{"row label": reconstructions}`` to
            compare several models (one row each, e.g. ``{"20-D VAE": ..., "2-D VAE": ...}``).
        image_shape: (H, W).
        n: number of columns (images), at most N.
    """
    inputs = _images(x, image_shape, "x")
    rows = dict(x_hat) if isinstance(x_hat, dict) else {"reconstruction": x_hat}
    if not rows:
        raise ValueError("x_hat must not be an empty dict")
    rows = {
        label: _images(
            images, image_shape, f"x_hat[{label!r}]" if isinstance(x_hat, dict) else "x_hat"
        )
        for label, images in rows.items()
    }
    for label, images in rows.items():
        if len(images) != len(inputs):
            raise ValueError(
                f"x and x_hat must hold the same number of images, got {len(inputs)} and "
                f"{len(images)}"
            )
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(inputs):
        raise ValueError(
            f"n must be an integer between 1 and the number of images ({len(inputs)}), got {n!r}"
        )
    return labelled_rows({"input": inputs, **rows}, n, title)


def row_layout(labels, n_cols: int, largest: float) -> tuple[float, float]:
    """Rows of ``n_cols`` image tiles, each row labelled on the left with one of ``labels``: the
    width of the labels and the side of a tile, in inches, so that the rows fit the page's column
    (a tile at most ``largest``, at least 0.3)."""
    label_width = max(len(line) for label in labels for line in label.split("\n")) * 0.075 + 0.3
    return label_width, max(0.3, min(largest, (COLUMN_WIDTH - label_width) / n_cols))


def labelled_rows(rows: dict, n: int, title: str | None = None) -> Figure:
    """One row of ``n`` image tiles per entry of ``rows``, each row labelled on the left.

    ``rows`` maps labels to (N, H, W) grey or (N, H, W, 3) RGB arrays in [0, 1], already checked.
    Grey is drawn white on black.
    """
    label_width, tile = row_layout(rows, n, largest=0.85)
    fig = Figure(
        figsize=(tile * n + label_width, (tile + 0.05) * len(rows) + (0.45 if title else 0.1)),
        layout="constrained",
    )
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            axes[r, c].imshow(images[c], **IMAGE_STYLE)  # cmap and range are ignored for RGB tiles
            _tile_axes(axes[r, c])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(wrap_text(title))
    return fig


def image_grid(
    images, image_shape, n_cols: int = 10, title: str | None = None, labels=None
) -> Figure:
    """Images in rows of ``n_cols``, optionally with a small caption (``labels[i]``) above each.

    Args:
        images: (N, H*W) or (N, H, W) values in [0, 1].
        image_shape: (H, W).
        n_cols: images per row.
        labels: optional sequence of N captions (strings or numbers).

    Returns:
        A Figure with exactly N image Axes.
    """
    array = _images(images, image_shape, "images")
    if isinstance(n_cols, bool) or not isinstance(n_cols, int) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}")
    if labels is not None:
        try:
            labels = list(labels)
        except TypeError:
            raise TypeError(
                f"labels must be a sequence of captions, one per image, got {type(labels).__name__}"
            ) from None
        if len(labels) != len(array):
            raise ValueError(
                f"labels must have one entry per image ({len(array)}), got {len(labels)}"
            )
    n_cols = min(n_cols, len(array))
    n_rows = math.ceil(len(array) / n_cols)
    tile = min(0.8, (COLUMN_WIDTH - 0.2) / n_cols)  # the rows fit the column
    width = tile * n_cols + 0.2
    cell = tile if labels is None else tile + 0.15
    fig = Figure(figsize=(width, cell * n_rows + (0.45 if title else 0.1)), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(array):
            fig.delaxes(ax)
            continue
        ax.imshow(array[i], **IMAGE_STYLE)
        _tile_axes(ax)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=9, pad=2)
    if title:
        fig.suptitle(wrap_text(title))
    return fig


def plot_frame_strip(frames, image_shape, ts=None, title: str | None = None) -> Figure:
    """Interpolation frames side by side, each with its parameter printed underneath ("t = 0.75").

    Args:
        frames: (n, H*W) or (n, H, W) images in [0, 1].
        image_shape: (H, W).
        ts: optional n numbers, the interpolation parameter of each frame.
    """
    array = _images(frames, image_shape, "frames")
    if ts is not None:
        ts = _numpy(ts, "ts", finite=True).reshape(-1)
        if len(ts) != len(array):
            raise ValueError(f"ts must have one value per frame ({len(array)}), got {len(ts)}")
    tile = min(0.75, (COLUMN_WIDTH - 0.3) / len(array))  # the strip fits the column
    width = tile * len(array) + 0.3
    height = tile + 0.1 + (0.2 if ts is not None else 0.0) + (0.3 if title else 0.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, len(array), squeeze=False)[0]
    for i, ax in enumerate(axes):
        ax.imshow(array[i], **IMAGE_STYLE)
        _tile_axes(ax)
        if ts is not None:
            ax.set_xlabel(f"t = {ts[i]:.2f}", fontsize=9)
    if title:
        fig.suptitle(wrap_text(title))
    return fig


# --------------------------------------------------------------------------------------------------
# latent space
# --------------------------------------------------------------------------------------------------


def _draw_arrow_path(ax, path: np.ndarray, color: str, zorder: float = 5) -> None:
    """A polyline along ``path`` ending in an arrowhead at its last point, circle at its start."""
    outline = [patheffects.withStroke(linewidth=4.5, foreground="white")]
    ax.plot(
        path[:, 0],
        path[:, 1],
        "-",
        color=color,
        lw=2,
        zorder=zorder,
        path_effects=outline,
        gid="path",
    )
    ax.plot(
        *path[0],
        "o",
        color=color,
        markersize=7,
        markeredgecolor="white",
        zorder=zorder + 1,
        gid="path-start",
    )
    # Arrowhead: aim along the last stretch of the path that has some length (frames may be dense).
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    total = lengths.sum()
    tail = len(path) - 2
    while tail > 0 and np.linalg.norm(path[-1] - path[tail]) < 0.15 * total:
        tail -= 1
    ax.annotate(
        "",
        xy=tuple(path[-1]),
        xytext=tuple(path[tail]),
        zorder=zorder + 1,
        arrowprops={
            "arrowstyle": "-|>,head_length=0.8,head_width=0.4",
            "color": color,
            "lw": 2,
            "shrinkA": 0,
            "shrinkB": 0,
        },
        gid="path-arrow",
    )


def _spread_apart(centres: np.ndarray, distance: float, rounds: int = 100) -> np.ndarray:
    """Positions for labels at ``centres`` (k, 2): each pair closer than ``distance`` is pushed
    apart along the line joining them (upwards and downwards if they coincide), half the shortfall
    each, until no pair is closer, or ``rounds`` passes. Labels far from every other stay put."""
    spots = np.array(centres, dtype=float).reshape(-1, 2)
    for _ in range(rounds):
        moved = False
        for i in range(len(spots)):
            for j in range(i + 1, len(spots)):
                gap = spots[j] - spots[i]
                length = float(np.hypot(*gap))
                if length >= distance * (1 - 1e-9):
                    continue
                direction = gap / length if length > 1e-12 * distance else np.array([0.0, 1.0])
                shift = (distance - length) / 2 * direction
                spots[i] -= shift
                spots[j] += shift
                moved = True
        if not moved:
            break
    return spots


def plot_latent_scatter(
    z,
    labels,
    classes=None,
    title: str | None = None,
    path=None,
    xlabel: str = "$z_1$",
    ylabel: str = "$z_2$",
    ax=None,
) -> Figure:
    """Latent points coloured by class, each class's name written at its centroid.

    Args:
        z: (n, 2) points (2-D latent means, or a 2-D embedding such as t-SNE).
        labels: (n,) integer classes 0 .. K-1 (at most 10: one of ``CLASS_COLOURS`` each).
        classes: optional K names for the legend and the centroid labels (default "0", "1", ...).
        title: axes title.
        path: optional sequence of 2-D points (e.g. an interpolation), drawn as an arrow from start
            to end.
        xlabel, ylabel: axis labels (pass e.g. "t-SNE 1" for an embedding).
        ax: draw into this Axes instead of a new Figure (its figure is returned).

    Returns:
        The Figure; the Axes holds one text per class at its centroid (gid "centroid-<class>"),
        except that labels whose centroids lie closer than ``LABEL_SPACING`` of the points' extent
        are moved apart, symmetrically, until they are that far apart.
    """
    points = _numpy(z, "z", finite=True)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(
            f"z must have shape (n, 2), got {points.shape}; embed higher-dimensional codes first "
            "(e.g. with t-SNE)"
        )
    label_array = _numpy(labels, "labels")
    if (
        label_array.shape != (len(points),)
        or not np.all(label_array == np.round(label_array))
        or label_array.min() < 0
    ):
        raise ValueError(
            f"labels must be {len(points)} non-negative integers, one per point of z, got shape "
            f"{label_array.shape}"
        )
    label_array = label_array.astype(int)
    n_classes = int(label_array.max()) + 1 if classes is None else len(classes)
    if label_array.max() >= n_classes:
        raise ValueError(
            f"labels go up to {label_array.max()} but only {n_classes} classes are named"
        )
    if n_classes > 10:
        raise ValueError(
            f"at most 10 classes can be told apart by colour, got {n_classes}"
        )
    names = [str(c) for c in (classes if classes is not None else range(n_classes))]
    if ax is None:
        fig = Figure(figsize=(6.6, 5.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    size, alpha = (9, 0.7) if len(points) <= 3000 else (3, 0.5)  # many points: smaller and lighter
    for c in range(n_classes):
        members = points[label_array == c]
        if len(members) == 0:
            continue
        ax.scatter(
            members[:, 0],
            members[:, 1],
            s=size,
            alpha=alpha,
            color=CLASS_COLOURS[c],
            label=names[c],
            linewidths=0,
            rasterized=True,
        )
    present = [c for c in range(n_classes) if np.any(label_array == c)]
    centroids = np.array([points[label_array == c].mean(axis=0) for c in present])
    # two classes whose centroids nearly coincide would print one label over the other
    span = float(np.ptp(points, axis=0).max()) or 1.0
    spots = _spread_apart(centroids, LABEL_SPACING * span)
    for c, (cx, cy) in zip(present, spots):
        ax.text(
            cx,
            cy,
            names[c],
            ha="center",
            va="center",
            fontsize=14,
            fontweight="bold",
            color="black",
            path_effects=OUTLINE,
            zorder=10,
            gid=f"centroid-{c}",
        )
    if path is not None:
        _draw_arrow_path(ax, _points_2d(path, "path"), color="black", zorder=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.25)
    if title:
        ax.set_title(title)
    legend = ax.legend(
        title="class" if classes is not None and not names[0].isdigit() else "digit",
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
        markerscale=3,
        handletextpad=0.2,
    )
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return fig


def plot_latent_map(
    images_grid, values, image_shape, title: str | None = None, path=None
) -> Figure:
    """Decoded images on a regular grid of the 2-D latent plane, drawn as one picture with z axes.

    Args:
        images_grid: (n, n, H*W) or (n, n, H, W) from :func:`vae_lesson.infra.latent.decode_grid`:
            row r, column c decodes z = (values[c], values[n - 1 - r]) (z_2 decreases down
            the rows).
        values: (n,) the increasing grid coordinates, as returned by
            :func:`vae_lesson.infra.latent.latent_grid`.
        image_shape: (H, W).
        title: axes title.
        path: optional sequence of 2-D latent points, drawn on top as a line with markers; if it
            leaves the decoded square, the axes grow to show all of it over a grey background.

    Returns:
        The Figure. The image's extent puts every tile's centre at the z it decodes, so the ticks
        read z coordinates: it spans [values[0] - d/2, values[-1] + d/2] on both axes, d the grid
        spacing.
    """
    height, width = _image_shape(image_shape)
    grid = _numpy(images_grid, "images_grid")
    coords = _numpy(values, "values", finite=True).reshape(-1)
    n = len(coords)
    if (
        n < 2
        or grid.ndim < 3
        or grid.shape[:2] != (n, n)
        or math.prod(grid.shape[2:]) != height * width
    ):
        raise ValueError(
            f"images_grid must have shape ({n}, {n}, {height * width}) to match {n} values and "
            f"image_shape {(height, width)}, got {grid.shape}"
        )
    if np.any(np.diff(coords) <= 0):
        raise ValueError(
            "values must be strictly increasing (the grid coordinates from latent_grid)"
        )
    tiles = _images(grid.reshape(n * n, -1), image_shape, "images_grid").reshape(
        n, n, height, width
    )
    picture = tiles.transpose(0, 2, 1, 3).reshape(n * height, n * width)
    half = (coords[-1] - coords[0]) / (n - 1) / 2
    extent = (coords[0] - half, coords[-1] + half, coords[0] - half, coords[-1] + half)
    fig = Figure(figsize=(6.4, 6.2), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(picture, extent=extent, origin="upper", **IMAGE_STYLE)
    if path is not None:
        points = _points_2d(path, "path")
        outline = [patheffects.withStroke(linewidth=4, foreground="black")]
        ax.plot(
            points[:, 0],
            points[:, 1],
            "-o",
            color=PATH_COLOR,
            lw=2,
            markersize=4,
            path_effects=outline,
            gid="path",
        )
        # Show the whole path even where it leaves the decoded square; grey marks "not decoded".
        low, high = points.min(axis=0) - half / 2, points.max(axis=0) + half / 2
        xlim = (min(low[0], extent[0]), max(high[0], extent[1]))
        ylim = (min(low[1], extent[2]), max(high[1], extent[3]))
        if (xlim, ylim) != ((extent[0], extent[1]), (extent[2], extent[3])):
            ax.set_facecolor("0.8")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig
