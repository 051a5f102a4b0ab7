"""Every chapter notebook runs top to bottom (in fast mode) and has the shape a reader expects.

VAE_LESSON_FAST=1 shrinks epochs and data so a broken notebook fails the suite in seconds; the book
build runs the same notebooks at full size.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
INSTALL_LINES = (
    'if importlib.util.find_spec("vae_lesson") is None:',
    'source = os.environ.get("VAE_LESSON_PIP_SOURCE", "git+https://github.com/vae-book/vae-book@main")',
)


def _ids(paths):
    return [p.stem for p in paths]


def test_the_toc_lists_every_notebook():
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"file: notebooks/{path.stem}" in toc, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = nb.cells
    first = cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the first cell is the chapter title"
    assert f"colab.research.google.com/github/vae-book/vae-book/blob/main/notebooks/{path.name}" in first.source
    assert "Learning objectives" in first.source
    setup = cells[1]
    assert setup.cell_type == "code" and "remove-cell" in setup.metadata.get("tags", [])
    assert all(line in setup.source for line in INSTALL_LINES), "the second cell installs vae_lesson only if missing"
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "## Summary" in text
    exercises = re.findall(r"```\{exercise\}", text)
    solutions = re.findall(r"```\{solution\} (\S+)", text)
    assert len(exercises) >= 3 and len(solutions) == len(exercises), "at least three exercises, each with a solution"
    assert all(":class: dropdown" in block for block in text.split("```{solution}")[1:])
    for cell in cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "notebooks are stored without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_fast_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "generated"))
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    # the build-times appendix reads what tools/execute_notebooks.py records during a build: give it a record
    times = {"seconds": {p.stem: 10.0 + i for i, p in enumerate(NOTEBOOKS)}, "wall_seconds": 60.0, "jobs": 2,
             "threads_per_notebook": 1, "machine": {"cpu": "test CPU", "cores": 2, "platform": "test",
                                                    "python": "3", "torch": "2"}}
    (tmp_path / "execution_times.json").write_text(json.dumps(times))
    monkeypatch.setenv("VAE_LESSON_EXECUTION_TIMES", str(tmp_path / "execution_times.json"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed in fast mode:\n{str(exc)[-3000:]}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type in ("display_data", "execute_result") and any(k.startswith("image/") for k in o.get("data", {}))]
    assert images, f"{path.name} shows no figure"
    (tmp_path / "executed.ipynb").write_text(json.dumps(nb))
