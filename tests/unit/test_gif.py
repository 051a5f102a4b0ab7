"""GIFs: frames written with write_gif decode back to the same pixels, deterministically and atomically."""

import hashlib

import numpy as np
import pytest
import torch

from vae_lesson.infra.gif import figure_to_array, read_gif, to_uint8_frames, write_gif


def _frames(n=6, h=7, w=5, seed=0):
    return np.random.default_rng(seed).random((n, h, w))


def test_greyscale_frames_round_trip_exactly(tmp_path):
    frames = _frames()
    path = write_gif(frames, tmp_path / "a.gif", fps=4, scale=3)
    decoded = read_gif(path)
    assert decoded.shape[:3] == (6, 21, 15)  # frame count and scaled size
    expected = to_uint8_frames(frames, scale=3)
    for channel in range(3):
        assert np.array_equal(decoded[..., channel], expected)


def test_torch_frames_and_rgb_frames(tmp_path):
    frames = [torch.rand(4, 4) for _ in range(3)]  # (3, 4, 4) must not be mistaken for one RGBA image
    assert read_gif(write_gif(frames, tmp_path / "t.gif")).shape[:3] == (3, 4, 4)
    rgb = (np.random.default_rng(1).random((2, 5, 5, 3)) * 255).astype(np.uint8)
    decoded = read_gif(write_gif(rgb, tmp_path / "c.gif"))
    assert decoded.shape[:3] == (2, 5, 5)
    assert np.abs(decoded[..., :3].astype(int) - rgb).max() <= 40  # GIF palettes quantize colour


def test_gif_is_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = write_gif(_frames(), tmp_path / "a.gif")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_same_frames_give_the_same_bytes(tmp_path):
    a = write_gif(_frames(), tmp_path / "a.gif", fps=5)
    b = write_gif(_frames(), tmp_path / "b.gif", fps=5)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_frame_duration_follows_fps(tmp_path):
    import imageio.v3 as iio

    path = write_gif(_frames(), tmp_path / "a.gif", fps=4)
    assert iio.immeta(path, index=0, extension=".gif")["duration"] == pytest.approx(250, abs=10)


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    import imageio.v3 as iio

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(iio, "imwrite", broken)
    with pytest.raises(KeyboardInterrupt):
        write_gif(_frames(), tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []


def test_figure_to_array_renders_rgb():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [0, 1])
    frame = figure_to_array(fig, dpi=50)
    assert frame.shape == (50, 100, 3) and frame.dtype == np.uint8
    assert frame.min() < 128 < frame.max()  # a line on a white background


@pytest.mark.parametrize("frames,message", [
    (np.zeros((0, 4, 4)), "non-empty"),
    (np.full((2, 4, 4), 2.0), r"\[0, 1\]"),
    (np.full((2, 4, 4), np.nan), "NaN or infinite"),
    (np.zeros((2, 4, 4), dtype=np.int64), "uint8 or floats"),
    ([np.zeros((4, 4)), np.zeros((5, 4))], "same shape"),
    (np.zeros((2, 4, 4, 2)), r"\(H, W, 3\)"),
])
def test_bad_frames_are_rejected(tmp_path, frames, message):
    with pytest.raises((ValueError, TypeError), match=message):
        write_gif(frames, tmp_path / "bad.gif")
