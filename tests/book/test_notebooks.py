"""Every chapter notebook runs top to bottom (in fast mode) and has the shape a reader expects.

VAE_LESSON_FAST=1 shrinks epochs and data so a broken notebook fails the suite in seconds; the book
build runs the same notebooks at full size.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
from book_links import repository  # noqa: E402
from _solutions import SOLUTION_TAG, solution_blocks, solution_errors  # noqa: E402

REPO = repository(ROOT)  # _config.yml's repository.url and branch
INSTALL_LINES = (
    'if importlib.util.find_spec("vae_lesson") is None:',
    f'source = os.environ.get("VAE_LESSON_PIP_SOURCE", "{REPO.pip_source}")',
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
    assert REPO.colab(f"notebooks/{path.name}") in first.source
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
def test_notebook_runs_in_fast_mode(path, fast_notebook_run):
    # the execution is shared with tests/book/test_figure_text.py (the fixture is in tests/conftest.py)
    run = fast_notebook_run(path)
    if run.error is not None:
        pytest.fail(f"{path.name} failed in fast mode:\n{run.error}")
    nb = run.notebook
    errors = [o for c in nb.cells if c.cell_type == "code" and SOLUTION_TAG not in c.metadata.get("tags", [])
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type in ("display_data", "execute_result") and any(k.startswith("image/") for k in o.get("data", {}))]
    assert images, f"{path.name} shows no figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_the_solutions_code_runs_after_the_chapter(path, fast_notebook_run):
    """Each solution's ```python block, run in fast mode after the chapter's last cell, as a student would
    paste it: a solution that raises is a wrong solution."""
    run = fast_notebook_run(path)
    if run.error is not None:
        pytest.fail(f"{path.name} failed in fast mode (see test_notebook_runs_in_fast_mode):\n{run.error}")
    problems = solution_errors(run.notebook)
    assert not problems, f"{path.name}: " + "\n".join(problems)


def test_solution_blocks_are_found_in_nested_fences():
    text = ("````{solution} ex-a\n:class: dropdown\nText.\n```python\nx = 1\n```\nMore.\n```python\ny = x\n```\n"
            "````\n\n```{solution} ex-b\n:class: dropdown\nNo code.\n```\n\n```python\nnot_a_solution()\n```\n")
    assert solution_blocks(text) == [("ex-a", "x = 1"), ("ex-a", "y = x")]
