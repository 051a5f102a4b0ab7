"""Property tests with bad input: figures (vae_lesson.infra.plots, conv.image_rows, vqvae.plot_code_usage) and GIFs
(vae_lesson.infra.gif).

The figure helpers take tensors *or* NumPy arrays (or lists), so more bad-looking inputs are fine here: a float64
array of pixels, a list, a bool mask. Those must give the figure (checked: a Figure with one image per input),
everything else a clear error. See tests/_bad_inputs.py for the machinery.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure

from vae_lesson.chapters import conv
from vae_lesson.infra import gif
from vae_lesson.infra import plots
from vae_lesson.chapters import vqvae
from vae_lesson.core.training import History

from _bad_inputs import (PROPERTY_SETTINGS, Case, T, bad_choice, bad_int, bad_number, bad_tensor, count_fixture,
                         run_case, valid)

_count_bad_inputs = count_fixture()

UNUSED_GIF = Path(tempfile.gettempdir()) / "vae_lesson_property_test_never_written.gif"  # every call must fail first
IMAGES = valid(T((3, 4), "unit"), 1)
FRAMES = valid(T((2, 4, 4), "unit"), 2)
Z2, LABELS = valid(T((6, 2)), 3), torch.tensor([0, 1, 2, 0, 1, 2])
GRID, VALUES = valid(T((2, 2, 4), "unit"), 4), torch.tensor([-1.0, 1.0])
IMAGE_SHAPES = bad_choice((2.5, 1.6), (2.0, 2.0), (4,), (1, 2, 2), (0, 4), (-2, -2), (3, 3), "ab", None, (True, 4))
IMAGE_WORDS = {"dtype": ("dtype", "[0, 1]"), "choice": ("(H, W)", "shape"), "type": ("shape", "tensor", "array")}


def _as_array(value):
    """What a figure helper sees: a float array, or None for values it must refuse."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta" or value.is_complex():
            return None
        value = value.float() if value.dtype == torch.bfloat16 else value
        value = value.numpy()
    if isinstance(value, (str, type(None))) or np.iscomplexobj(value):
        return None
    array = np.asarray(value, dtype=float)
    return array if np.isfinite(array).all() else None


def _pixels_ok(array, n_pixels, n_dims=(2, 3)) -> bool:
    return (array is not None and array.ndim in n_dims and len(array) > 0 and array[0].size == n_pixels
            and array.min() >= 0 and array.max() <= 1)


def _figure_of(n_axes, n_pixels=4, n_dims=(2, 3)):
    """Oracle: pixels in [0, 1] of a documented shape (as a tensor of any real dtype, an array or a list)
    give a Figure with one image Axes per image."""
    def oracle(kind, value, result):
        array = _as_array(value)
        if not _pixels_ok(array, n_pixels, n_dims):
            return "reject"
        assert isinstance(result, Figure)
        images = [ax for ax in result.axes if ax.images]
        assert len(images) == (n_axes(array) if callable(n_axes) else n_axes)
    return oracle


def _image_rows_oracle(kind, value, result):
    """(n, H, W) grey images or (n, 1 or 3, H, W) images in [0, 1], of any real dtype: one tile per image."""
    array = _as_array(value)
    if not _pixels_ok(array, array[0].size if array is not None and array.ndim and len(array) else -1, (3, 4)) \
            or (array.ndim == 4 and array.shape[1] not in (1, 3)) or array[0].size == 0:
        return "reject"
    assert isinstance(result, Figure) and len([ax for ax in result.axes if ax.images]) == min(10, len(array))


def _scatter_labels_oracle(kind, value, result):
    """Labels as floats that are whole numbers, as a list or an array, or above the classes seen so far (up to 10
    classes) still label the points."""
    array = _as_array(value)
    if array is None or array.shape != (6,) or (array < 0).any() or (array != np.round(array)).any() or array.max() > 9:
        return "reject"
    assert isinstance(result, Figure)


def _uint8_frames_oracle(kind, value, result):
    """uint8 frames are used as they are; float frames of any precision in [0, 1] are scaled to 0..255."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.uint8:
        np.testing.assert_array_equal(result, value.numpy())
        return None
    array = _as_array(value)
    if (isinstance(value, torch.Tensor) and not value.is_floating_point()) or not _pixels_ok(array, 16, (3,)):
        return "reject"
    np.testing.assert_array_equal(result, np.round(array * 255).astype(np.uint8))


def _code_usage_oracle(kind, value, result):
    array = _as_array(value)
    if array is None or (isinstance(value, torch.Tensor) and value.dtype == torch.bool) or array.ndim != 1 \
            or array.size == 0 or (array < 0).any() or array.sum() <= 0:
        return "reject"
    assert isinstance(result, Figure)


def _history(value):
    return {"train": {"total": value, "kl": [1.0, 0.5]}, "test": {}}


CASES = [
    Case("image_grid(images)", ("images",), bad_tensor(T((3, 4), "unit")), lambda v: plots.image_grid(v, (2, 2)),
         _figure_of(lambda a: len(a)), words=IMAGE_WORDS),
    Case("image_grid(image_shape)", ("image_shape",), IMAGE_SHAPES, lambda v: plots.image_grid(IMAGES, v),
         words=IMAGE_WORDS),
    Case("image_grid(n_cols)", ("n_cols",), bad_int(), lambda v: plots.image_grid(IMAGES, (2, 2), v)),
    Case("image_grid(labels)", ("labels",), bad_choice(["a"], [], 3), lambda v: plots.image_grid(IMAGES, (2, 2), labels=v),
         words={"choice": ("one entry per image", "one per image")}),
    Case("show_reconstructions(x)", ("x",), bad_tensor(T((3, 4), "unit")),
         lambda v: plots.show_reconstructions(v, IMAGES, (2, 2), n=2), _figure_of(4), words=IMAGE_WORDS | {
             "size": ("shape", "same number"), "empty": ("shape",)}),
    Case("show_reconstructions(x_hat)", ("x_hat",), bad_tensor(T((3, 4), "unit")),
         lambda v: plots.show_reconstructions(IMAGES, v, (2, 2), n=2), _figure_of(4),
         words=IMAGE_WORDS | {"size": ("shape", "same number"), "empty": ("shape",)}),
    Case("show_reconstructions(n)", ("n",), bad_int(), lambda v: plots.show_reconstructions(IMAGES, IMAGES, (2, 2), n=v)),
    Case("plot_frame_strip(frames)", ("frames",), bad_tensor(T((3, 4), "unit")),
         lambda v: plots.plot_frame_strip(v, (2, 2)), _figure_of(lambda a: len(a)), words=IMAGE_WORDS),
    Case("plot_frame_strip(ts)", ("ts",), bad_tensor(T((3,))).filter(lambda kv: kv[1] is not None),  # None: no labels
         lambda v: plots.plot_frame_strip(IMAGES, (2, 2), v),
         lambda k, v, r: "reject" if _as_array(v) is None or _as_array(v).size != 3 else None,
         words={"ndim": ("one value per frame",), "size": ("one value per frame",), "empty": ("one value per frame",),
                "type": ("one value per frame", "tensor")}),
    Case("plot_latent_scatter(z)", ("z",), bad_tensor(T((6, 2), fixed=(-1, 0))),
         lambda v: plots.plot_latent_scatter(v, LABELS),
         lambda k, v, r: "reject" if _as_array(v) is None or _as_array(v).shape != (6, 2) else None,
         words={"size": ("shape",), "empty": ("shape",), "type": ("shape", "tensor")}),
    Case("plot_latent_scatter(labels)", ("labels",), bad_tensor(T((6,), "label3", fixed=())),
         lambda v: plots.plot_latent_scatter(Z2, v), _scatter_labels_oracle,
         words={"range": ("non-negative integers",), "dtype": ("dtype", "integers"), "ndim": ("shape",),
                "empty": ("shape",), "type": ("shape", "tensor")}),
    Case("plot_latent_scatter(path)", ("path",), bad_tensor(T((4, 2), fixed=(-1,))),
         lambda v: plots.plot_latent_scatter(Z2, LABELS, path=v),
         lambda k, v, r: "reject" if _as_array(v) is None or _as_array(v).shape != (4, 2) else None,
         words={"empty": ("at least two",), "type": ("shape", "tensor")}),
    Case("plot_latent_map(images_grid)", ("images_grid",), bad_tensor(T((2, 2, 4), "unit", fixed=(0, 1, 2))),
         lambda v: plots.plot_latent_map(v, VALUES, (2, 2)),
         lambda k, v, r: "reject" if not _pixels_ok(_as_array(v), 8, (3, 4)) or _as_array(v).shape[:2] != (2, 2) else None,
         words=IMAGE_WORDS | {"empty": ("shape",)}),
    Case("plot_latent_map(values)", ("values",), bad_tensor(T((2,), "increasing", fixed=(0,))),
         lambda v: plots.plot_latent_map(GRID, v, (2, 2)),
         lambda k, v, r: "reject" if _as_array(v) is None or _as_array(v).size != 2
         or not np.all(np.diff(_as_array(v).reshape(-1)) > 0)
         else None, words={"range": ("increasing",), "size": ("shape",), "empty": ("shape",), "type": ("shape", "tensor"),
                           "dtype": ("dtype", "increasing")}),
    Case("plot_history(history)", ("history",), st.sampled_from([
        ("nan", _history([float("nan"), 1.0])), ("inf", _history([1.0, float("inf")])), ("type", _history(["a", "b"])),
        ("ndim", _history([[1.0, 2.0], [3.0, 4.0]])), ("type", None), ("type", [1.0]), ("empty", {"train": {}}),
        ("nan", History({"total": [float("nan")]}, {}, [0.1]))]),
         plots.plot_history, words={"type": ("History", "numbers", "tensor"), "empty": ("non-empty",)}),
    Case("plot_history(fields)", ("fields",), bad_choice(["elbo"], [], ["total", "loss"]),
         lambda v: plots.plot_history(_history([1.0, 0.5]), fields=v), words={"choice": ("must name",)}),
    # conv.py, vqvae.py
    Case("image_rows(rows)", ("rows",), bad_tensor(T((2, 1, 4, 4), "unit", fixed=(1,))),
         lambda v: conv.image_rows({"a": v}), _image_rows_oracle,
         words=IMAGE_WORDS | {"size": ("shape",), "ndim": ("shape",)}),
    Case("image_rows(n)", ("n",), bad_int(), lambda v: conv.image_rows({"a": FRAMES}, n=v)),
    Case("plot_code_usage(counts)", ("counts",), bad_tensor(T((8,), "positive", fixed=())), vqvae.plot_code_usage,
         _code_usage_oracle, words={"type": ("shape", "tensor"), "range": ("non-negative",)}),
    # gif.py
    Case("to_uint8_frames(frames)", ("frames",), bad_tensor(T((2, 4, 4), "unit", fixed=())), gif.to_uint8_frames,
         _uint8_frames_oracle, words={"ndim": ("shape", "sequence"), "type": ("sequence", "shape"),
                                      "empty": ("empty", "none")}),
    Case("to_uint8_frames(scale)", ("scale",), bad_int(), lambda v: gif.to_uint8_frames(FRAMES, v)),
    Case("write_gif(fps)", ("fps",), bad_number(positive=True), lambda v: gif.write_gif(FRAMES, UNUSED_GIF, fps=v)),
    Case("write_gif(loop)", ("loop",), bad_int(minimum=0), lambda v: gif.write_gif(FRAMES, UNUSED_GIF, loop=v)),
    Case("write_gif(path)", ("path",), bad_choice(None, 3, "", ["a.gif"]).map(lambda kv: ("type", kv[1])),
         lambda v: gif.write_gif(FRAMES, v)),
    Case("figure_to_array(fig)", ("fig",), bad_choice(None, FRAMES, "fig").map(lambda kv: ("type", kv[1])),
         gif.figure_to_array),
    Case("figure_to_array(dpi)", ("dpi",), bad_number(positive=True),
         lambda v: gif.figure_to_array(Figure(figsize=(1, 1)), dpi=v)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_bad_input_gives_a_clear_error_or_a_correct_result(case, data):
    run_case(case, data)
