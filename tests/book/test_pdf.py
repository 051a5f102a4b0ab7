"""The printable edition: every page of the (fast-mode) book printed by Chromium into one PDF, with its titles,
typeset equations and figures, checked by reading the PDF's text and rendering its pages."""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import make_pdf  # noqa: E402

pytestmark = pytest.mark.skipif(make_pdf.find_chromium() is None,
                                reason="Chromium is not installed (Debian: apt-get install chromium); make test installs it")


@pytest.fixture(scope="module")
def pdf(built_book, tmp_path_factory):
    out = tmp_path_factory.mktemp("pdf")
    assert make_pdf.main(["--html", str(built_book), "--out", str(out / "book.pdf"),
                          "--preview", str(out / "pages")]) == 0
    return out


def test_every_page_is_in_the_pdf_with_its_title_and_typeset_math(pdf, built_book):
    from pypdf import PdfReader

    reader = PdfReader(str(pdf / "book.pdf"))
    pages = make_pdf.toc_pages()
    assert len(reader.pages) >= len(pages)
    assert [item.title for item in reader.outline] == [p.split("/")[-1] for p in pages]  # one bookmark per page
    text = "\n".join(page.extract_text() or "" for page in reader.pages).replace("\u2019", "'")  # smart quotes
    for title in ("The plain autoencoder", "The evidence lower bound", "The VAE in PyTorch", "Teacher's guide",
                  "Reference numbers", "VQ-VAE"):
        assert title.lower() in text.lower(), f"{title!r} is missing from the PDF"
    assert "\\(" not in text and "$$" not in text and "\\frac" not in text, "raw TeX in the PDF: MathJax did not finish"
    assert sum(len(page.images) for page in reader.pages) >= 20  # the figures are there


def test_pages_render_and_are_not_blank(pdf):
    from PIL import Image, ImageStat

    previews = sorted((pdf / "pages").glob("page-*.png"))
    assert len(previews) >= len(make_pdf.toc_pages())
    for path in previews[:5] + previews[-3:]:
        image = Image.open(path).convert("L")
        assert image.width > 500 and ImageStat.Stat(image).extrema[0][0] < 100, f"{path.name} looks blank"


def test_without_chromium_the_command_says_how_to_get_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert make_pdf.main(["--html", str(tmp_path), "--out", str(tmp_path / "x.pdf")]) == 2
    assert "apt-get install chromium" in capsys.readouterr().err
