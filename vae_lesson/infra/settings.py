"""Run-time settings of the notebooks: a fast mode for tests, and where generated files go."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fast_mode", "scaled", "output_dir"]


def fast_mode() -> bool:
    """True when $VAE_LESSON_FAST is 1/true/yes: notebooks shrink epochs and data to run fast."""
    return os.environ.get("VAE_LESSON_FAST", "").strip().lower() in ("1", "true", "yes")


def scaled(full, fast):
    """``full`` normally, ``fast`` in fast mode: ``NUM_EPOCHS = scaled(30, fast=1)``."""
    return fast if fast_mode() else full


def output_dir(*parts: str) -> Path:
    """A folder for generated files (GIFs, tables), created if needed.

    It lies under $VAE_LESSON_OUTPUT_DIR, else under ./generated.
    """
    root = Path(os.environ.get("VAE_LESSON_OUTPUT_DIR") or "generated").expanduser()
    folder = root.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
