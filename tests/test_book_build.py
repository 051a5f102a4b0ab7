"""The book builds with -W (warnings are errors) and every chapter renders with its figures.

The notebooks run in fast mode here (VAE_LESSON_FAST=1), so the build checks the book's structure:
directives, cross-references, citations, equations and that every figure reaches the HTML. The full-size
build is `make book`.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def _toc_files():
    return re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    if not (ROOT / "_build" / "vendor" / "mathjax" / "tex-chtml.js").exists():
        pytest.skip("MathJax is not vendored yet: run `make mathjax` (make test does)")
    out = tmp_path_factory.mktemp("book")
    env = {**os.environ, "VAE_LESSON_FAST": "1", "VAE_LESSON_OUTPUT_DIR": str(out / "generated"),
           "VAE_LESSON_CHECKPOINT_DIR": str(out / "checkpoints")}
    # As `make book` does: the notebooks are executed into the cache first, two at a time, then rendered.
    executed = subprocess.run([sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), "--build",
                               str(out / "_build")], env=env, capture_output=True, text=True, timeout=1800)
    assert executed.returncode == 0, f"executing the notebooks failed:\n{executed.stdout[-3000:]}{executed.stderr[-6000:]}"
    result = subprocess.run([str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"],
                            env=env, capture_output=True, text=True, timeout=1800)
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, f"the book build failed:\n{log}"
    # every notebook came from the cache: jupyter-book recognised what the tool executed
    assert "Executing notebook" not in result.stdout + result.stderr, log
    yield out / "_build" / "html"
    shutil.rmtree(out, ignore_errors=True)


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
        if name == "book/references":
            continue
        html = (built_book / f"{name}.html").read_text()
        assert html.count('class="exercise admonition') >= 3, f"{name}: fewer than three exercises"
        assert html.count("solution dropdown") >= 3, f"{name}: solutions are not in dropdowns"
