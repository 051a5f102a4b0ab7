"""The printable edition: each page of the built HTML book printed by headless Chromium, one PDF.

    python tools/make_pdf.py [--html _build/html] [--out _build/pdf/vae-book.pdf] [--preview DIR]
    (or: make pdf)

The pages are those of _toc.yml in book order, printed from the built HTML (so run ``make book``
first) with the book theme's print style: no navigation bars, figures and typeset equations as on
screen. Chromium gets a virtual-time budget so that MathJax finishes typesetting before the page is
printed; animated GIFs are hidden in print (``_static/print.css``), and each chapter shows the
animation's frames as a strip next to it. ``--preview DIR`` also renders every PDF page to a PNG
(via pypdfium2) for a person to look at. Needs Chromium (Debian: ``apt-get install chromium``);
without it the command says so and stops.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_notebooks import ROOT, toc_pages  # noqa: E402

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=30000",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def print_page(chromium: str, html: Path, pdf: Path, profile: Path) -> None:
    """Print one HTML file to ``pdf`` with headless Chromium."""
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--print-to-pdf={pdf}",
        html.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise RuntimeError(f"Chromium could not print {html}:\n{result.stderr[-2000:]}")


def render_preview(pdf: Path, folder: Path, scale: float = 1.0) -> list[Path]:
    """Every page of ``pdf`` as a PNG in ``folder`` (page-001.png, ...)."""
    import pypdfium2

    folder.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(str(pdf))
    paths = []
    for index in range(len(document)):
        image = document[index].render(scale=scale).to_pil()
        path = folder / f"page-{index + 1:03d}.png"
        image.save(path)
        paths.append(path)
    document.close()
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--html", type=Path, default=ROOT / "_build" / "html", help="the built HTML book"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf" / "vae-book.pdf")
    parser.add_argument(
        "--preview", type=Path, default=None, help="also render every page to PNG in this folder"
    )
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print(
            "The PDF is printed by Chromium, which is not installed. Install it (Debian/Ubuntu: "
            "sudo apt-get install chromium) and run this again.",
            file=sys.stderr,
        )
        return 2
    pages = toc_pages()
    missing = [p for p in pages if not (args.html / f"{p}.html").is_file()]
    if missing:
        print(
            f"{args.html} has no {', '.join(missing[:3])}...: build the book first (make book).",
            file=sys.stderr,
        )
        return 2
    from pypdf import PdfWriter

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts = [tmp / f"{number:03d}.pdf" for number in range(len(pages))]
        # Two browsers at a time (each with its own profile): printing waits mostly on MathJax's
        # virtual time.
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [
                pool.submit(
                    print_page, chromium, args.html / f"{page}.html", part, tmp / f"profile-{n}"
                )
                for n, (page, part) in enumerate(zip(pages, parts))
            ]
            for page, job in zip(pages, jobs):
                job.result()
                print(f"  {page}", flush=True)
        writer = PdfWriter()
        for page, part in zip(pages, parts):
            writer.append(str(part), outline_item=page.split("/")[-1])
        partial = args.out.with_name(args.out.name + ".tmp")
        with open(partial, "wb") as handle:
            writer.write(handle)
        partial.replace(args.out)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(pages)} pages of the book)"
    )
    if args.preview is not None:
        paths = render_preview(args.out, args.preview)
        print(f"rendered {len(paths)} PDF pages to {args.preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
