"""Drawn diagrams: the VAE at a glance (the introduction), and its computation graph before and
after the reparameterization trick (chapter 04)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Polygon

from .plots import COLUMN_WIDTH, OKABE_ITO

__all__ = ["reparameterization_graph", "vae_overview"]

# Okabe-Ito colours (safe for the common colour-vision deficiencies).
_BLUE, _ORANGE, _VERMILLION, _SKY = (OKABE_ITO[i] for i in (0, 1, 3, 5))
_DETERMINISTIC_FILL = "#DCEBF7"  # a pale tint of the sky blue
_STOCHASTIC_FILL = "#FBE3B3"  # a pale tint of the orange


def _node(ax, xy, text, *, stochastic=False, width=1.5, height=0.8, fontsize=11):
    x, y = xy
    box = FancyBboxPatch(
        (x - width / 2, y - height / 2),
        width,
        height,
        boxstyle="round,pad=0.02,rounding_size=0.18",
        facecolor=_STOCHASTIC_FILL if stochastic else _DETERMINISTIC_FILL,
        edgecolor=_ORANGE if stochastic else _BLUE,
        linewidth=2.6 if stochastic else 1.4,
        linestyle="--" if stochastic else "-",
        zorder=2,
    )
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)
    return {"x": x, "y": y, "w": width, "h": height, "patch": box}


def _arrow(ax, a, b, *, backward=False, offset=0.0):
    """Forward edge a -> b (solid black) or gradient edge (dashed vermillion), shifted sideways by
    ``offset``.
    """
    dx, dy = b["x"] - a["x"], b["y"] - a["y"]
    norm = (dx * dx + dy * dy) ** 0.5
    # perpendicular shift, so the two directions run side by side
    nx, ny = -dy / norm * offset, dx / norm * offset
    arrow = FancyArrowPatch(
        posA=(a["x"] + nx, a["y"] + ny),
        posB=(b["x"] + nx, b["y"] + ny),
        patchA=a["patch"],
        patchB=b["patch"],
        arrowstyle="-|>",
        mutation_scale=14,
        shrinkA=3,
        shrinkB=3,
        color=_VERMILLION if backward else "0.15",
        linewidth=2.0 if backward else 1.3,
        linestyle=(0, (4, 2)) if backward else "-",
        zorder=1,
    )
    ax.add_patch(arrow)
    return arrow


def _panel(ax, title, after: bool):
    ax.set_xlim(0, 13.8)
    ax.set_ylim(0.1, 5.3 if after else 4.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10.5, loc="left")
    x = _node(ax, (0.7, 2.4), r"$\mathbf{x}$", width=1.0, fontsize=9.5)
    enc = _node(ax, (2.6, 2.4), "encoder\n" + r"$\phi$", width=1.6, height=1.0, fontsize=9.5)
    mu = _node(ax, (4.8, 3.4), r"$\boldsymbol{\mu}$", width=1.1, fontsize=9.5)
    lnvar = _node(ax, (4.8, 1.4), r"$\log\boldsymbol{\sigma}^2$", width=1.3, fontsize=9.5)
    if after:
        z = _node(
            ax,
            (7.4, 2.4),
            r"$\mathbf{z} = \boldsymbol{\mu} + \boldsymbol{\sigma} \odot \boldsymbol{\varepsilon}$",
            width=2.5,
            fontsize=9,
        )
        eps = _node(
            ax,
            (7.4, 4.5),
            r"$\boldsymbol{\varepsilon} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})$",
            stochastic=True,
            width=2.2,
            fontsize=9,
        )
    else:
        z = _node(
            ax,
            (7.4, 2.4),
            r"$\mathbf{z} \sim \mathcal{N}(\boldsymbol{\mu}, \boldsymbol{\sigma}^2)$",
            stochastic=True,
            width=2.5,
            fontsize=9,
        )
    dec = _node(ax, (10.3, 2.4), "decoder\n" + r"$\theta$", width=1.6, height=1.0, fontsize=9.5)
    loss = _node(ax, (12.9, 2.4), "loss\n" + r"$-$ELBO", width=1.5, height=1.0, fontsize=9)

    for a, b in ((x, enc), (enc, mu), (enc, lnvar), (mu, z), (lnvar, z), (z, dec), (dec, loss)):
        _arrow(ax, a, b)
    if after:
        _arrow(ax, eps, z)
    # Gradient edges run from the loss backwards, beside the forward edges (a positive offset is to
    # the left of the direction of travel, i.e. below a right-to-left edge).
    _arrow(ax, loss, dec, backward=True, offset=0.28)
    _arrow(ax, dec, z, backward=True, offset=0.28)
    if after:
        _arrow(ax, z, mu, backward=True, offset=0.28)
        _arrow(ax, z, lnvar, backward=True, offset=-0.28)
        _arrow(ax, mu, enc, backward=True, offset=0.28)
        _arrow(ax, lnvar, enc, backward=True, offset=-0.28)
        ax.text(
            4.8,
            0.45,
            "gradients reach the encoder",
            ha="center",
            va="center",
            fontsize=9,
            color=_VERMILLION,
        )
    else:
        # The backward path stops at the random draw: a stub that ends in a cross.
        left = z["x"] - z["w"] / 2
        ax.plot(
            [left - 0.05, left - 0.55],
            [z["y"], z["y"]],
            color=_VERMILLION,
            lw=2,
            ls=(0, (4, 2)),
            zorder=1,
        )
        ax.text(
            left - 0.8,
            z["y"],
            "✕",
            ha="center",
            va="center",
            fontsize=14,
            color=_VERMILLION,
            fontweight="bold",
            fontfamily="DejaVu Sans",
        )
        ax.text(
            4.8,
            0.45,
            "a random draw has no derivative: no gradient reaches the encoder through z",
            ha="center",
            va="center",
            fontsize=9,
            color=_VERMILLION,
        )


def reparameterization_graph() -> Figure:
    """The VAE's computation graph without (top) and with (bottom) the reparameterization trick.

    Solid black arrows: the forward pass. Dashed vermillion arrows: where gradients of the loss
    flow. Orange dashed boxes: stochastic nodes (random draws); blue boxes: deterministic functions.
    """
    # the width of the page's column, so that the 9 pt labels show at 9 pt
    fig = Figure(figsize=(COLUMN_WIDTH, 5.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[4.0, 5.2])
    _panel(top, "Before: z is drawn at random inside the graph", after=False)
    _panel(
        bottom,
        "After: the randomness is an input ε,\nand z is a deterministic function of μ, σ and ε",
        after=True,
    )
    handles = [
        Patch(facecolor=_DETERMINISTIC_FILL, edgecolor=_BLUE, label="deterministic node"),
        Patch(
            facecolor=_STOCHASTIC_FILL,
            edgecolor=_ORANGE,
            linestyle="--",
            linewidth=2,
            label="stochastic node",
        ),
        Line2D([], [], color="0.15", lw=1.3, marker=">", markevery=[1], label="forward pass"),
        Line2D([], [], color=_VERMILLION, lw=2, ls=(0, (4, 2)), label="gradient of the loss"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


def _trapezoid(ax, x, y, *, narrowing: bool, text: str, width=1.5, tall=1.9, short=0.9):
    """An encoder (narrowing to the right) or a decoder (widening): a trapezoid with a label."""
    left, right = (tall, short) if narrowing else (short, tall)
    corners = [
        (x - width / 2, y - left / 2),
        (x + width / 2, y - right / 2),
        (x + width / 2, y + right / 2),
        (x - width / 2, y + left / 2),
    ]
    patch = Polygon(corners, closed=True, facecolor=_DETERMINISTIC_FILL, edgecolor=_BLUE, lw=1.4)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=10, zorder=3)
    return {"x": x, "y": y, "w": width, "h": tall, "patch": patch}


def _brace(ax, x0, x1, y, text, colour):
    """A bracket under [x0, x1] at height y, with a caption below it."""
    ax.plot([x0, x0, x1, x1], [y + 0.12, y, y, y + 0.12], color=colour, lw=1.5)
    ax.text((x0 + x1) / 2, y - 0.12, text, ha="center", va="top", fontsize=10, color=colour)


def vae_overview() -> Figure:
    """The VAE at a glance: encoder, the sampled code, decoder, and the two terms of the loss.

    Blue boxes compute; the orange dashed box is the one random draw; the two brackets are the two
    terms of the loss (the negative ELBO); the grey dashed path is how new images are generated.
    """
    fig = Figure(figsize=(7.2, 3.35), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 10.6)
    ax.set_ylim(-0.65, 4.0)
    ax.set_aspect("equal")
    ax.axis("off")
    y = 1.9
    x_in = _node(ax, (0.65, y), "image\n" + r"$\mathbf{x}$", width=1.1, height=1.0, fontsize=10)
    enc = _trapezoid(ax, 2.45, y, narrowing=True, text="encoder\n" + r"$\phi$")
    mu = _node(ax, (4.15, y + 0.55), r"$\boldsymbol{\mu}$", width=0.9, height=0.6)
    lnvar = _node(ax, (4.15, y - 0.55), r"$\log\boldsymbol{\sigma}^2$", width=1.1, height=0.6)
    z = _node(
        ax,
        (5.85, y),
        r"$\mathbf{z} = \boldsymbol{\mu} + \boldsymbol{\sigma} \odot \boldsymbol{\varepsilon}$",
        width=1.85,
        height=0.7,
        fontsize=10,
    )
    eps = _node(
        ax,
        (5.85, y + 1.3),
        r"$\boldsymbol{\varepsilon} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})$",
        stochastic=True,
        width=1.7,
        height=0.6,
        fontsize=10,
    )
    dec = _trapezoid(ax, 7.75, y, narrowing=False, text="decoder\n" + r"$\theta$")
    x_out = _node(
        ax,
        (9.7, y),
        "mean image\n" + r"$\mathbb{E}[\mathbf{x} \mid \mathbf{z}]$",
        width=1.5,
        height=1.0,
        fontsize=10,
    )
    for a, b in ((x_in, enc), (enc, mu), (enc, lnvar), (mu, z), (lnvar, z), (eps, z), (z, dec)):
        _arrow(ax, a, b)
    _arrow(ax, dec, x_out)
    # Generating: a code from the prior goes straight into the decoder.
    ax.annotate(
        "",
        xy=(7.75, y + 0.98),
        xytext=(7.75, 3.75),
        arrowprops={"arrowstyle": "-|>", "color": "0.45", "lw": 1.3, "ls": (0, (3, 2))},
    )
    ax.text(
        7.9,
        3.45,
        "to generate: decode\n" + r"$\mathbf{z} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})$",
        ha="left",
        va="center",
        fontsize=10,
        color="0.3",
    )
    _brace(
        ax,
        3.5,
        6.8,
        0.75,
        "KL term: keeps\n" + r"$q(\mathbf{z} \mid \mathbf{x})$ near $p(\mathbf{z})$",
        _VERMILLION,
    )
    _brace(
        ax,
        7.05,
        10.45,
        0.75,
        "reconstruction term:\n"
        + r"$-\log p(\mathbf{x} \mid \mathbf{z})$, compares with $\mathbf{x}$",
        _BLUE,
    )
    ax.text(
        0.1,
        -0.4,
        "loss = reconstruction term + KL term = −ELBO",
        ha="left",
        va="center",
        fontsize=10,
        fontweight="bold",
    )
    return fig
