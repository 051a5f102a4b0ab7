"""Numbers for the book's prose: a chapter glues a value it computed, and its text shows it.

In a notebook cell, ``glue("kl_20d", kl)`` stores the value; the chapter's markdown writes
``{glue:text}`kl_20d:.1f``` where the number goes, so the rendered page shows the number this build
computed, never one typed in by hand. The book's build uses myst-nb's glue; where myst-nb is not
installed (Colab, a plain Jupyter) nothing is stored and the value is only returned.
"""

from __future__ import annotations

import numbers

__all__ = ["glue"]


def glue(name: str, value):
    """Store ``value`` (a number or a string) under ``name`` for the text; return ``value``."""
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
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # not building the book: the value is printed by the cell anyway
        return value
    myst_glue(name, value, display=False)
    return value
