"""No code block of a chapter scrolls sideways in the rendered book.

At a 1280 px window a code block of the book shows about 75 characters of a line (measured in
Chromium); the book keeps every line of a code cell that the page shows (folded ``hide-input`` cells
included) to 68, with room to spare. ``tests/book/test_browser.py`` checks the rendered blocks themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 68
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_shown_code_line_fits_the_page(notebook):
    assert long_lines(notebook) == []


def test_the_check_finds_a_long_line(tmp_path):
    cells = [{"cell_type": "code", "metadata": {}, "source": ["x = 1\n", "y = " + "1 + " * 20 + "1"]},
             {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": ["z = " + "2 + " * 20]}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert [line.split(" ")[1] for line in long_lines(path)] == ["0"]  # the shown cell only
