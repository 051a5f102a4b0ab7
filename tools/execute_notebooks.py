"""Execute the book's notebooks into jupyter-book's execution cache, in parallel, before the build.

    python tools/execute_notebooks.py [--jobs N] [--cache _build/.jupyter_cache] [--force]

jupyter-book (myst-nb with ``execute_notebooks: cache``) executes notebooks one after the other
while it parses them. The models in this book are small: one notebook cannot keep two cores busy, so
two notebooks with one thread each finish far sooner than the same two one after the other. This
script fills the same cache first, ``--jobs`` notebooks at a time, each kernel limited to one thread
when more than one runs; the build then finds every notebook in the cache and only renders.

It also closes a gap of jupyter-cache, which recognizes a notebook by its code cells alone: after a
change to ``vae_lesson`` (or to the torch version) a rebuild would show outputs computed with the
old code. A fingerprint of the package sources is kept next to the cache; when it changes, every
notebook runs again.

A chapter that loads another's trained models, or reads what it wrote (``AFTER``), starts when that
one has finished.
Chapters that gather what other chapters recorded (``LAST``) run after all others, and again
whenever any other chapter ran. Per-notebook wall times go to ``<build>/execution_times.json`` for
the appendix. A notebook that fails stops the script with exit status 1 and a message naming the
notebook and cell.

Each notebook's kernel lists the named checkpoints it trained or loaded in
``<build>/weights_ledger/<notebook>.jsonl`` (``$VAE_LESSON_WEIGHTS_LEDGER``, written by
``vae_lesson.load_or_train``); a notebook that runs again starts a new list, one served from the
cache keeps its list. ``tools/publish_weights.py`` publishes those checkpoints with the book.
Likewise, ``<build>/loaded_work/<notebook>.jsonl`` (``$VAE_LESSON_LOADED_WORK``) lists the work a
notebook loaded instead of doing (a finished checkpoint, a cached results table) with the seconds
it took when it was done; ``execution_times.json`` gives their sum per notebook as
``loaded_seconds``, so that the appendix can say what a first run costs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAST = ("12_reference_numbers", "13_build_times")
# A chapter that loads another chapter's trained models starts only after it has finished, so that
# the two never train the same models at once (in a cold build both would); 06 also reads the shares
# 01 writes, to check 01's sentence about 06.
AFTER = {"06_kl_term": ("05_vae", "01_autoencoder"), "07_cvae": ("05_vae",)}
TIMEOUT = 600  # seconds per cell, as in _config.yml
FINGERPRINT_FILE = "vae_lesson.fingerprint"
LEDGER_FOLDER = "weights_ledger"  # in the build folder: one <notebook>.jsonl per notebook
LOADED_FOLDER = "loaded_work"  # the same, for the work each notebook loaded instead of doing


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of _toc.yml (root first), as paths without extension, in book order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                pages.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    return pages


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks listed in _toc.yml, in book order."""
    paths = [root / f"{page}.ipynb" for page in toc_pages(root)]
    return [p for p in paths if p.is_file()]


def package_fingerprint(root: Path = ROOT) -> str:
    """SHA-256 over the vae_lesson sources, requirements.txt and torch's version.

    The sources are the package's Python files and the explorer's JavaScript.
    """
    import torch

    digest = hashlib.sha256(torch.__version__.encode())
    sources = [p for p in (root / "vae_lesson").rglob("*") if p.suffix in (".py", ".js")]
    for path in sorted(sources) + [root / "requirements.txt"]:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def loaded_seconds(notebooks: list, ledger, loaded) -> dict:
    """Per notebook (by stem), the seconds of the work it loaded instead of doing, as recorded
    when the work was done; ``ledger(path)`` and ``loaded(path)`` name a notebook's two lists.

    A checkpoint belongs to the first notebook, in book order, whose ledger lists it: one that
    06_kl_term loads from 05_vae counts for 05_vae alone, since a first build trains it there.
    """
    owner = {}
    for path in notebooks:
        for entry in _json_lines(Path(ledger(path)), "name"):
            owner.setdefault(entry["name"], path.stem)
    result = {}
    for path in notebooks:
        listed = _json_lines(Path(loaded(path)), "name", "seconds")
        work = {entry["name"]: float(entry["seconds"]) for entry in listed}
        result[path.stem] = round(
            sum(s for name, s in work.items() if owner.get(name, path.stem) == path.stem), 1
        )
    return result


def _json_lines(path: Path, *keys: str) -> list[dict]:
    """The entries of a list of JSON lines that have ``keys`` ([] if there is no such file). Other
    lines are left out: these sums are for reading, and tools/publish_weights.py reports a damaged
    ledger line."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and all(key in entry for key in keys):
            entries.append(entry)
    return entries


def _execute(
    path: str, threads: int | None, ledger: str | None = None, loaded: str | None = None
) -> tuple[str, str | None, float, str | None]:
    """Run one notebook in its own folder.

    ``ledger``: the file where the kernel lists the checkpoints it uses, ``loaded`` the one where
    it lists the work it loaded (each deleted first, so the list is this run's). Returns (path, the
    executed notebook as JSON or None, seconds, error).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    if threads is not None:
        # the kernel inherits it; torch reads it at import
        os.environ["OMP_NUM_THREADS"] = str(threads)
    # the book's build: glue stores its numbers silently, and a text check that fails stops it
    os.environ["VAE_LESSON_BOOK_BUILD"] = "1"
    lists = (("VAE_LESSON_WEIGHTS_LEDGER", ledger), ("VAE_LESSON_LOADED_WORK", loaded))
    for variable, listing in lists:
        if listing is not None:
            Path(listing).unlink(missing_ok=True)
            Path(listing).parent.mkdir(parents=True, exist_ok=True)
            os.environ[variable] = listing  # the kernel inherits it
    # The kernel inherits this worker's stderr: keep its start-up chatter out of the build log
    # (errors come back through nbclient and are reported by the main process).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        return path, None, time.perf_counter() - started, _describe_failure(nb, err)
    except Exception as err:  # a dead kernel, a timeout: report it like a failing cell
        return path, None, time.perf_counter() - started, f"{type(err).__name__}: {err}"
    return path, nbformat.writes(nb), time.perf_counter() - started, None


def _describe_failure(nb, err) -> str:
    """Which cell failed and the exception: the cell's number (counting from 1), its first lines."""
    for number, cell in enumerate(nb.cells, start=1):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            lines = cell.source.splitlines()
            shown = "\n".join("    " + line for line in lines[:8]) + (
                "\n    ..." if len(lines) > 8 else ""
            )
            return (
                f"cell {number} of {len(nb.cells)} raised {errors[0]['ename']}: "
                f"{errors[0]['evalue']}\n{shown}"
            )
    return str(err)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="notebooks executed at once (default: 2, or 1 on a single core)",
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the book's root folder (with _toc.yml)"
    )
    parser.add_argument(
        "--build", type=Path, default=None, help="the book's build folder (default: <root>/_build)"
    )
    parser.add_argument(
        "--force", action="store_true", help="execute every notebook, cached or not"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    root = args.root.resolve()
    build = args.build if args.build is not None else root / "_build"
    cache_dir = build / ".jupyter_cache"
    ledgers = (build / LEDGER_FOLDER).resolve()

    def ledger(path: Path) -> str:
        return str(ledgers / f"{path.stem}.jsonl")

    def loaded(path: Path) -> str:
        return str((build / LOADED_FOLDER).resolve() / f"{path.stem}.jsonl")

    cache = get_cache(str(cache_dir))
    stamp = cache_dir / FINGERPRINT_FILE
    fingerprint = package_fingerprint(root)
    stale_package = not stamp.is_file() or stamp.read_text().strip() != fingerprint
    if stale_package and stamp.is_file():
        print(
            "vae_lesson, requirements.txt or torch changed since the last build: "
            "executing every notebook"
        )

    notebooks = toc_notebooks(root)
    times_path = build / "execution_times.json"
    previous = json.loads(times_path.read_text()).get("seconds", {}) if times_path.is_file() else {}

    def cached(path: Path) -> bool:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
            return True
        except KeyError:
            return False

    todo = [
        p
        for p in notebooks
        if p.stem not in LAST and (args.force or stale_package or not cached(p))
    ]
    last = [
        p
        for p in notebooks
        if p.stem in LAST and (todo or args.force or stale_package or not cached(p))
    ]
    # Longest first (known from the previous build), so the pool does not end with one long notebook
    # alone.
    todo.sort(key=lambda p: -previous.get(p.stem, 0.0))
    seconds = dict(previous)
    threads = 1 if args.jobs > 1 else None
    started = time.perf_counter()
    # The build-times appendix reads this file while it runs (it is one of the LAST chapters).
    os.environ["VAE_LESSON_EXECUTION_TIMES"] = str(times_path.resolve())

    def write_times():
        record = {
            "seconds": {p.stem: seconds.get(p.stem) for p in notebooks},
            "loaded_seconds": loaded_seconds(notebooks, ledger, loaded),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "jobs": args.jobs,
            "threads_per_notebook": threads or "torch default",
            "machine": {
                "cpu": _cpu_model(),
                "cores": os.cpu_count(),
                "platform": platform.platform(terse=True),
                "python": platform.python_version(),
                "torch": _torch_version(),
            },
        }
        times_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(times_path, json.dumps(record, indent=1))

    def store(path_text, executed, took):
        nb = nbformat.reads(executed, as_version=4)
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, path_text, data={"execution_seconds": took}),
            check_validity=False,
            overwrite=True,
        )
        seconds[Path(path_text).stem] = round(took, 1)
        # Sphinx re-reads a page only when its source is newer than its last build: a notebook
        # re-executed with unchanged code (the package changed, or it gathers other chapters'
        # results) must look new.
        os.utime(path_text)
        print(f"  {Path(path_text).name}: {took:.0f} s", flush=True)

    failures = []
    if todo:
        print(
            f"executing {len(todo)} notebook(s), {args.jobs} at a time"
            + (" (one thread each)" if threads else ""),
            flush=True,
        )
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            waiting, running = list(todo), {}

            def start_ready():
                # in order: each notebook whose prerequisites (AFTER) are done
                busy = {p.stem for p in waiting} | {p.stem for p in running.values()}
                for p in list(waiting):
                    if len(running) == args.jobs:
                        return
                    if not busy & set(AFTER.get(p.stem, ())):
                        waiting.remove(p)
                        running[pool.submit(_execute, str(p), threads, ledger(p), loaded(p))] = p

            start_ready()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    del running[future]
                    path_text, executed, took, error = future.result()
                    if error is None:
                        store(path_text, executed, took)
                    else:
                        failures.append((path_text, error))
                start_ready()
    if not failures:
        if todo or last:
            write_times()
        for (
            path
        ) in last:  # one after the other, in book order: each may read what the ones before wrote
            # in a child process too: _execute silences the stderr of the process it runs in
            with ProcessPoolExecutor(max_workers=1) as pool:
                path_text, executed, took, error = pool.submit(
                    _execute, str(path), threads, ledger(path), loaded(path)
                ).result()
            if error is None:
                store(path_text, executed, took)
                write_times()
            else:
                failures.append((path_text, error))
                break
    if failures:
        for path_text, error in failures:
            print(f"\nFAILED: {Path(path_text).relative_to(root)}\n{error}", file=sys.stderr)
        print(f"\n{len(failures)} notebook(s) failed; the book was not built.", file=sys.stderr)
        return 1
    if todo or last:
        print(f"all notebooks executed in {time.perf_counter() - started:.0f} s of wall time")
    else:
        print(
            "every notebook is in the execution cache and vae_lesson is unchanged: "
            "nothing to execute"
        )
    stamp.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(stamp, fingerprint + "\n")
    return 0


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
