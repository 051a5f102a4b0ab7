"""Work a chapter loaded instead of doing, listed for the book's build-times appendix.

A book build reuses what an earlier build computed: a finished checkpoint loads instead of
training, a cached results table instead of rerunning its experiment. So a chapter's execution time
can be far shorter than its first run. While ``tools/execute_notebooks.py`` runs a notebook,
``$VAE_LESSON_LOADED_WORK`` names a file where :func:`record_loaded_work` appends one line per
piece of reused work, with the seconds it took when it was done; the script adds them up per
chapter for the appendix. Without the variable (a reader's notebook, the tests) nothing is written.
"""

from __future__ import annotations

from .settings import append_to_listing

__all__ = ["record_loaded_work", "LOADED_WORK_VARIABLE"]

LOADED_WORK_VARIABLE = "VAE_LESSON_LOADED_WORK"


def record_loaded_work(name: str, seconds: float) -> None:
    """Append ``{"name": name, "seconds": seconds}`` to the file ``$VAE_LESSON_LOADED_WORK``
    names, if set: ``name`` (a checkpoint's name, or a results file's) was loaded, and doing the
    work it holds took ``seconds`` when it was done."""
    entry = {"name": str(name), "seconds": round(float(seconds), 1)}
    append_to_listing(LOADED_WORK_VARIABLE, entry)
