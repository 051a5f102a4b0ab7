"""The figures of the prose chapters (book/*.md), drawn by vae_lesson and written as SVG files.

    python tools/make_prose_figures.py            # writes book/figures/*.svg
    python tools/make_prose_figures.py --out DIR  # elsewhere (the test compares the two)

The notebooks draw their figures when the book is built; the Markdown chapters cannot run code, so
their figures are drawn by the functions below and committed. The SVG files are deterministic (no
date, a fixed hash salt): drawing them again with the same matplotlib gives the same bytes, and
``tests/unit/test_prose_figures.py`` fails when a committed file differs from what the code draws.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

from vae_lesson.chapters.gap_example import gap_figure  # noqa: E402
from vae_lesson.infra.atomic import atomic_path  # noqa: E402
from vae_lesson.infra.diagrams import vae_overview  # noqa: E402

FIGURES = {
    "vae_overview.svg": vae_overview,  # book/intro.md
    "elbo_gap.svg": gap_figure,  # book/elbo.md
}
OUT = ROOT / "book" / "figures"


def svg_bytes(draw) -> bytes:
    """The figure ``draw()`` returns, as SVG bytes that do not change from run to run."""
    with matplotlib.rc_context({"svg.hashsalt": "vae-book", "svg.fonttype": "path"}):
        buffer = io.BytesIO()
        draw().savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        with atomic_path(args.out / name) as tmp:
            tmp.write_bytes(svg_bytes(draw))
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
