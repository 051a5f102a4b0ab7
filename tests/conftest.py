import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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


@dataclass
class FastRun:
    """One execution of a chapter notebook in fast mode."""

    notebook: object  # the nbformat NotebookNode, executed: outputs, the audit cell and the solutions' code added
    error: Optional[str]  # the end of the error message if a cell failed, else None
    figures: list  # what the page shows of each displayed Figure (tests/_figure_audit.py)
    folder: Path  # the run's working directory; executed.ipynb is saved there


def _execute_fast(path: Path, folder: Path) -> FastRun:
    # imported here: the unit tests need no Jupyter machinery
    import nbformat
    from _figure_audit import insert_audit_cell, read_log
    from _solutions import append_solution_cells
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    log = folder / "figures.jsonl"
    insert_audit_cell(nb, log)
    append_solution_cells(nb)  # the exercises' solution code, run after the chapter (tests/_solutions.py)
    # the build-times appendix reads what tools/execute_notebooks.py records during a build: give it a record
    stems = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    times = {"seconds": {stem: 10.0 + i for i, stem in enumerate(stems)}, "wall_seconds": 60.0, "jobs": 2,
             "threads_per_notebook": 1, "machine": {"cpu": "test CPU", "cores": 2, "platform": "test",
                                                    "python": "3", "torch": "2"}}
    (folder / "execution_times.json").write_text(json.dumps(times))
    error = None
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("VAE_LESSON_FAST", "1")
        monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(folder / "generated"))
        monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(folder / "checkpoints"))
        monkeypatch.setenv("VAE_LESSON_EXECUTION_TIMES", str(folder / "execution_times.json"))
        client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
        try:
            client.execute()
        except CellExecutionError as exc:
            error = str(exc)[-3000:]
    (folder / "executed.ipynb").write_text(json.dumps(nb))  # for a look at the figures after a failure
    return FastRun(nb, error, read_log(log), folder)


@pytest.fixture(scope="session")
def fast_notebook_run(tmp_path_factory):
    """``fast_notebook_run(path)``: notebooks/<path> executed in fast mode, at most once per session (a FastRun).

    VAE_LESSON_FAST=1 shrinks epochs and data; outputs and checkpoints go to a temporary folder. The kernel
    logs every Figure it displays (tests/_figure_audit.py). tests/book/test_notebooks.py checks that the run
    succeeds and shows figures, tests/book/test_figure_text.py that the figures' text is large enough on the
    page: run together, they share one execution of each notebook (about 3 minutes for all of them).
    """
    runs = {}

    def run(path) -> FastRun:
        path = Path(path).resolve()
        if path not in runs:
            runs[path] = _execute_fast(path, tmp_path_factory.mktemp(path.stem))
        return runs[path]

    return run


FOLDER_MARKERS = {"unit": "unit", "properties": "properties", "book": "book"}


def pytest_collection_modifyitems(config, items):
    """Mark each test by its folder: ``pytest -m unit`` runs the fast unit tests alone."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, FOLDER_MARKERS[folder]))


def pytest_report_header(config):
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, chainer python: {os.environ.get('VAE_LESSON_CHAINER_PYTHON', 'not set')}"
