"""Every figure a chapter shows has text a reader can read: at least 9 pt as displayed on the page.

The book is read in a browser; on a 1280 px wide window its content column is 676 CSS px wide. A notebook
shows a matplotlib figure as a PNG drawn at 100 dpi with bbox_inches="tight", so a figure whose tight width
is W inches is 100 W px wide and is displayed at min(100 W, 676) px: anything wider than 6.76 in is shrunk
to the column, and its text with it. A font of f pt then shows at f * min(100, 676 / W) / 96 pt (a CSS pt
is 96 / 72 CSS px). The test asks for 9 pt there, for every text of every figure: titles, axis and tick
labels, legends, annotations, the captions of image tiles. A figure at most 6.7 in wide meets it with
fonts of 9 pt or more (shown at 9.4 pt); a wider one needs proportionally larger fonts.

Each notebook is executed in fast mode with one extra cell that logs every displayed figure as the book
draws it (tests/_figure_audit.py). The execution is the one tests/book/test_notebooks.py checks, shared
through the ``fast_notebook_run`` fixture of tests/conftest.py: in one session the notebooks run once.
Figures of cells the book removes (tags remove-cell, remove-output) are not checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _figure_audit import AUDIT_CELL_START, COLUMN_PX, MIN_PT, displayed_pt, source_sha1

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[01][0-9]_*.ipynb"))
REMOVED = {"remove-cell", "remove-output"}


def test_the_check_measures_as_described():
    assert displayed_pt(9, 670, 100) == pytest.approx(9 * 100 / 96)  # narrower than the column: as drawn
    assert displayed_pt(9, 2 * COLUMN_PX, 100) == pytest.approx(9 * 50 / 96)  # twice as wide: half the size
    assert displayed_pt(12, 2 * COLUMN_PX, 100) < MIN_PT < displayed_pt(9, COLUMN_PX, 100)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figure_text_is_at_least_9_pt_on_the_page(path, fast_notebook_run):
    run = fast_notebook_run(path)
    if run.error is not None:
        pytest.fail(f"{path.name} failed in fast mode (see test_notebooks.py):\n{run.error}")
    code = [(k, cell) for k, cell in enumerate(run.notebook.cells) if cell.cell_type == "code"]
    audit = next(k for k, cell in code if cell.source.startswith(AUDIT_CELL_START))
    # the cell a figure was logged in -> (its index in the notebook file, its tags)
    cells = {}
    for k, cell in code:
        cells.setdefault(source_sha1(cell.source), (k - (k > audit), set(cell.metadata.get("tags", []))))
    shown = [fig for fig in run.figures if not cells.get(fig["cell_sha1"], (None, set()))[1] & REMOVED]
    assert shown, f"{path.name} displayed no figure (is the audit cell in the right place?)"
    problems = []
    for fig in shown:
        small = list(dict.fromkeys((size, text) for size, text in fig["texts"]
                                   if displayed_pt(size, fig["width_px"], fig["dpi"]) < MIN_PT))
        if small:
            width = fig["width_px"] / fig["dpi"]
            listed = ", ".join(f"{text[:40]!r} ({size:g} pt -> {displayed_pt(size, fig['width_px'], fig['dpi']):.1f})"
                               for size, text in small[:4])
            index = cells.get(fig["cell_sha1"], ("?", None))[0]
            problems.append(f"  figure {fig['title'][:60]!r} (cell {index} of the file, counting from 0; "
                            f"{width:.2f} in wide): {listed}")
    assert not problems, (f"{path.name}: text below {MIN_PT:g} pt as shown in the {COLUMN_PX} px column (draw "
                          "a figure at most vae_lesson.infra.plots.COLUMN_WIDTH = 6.6 in wide with fonts of at "
                          "least 9 pt, or enlarge the fonts of a wider one):\n" + "\n".join(problems))
