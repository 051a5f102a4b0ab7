"""Every chapter has at least three exercises of graded difficulty, one conceptual, one computational and one
open-ended (the kind is in the title), each with a solution; the solutions' code on the prose pages runs (the
notebooks' solutions run after their chapter, in tests/book/test_notebooks.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import toc_pages  # noqa: E402
from _solutions import solution_blocks  # noqa: E402

PAGES = [p for p in toc_pages(ROOT) if p not in ("book/references", "book/glossary")]


def _markdown(page: str) -> str:
    md, ipynb = ROOT / f"{page}.md", ROOT / f"{page}.ipynb"
    if md.is_file():
        return md.read_text()
    return "\n".join(c.source for c in nbformat.read(ipynb, as_version=4).cells if c.cell_type == "markdown")


@pytest.mark.parametrize("page", PAGES)
def test_three_kinds_of_exercise_each_with_a_solution(page):
    text = _markdown(page)
    titles = re.findall(r"^`{3,}\{exercise\}\s*(.*)$", text, flags=re.M)
    labels = re.findall(r"^`{3,}\{exercise\}.*\n:label: (\S+)", text, flags=re.M)
    solved = set(re.findall(r"^`{3,}\{solution\}\s*(\S+)", text, flags=re.M))
    assert len(titles) >= 3 and len(labels) == len(titles)
    assert set(labels) <= solved, f"exercises without a solution: {sorted(set(labels) - solved)}"
    kinds = " ".join(titles).lower()
    for kind in ("conceptual", "computational", "open"):
        assert kind in kinds, f"{page}: no {kind} exercise among {titles}"


PROSE_WITH_CODE = [p for p in PAGES if (ROOT / f"{p}.md").is_file() and solution_blocks(_markdown(p))]

# Runs the blocks one after the other in one namespace, as a student pasting them into one session would,
# and names the block that raised.
RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for label, code in json.load(sys.stdin):
    try:
        exec(compile(code, label, "exec"), namespace)
    except Exception as exc:
        print(f"solution {label}: {type(exc).__name__}: {exc}")
        sys.exit(1)
"""


@pytest.mark.parametrize("page", PROSE_WITH_CODE)
def test_the_prose_pages_solution_code_runs(page, tmp_path):
    blocks = solution_blocks(_markdown(page))
    env = {**os.environ, "VAE_LESSON_FAST": "1", "MPLBACKEND": "Agg",
           "VAE_LESSON_OUTPUT_DIR": str(tmp_path / "generated")}
    result = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(blocks), capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, f"{page}: {result.stdout[-2000:]}{result.stderr[-2000:]}"


def test_the_prose_pages_with_solution_code_are_found():
    assert "book/elbo" in PROSE_WITH_CODE  # its Exercises 3.2 and 3.3 check a KL term and a grey pixel
