"""Animated GIFs from frames, written deterministically and atomically (imageio, no ImageMagick)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .checks import check_int, check_number, check_positive_int

__all__ = ["to_uint8_frames", "write_gif", "read_gif", "figure_to_array"]


def to_uint8_frames(frames, scale: int = 1) -> np.ndarray:
    """Stack ``frames`` into a uint8 array (n, H*scale, W*scale[, 3]).

    Each frame is (H, W) greyscale or (H, W, 3) RGB, either floats in [0, 1] or uint8.
    ``scale`` enlarges each pixel to a scale x scale block, so a 28x28 digit stays crisp.
    """
    check_positive_int(scale, "scale")
    try:
        frames = list(frames)
    except TypeError:
        raise TypeError(
            f"frames must be a sequence of (H, W) or (H, W, 3) images, got {type(frames).__name__}"
        ) from None
    if not frames:
        raise ValueError(
            "frames must be a non-empty sequence of (H, W) or (H, W, 3) images, got none"
        )
    frames = [np.asarray(_frame(f)) for f in frames]
    try:
        array = np.stack(frames)
    except ValueError as exc:
        raise ValueError(f"all frames must have the same shape ({exc})") from None
    if array.ndim not in (3, 4) or array.size == 0 or (array.ndim == 4 and array.shape[-1] != 3):
        raise ValueError(
            "frames must be a non-empty sequence of (H, W) or (H, W, 3) images, "
            f"got shape {array.shape}"
        )
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"frames must be uint8 or floats in [0, 1], got dtype {array.dtype}")
        if not np.isfinite(array).all():
            raise ValueError("float frames must lie in [0, 1], got NaN or infinite values")
        if array.min() < 0 or array.max() > 1:
            raise ValueError(
                f"float frames must lie in [0, 1], got values in [{array.min():g}, {array.max():g}]"
            )
        array = np.round(array * 255).astype(np.uint8)
    if scale > 1:
        array = array.repeat(scale, axis=1).repeat(scale, axis=2)
    return array


def _frame(frame):
    """One frame as something NumPy can read: a tensor is detached and copied to the CPU."""
    if hasattr(frame, "detach"):
        if frame.device.type == "meta":
            raise ValueError(
                "frames must hold values, got a tensor on the meta device (a shape without data)"
            )
        frame = frame.detach().cpu()
        if str(frame.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            frame = frame.float()
    return frame


def write_gif(frames, path, fps: float = 10, scale: int = 1, loop: int = 0) -> Path:
    """Write ``frames`` (see :func:`to_uint8_frames`) as a looping GIF at ``path``; return the path.

    The file is written to a temporary name and renamed, so an interrupted run never leaves half a
    GIF. The same frames always give the same bytes (GIFs carry no timestamp).
    """
    import imageio.v3 as iio

    check_number(fps, "fps", positive=True)
    check_int(loop, "loop", minimum=0)
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise TypeError(f"path must be a file path (str or pathlib.Path), got {path!r:.60}")
    array = to_uint8_frames(frames, scale)
    if (
        array.ndim == 3
    ):  # greyscale: written as RGB, since (n, H, 3) frames would read as colour images
        array = np.repeat(array[..., None], 3, axis=-1)
    with atomic_path(path, suffix=".gif") as tmp:
        iio.imwrite(tmp, array, extension=".gif", duration=1000.0 / fps, loop=loop)
    return path


def read_gif(path) -> np.ndarray:
    """All frames of a GIF as a uint8 array (n, H, W, 3), or (n, H, W, 4) if it has transparency."""
    import imageio.v3 as iio

    return iio.imread(path, index=None, extension=".gif")


def figure_to_array(fig, dpi: int = 80) -> np.ndarray:
    """Render a matplotlib figure as an RGB uint8 array (H, W, 3), e.g. a frame of a 3-D spin."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    check_number(dpi, "dpi", positive=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    import imageio.v3 as iio

    return iio.imread(buffer.getvalue(), extension=".png")[..., :3]
