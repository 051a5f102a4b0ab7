"""The colour-image branches of chapters 08 and 11 run for real, offline.

Those branches need CIFAR-10 (and, in 07, optionally STL-10), which can only be downloaded, so on a machine
without network they are skipped and tests/book/test_notebooks.py never executes them. Here small synthetic archives
in the real formats (smooth coloured gradients and discs, see tests/_archives.py) are served from 127.0.0.1 and
each notebook is executed in fast mode with the mirrors pointed at that server. The only change to a notebook is
one extra cell after the install cell that puts the synthetic archive's MD5 and image counts into the data
set's spec (what the unit tests in tests/unit/test_data.py do with monkeypatch), plus, in 07, switching the STL-10
branch on; download, checksum, decoding, training and plotting all run unchanged.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from _archives import LocalServer, cifar_tar, md5_of, smooth_colour_images, stl_tar

ROOT = Path(__file__).resolve().parents[2]
CIFAR_TRAIN, CIFAR_TEST = 300, 100      # 5 batches of 60: more than the notebooks' fast-mode subsets
STL_TRAIN, STL_TEST = 200, 100
MAX_SECONDS = 120                       # a fast-mode run takes well under a minute; this is a loose guard


@pytest.fixture(scope="module")
def archives():
    """{data set: (file name, archive bytes, md5, n_train, n_test)} for CIFAR-10 and STL-10."""
    from vae_lesson.infra import data

    rng = np.random.default_rng(0)
    cifar = cifar_tar(smooth_colour_images(CIFAR_TRAIN, 32, seed=1), rng.integers(0, 10, CIFAR_TRAIN),
                      smooth_colour_images(CIFAR_TEST, 32, seed=2), rng.integers(0, 10, CIFAR_TEST))
    stl = stl_tar(smooth_colour_images(STL_TRAIN, 96, seed=3), rng.integers(0, 10, STL_TRAIN),
                  smooth_colour_images(STL_TEST, 96, seed=4), rng.integers(0, 10, STL_TEST))
    return {"CIFAR10": (data.CIFAR10_SPEC.file_name, cifar, md5_of(cifar), CIFAR_TRAIN, CIFAR_TEST),
            "STL10": (data.STL10_SPEC.file_name, stl, md5_of(stl), STL_TRAIN, STL_TEST)}


@pytest.fixture(scope="module")
def server(archives):
    with LocalServer() as local:
        for name, (file_name, blob, *_) in archives.items():
            local.serve(name.lower(), {file_name: blob})
        yield local


def spec_cell(archives, names) -> nbformat.NotebookNode:
    """The one inserted cell: the synthetic archives' checksums and sizes, as in tests/unit/test_data.py."""
    lines = ["# Test only: point the data set specs at the synthetic archives served on 127.0.0.1.",
             "import dataclasses", "import vae_lesson.infra.data", ""]
    for name in names:
        _, _, md5, n_train, n_test = archives[name]
        spec = f"vae_lesson.infra.data.{name}_SPEC"
        lines.append(f"{spec} = dataclasses.replace({spec}, md5={md5!r}, n_train={n_train}, n_test={n_test})")
    return nbformat.v4.new_code_cell("\n".join(lines))


def run_notebook(name, tmp_path, monkeypatch, server, archives, specs, replace=None):
    """Execute notebooks/<name>.ipynb in fast mode with its files in tmp_path; return (notebook, seconds)."""
    for var, value in {"VAE_LESSON_FAST": "1", "VAE_LESSON_OUTPUT_DIR": str(tmp_path / "generated"),
                       "VAE_LESSON_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
                       "VAE_LESSON_DATA_DIR": str(tmp_path / "data"),
                       "VAE_LESSON_CIFAR10_MIRRORS": server.url("cifar10"),
                       "VAE_LESSON_STL10_MIRRORS": server.url("stl10"),
                       # MNIST then falls back to its offline subset at once, as on any machine without network
                       "VAE_LESSON_MNIST_MIRRORS": server.url("none"),
                       "VAE_LESSON_FASHION_MIRRORS": server.url("none")}.items():
        monkeypatch.setenv(var, value)
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    for old, new in (replace or {}).items():
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert len(cells) == 1, f"{name}: expected one cell containing {old!r}"
        cells[0].source = cells[0].source.replace(old, new)
    assert "remove-cell" in nb.cells[1].metadata.get("tags", []), "cell 1 is the install cell"
    nb.cells.insert(2, spec_cell(archives, specs))
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name} failed with the colour data:\n{str(exc)[-3000:]}")
    seconds = time.perf_counter() - started
    print(f"{name}: {seconds:.1f} s in fast mode with the colour branches on")
    nbformat.write(nb, tmp_path / "executed.ipynb")  # for a look at the figures after a failure
    return nb, seconds


def text_of(cell) -> str:
    return "".join(o.get("text", "") if o.output_type == "stream" else "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def n_png(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", [])
               if o.output_type in ("display_data", "execute_result"))


def cell_with(nb, fragment):
    cells = [c for c in nb.cells if c.cell_type == "code" and fragment in c.source]
    assert len(cells) == 1, f"expected one code cell containing {fragment!r}, found {len(cells)}"
    return cells[0]


def assert_no_skip_lines(nb):
    """No error, and no printed line about the colour data sets saying they were skipped or not available."""
    all_text = "\n".join(text_of(c) for c in nb.cells if c.cell_type == "code")
    for line in all_text.splitlines():
        if "CIFAR" in line or "STL" in line:
            assert not re.search(r"skipped|not available|no network", line, re.I), f"colour data skipped: {line}"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    return all_text


def test_11_trains_the_vq_vae_on_cifar10(tmp_path, monkeypatch, server, archives):
    n_requests = len(server.requests)
    nb, seconds = run_notebook("11_vq_vae", tmp_path, monkeypatch, server, archives, ["CIFAR10"])
    text = assert_no_skip_lines(nb)
    load = cell_with(nb, "vl.load_cifar10()")
    assert "full CIFAR-10 (400 colour images, 32x32) downloaded into the cache" in text_of(load)
    assert f"training on 200 of {CIFAR_TRAIN} images of shape (3, 32, 32)" in text_of(load)
    assert server.requests[n_requests:] == ["/cifar10/cifar-10-python.tar.gz"]  # fetched once, for real
    assert (tmp_path / "data" / "cifar-10" / "cifar-10-python.tar.gz").is_file()
    train = cell_with(nb, "model_c = vqvae.VQVAE(3,")
    assert "reconstruction MSE" in text_of(train) and "per pixel" in text_of(train)
    assert n_png(cell_with(nb, "image_rows({\"test image\": shown")) == 1   # originals next to reconstructions
    usage = cell_with(nb, "vqvae.codebook_usage(model_c")
    assert n_png(usage) == 2 and "codes are used on the 100 test images" in text_of(usage)
    # the fast profile keeps its models apart from full-length ones (vl.checkpoint_dir)
    assert any(p.name.startswith("vqvae_cifar10_") for p in (tmp_path / "checkpoints" / "fast").iterdir())
    assert "VQ-VAE" in text and seconds < MAX_SECONDS


def test_08_trains_the_conv_vae_on_cifar10_and_stl10(tmp_path, monkeypatch, server, archives):
    n_requests = len(server.requests)
    nb, seconds = run_notebook("08_conv_vae", tmp_path, monkeypatch, server, archives, ["CIFAR10", "STL10"],
                               replace={"TRY_STL10 = scaled(False, fast=False, full=True)": "TRY_STL10 = True"})
    assert_no_skip_lines(nb)
    load = text_of(cell_with(nb, "colour_loaders = {"))
    assert "full CIFAR-10 (400 colour images, 32x32) downloaded into the cache" in load
    assert (f"STL-10 labelled images ({STL_TRAIN} train / {STL_TEST} test) downloaded into the cache" in load
            and "shrunk from 96x96 to 48x48" in load)
    assert "CIFAR-10: training on 200 of 300 images of shape (3, 32, 32)" in load
    assert "STL-10 (48x48): training on 200 of 200 images of shape (3, 48, 48)" in load
    assert sorted(r for r in server.requests[n_requests:] if not r.startswith("/none/")) == [
        "/cifar10/cifar-10-python.tar.gz", "/stl10/stl10_binary.tar.gz"]
    colour = cell_with(nb, "for name, (x_train, x_test) in colour.items()")
    out = text_of(colour)
    assert "CIFAR-10: 1 epochs" in out and "STL-10 (48x48): 1 epochs" in out and "nats per pixel" in out
    assert n_png(colour) == 3  # one row figure per data set, then the loss per pixel of all data sets
    assert seconds < MAX_SECONDS
