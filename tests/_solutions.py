"""The Python code of the exercises' solutions, so that the tests can run it as a student would.

A solution is a ``{solution} <label>`` directive in a chapter's markdown; the code a student
copies is each ```` ```python ```` block inside it. ``solution_blocks`` finds them;
``append_solution_cells`` adds them to a notebook as code cells after the chapter's last cell (the
state a student has when doing the exercises), tagged so that a failing solution neither stops the
run nor counts as a figure of the page (the ``fast_notebook_run`` fixture in tests/conftest.py
uses it).
"""

from __future__ import annotations

import re

import nbformat

SOLUTION_TAG = "solution-code"
# raises-exception: nbclient records the error and goes on; remove-output: not a figure of the page
TAGS = [SOLUTION_TAG, "raises-exception", "remove-output"]

_SOLUTION = re.compile(r"^(`{3,})\{solution\}\s*(\S+)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
_PYTHON = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def solution_blocks(markdown: str) -> list[tuple[str, str]]:
    """(label, code) for every ```python block inside a solution, in the order of the text."""
    return [
        (label, code.rstrip("\n"))
        for _, label, body in _SOLUTION.findall(markdown)
        for code in _PYTHON.findall(body)
    ]


def append_solution_cells(nb: nbformat.NotebookNode) -> int:
    """Append each solution's code to ``nb`` as a tagged code cell; returns how many."""
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    blocks = solution_blocks(markdown)
    for label, code in blocks:
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["tags"] = list(TAGS)
        cell.metadata["solution"] = label
        nb.cells.append(cell)
    return len(blocks)


def solution_errors(nb: nbformat.NotebookNode) -> list[str]:
    """One line per solution cell of an executed notebook that raised: its label and the error."""
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code" or SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                first = cell.source.splitlines()[0] if cell.source else ""
                problems.append(
                    f"solution {cell.metadata['solution']} (code starting {first[:50]!r}): "
                    f"{output.ename}: {output.evalue[:300]}"
                )
    return problems
