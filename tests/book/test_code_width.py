"""No code block of the book scrolls sideways in the rendered book.

At a 1280 px window a code block of the book shows about 75 characters of a line (measured in
Chromium; about 72 inside a solution's dropdown); the book keeps every line of a code cell that the
page shows (folded ``hide-input`` cells included), and of every code block written in the text
(solutions, the prose pages), to 68, with room to spare. ``tests/book/test_browser.py`` checks the
rendered blocks themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 68
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROSE_PAGES = sorted((ROOT / "book").glob("*.md"))
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)")


def long_lines(notebook: Path, width: int = WIDTH) -> list[str]:
    """'cell i: line' for each line over ``width`` characters in a code cell the page shows."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-cell", "remove-input"} & set(tags):
            continue
        for line in "".join(cell["source"]).splitlines():
            if len(line) > width:
                found.append(f"cell {index} ({len(line)} characters): {line}")
    return found


def markdown_code_lines(text: str) -> list[str]:
    """The lines of every code block in MyST markdown: a fence with a language or none (```python,
    ```), or a {code-block} directive. Other directives ({exercise}, {solution}, {math}, ...) are
    looked into, not counted as code."""
    lines, code, directives = [], None, []
    for line in text.splitlines():
        fence = FENCE.match(line)
        if code is not None:  # inside a code block: until the fence that closes it
            if fence and fence.group(1) == code and not fence.group(2):
                code = None
            else:
                lines.append(line)
        elif fence and fence.group(2).startswith("{") and not fence.group(2).startswith("{code"):
            directives.append(fence.group(1))
        elif fence and not fence.group(2) and directives and fence.group(1) == directives[-1]:
            directives.pop()
        elif fence:
            code = fence.group(1)
    return lines


def long_text_code_lines(markdown: str, width: int = WIDTH) -> list[str]:
    return [f"({len(line)} characters): {line}" for line in markdown_code_lines(markdown) if len(line) > width]


def _notebook_markdown(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_shown_code_line_fits_the_page(notebook):
    assert long_lines(notebook) == []
    assert long_text_code_lines(_notebook_markdown(notebook)) == []  # solutions' code


@pytest.mark.parametrize("page", PROSE_PAGES, ids=[p.stem for p in PROSE_PAGES])
def test_every_code_line_of_a_prose_page_fits_the_page(page):
    assert long_text_code_lines(page.read_text(encoding="utf-8")) == []


def test_the_check_finds_a_long_line_of_code_in_the_text():
    long = "y = " + "1 + " * 20 + "1"
    text = "\n".join([
        "A paragraph longer than the limit, " * 4,
        "````{solution} ex-1", ":class: dropdown", "Prose " * 20,
        "```python", "x = 1", long, "```", "````",
        "```{math}", r"\frac{a}{b} + " * 10, "```",
        "```", long + " + 2", "```",
    ])
    assert markdown_code_lines(text) == ["x = 1", long, long + " + 2"]
    assert [line.split(")")[0] for line in long_text_code_lines(text)] == ["(85 characters", "(89 characters"]


def test_the_check_finds_a_long_line(tmp_path):
    cells = [{"cell_type": "code", "metadata": {}, "source": ["x = 1\n", "y = " + "1 + " * 20 + "1"]},
             {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": ["z = " + "2 + " * 20]}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert [line.split(" ")[1] for line in long_lines(path)] == ["0"]  # the shown cell only
