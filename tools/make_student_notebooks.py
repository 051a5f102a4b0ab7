"""Student versions of the chapter notebooks, generated from the full ones so that nothing drifts.

    python tools/make_student_notebooks.py [--out student] [--checkpoints]      (or: make student)

For every notebook in _toc.yml, writes ``<out>/<name>.ipynb`` with:

- every exercise kept, as plain Markdown (Jupyter and Colab do not render the book's directives),
  and its solution removed; under each exercise, the cells for its answer: a code cell marked
  ``# TODO`` for a computational exercise and for one that asks to train, measure, plot or try
  something (or that the book solves with code), and a Markdown cell marked **Your answer** for
  a conceptual or open-ended one and for any that asks a question or asks to show, explain or
  compare something;
- code cells tagged ``solution`` replaced by a ``# TODO`` stub; hidden cells tagged
  ``exercise-numbers`` (they run the solutions' code so that the book's solutions quote the
  build's numbers) dropped;
- the numbers the book's text quotes from its build (myst-nb glue) named in code font, with a note
  under the title: the cell that computes each prints it (``vae_lesson.infra.glue``);
- code cells tagged ``long-training`` preceded by a note: they load a trained model from a
  ``checkpoints`` folder next to the notebook when the teacher provides one (``--checkpoints``
  copies this machine's), and train otherwise; the setup cell points ``VAE_LESSON_CHECKPOINT_DIR``
  at that folder when it exists; the note and the setup cell also name
  ``vl.use_published_weights()``, which downloads the published book's trained models instead;
  chapter 10's experiment cell gets a note of its own (``--checkpoints`` also copies its
  results table, which ``augment.load_or_run_experiment`` reads from that folder);
- the book's cross-references, citations and equation labels turned into plain text (a chapter,
  or an equation or theorem of another chapter, named by its title and notebook file, a text page
  linked in the published book; inside parentheses, labels and citations take brackets), and
  outputs cleared;
- a Colab link to the student version itself.

It also writes ``<out>/README.md``, the list of notebooks with their Colab links. The output is
deterministic: running the command twice gives identical files, and a test checks the committed
copies are up to date.
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import sys
import unicodedata
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from book_links import repository  # noqa: E402
from execute_notebooks import ROOT, toc_notebooks, toc_pages  # noqa: E402

STUDENT_NOTE = (
    "*Student version: the exercises' solutions are removed. Write your answers in the cell "
    "under each exercise: code in the cells marked `# TODO`, text in those marked **Your "
    "answer**. The full chapter, with solutions, is {in_the_book}.*"
)
GLUE_NOTE = (
    "*Where the book shows a number its own run computed, this version names it in code font, "
    "such as `{name}`; the cell that computes it prints it (`{name} = ...`) when you run the "
    "notebook, and your numbers may differ a little from the book's.*"
)
_GLUE = re.compile(r"\{glue:text\}`(?:[^`]*::)?([A-Za-z_]\w*)(?::[^`]*)?`")
LONG_TRAINING_NOTE = (
    "**Note:** the next cell trains models, which can take a few minutes on a laptop. If your "
    "teacher gave you a `checkpoints` folder, put it next to this notebook: the cell then loads "
    "the trained models in seconds (the setup cell at the top looks for it). With network access "
    "(e.g. in Colab), you can instead run `vl.use_published_weights()` once before this cell: it "
    "then downloads the models the book was built with, and trains only those that do not fit."
)
EXPERIMENT_NOTE = (
    "**Note:** the next cell runs the chapter's experiment, which trains dozens of small models "
    "and can take a long time on a laptop. If your teacher gave you a `checkpoints` folder, put "
    "it next to this notebook: it holds the experiment's results table too, and the cell then "
    "loads the table in seconds (the setup cell at the top looks for the folder). A loop you "
    "have edited computes a table of its own."
)
CHECKPOINT_SETUP = (
    '\n# A "checkpoints" folder next to this notebook (e.g. from your teacher) '
    "holds trained models.\n"
    'if os.path.isdir("checkpoints"):\n'
    '    os.environ.setdefault("VAE_LESSON_CHECKPOINT_DIR", os.path.abspath("checkpoints"))\n'
    "# Or, with network access: run vl.use_published_weights() after `import vae_lesson as vl`\n"
    "# below, and the training cells download the book's trained models instead of training."
)

_FENCE = re.compile(r"^(?P<fence>`{3,})\{(?P<name>[a-z:-]+)\}\s*(?P<arg>.*)$")


# an exercise's kind, written at the end of its title
_KIND = re.compile(r"\s*\((conceptual|computational|open-ended)\)\s*$")
# an instruction to run something: one of these verbs where a clause of the statement starts
# (not after "et al." or "e.g.")
_TASK = re.compile(
    r"(?:^|(?<!\bal)(?<!\be\.g)(?<!\bi\.e)[.:;?!]\s+|\(\w\)\s+|\b(?:then|and|you)\s+)"
    r"(?:train|measure|plot|estimate|compute|fit|try|test|run|count|decode"
    r"|write a training loop)\b",
    flags=re.I,
)

# a question, or an instruction answered in words
_ASKS = re.compile(r"\?|\b(?:show|explain|argue|derive|prove|predict|compare|why)\b", flags=re.I)


class Exercise:
    def __init__(self, title: str, label: str, body: str):
        self.title, self.label, self.body = title, label, body
        self.solved_in_code = None  # whether the book's solution has code (None: no solution seen)

    @property
    def kind(self) -> str:
        """'conceptual', 'computational' or 'open-ended' ('' when the title names none)."""
        kind = _KIND.search(self.title)
        return kind.group(1) if kind else ""

    @property
    def asks_to_run(self) -> bool:
        """Whether the statement asks the reader to train, measure, plot, try ... something."""
        return bool(_TASK.search(" ".join(self.body.split())))

    @property
    def answered_in_code(self) -> bool:
        """A computational exercise; an open-ended one the book solves with code (or not at
        all), or one that asks to run something; a conceptual one that asks to run something."""
        if self.kind == "open-ended":
            return self.solved_in_code is not False or self.asks_to_run
        return self.kind != "conceptual" or self.asks_to_run

    @property
    def answered_in_words(self) -> bool:
        """A conceptual or open-ended exercise, or one that asks a question or asks to show,
        explain or compare something: an answer in words."""
        return self.kind in ("conceptual", "open-ended") or bool(_ASKS.search(self.body))


def _blocks(text: str):
    """Split MyST text into ('text', lines) and ('directive', name, arg, options, body lines)
    pieces.
    """
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            start = i
            while i < len(lines) and not _FENCE.match(lines[i]):
                i += 1
            yield ("text", lines[start:i])
            continue
        fence, name, arg = match["fence"], match["name"], match["arg"].strip()
        i += 1
        options, body = {}, []
        while i < len(lines) and re.match(r"^:[a-z-]+:", lines[i]):
            key, _, value = lines[i][1:].partition(":")
            options[key] = value.strip()
            i += 1
        depth = 0
        while i < len(lines):
            inner = _FENCE.match(lines[i])
            if inner and len(inner["fence"]) < len(fence):
                depth += 1  # a nested directive with a shorter fence
            elif lines[i].strip() == fence and depth == 0:
                break
            elif (
                re.fullmatch(r"`{3,}", lines[i].strip())
                and depth
                and len(lines[i].strip()) < len(fence)
            ):
                depth -= 1
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        yield ("directive", name, arg, options, body)


def _student_note(nb, stem: str) -> str:
    """The note under the title: how to answer, where the full chapter is, and how to read the
    numbers the text quotes."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    names = _GLUE.findall(text)
    note = STUDENT_NOTE.format(in_the_book=_in_the_book(stem))
    return note + ("\n\n" + GLUE_NOTE.format(name=names[0]) if names else "")


# BibTeX's letters and accents ({\\o}, \\"{o}), for authors' names in plain text
_LATEX_LETTERS = {"o": "ø", "O": "Ø", "aa": "å", "AA": "Å", "ae": "æ", "AE": "Æ", "ss": "ß",
                  "l": "ł", "L": "Ł"}
_LATEX_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
                  "=": "\u0304", ".": "\u0307", "c": "\u0327", "H": "\u030b", "u": "\u0306",
                  "v": "\u030c", "k": "\u0328"}


def _plain(latex: str) -> str:
    """A BibTeX name as text: S{\\o}nderby -> Sønderby, G{\\"o}del -> Gödel, {Org} -> Org."""
    text = re.sub(
        r"\{?\\(o|O|aa|AA|ae|AE|ss|l|L)\}?(?![a-zA-Z])", lambda m: _LATEX_LETTERS[m.group(1)], latex
    )
    text = re.sub(
        r"\{?\\([\"'`^~=.]|[cHuvk](?=[\s{]))\s*\{?([a-zA-Z])\}?\}?",
        lambda m: unicodedata.normalize("NFC", m.group(2) + _LATEX_ACCENTS[m.group(1)]),
        text,
    )
    return text.replace("{", "").replace("}", "")


@functools.lru_cache(maxsize=None)
def _bibliography(path: Path = ROOT / "references.bib") -> dict:
    """{key: (authors, year)} of the book's references: "Kingma and Welling", "Burda et al.",
    or an organisation's name as written."""
    works = {}
    for key, body in re.findall(r"@\w+\{([^,\s]+),(.*?)\n\}", path.read_text(), flags=re.S):
        fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", body, flags=re.M))
        names = [n.strip() for n in fields.get("author", key).split(" and ")]
        surnames = [_plain(n).split(",")[0].strip() for n in names]
        if len(surnames) > 2:
            authors = f"{surnames[0]} et al."
        else:
            authors = " and ".join(surnames)
        works[key] = (authors, fields.get("year", "n.d."))
    return works


@functools.lru_cache(maxsize=None)
def _sources() -> tuple:
    """(page stem, text) for every page of the book: book/*.md and the notebooks' cells."""
    found = []
    paths = sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c.source) for c in nbformat.reads(text, as_version=4).cells)
        found.append((path.stem, text))
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _titles() -> dict:
    """{page stem: the page's title}, the first heading of each page."""
    found = {}
    for stem, text in _sources():
        heading = re.search(r"^# (.+)$", text, flags=re.M)
        found[stem] = heading.group(1).strip() if heading else stem
    return found


@functools.lru_cache(maxsize=None)
def _page_urls() -> dict:
    """{page stem: its address in the published book}, for every page of _toc.yml."""
    site = repository(ROOT).book_url
    return {Path(page).name: f"{site}{page}.html" for page in toc_pages(ROOT)}


def _in_the_book(stem: str) -> str:
    """'[in the book](its page's address)', or 'in the book' for a page _toc.yml does not list."""
    url = _page_urls().get(stem)
    return f"[in the book]({url})" if url else "in the book"


def _page(stem: str) -> tuple[str, str]:
    """A page of the book as a student finds it: ('*The VAE in PyTorch*', '`05_vae.ipynb`') for a
    chapter that has a notebook, ('*The evidence lower bound*', '[in the book](its address)') for
    a text page."""
    title = _titles().get(stem, stem)
    notebook = (ROOT / "notebooks" / f"{stem}.ipynb").is_file()
    where = f"`{stem}.ipynb`" if notebook else _in_the_book(stem)
    return f"*{title}*", where


@functools.lru_cache(maxsize=None)
def _statements() -> dict:
    """{label: 'the theorem "Evidence decomposition" of *The evidence lower bound* (in the book)'}
    for the book's numbered definitions, lemmas and theorems ({prf:...} directives)."""
    found = {}
    for stem, text in _sources():
        pattern = r"\{prf:(\w+)\}[ \t]*([^\n]*)\n:label:[ \t]*(\S+)"
        for kind, title, label in re.findall(pattern, text):
            named = f' "{title.strip()}"' if title.strip() else ""
            found[label] = (stem, f"the {kind}{named}")
    return found


@functools.lru_cache(maxsize=None)
def _exercises() -> dict:
    """{label: (page stem, title without its kind)} for every exercise of the book."""
    found = {}
    for stem, text in _sources():
        pattern = r"\{exercise\}[ \t]*([^\n]*)\n:label:[ \t]*(\S+)"
        for title, label in re.findall(pattern, text):
            found[label] = (stem, _KIND.sub("", title))
    return found


@functools.lru_cache(maxsize=None)
def _equation_pages() -> dict:
    """{equation label: the stem of the page that defines it} over the book's sources."""
    found = {}
    for stem, text in _sources():
        labels = re.findall(r"^:label:[ \t]*(eq-\S+)", text, flags=re.M)
        labels += re.findall(r"\$\$[ \t]*\((eq-[^)\s]+)\)", text)
        found.update((label, stem) for label in labels)
    return found


# words after which an equation is named as "equation (eq-x)", not in apposition
_LINKING = {"of", "in", "from", "for", "by", "as", "with", "to", "and", "but", "or", "is", "are",
            "turn", "turns", "return", "returns", "follow", "follows", "see", "that", "than"}


def _name_other_pages(text: str, page: str) -> str:
    """'equation (eq-x)' and 'exercise "Title" (ex-x)' of another page get the page's name:
    'equation (eq-x) of *Its title* (`stem.ipynb`)', or '[eq-x] of *Its title* [...]' inside
    parentheses; in apposition, '(equation eq-x of *Its title*, `stem.ipynb`)'."""

    def named(m: re.Match) -> str:
        label = m.group(1) or m.group(2) or m.group(3)
        where = _equation_pages().get(label) or _exercises().get(label, (None,))[0]
        if where in (None, page):
            return m.group(0)
        (title, file), bracketed = _page(where), m.group(0).endswith("]")
        if m.group(3):  # in apposition: "(equation eq-x of *Its title*, `stem.ipynb`)"
            return f"{m.group(0)[:-1]} of {title}, {file}{m.group(0)[-1]}"
        return f"{m.group(0)} of {title} " + (f"[{file}]" if bracketed else f"({file})")

    # (not where the text names the chapter itself: "{eq}`eq-x` of {doc}`chapter 05 <05_vae>`")
    pattern = (r'(?:equation [(\[](eq-[^)\]\s]+)[)\]]|[Ee]xercise "[^"\n]*" [(\[](ex-[\w-]+)[)\]]'
               r"|[(\[]equation (eq-[^)\]\s]+)[)\]])"
               r"(?!,? (?:of|in) (?:the )?[Cc]hapter)")
    return re.sub(pattern, named, text)


def _cite(keys: str, in_text: bool, brackets: bool = False) -> str:
    """A citation as an author-year text: "Kingma and Welling (2014)" or "(Burda et al., 2016)";
    with ``brackets`` (inside parentheses), "Kingma and Welling [2014]", "[Burda et al., 2016]"."""
    works = _bibliography()
    cited = [works.get(key.strip(), (key.strip(), "n.d.")) for key in keys.split(",")]
    opened, closed = ("[", "]") if brackets else ("(", ")")
    if in_text:
        return "; ".join(f"{authors} {opened}{year}{closed}" for authors, year in cited)
    return opened + "; ".join(f"{authors}, {year}" for authors, year in cited) + closed


# where a sentence starts: the text's start, after a full stop, a blank line or a list item's mark
# (a line break alone is not one: a paragraph's lines wrap mid-sentence)
_SENTENCE_START = re.compile(r"(^|[.!?]\s+|\n\s*\n\s*|(?:^|\n)\s*(?:[-*+]|\d+\.)\s+)$")


def _roles(text: str) -> str:
    """The book's inline roles as plain text that reads well in Jupyter."""

    # "chapter 05 (`05_vae.ipynb`)", or "chapter 03 (*Title*, in the book)" for a text page; inside
    # parentheses, brackets instead: "(as in chapter 05 [`05_vae.ipynb`])"; later in the same text,
    # "chapter 05" alone
    def in_parentheses(m: re.Match) -> bool:  # inside parentheses opened in its paragraph
        paragraph = re.split(r"\n\s*\n", text[: m.start()])[-1]
        return paragraph.count("(") > paragraph.count(")")

    given = set()  # the pages whose file (or address) this text has given already: once is enough

    def page(m: re.Match) -> str:
        said, (title, where) = (m.group(1) or "").strip(), _page(m.group(2))
        if m.group(2) in given:
            return said or title
        given.add(m.group(2))
        opened, closed = ("[", "]") if in_parentheses(m) else ("(", ")")
        if not said:
            return f"{title} {opened}{where}{closed}"
        named = where if where.endswith(".ipynb`") else f"{title}, {where}"
        return f"{said} {opened}{named}{closed}"

    text = re.sub(r"\{doc\}`(?:([^`<]*)<)?(?:\.\./)?(?:notebooks/|book/)?([^`>]+)>?`", page, text)

    def label(name: str, m: re.Match) -> str:  # "(eq-x)", or "[eq-x]" inside parentheses
        return f"[{name}]" if in_parentheses(m) else f"({name})"

    def equation(m: re.Match) -> str:
        # after a word such as "of" or "in", "equation (eq-x)"; after a noun, where the book
        # shows a number in apposition ("the loss (5.1)"), "the loss (equation eq-x)"
        word = re.search(r"(\S+)\s*$", text[: m.start()])
        if word is None or word.group(1)[-1] in ",.:;" or word.group(1).lower() in _LINKING:
            return f"equation {label(m.group(1), m)}"
        return label(f"equation {m.group(1)}", m)

    text = re.sub(r"\{eq\}`([^`]+)`", equation, text)

    def in_sentence(named: str, m: re.Match) -> str:  # capitalized where it starts a sentence
        starts_sentence = _SENTENCE_START.search(text[: m.start()]) is not None
        return named[0].upper() + named[1:] if starts_sentence else named

    def exercise(m: re.Match) -> str:  # 'exercise "Its title" (ex-x)'
        title = _exercises()[m.group(1)][1]
        return in_sentence(f'exercise "{title}" {label(m.group(1), m)}', m)

    text = re.sub(r"\{ref\}`(ex-[\w-]+)`",
                  lambda m: exercise(m) if m.group(1) in _exercises() else m.group(0), text)
    text = re.sub(
        r"\{ref\}`(?:([^`<]+?)\s*<[^`>]+>|([^`]+))`", lambda m: m.group(1) or m.group(2), text
    )

    def statement(m: re.Match) -> str:  # "the theorem \"X\" of *Title* (in the book)"
        stem, named = _statements().get(m.group(1), (None, m.group(1)))
        named += " of {} ({})".format(*_page(stem)) if stem else ""
        return in_sentence(named, m)

    text = re.sub(r"\{prf:ref\}`([^`]+)`", statement, text)
    text = re.sub(  # inside parentheses, brackets: "(the models of Kingma et al. [2014])"
        r"\{cite(:[pt])?\}`([^`]+)`",
        lambda m: _cite(m.group(2), m.group(1) == ":t", in_parentheses(m)),
        text,
    )
    # a number the book's build pastes in: here, the name of the value the notebook computes
    text = _GLUE.sub(r"`\1`", text)
    # and those numbers are the student's own: "in this build" and "the run behind these pages"
    # become "this run"
    text = re.sub(r"\b([Ii]n|of) this build\b", r"\1 this run", text)
    text = re.sub(r"\bthe run behind these pages\b", "this run", text)
    return text


def convert_segments(text: str) -> list[tuple[str, Exercise | None]]:
    """Student Markdown of one cell, cut after each exercise: (text, the exercise it ends with)
    pieces, the last one with None. The solutions are dropped.
    """
    segments, out, solved_in_code = [], [], {}
    for block in _blocks(text):
        if block[0] == "text":
            out.extend(block[1])
            continue
        _, name, arg, options, body = block
        body_text = "\n".join(body).strip("\n")
        if name == "solution":
            solved_in_code[arg] = any(re.match(r"^`{3,}(python|\{code)", line) for line in body)
            continue
        if name == "exercise":
            exercise = Exercise(arg, options.get("label", ""), body_text)
            out.append(
                f"**Exercise: {arg}** ({exercise.label})"
                if exercise.label
                else f"**Exercise: {arg}**"
            )
            out.append("")
            out.append(convert_markdown(body_text)[0])
            segments.append((_roles("\n".join(out)), exercise))
            out = []
        elif name == "math":
            label = options.get("label")
            out.append("$$")
            out.extend(body)
            out.append("$$" + (f"  \n*(equation {label})*" if label else ""))
        elif name in ("admonition", "note", "tip", "warning", "important"):
            title = arg or name.capitalize()
            out.append(f"> **{title}**")
            out.append(">")
            out.extend(
                "> " + line if line else ">" for line in convert_markdown(body_text)[0].split("\n")
            )
        else:
            out.append(convert_markdown(body_text)[0])
    segments.append((_roles("\n".join(out)), None))
    for _, exercise in segments:
        if exercise is not None:
            exercise.solved_in_code = solved_in_code.get(exercise.label)
    return segments


def convert_markdown(text: str) -> tuple[str, list[Exercise]]:
    """Student Markdown of one cell and the exercises it contains (solutions dropped)."""
    segments = convert_segments(text)
    joined = "\n".join(part for part, _ in segments if part.strip())
    return joined, [exercise for _, exercise in segments if exercise is not None]


def _answer_cells(exercise: Exercise, cell_id: str) -> list:
    """The cells for an exercise's answer: a code cell marked ``# TODO`` for what it asks to
    run, then a Markdown cell marked **Your answer** for what it asks to say."""
    cells = []
    if exercise.answered_in_code:
        cells.append(nbformat.v4.new_code_cell(
            f'# TODO: exercise "{exercise.title}" ({exercise.label})\n'
            "# Your code here (the exercise is in the cell above).\n"
        ))
    if exercise.answered_in_words:
        cells.append(nbformat.v4.new_markdown_cell(
            f"**Your answer** ({exercise.label}): *double-click this cell to write it here.*"
        ))
    for k, cell in enumerate(cells):
        cell.id = cell_id if k == 0 else f"{cell_id}-words"
    return cells


def _experiment_tables() -> Path:
    """Where the book build caches chapter 10's results tables: output_dir("10_augmentation") of a
    notebook, which runs in notebooks/."""
    from vae_lesson.infra.settings import output_root

    return output_root(ROOT / "notebooks") / "10_augmentation"


def student_notebook(path: Path, out_dir_name: str = "student"):
    """The student version of the notebook at ``path`` (a NotebookNode; nothing is written)."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            segments = convert_segments(cell.source)
            if index == 0:
                own = repository(ROOT).colab(f"notebooks/{path.name}")
                student = repository(ROOT).colab(f"{out_dir_name}/{path.name}")
                lines = segments[0][0].replace(own, student).split("\n")
                lines.insert(1, "\n" + _student_note(nb, path.stem))
                segments[0] = ("\n".join(lines), segments[0][1])
            for k, (text, exercise) in enumerate(segments):
                text = _name_other_pages(text, path.stem)
                # the first piece keeps the cell's id; each exercise is followed by its answer cell
                new = nbformat.v4.new_markdown_cell(text)
                new.id = cell.id if k == 0 else f"{cell.id}-{k + 1}"
                if text.strip():
                    cells.append(new)
                if exercise is not None:
                    cells.extend(_answer_cells(exercise, f"{cell.id}-todo-{k + 1}"))
            continue
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        if "exercise-numbers" in tags:  # runs the solutions' code for the book's text: dropped
            continue
        if "solution" in tags:
            stub = nbformat.v4.new_code_cell("# TODO: your code (the book shows a solution).\n")
            stub.id = f"{cell.id}-todo"
            cells.append(stub)
            continue
        if "long-training" in tags:
            experiment = "load_or_run_experiment" in cell.source  # chapter 10's table
            note = nbformat.v4.new_markdown_cell(
                EXPERIMENT_NOTE if experiment else LONG_TRAINING_NOTE
            )
            note.id = f"{cell.id}-note"
            cells.append(note)
        new = nbformat.v4.new_code_cell(cell.source)
        new.id = cell.id
        new.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        if (
            index == 1 and "remove-cell" in tags
        ):  # the install cell: also look for the teacher's checkpoints
            new.source = cell.source + "\n" + CHECKPOINT_SETUP
        cells.append(new)
    nb.cells = cells
    nb.metadata = {
        "kernelspec": nb.metadata.get(
            "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
        ),
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def solution_code(path: Path) -> list[str]:
    """The code lines of every solution of the full notebook (what must not reach the students)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for block in _blocks(cell.source):
                if block[0] == "directive" and block[1] == "solution":
                    in_code = False
                    for line in block[4]:
                        if re.match(r"^```+\s*python", line.strip()):
                            in_code = True
                        elif line.strip().startswith("```"):
                            in_code = False
                        elif in_code and line.strip():
                            found.append(line.strip())
        elif "solution" in cell.metadata.get("tags", []):
            found.extend(line.strip() for line in cell.source.splitlines() if line.strip())
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "student", help="output folder (default: student/)"
    )
    parser.add_argument(
        "--checkpoints",
        action="store_true",
        help="also copy this machine's trained checkpoints into <out>/checkpoints for students",
    )
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    notebooks = toc_notebooks(ROOT)
    index = [
        "# Student notebooks",
        "",
        "Generated by `make student` from the chapters in `notebooks/`: the exercises without "
        "their solutions,",
        "with a cell for each answer. Do not edit these files; edit the chapters and run "
        "the command again.",
        "",
        "| chapter | open in Colab |",
        "| --- | --- |",
    ]
    for path in notebooks:
        # links point at student/ in the repository, wherever this copy is written
        nb = student_notebook(path)
        target = out / path.name
        tmp = target.with_name(target.name + ".tmp")
        nbformat.write(nb, tmp)
        tmp.replace(target)
        title = nb.cells[0].source.split("\n", 1)[0].lstrip("# ").strip()
        link = repository(ROOT).colab(f"student/{path.name}")
        index.append(f"| {title} | [{path.name}]({link}) |")
    index += [
        "",
        "Teachers: `python tools/make_student_notebooks.py --checkpoints` also copies the trained "
        "models of",
        "the last book build into `checkpoints/`, with chapter 10's results table; hand that "
        "folder out with",
        "the notebooks and every chapter loads its models instead of training them (see the "
        "teacher's guide "
        f"{_in_the_book('teachers_guide')}).",
        "With network access (e.g. in Colab), `vl.use_published_weights()` run before a chapter's "
        "training cells",
        "downloads the models of the published book instead, checked by SHA-256; a model that "
        "does not fit is trained.",
        "",
    ]
    (out / "README.md").write_text("\n".join(index))
    if args.checkpoints:
        from vae_lesson.infra.checkpoint import checkpoint_dir

        source = checkpoint_dir()
        target = out / "checkpoints"
        target.mkdir(exist_ok=True)
        copied = [shutil.copy2(p, target / p.name) for p in sorted(source.glob("*.pt"))]
        print(f"copied {len(copied)} checkpoint(s) from {source} to {target}")
        # chapter 10 trains dozens of models for one table: the book build's tables go along
        tables = sorted(_experiment_tables().glob("augmentation_*.json"))
        copied = [shutil.copy2(p, target / p.name) for p in tables]
        print(f"copied {len(copied)} results table(s) of chapter 10 to {target}")
    print(f"wrote {len(notebooks)} student notebooks and README.md to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
