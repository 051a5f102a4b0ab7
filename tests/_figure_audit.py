"""What a reader sees of each figure a notebook displays: its width in pixels and its font sizes.

A chapter notebook shows a matplotlib Figure as a PNG drawn at the figure's dpi (100) with
bbox_inches="tight", exactly what IPython's ``print_figure`` makes. The book's page shows that PNG at
its own size, or shrunk to the content column when it is wider: on a 1280 px wide browser window
that column is ``COLUMN_PX`` = 676 CSS px wide. A font of f pt, drawn at dpi D, is f * D / 72 pixels
tall in the PNG and so, after the shrinking, f * D * min(1, 676 / width) / 96 pt on the screen (a
CSS pt is 96 / 72 CSS px). ``MIN_PT`` = 9 is the smallest size the book accepts there: a figure at
most 6.76 in wide needs fonts of at least 8.64 pt, a wider one proportionally larger fonts.

``insert_audit_cell`` adds one cell to a notebook that makes the kernel log every displayed Figure
(used by the ``fast_notebook_run`` fixture in tests/conftest.py); ``read_log`` reads that log back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat

COLUMN_PX = 676  # CSS px: the content column of the book's page on a 1280 px wide window
MIN_PT = 9.0  # the smallest text a figure may show, in pt as displayed in that column
CSS_PX_PER_PT = 96 / 72

AUDIT_CELL_START = "# Test only (tests/_figure_audit.py)"
HOOK = r'''# Test only (tests/_figure_audit.py): log what the book shows of every displayed Figure.
import base64 as _audit_base64
import hashlib as _audit_hashlib
import json as _audit_json
import struct as _audit_struct

import matplotlib.text as _audit_text
from IPython.core.pylabtools import print_figure as _audit_print_figure
from matplotlib.figure import Figure as _AuditFigure

_audit_cell = [None]  # which cell is running: the SHA-1 of its source


def _audit_pre_run_cell(info):
    _audit_cell[0] = _audit_hashlib.sha1(info.raw_cell.encode("utf-8")).hexdigest()


def _audit_figure(fig):
    # the PNG the page shows: drawn (layout included) before the texts are read
    png = _audit_print_figure(fig, fmt="png", base64=True)
    header = _audit_base64.b64decode(png[:32])
    width, height = _audit_struct.unpack(">II", header[16:24])
    texts = sorted(
        (float(t.get_fontsize()), t.get_text())
        for t in fig.findobj(_audit_text.Text)
        if t.get_visible() and t.get_text().strip()
    )
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    record = {
        "cell_sha1": _audit_cell[0],
        "width_px": width,
        "height_px": height,
        "dpi": float(fig.dpi),
        "title": suptitle or (titles[0] if titles else ""),
        "texts": texts[:20],  # the smallest
    }
    with open(%r, "a", encoding="utf-8") as log:
        log.write(_audit_json.dumps(record) + "\n")
    return png


get_ipython().events.register("pre_run_cell", _audit_pre_run_cell)
get_ipython().display_formatter.formatters["image/png"].for_type(
    _AuditFigure, _audit_figure
)
'''


def insert_audit_cell(nb: nbformat.NotebookNode, log_path: Path) -> None:
    """Insert the logging cell after the cell that sets up plotting (``%matplotlib inline`` or the
    import of vae_lesson): set up earlier, that cell would replace the display of Figures again."""
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and ("%matplotlib" in cell.source
                                         or "import vae_lesson as vl" in cell.source):
            nb.cells.insert(k + 1, nbformat.v4.new_code_cell(HOOK % str(log_path)))
            return
    raise AssertionError("no cell runs %matplotlib or imports vae_lesson: where do figures start?")


def source_sha1(source: str) -> str:
    """How the log names a cell: the SHA-1 of its source (``cell_sha1``)."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()


def read_log(log_path: Path) -> list[dict]:
    """One dict per displayed figure, in display order (an empty list if none was shown)."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line]


def displayed_pt(fontsize: float, width_px: int, dpi: float) -> float:
    """The size in pt at which a font of ``fontsize`` pt shows on the page, in a PNG ``width_px``
    wide drawn at ``dpi``."""
    return fontsize * dpi / 72 * min(1.0, COLUMN_PX / width_px) / CSS_PX_PER_PT
