"""The student notebooks: generated from the chapters, valid, free of solution code, an answer cell under
each exercise, every number the text names printed by the code, up to date with the chapters, and runnable."""

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
# a text page has no notebook: a student version links to it in the published book
SITE = "https://vae-book.github.io/vae-book/"  # repository.url of _config.yml, on GitHub Pages
IN_THE_BOOK = f"[in the book]({SITE}book/elbo.html)"


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
    answers = {}  # label: [(index, cell type)] of its answer cells
    for i, c in enumerate(student.cells):
        if c.source.startswith(("# TODO: exercise", "**Your answer**")):
            label = re.search(r"\((ex-[\w-]+)\)", c.source.splitlines()[0]).group(1)
            answers.setdefault(label, []).append((i, c.cell_type))
    assert n_exercises >= 3 and len(answers) == n_exercises
    book_text = "\n".join(c.source for c in full.cells if c.cell_type == "markdown")
    for label, cells in answers.items():  # right under its exercise: code, then words
        first = cells[0][0]
        heading = re.findall(r"^\*\*Exercise: .*$", student.cells[first - 1].source, flags=re.M)[-1]
        assert heading.endswith(f"({label})")
        assert [i for i, _ in cells] == list(range(first, first + len(cells)))
        types = [t for _, t in cells]
        assert types in (["code"], ["markdown"], ["code", "markdown"]), label
        # the book's solution, up to the next exercise: does it show code?
        solution = re.search(rf"\{{solution\}} {label}\n(.*?)(?=\{{exercise\}}|\Z)", book_text, flags=re.S)
        in_code = solution is not None and re.search(r"^`{3,}python", solution.group(1), flags=re.M)
        if "(computational)**" in heading:
            assert types[0] == "code", label
        else:  # conceptual and open-ended exercises ask questions: a cell for words
            assert types[-1] == "markdown", label
        if "(open-ended)**" in heading and in_code:
            assert types[0] == "code", label
    expected = {  # a few by hand: questions only; questions and something to run
        "ex-ae-1": ["markdown"], "ex-cvae-3": ["markdown"], "ex-times-3": ["markdown"],
        "ex-kl-1": ["code", "markdown"], "ex-loss-3": ["code", "markdown"],
        "ex-augment-3": ["code", "markdown"], "ex-ae-4": ["code", "markdown"],
        "ex-reparameterization-2": ["code", "markdown"],  # "Show that ..."
    }
    for label in expected.keys() & answers.keys():
        assert [t for _, t in answers[label]] == expected[label], label
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_number_the_text_names_is_printed_by_a_cell(path, generated):
    """Where the book shows a glued number, the student version names it; a kept cell glues (and prints) it."""
    full = nbformat.read(path, as_version=4)
    student = nbformat.read(generated / path.name, as_version=4)
    glued = set(msn._GLUE.findall("\n".join(c.source for c in full.cells if c.cell_type == "markdown")))
    text = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    named = {name for name in re.findall(r"`(\w+)`", text) if name in glued}
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    # glue("name", ...) or glue(f"{key}_name", ...): an f-string's fields stand for any identifier part
    patterns = [re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(f)) for f in re.findall(r'glue\(f"([^"]+)"', code)]
    missing = [n for n in sorted(named) if f'glue("{n}"' not in code and not any(re.fullmatch(p, n) for p in patterns)]
    assert not missing, f"{path.stem}: the text names {missing}, but no cell of the student version glues them"
    # each is printed before the exercises, near the text that names it, not after them
    first_exercise = next(i for i, c in enumerate(student.cells) if "**Exercise: " in c.source)
    late = [n for n in sorted(named) for i, c in enumerate(student.cells)
            if c.cell_type == "code" and f'glue("{n}"' in c.source and i > first_exercise]
    assert not late, f"{path.stem}: {late} are printed after the exercises"
    if glued - {"n_latent"}:  # the note under the title says how to read the names
        assert "this version names it in code font" in student.cells[0].source


def test_an_exercise_cell_is_cut_after_each_exercise():
    text = ("Intro.\n\n````{exercise} Why? (conceptual)\n:label: ex-x-1\nSay why.\n````\n\n"
            "````{solution} ex-x-1\n:class: dropdown\nBecause.\n````\n\n"
            "````{exercise} How much? (computational)\n:label: ex-x-2\nCompute it.\n````\n\n"
            "````{exercise} What else? (open-ended)\n:label: ex-x-3\nThink.\n````\n\n"
            "````{solution} ex-x-3\n:class: dropdown\nIn words only.\n````\n\n"
            "````{exercise} Try it (open-ended)\n:label: ex-x-4\nTry.\n````\n\n"
            "````{solution} ex-x-4\n:class: dropdown\nLike this:\n```python\nx = 1\n```\n````\n\nOutro.")
    segments = msn.convert_segments(text)
    assert [e.label if e else None for _, e in segments] == ["ex-x-1", "ex-x-2", "ex-x-3", "ex-x-4", None]
    assert segments[0][0].startswith("Intro.") and "Say why." in segments[0][0] and "Because" not in segments[1][0]
    assert segments[4][0].strip() == "Outro."
    # words for a conceptual exercise and an open-ended one answered in words; code for the others,
    # and words too for an open-ended exercise's questions
    cells = [msn._answer_cells(e, f"c{k}") for k, (_, e) in enumerate(segments[:4])]
    assert [[c.cell_type for c in pair] for pair in cells] == [
        ["markdown"], ["code"], ["markdown"], ["code", "markdown"]]
    assert cells[1][0].source.startswith('# TODO: exercise "How much? (computational)" (ex-x-2)')
    assert len({c.id for pair in cells for c in pair}) == 5


def test_an_exercise_that_asks_to_run_something_gets_a_code_cell():
    def exercise(title, body, solved_in_code=False):
        e = msn.Exercise(title, "ex-x-1", body)
        e.solved_in_code = solved_in_code
        return e
    asks = ["Train VAEs with more values and plot the KL term.",
            "Design a change, and test it with the same protocol.",
            "Predict the effect before you try it.", "Guess first. Then measure both parts.",
            "A starting point: fit a PCA to the codes."]
    for body in asks:
        assert exercise("A (open-ended)", body).answered_in_code, body
        assert exercise("A (conceptual)", body).answered_in_code, body
    says = ["Kingma et al. train this model when only some images have labels. Write the bound.",
            "Plan which chapters a class can run live.", "Predict what happens if it is trained with C = 4."]
    for body in says:
        assert not exercise("A (open-ended)", body).answered_in_code, body
        assert exercise("A (open-ended)", body, solved_in_code=True).answered_in_code, body
        assert exercise("A (open-ended)", body).answered_in_words
    assert exercise("A (computational)", "Say why.").answered_in_code
    assert not exercise("A (computational)", "Compute it.").answered_in_words
    for body in ("Compute it. Is it larger?", "Show that it is unbiased.", "Compute it and explain the gap."):
        assert exercise("A (computational)", body).answered_in_words, body


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
    assert f"*The evidence lower bound* ({IN_THE_BOOK})" in markdown and "equation (eq-a)" in markdown and "(Kingma and Welling, 2014)" in markdown
    assert "$$\na = b\n$$" in markdown


def test_glued_numbers_and_author_citations_become_plain_text():
    markdown, _ = msn.convert_markdown(
        "A KL of {glue:text}`kl_20d:.1f` nats, {glue:text}`n_used:d` codes, as {cite:t}`hoffman2016elbo` and "
        "{cite:p}`matsuken2017vae,chainer2017vae` show; also {glue:text}`other.ipynb::gap:.2f`.")
    assert markdown == ("A KL of `kl_20d` nats, `n_used` codes, as Hoffman and Johnson (2016) and "
                        "(matsuken92, 2017; Chainer developers, 2017) show; also `gap`.")
    # the numbers are the student's own: not "this build"
    markdown, _ = msn.convert_markdown("In this build it was {glue:text}`x:.1f`, on the data of this build; "
                                       "the \"this build\" column; in the run behind these pages, a loss")
    assert markdown == 'In this run it was `x`, on the data of this run; the "this build" column; in this run, a loss'


def test_authors_written_in_latex_are_named_in_plain_text():
    assert [msn._plain(name) for name in (r"S{\o}nderby", r"G{\"o}del", r"Erd\H{o}s", r"Fran{\c{c}}ois",
                                          r"{\v C}ech", r"{van den Oord}")] == [
        "Sønderby", "Gödel", "Erdős", "François", "Čech", "van den Oord"]
    markdown, _ = msn.convert_markdown("{cite:t}`sonderby2016ladder`")  # references.bib: S{\o}nderby
    assert markdown == "Sønderby et al. (2016)"


def test_references_to_statements_and_works_name_them():
    # {prf:ref} names the statement and where it is; a citation gives authors and year, from references.bib
    markdown, _ = msn.convert_markdown(
        "{prf:ref}`thm-elbo-gap` proved it, by {prf:ref}`lem-elbo-jensen`; see {cite:p}`burda2016importance`.")
    elbo = f"*The evidence lower bound* ({IN_THE_BOOK})"
    assert markdown == (f'The theorem "Evidence decomposition" of {elbo} proved it, by the lemma '
                        f'"Jensen\'s inequality" of {elbo}; see (Burda et al., 2016).')


def test_a_student_notebook_runs(generated, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "generated"))
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("VAE_LESSON_BOOK_BUILD", raising=False)
    nb = nbformat.read(generated / "03_elbo_check.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    # the numbers its text names are printed, each by the cell that computes it
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    named = re.findall(r"`(\w+)`", text)
    assert any(f"\n{n} = " in "\n" + printed for n in named)
    for name in set(named) & set(re.findall(r"^(\w+) = ", printed, flags=re.M)):
        assert re.search(rf"^{name} = -?[\d.]+(e[+-]\d+)?$", printed, flags=re.M), name


def test_an_equation_of_another_chapter_names_the_chapter():
    text = ("by equation (eq-elbo-decomposition), as equation (eq-vae-kl-split) of chapter 05 says; "
            "equation (eq-vq-quantize), equation (eq-vae-kl-split)")
    assert msn._name_other_pages(text, "11_vq_vae") == (
        f"by equation (eq-elbo-decomposition) of *The evidence lower bound* ({IN_THE_BOOK}), as equation "
        "(eq-vae-kl-split) of chapter 05 says; equation (eq-vq-quantize), equation (eq-vae-kl-split) of "
        "*The VAE in PyTorch* (`05_vae.ipynb`)")


def test_an_exercise_is_named_by_its_title_and_another_chapters_by_its_chapter_too():
    text = ("{ref}`ex-manifold-1` and {ref}`ex-manifold-2` show how; the bound of\n{ref}`ex-elbo-check-3` "
            "helps. See {ref}`the exercises <ex-manifold-3>`.")
    markdown, _ = msn.convert_markdown(text)
    assert markdown == ('Exercise "Too many neighbours" (ex-manifold-1) and exercise "How much noise can unrolling '
                        'take?" (ex-manifold-2) show how; the bound of\nexercise "A tighter bound from the same '
                        'samples" (ex-elbo-check-3) helps. See the exercises.')
    # a sentence starts after a full stop, a blank line or a list item's mark, not after a line break
    for before, word in [("Done.\n\n", "Exercise"), ("- ", "Exercise"), ("Done. ", "Exercise"), ("as in\n", "exercise")]:
        assert msn.convert_markdown(before + "{ref}`ex-manifold-1`")[0] == f'{before}{word} "Too many neighbours" (ex-manifold-1)'
    assert msn._name_other_pages(markdown, "02_manifold") == markdown.replace(
        "(ex-elbo-check-3)", "(ex-elbo-check-3) of *Checking the ELBO numerically* (`03_elbo_check.ipynb`)")


def test_a_link_to_another_chapter_names_its_title_and_notebook():
    markdown, _ = msn.convert_markdown(
        "As {doc}`chapter 05 <05_vae>` and {doc}`The derivation <../book/elbo>` show; "
        "see {doc}`../notebooks/01_autoencoder`.")
    assert markdown == ("As chapter 05 (`05_vae.ipynb`) and The derivation "
                        f"(*The evidence lower bound*, {IN_THE_BOOK}) show; see *The plain autoencoder* "
                        "(`01_autoencoder.ipynb`).")
    # inside parentheses, brackets: no parentheses within parentheses
    markdown, _ = msn.convert_markdown("A classifier (the network of {doc}`chapter 10 <10_augmentation>`) and "
                                       "a bound (derived in {doc}`chapter 03 <../book/elbo>`).")
    assert markdown == ("A classifier (the network of chapter 10 [`10_augmentation.ipynb`]) and a bound (derived "
                        f"in chapter 03 [*The evidence lower bound*, {IN_THE_BOOK}]).")


def test_the_book_is_linked_where_a_student_version_sends_students_to_it(generated):
    import yaml
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    owner, name = config["repository"]["url"].rstrip("/").split("/")[-2:]
    assert SITE == f"https://{owner.lower()}.github.io/{name}/"
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:  # the note under the title links to the chapter's own page
        note = nbformat.read(generated / path.name, as_version=4).cells[0].source
        assert f"with solutions, is [in the book]({SITE}notebooks/{path.stem}.html)" in note
    text = "\n".join(p.read_text() for p in generated.iterdir())
    pages = set(re.findall(rf"\[in the book\]\({re.escape(SITE)}([\w/]+)\.html\)", text))
    assert {"book/elbo", "book/teachers_guide", "notebooks/05_vae"} <= pages
    assert all(re.search(rf"^\s*(-|root:) (file: )?{page}$", toc, flags=re.M) for page in pages), pages
    assert not re.search(r"[(,] ?in the book[)\]]", text)  # never a bare "in the book" for a page


def test_labels_and_citations_inside_parentheses_take_brackets():
    markdown, _ = msn.convert_markdown(
        "Semi-supervised (the models of {cite:t}`kingma2014semisupervised`; see also {cite}`burda2016importance`), "
        "as {cite:t}`kingma2014semisupervised` and {cite:p}`burda2016importance` show ({ref}`ex-vq-2`, "
        "{eq}`eq-vq-quantize`); {eq}`eq-vq-quantize` and {ref}`ex-vq-2`.")
    assert markdown == (
        "Semi-supervised (the models of Kingma et al. [2014]; see also [Burda et al., 2016]), as Kingma et al. "
        '(2014) and (Burda et al., 2016) show (exercise "Counting codes" [ex-vq-2], equation '
        '[eq-vq-quantize]); equation (eq-vq-quantize) and exercise "Counting codes" (ex-vq-2).')
    assert msn._name_other_pages(markdown, "05_vae").endswith(
        'equation (eq-vq-quantize) of *Discrete codes: the VQ-VAE* (`11_vq_vae.ipynb`) and exercise "Counting codes" '
        "(ex-vq-2) of *Discrete codes: the VQ-VAE* (`11_vq_vae.ipynb`).")
    assert '[eq-vq-quantize] of *Discrete codes: the VQ-VAE* [`11_vq_vae.ipynb`])' in msn._name_other_pages(
        markdown, "05_vae")


def test_checkpoints_option_hands_out_the_models_and_chapter_10s_table(tmp_path, monkeypatch):
    models, tables = tmp_path / "models", tmp_path / "generated" / "10_augmentation"
    models.mkdir()
    tables.mkdir(parents=True)
    (models / "vae_2d.pt").write_bytes(b"weights")
    (tables / "augmentation_0123456789ab.json").write_text('{"rows": []}')
    (tables / "notes.txt").write_text("not a table")
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(models))
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "generated"))
    monkeypatch.delenv("VAE_LESSON_FAST", raising=False)
    assert msn.main(["--out", str(tmp_path / "student"), "--checkpoints"]) == 0
    handed_out = tmp_path / "student" / "checkpoints"
    assert sorted(p.name for p in handed_out.iterdir()) == ["augmentation_0123456789ab.json", "vae_2d.pt"]
    assert (handed_out / "augmentation_0123456789ab.json").read_text() == '{"rows": []}'
    # the student version of chapter 10 says so before the experiment's cell
    chapter = nbformat.read(tmp_path / "student" / "10_augmentation.ipynb", as_version=4)
    note = next(i for i, c in enumerate(chapter.cells) if c.source.startswith("**Note:**"))
    assert "results table" in chapter.cells[note].source
    assert "load_or_run_experiment" in chapter.cells[note + 1].source


def test_an_equation_in_apposition_is_named_in_parentheses():
    # the book shows "the loss (5.1)"; a student reads "the loss (equation eq-vae-loss)"
    markdown, _ = msn.convert_markdown("The loss {eq}`eq-vae-loss` is a sum; by {eq}`eq-vae-loss`, and the loss, "
                                       "{eq}`eq-vae-loss`.")
    assert markdown == ("The loss (equation eq-vae-loss) is a sum; by equation (eq-vae-loss), and the loss, "
                        "equation (eq-vae-loss).")
    vae = "*The VAE in PyTorch*"
    assert msn._name_other_pages(markdown, "11_vq_vae") == (
        f"The loss (equation eq-vae-loss of {vae}, `05_vae.ipynb`) is a sum; by equation (eq-vae-loss) of {vae} "
        f"(`05_vae.ipynb`), and the loss, equation (eq-vae-loss) of {vae} (`05_vae.ipynb`).")
    assert msn._name_other_pages(markdown, "05_vae") == markdown


def test_a_chapter_named_twice_in_one_cell_gives_its_file_once():
    markdown, _ = msn.convert_markdown("As {doc}`chapter 01 <01_autoencoder>` shows, and {doc}`chapter 01 "
                                       "<01_autoencoder>` again; see {doc}`../notebooks/01_autoencoder`.")
    assert markdown == "As chapter 01 (`01_autoencoder.ipynb`) shows, and chapter 01 again; see *The plain autoencoder*."
    # each cell (each piece of text converted) names it afresh
    assert msn.convert_markdown("See {doc}`chapter 01 <01_autoencoder>`.")[0] == "See chapter 01 (`01_autoencoder.ipynb`)."
