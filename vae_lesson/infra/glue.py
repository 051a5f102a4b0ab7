"""Numbers for the book's prose: a chapter glues a value it computed, and its text shows it.

In a notebook cell, ``glue("kl_20d", kl)`` stores the value; the chapter's markdown writes
``{glue:text}`kl_20d:.1f``` where the number goes, so the rendered page shows the number this build
computed, never one typed in by hand. The book's build uses myst-nb's glue. Elsewhere (Colab, a
plain Jupyter, the student notebooks, whose text names the value ``kl_20d`` where the book shows
the number) the cell prints ``kl_20d = 21.53`` so that the reader sees the number of their own run.

``check_text(holds, claim)`` checks a sentence of the text against the run's numbers: in the
book's build a claim that no longer holds stops the build, so that the text is revised; elsewhere it
prints a note and the notebook goes on (a reader who changed the code expects other numbers).
"""

from __future__ import annotations

import numbers
import os

__all__ = ["glue", "check_text", "BUILD_VARIABLE"]

# Set to 1 by the book's build (tools/execute_notebooks.py and the Makefile's jupyter-book step).
BUILD_VARIABLE = "VAE_LESSON_BOOK_BUILD"


def building_the_book() -> bool:
    """Whether this process runs as part of the book's build (``VAE_LESSON_BOOK_BUILD=1``)."""
    return os.environ.get(BUILD_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def glue(name: str, value):
    """Store ``value`` (a number or a string) under ``name`` for the text; return ``value``.

    Outside the book's build it also prints ``name = value``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be a Python identifier such as 'kl_20d', got {name!r}")
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise TypeError(
            f"glue({name!r}, ...) takes a number or a string, got {type(value).__name__}; "
            "convert tensors with float(...) or int(...)"
        )
    # NumPy scalars print as np.int64(3), which myst-nb cannot format: store plain Python numbers
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    if not building_the_book():
        print(f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab, a plain Jupyter: nothing to store
        return value
    myst_glue(name, value, display=False)
    return value


def check_text(holds, claim: str) -> bool:
    """Check a claim of the chapter's text against this run: ``holds`` is the claim's test.

    In the book's build a claim that does not hold raises ``AssertionError`` (revise the text);
    elsewhere it prints a note saying which claim this run does not bear out.
    Returns ``bool(holds)``.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(
            "check_text needs the claim it checks, as a sentence, e.g. 'the 2-D KL is lower'"
        )
    holds = bool(holds)
    if holds:
        return True
    if building_the_book():
        raise AssertionError(
            f"revise the text: it says that {claim}, and this build does not bear it out"
        )
    print(
        f"Note: the text says that {claim}; this run does not bear it out. The text describes the "
        "book's own run; a run with other code, settings, data or hardware can differ."
    )
    return False
