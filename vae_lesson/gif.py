"""Animated GIFs from frames, written deterministically and atomically with imageio (no ImageMagick)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ._atomic import atomic_path

__all__ = ["to_uint8_frames", "write_gif", "read_gif", "figure_to_array"]


def to_uint8_frames(frames, scale: int = 1) -> np.ndarray:
    """Stack ``frames`` into a uint8 array (n, H*scale, W*scale[, 3]).

    Each frame is (H, W) greyscale or (H, W, 3) RGB, either floats in [0, 1] or uint8.
    ``scale`` enlarges each pixel to a scale x scale block, so a 28x28 digit stays crisp.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("frames must be a non-empty sequence of (H, W) or (H, W, 3) images, got none")
    try:
        array = np.stack([np.asarray(f.detach().cpu() if hasattr(f, "detach") else f) for f in frames])
    except ValueError as exc:
        raise ValueError(f"all frames must have the same shape ({exc})") from None
    if array.ndim not in (3, 4) or len(array) == 0 or (array.ndim == 4 and array.shape[-1] != 3):
        raise ValueError(f"frames must be a non-empty sequence of (H, W) or (H, W, 3) images, got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"frames must be uint8 or floats in [0, 1], got dtype {array.dtype}")
        if not np.isfinite(array).all():
            raise ValueError("float frames must lie in [0, 1], got NaN or infinite values")
        if array.min() < 0 or array.max() > 1:
            raise ValueError(f"float frames must lie in [0, 1], got values in [{array.min():g}, {array.max():g}]")
        array = np.round(array * 255).astype(np.uint8)
    if not (isinstance(scale, int) and scale >= 1):
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if scale > 1:
        array = array.repeat(scale, axis=1).repeat(scale, axis=2)
    return array


def write_gif(frames, path, fps: float = 10, scale: int = 1, loop: int = 0) -> Path:
    """Write ``frames`` (see :func:`to_uint8_frames`) as a looping GIF at ``path`` and return the path.

    The file is written to a temporary name and renamed, so an interrupted run never leaves half a GIF.
    The same frames always give the same bytes (GIFs carry no timestamp).
    """
    import imageio.v3 as iio

    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    array = to_uint8_frames(frames, scale)
    if array.ndim == 3:  # greyscale: written as RGB, since (n, H, 3) frames would read as colour images
        array = np.repeat(array[..., None], 3, axis=-1)
    with atomic_path(path, suffix=".gif") as tmp:
        iio.imwrite(tmp, array, extension=".gif", duration=1000.0 / fps, loop=loop)
    return path


def read_gif(path) -> np.ndarray:
    """All frames of a GIF as a uint8 array (n, H, W, 3) (or (n, H, W, 4) if it has transparency)."""
    import imageio.v3 as iio

    return iio.imread(path, index=None, extension=".gif")


def figure_to_array(fig, dpi: int = 80) -> np.ndarray:
    """Render a matplotlib figure to an RGB uint8 array (H, W, 3), e.g. one frame of a rotating 3-D plot."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    import imageio.v3 as iio

    return iio.imread(buffer.getvalue(), extension=".png")[..., :3]
