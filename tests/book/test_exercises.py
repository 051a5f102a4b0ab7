"""Every chapter has at least three exercises of graded difficulty, one conceptual, one computational and one
open-ended (the kind is in the title), each with a solution."""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import toc_pages  # noqa: E402

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
