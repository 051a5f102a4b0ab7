"""The book builds with -W (warnings are errors) and every chapter renders with its figures.

The notebooks run in fast mode here (VAE_LESSON_FAST=1), so the build checks the book's structure:
directives, cross-references, citations, equations and that every figure reaches the HTML. The full-size
build is `make book`. The fast-mode build itself is the session fixture ``built_book`` in conftest.py, shared
with the browser test (tests/book/test_browser.py).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _toc_files():
    return re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())


def test_every_toc_entry_renders(built_book):
    for name in ["book/intro", *_toc_files()]:
        page = built_book / f"{name}.html"
        assert page.is_file(), f"{name} was not rendered"


def test_chapters_show_their_figures_and_typeset_math(built_book):
    for name in _toc_files():
        html = (built_book / f"{name}.html").read_text()
        assert "{exercise}" not in html and "{solution}" not in html and "{prf:" not in html, f"{name}: raw directive"
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert not remote, f"{name}: loads {remote} from the network; the book must work offline"
        if 'class="math' in html:
            assert "mathjax/tex-chtml.js" in html, f"{name}: MathJax is not loaded from the vendored copy"
        if name.startswith("notebooks/"):
            images = re.findall(r'<img[^>]+src="([^"]+)"', html)
            assert images, f"{name}: no figure in the page"
            for src in images:
                if not src.startswith("data:"):
                    assert (built_book / name).parent.joinpath(src).resolve().is_file(), f"{name}: missing {src}"


def test_exercises_have_solutions_in_every_chapter(built_book):
    for name in ["book/intro", *_toc_files()]:
        if name in ("book/references", "book/glossary"):  # reference pages, not chapters
            continue
        html = (built_book / f"{name}.html").read_text()
        assert html.count('class="exercise admonition') >= 3, f"{name}: fewer than three exercises"
        assert html.count("solution dropdown") >= 3, f"{name}: solutions are not in dropdowns"
