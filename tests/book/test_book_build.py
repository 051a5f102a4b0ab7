"""The book builds with -W (warnings are errors) and every chapter renders with its figures.

The notebooks run in fast mode here (VAE_LESSON_FAST=1), so the build checks the book's structure:
directives, cross-references, citations, equations and that every figure reaches the HTML. The full-size
build is `make book`. The fast-mode build itself is the session fixture ``built_book`` in conftest.py, shared
with the browser test (tests/book/test_browser.py).
"""

import json
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


def _markdown_source(name: str) -> str:
    path = ROOT / f"{name}.md"
    if path.is_file():
        return path.read_text()
    notebook = json.loads((ROOT / f"{name}.ipynb").read_text())
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")


def test_numbers_in_the_text_are_the_builds(built_book):
    """Every {glue:text} role of a page's text is replaced by the number its notebook computed."""
    pages_with_glue = 0
    for name in ["book/intro", *_toc_files()]:
        roles = re.findall(r"\{glue:text\}`([^`]+)`", _markdown_source(name))
        html = (built_book / f"{name}.html").read_text()
        assert "{glue" not in html, f"{name}: a glue role was not replaced"
        pasted = re.findall(r'<span class="pasted-text">([^<]*)</span>', html)
        assert len(pasted) == len(roles), f"{name}: {len(roles)} glue roles, {len(pasted)} numbers on the page"
        assert all(re.search(r"\d", text) for text in pasted), f"{name}: a pasted value is not a number: {pasted}"
        # outside the build, glue prints "name = value" (for the student notebooks); the build's cells do not
        outputs = "".join(re.findall(r'class="output stream[^>]*>(.*?)</pre>', html, flags=re.S))
        names = {re.match(r"(?:[^`]*::)?(\w+)", role).group(1) for role in roles}
        printed = sorted(key for key in names if re.search(rf"\b{key} = ", outputs))
        assert not printed, f"{name}: cells print glued values {printed} (is VAE_LESSON_BOOK_BUILD set?)"
        pages_with_glue += bool(roles)
    assert pages_with_glue >= 5


def test_reference_numbers_match_the_committed_table(built_book):
    """The models the fast-mode build trained give the numbers of tests/expected_reference_numbers.json.

    `make book` checks the full-size ("book") profile the same way after its build.
    """
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import reference_numbers

    results = built_book.parents[1] / "generated" / "reference_results_fast.json"
    problems = reference_numbers.check(results, "fast")
    assert not problems, "\n".join(problems) + (
        "\nIf intended: python tools/reference_numbers.py update --profile fast --results <file> --because '...'"
    )
