"""The book build, timed: a cold build (empty execution cache, empty checkpoint folder), then a warm rebuild with
nothing changed, each notebook's execution time, and the peak memory of the processes involved.

Run with ``python -m benchmarks --only build`` (several minutes; ``--quick`` builds in fast mode, for a check
that the measurement works). It builds into a temporary folder: the book in ``_build`` is left alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command, env) -> tuple[float, float]:
    """(wall seconds, peak resident MB of the largest child so far) for one command, which must succeed."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
    return seconds, peak_mb


def run(*, fast: bool = False, jobs: int = 2) -> dict:
    """Cold build, then warm rebuild, into a temporary folder; prints and returns the measurements."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    with tempfile.TemporaryDirectory(prefix="vae-book-build-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "VAE_LESSON_CHECKPOINT_DIR": str(tmp / "checkpoints"),
               "VAE_LESSON_OUTPUT_DIR": str(tmp / "generated")}
        if fast:
            env["VAE_LESSON_FAST"] = "1"
        execute = [sys.executable, str(ROOT / "tools" / "execute_notebooks.py"), "--jobs", str(jobs),
                   "--build", str(tmp / "_build")]
        render = [str(jupyter_book), "build", str(ROOT), "--path-output", str(tmp), "-W", "--keep-going"]
        if not (ROOT / "_build" / "vendor" / "mathjax" / "tex-chtml.js").is_file():
            raise RuntimeError("MathJax is not vendored: run `make mathjax` (make book does) first")
        # the build's html_extra_path is relative to the book: the vendored MathJax is found either way
        print(f"\n== book build{' (fast mode)' if fast else ''}: {jobs} notebooks at a time, into {tmp} ==")
        cold_execute, _ = _timed(execute, env)
        cold_render, _ = _timed(render, env)
        warm_execute, _ = _timed(execute, env)
        warm_render, peak_mb = _timed(render, env)
        times = json.loads((tmp / "_build" / "execution_times.json").read_text())
    cold, warm = cold_execute + cold_render, warm_execute + warm_render
    print(f"  cold build: {cold:6.0f} s  (executing {cold_execute:.0f} s, rendering {cold_render:.0f} s)")
    print(f"  warm build: {warm:6.1f} s  (nothing changed)")
    print(f"  peak resident memory of the largest process: {peak_mb:,.0f} MB")
    print("  per notebook (s): " + ", ".join(f"{name} {value:.0f}" for name, value in times["seconds"].items()
                                              if value is not None))
    slowest = max((v, k) for k, v in times["seconds"].items() if v is not None)
    print(f"  targets: cold <= 600 s {'met' if cold <= 600 else 'not met'}, warm <= 30 s "
          f"{'met' if warm <= 30 else 'not met'}, every notebook <= 300 s "
          f"{'met' if slowest[0] <= 300 else f'not met ({slowest[1]}: {slowest[0]:.0f} s)'}")
    return {"cold_seconds": cold, "warm_seconds": warm, "peak_mb": peak_mb, "notebook_seconds": times["seconds"]}
