"""tools/execute_notebooks.py fills jupyter-book's cache in parallel, skips what is current, reruns what is stale,
runs the gathering chapters last, and fails loudly naming the notebook and the cell."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "execute_notebooks.py"


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    nbformat.write(nb, path)


def _skeleton(root: Path, *chapters: str) -> None:
    """A book folder with a package to fingerprint and a table of contents listing ``chapters``."""
    (root / "notebooks").mkdir()
    (root / "vae_lesson").mkdir()
    (root / "vae_lesson" / "__init__.py").write_text("VERSION = 1\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   + "".join(f"- file: notebooks/{c}\n" for c in chapters))


@pytest.fixture
def book(tmp_path):
    """A tiny book: two chapters that append their names to a log, and a gathering chapter that reads it."""
    _skeleton(tmp_path, "01_a", "12_reference_numbers", "02_b")
    log = "open('../log.txt', 'a').write({!r} + '\\n')"
    _notebook(tmp_path / "notebooks" / "01_a.ipynb", log.format("01_a"), "import os; print(os.environ.get('OMP_NUM_THREADS'))")
    _notebook(tmp_path / "notebooks" / "02_b.ipynb", log.format("02_b"))
    _notebook(tmp_path / "notebooks" / "12_reference_numbers.ipynb", log.format("10"),
              "print(sorted(open('../log.txt').read().split()))")
    return tmp_path


def _run(book, *args):
    return subprocess.run([sys.executable, str(TOOL), "--root", str(book), *args], capture_output=True, text=True,
                          timeout=300)


def _log(book):
    path = book / "log.txt"
    runs = path.read_text().split() if path.is_file() else []
    path.unlink(missing_ok=True)
    return runs


def _cached_output(book, name):
    from jupyter_cache import get_cache

    cache = get_cache(str(book / "_build" / ".jupyter_cache"))
    nb = nbformat.read(book / "notebooks" / f"{name}.ipynb", as_version=4)
    _, merged = cache.merge_match_into_notebook(nb)
    return ["".join(o.get("text", "") for o in c.outputs) for c in merged.cells]


def test_executes_caches_skips_and_reruns(book):
    result = _run(book, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    runs = _log(book)
    assert sorted(runs[:2]) == ["01_a", "02_b"] and runs[2] == "10"  # the gathering chapter last
    # each of two parallel kernels is limited to one thread; the gatherer saw both chapters' records
    assert _cached_output(book, "01_a")[1].strip() == "1"
    assert "'01_a', '02_b', '10'" in _cached_output(book, "12_reference_numbers")[1]
    times = json.loads((book / "_build" / "execution_times.json").read_text())
    assert set(times["seconds"]) == {"01_a", "12_reference_numbers", "02_b"} and times["jobs"] == 2
    assert all(value > 0 for value in times["seconds"].values()) and times["machine"]["cores"]

    # nothing changed: nothing runs
    result = _run(book, "--jobs", "2")
    assert result.returncode == 0 and "nothing to execute" in result.stdout and _log(book) == []

    # one chapter's code changed: it runs, and so does the gathering chapter, the other one does not
    _notebook(book / "notebooks" / "02_b.ipynb", "open('../log.txt', 'a').write('02_b\\n')", "x = 2")
    assert _run(book, "--jobs", "1").returncode == 0
    assert _log(book) == ["02_b", "10"]

    # the package changed: jupyter-cache cannot see it, the fingerprint does, and everything runs again
    (book / "vae_lesson" / "__init__.py").write_text("VERSION = 2\n")
    source = book / "notebooks" / "01_a.ipynb"
    os.utime(source, (1_000_000, 1_000_000))
    result = _run(book, "--jobs", "2")
    assert result.returncode == 0 and "executing every notebook" in result.stdout
    assert sorted(_log(book)) == ["01_a", "02_b", "10"]
    # re-executed pages look new to Sphinx, which re-renders only sources newer than their last build
    assert source.stat().st_mtime > 1_000_000


def test_a_failing_notebook_stops_with_its_name_and_cell(book):
    _notebook(book / "notebooks" / "02_b.ipynb", "x = 1", "def f():\n    return 1 / 0\nf()")
    result = _run(book, "--jobs", "2")
    assert result.returncode == 1
    assert "FAILED: notebooks/02_b.ipynb" in result.stderr
    assert "cell 2 of 2 raised ZeroDivisionError: division by zero" in result.stderr
    assert "    return 1 / 0" in result.stderr  # the failing cell's code is quoted
    assert "10" not in _log(book)  # the gathering chapter did not run on incomplete results
    assert not (book / "_build" / ".jupyter_cache" / "vae_lesson.fingerprint").exists()


def test_a_failing_gathering_chapter_is_reported_too(book):
    _notebook(book / "notebooks" / "12_reference_numbers.ipynb", "raise RuntimeError('no results recorded')")
    result = _run(book, "--jobs", "2")
    assert result.returncode == 1
    assert "FAILED: notebooks/12_reference_numbers.ipynb" in result.stderr
    assert "cell 1 of 1 raised RuntimeError: no results recorded" in result.stderr


def test_a_chapter_that_loads_another_chapters_models_starts_after_it(tmp_path):
    """06_kl_term loads 05_vae's checkpoints (AFTER): with two workers free, it still waits for 05."""
    _skeleton(tmp_path, "05_vae", "06_kl_term")
    _notebook(tmp_path / "notebooks" / "05_vae.ipynb",
              "import time; time.sleep(3); open('../checkpoint', 'w').write('trained')")
    _notebook(tmp_path / "notebooks" / "06_kl_term.ipynb", "print(open('../checkpoint').read())")
    result = _run(tmp_path, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _cached_output(tmp_path, "06_kl_term")[0].strip() == "trained"


def test_each_notebook_lists_its_checkpoints_in_its_own_ledger(tmp_path):
    """vae_lesson.load_or_train appends to $VAE_LESSON_WEIGHTS_LEDGER; the tool points it at
    <build>/weights_ledger/<notebook>.jsonl, emptied when the notebook runs again and kept when it is cached."""
    _skeleton(tmp_path, "01_a", "02_b")
    record = ("import os; open(os.environ['VAE_LESSON_WEIGHTS_LEDGER'], 'a').write({!r} + '\\n')")
    _notebook(tmp_path / "notebooks" / "01_a.ipynb", record.format("a1"))
    _notebook(tmp_path / "notebooks" / "02_b.ipynb", record.format("b1"))
    result = _run(tmp_path, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    ledgers = tmp_path / "_build" / "weights_ledger"
    assert (ledgers / "01_a.jsonl").read_text() == "a1\n" and (ledgers / "02_b.jsonl").read_text() == "b1\n"
    _notebook(tmp_path / "notebooks" / "01_a.ipynb", record.format("a2"))
    assert _run(tmp_path, "--jobs", "1").returncode == 0
    assert (ledgers / "01_a.jsonl").read_text() == "a2\n"  # a new list, not appended to the old one
    assert (ledgers / "02_b.jsonl").read_text() == "b1\n"  # served from the cache: its list is kept


def test_the_times_file_adds_up_the_work_each_notebook_loaded_and_owns(tmp_path):
    """$VAE_LESSON_LOADED_WORK lists what a notebook loaded instead of doing; execution_times.json sums it per
    notebook as loaded_seconds. A checkpoint counts for the first notebook whose ledger lists it: 06 loading 05's
    model adds nothing to 06 (a first build trains it in 05)."""
    _skeleton(tmp_path, "05_vae", "06_kl_term")
    write = ("import json, os\n"
             "for variable, lines in (('VAE_LESSON_WEIGHTS_LEDGER', {ledger!r}), ('VAE_LESSON_LOADED_WORK', {work!r})):\n"
             "    with open(os.environ[variable], 'a') as f:\n"
             "        f.writelines(json.dumps(line) + '\\n' for line in lines)")
    _notebook(tmp_path / "notebooks" / "05_vae.ipynb", write.format(
        ledger=[{"name": "vae", "path": "p"}], work=[{"name": "vae", "seconds": 12.5}]))
    _notebook(tmp_path / "notebooks" / "06_kl_term.ipynb", write.format(
        ledger=[{"name": "vae", "path": "p"}, {"name": "own", "path": "q"}],
        work=[{"name": "vae", "seconds": 12.5}, {"name": "own", "seconds": 4.0}, {"name": "own", "seconds": 4.0},
              {"name": "results.json", "seconds": 30.0}]))
    result = _run(tmp_path, "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    times = json.loads((tmp_path / "_build" / "execution_times.json").read_text())
    assert times["loaded_seconds"] == {"05_vae": 12.5, "06_kl_term": 34.0}  # own once, and the cached results
