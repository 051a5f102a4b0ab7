import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own checkpoint directory; nothing is written to the user's cache."""
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    yield


@pytest.fixture
def double():
    """Run a test in float64 so comparisons with closed forms are tight."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The whole book built in fast mode into a temporary folder, once per session: its _build/html folder.

    As `make book` does: the notebooks are executed into jupyter-book's cache first, two at a time, then
    rendered with -W. Shared by tests/book/test_book_build.py and tests/book/test_browser.py.
    """
    if not (ROOT / "_build" / "vendor" / "mathjax" / "tex-chtml.js").exists():
        pytest.skip("MathJax is not vendored yet: run `make mathjax` (make test does)")
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "VAE_LESSON_FAST": "1", "VAE_LESSON_OUTPUT_DIR": str(out / "generated"),
           "VAE_LESSON_CHECKPOINT_DIR": str(out / "checkpoints")}
    executed = subprocess.run([sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), "--build",
                               str(out / "_build")], env=env, capture_output=True, text=True, timeout=1800)
    assert executed.returncode == 0, f"executing the notebooks failed:\n{executed.stdout[-3000:]}{executed.stderr[-6000:]}"
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"],
                            env=env, capture_output=True, text=True, timeout=1800)
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"the book build failed:\n{log}"
    # every notebook came from the cache: jupyter-book recognized what the tool executed
    assert "Executing notebook" not in result.stdout + result.stderr, log
    yield out / "_build" / "html"
    shutil.rmtree(out, ignore_errors=True)


FOLDER_MARKERS = {"unit": "unit", "properties": "properties", "book": "book"}


def pytest_collection_modifyitems(config, items):
    """Mark each test by its folder: ``pytest -m unit`` runs the fast unit tests alone."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, FOLDER_MARKERS[folder]))


def pytest_report_header(config):
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, chainer python: {os.environ.get('VAE_LESSON_CHAINER_PYTHON', 'not set')}"
