"""Two cold runs of a chapter produce byte-identical figures and GIFs: the seeds, the thread count and the image
writers leave nothing (no timestamp, no random order) that changes from one build to the next."""

import base64
import hashlib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def _run(notebook: Path, folder: Path, monkeypatch) -> tuple[list, dict]:
    """Execute ``notebook`` in fast mode with empty checkpoint and output folders, one thread, as the build does."""
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(folder / "generated"))
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(folder / "checkpoints"))
    folder.mkdir()
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    pngs = [base64.b64decode(o["data"]["image/png"]) for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    files = {p.relative_to(folder / "generated").as_posix(): p.read_bytes()
             for p in sorted((folder / "generated").rglob("*")) if p.is_file() and p.suffix in (".gif", ".png")}
    return pngs, files


@pytest.mark.parametrize("name", ["05_vae"])
def test_two_cold_runs_give_identical_figures_and_gifs(name, tmp_path, monkeypatch):
    notebook = ROOT / "notebooks" / f"{name}.ipynb"
    first_pngs, first_files = _run(notebook, tmp_path / "first", monkeypatch)
    second_pngs, second_files = _run(notebook, tmp_path / "second", monkeypatch)
    assert len(first_pngs) >= 5 and any(k.endswith(".gif") for k in first_files), "the chapter shows figures and GIFs"
    assert len(first_pngs) == len(second_pngs)
    differing = [i for i, (a, b) in enumerate(zip(first_pngs, second_pngs)) if a != b]
    assert not differing, f"figures {differing} differ between two runs"
    assert first_files.keys() == second_files.keys()
    for key in first_files:
        assert hashlib.sha256(first_files[key]).digest() == hashlib.sha256(second_files[key]).digest(), \
            f"{key} differs between two runs"
    # and the PNGs carry no time stamp (matplotlib writes one only if asked; check there is none)
    assert all(b"tIME" not in png and b"Creation Time" not in png for png in first_pngs)
