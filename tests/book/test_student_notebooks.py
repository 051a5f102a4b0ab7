"""The student notebooks: generated from the chapters, valid, free of solution code, one TODO per exercise,
up to date with the chapters, and runnable."""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import make_student_notebooks as msn  # noqa: E402
from execute_notebooks import toc_notebooks  # noqa: E402

NOTEBOOKS = toc_notebooks(ROOT)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert msn.main(["--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_version_has_exercises_but_no_solutions(path, generated):
    student = nbformat.read(generated / path.name, as_version=4)
    nbformat.validate(student)
    full = nbformat.read(path, as_version=4)
    n_exercises = sum(len(re.findall(r"^`{3,}\{exercise\}", c.source, flags=re.M)) for c in full.cells
                      if c.cell_type == "markdown")
    todos = [c for c in student.cells if c.cell_type == "code" and c.source.startswith("# TODO: exercise")]
    assert n_exercises >= 3 and len(todos) == n_exercises
    text = "\n".join(c.source for c in student.cells)
    assert "{solution}" not in text and "{exercise}" not in text and "{doc}" not in text and "{eq}" not in text
    assert "{glue" not in text and "{cite" not in text and "{prf:" not in text
    # no line of solution code survives, unless the chapter itself has the same line in its own code
    # (the hidden cells that run the solutions for the book's numbers do not count, and are dropped)
    numbers = [c for c in full.cells if "exercise-numbers" in c.metadata.get("tags", [])]
    assert not {c.id for c in numbers} & {c.get("id") for c in student.cells}
    chapter_code = {line.strip() for c in full.cells if c.cell_type == "code" and c not in numbers
                    for line in c.source.splitlines()}
    student_lines = {line.strip() for c in student.cells for line in c.source.splitlines()}
    leaked = [line for line in msn.solution_code(path) if line not in chapter_code and line in student_lines]
    assert not leaked, f"solution code in the student version: {leaked[:3]}"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells if c.cell_type == "code")
    assert f"blob/main/student/{path.name}" in student.cells[0].source  # its own Colab link
    for cell in full.cells:
        if "long-training" in cell.metadata.get("tags", []):
            position = next(i for i, c in enumerate(student.cells) if c.get("id") == cell.id)
            assert "checkpoints" in student.cells[position - 1].source  # the note before a long training


def test_solution_code_is_found_in_the_full_notebooks():
    found = {p.stem: msn.solution_code(p) for p in NOTEBOOKS}
    assert sum(len(v) for v in found.values()) > 100  # the checker above really looks at something
    assert any("slerp" in line for line in found["05_vae"])


def test_the_committed_student_notebooks_are_up_to_date(generated):
    committed = ROOT / "student"
    stale = [p.name for p in sorted(generated.iterdir())
             if not (committed / p.name).is_file() or (committed / p.name).read_bytes() != p.read_bytes()]
    assert not stale, f"student/ is out of date for {stale}: run `make student` and commit the result"


def test_directives_become_plain_markdown():
    text = ("Intro {doc}`../book/elbo` and {eq}`eq-a`, {cite}`kingma2014autoencoding`.\n\n"
            "````{exercise} Title (conceptual)\n:label: ex-x-1\nDo this.\n````\n\n"
            "````{solution} ex-x-1\n:class: dropdown\n```python\nsecret = 42\n```\n````\n\n"
            "```{math}\n:label: eq-b\na = b\n```\n")
    markdown, exercises = msn.convert_markdown(text)
    assert [e.label for e in exercises] == ["ex-x-1"] and exercises[0].body == "Do this."
    assert "secret" not in markdown and "**Exercise: Title (conceptual)** (ex-x-1)" in markdown
    assert "chapter *elbo*" in markdown and "equation (eq-a)" in markdown and "(Kingma and Welling, 2014)" in markdown
    assert "$$\na = b\n$$" in markdown


def test_glued_numbers_and_author_citations_become_plain_text():
    markdown, _ = msn.convert_markdown(
        "A KL of {glue:text}`kl_20d:.1f` nats, {glue:text}`n_used:d` codes, as {cite:t}`hoffman2016elbo` and "
        "{cite:p}`matsuken2017vae,chainer2017vae` show; also {glue:text}`other.ipynb::gap:.2f`.")
    assert markdown == ("A KL of `kl_20d` nats, `n_used` codes, as Hoffman and Johnson (2016) and "
                        "(matsuken92, 2017; Chainer developers, 2017) show; also `gap`.")


def test_references_to_statements_and_works_name_them():
    # {prf:ref} names the statement and where it is; a citation gives authors and year, from references.bib
    markdown, _ = msn.convert_markdown(
        "{prf:ref}`thm-elbo-gap` proved it, by {prf:ref}`lem-elbo-jensen`; see {cite:p}`burda2016importance`.")
    assert markdown == ('The theorem "Evidence decomposition" (chapter *elbo*) proved it, by the lemma '
                        '"Jensen\'s inequality" (chapter *elbo*); see (Burda et al., 2016).')


def test_a_student_notebook_runs(generated, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "generated"))
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    nb = nbformat.read(generated / "03_elbo_check.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
