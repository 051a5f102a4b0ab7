"""Run-time settings of the notebooks: how big they run (the profile), and where generated files go.

Three profiles, from one setting:

- ``fast``: tiny data and one epoch, for the test suite (``$VAE_LESSON_FAST=1`` says the same).
- ``default``: what the book's offline build runs on a 2-core CPU, a few minutes a chapter.
- ``full``: the articles' scale (full data sets, their epoch counts or a stated fraction), for a
  GPU; chosen automatically when :func:`vae_lesson.pick_device` finds one.

``$VAE_LESSON_PROFILE`` (``fast``, ``default`` or ``full``) overrides the choice: ``default`` on a
GPU runs the book's own numbers quickly; ``full`` on a CPU is allowed, and slow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = [
    "PROFILES", "profile", "fast_mode", "scaled", "output_root", "output_dir", "append_to_listing",
]

PROFILES = ("fast", "default", "full")
PROFILE_VARIABLE = "VAE_LESSON_PROFILE"


def profile() -> str:
    """The profile the notebooks run at: ``$VAE_LESSON_PROFILE`` if set, ``fast`` when
    ``$VAE_LESSON_FAST`` is 1/true/yes, else ``full`` on a GPU and ``default`` on a CPU."""
    chosen = os.environ.get(PROFILE_VARIABLE, "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(
                f"${PROFILE_VARIABLE} must be one of {', '.join(PROFILES)}, got {chosen!r:.40}"
            )
        return chosen
    if os.environ.get("VAE_LESSON_FAST", "").strip().lower() in ("1", "true", "yes"):
        return "fast"
    from .device import accelerator_present  # imports torch; settings alone does not need it

    return "full" if accelerator_present() else "default"


def fast_mode() -> bool:
    """True in the ``fast`` profile: notebooks shrink epochs and data to run fast."""
    return profile() == "fast"


def scaled(default, fast, full=None):
    """The value for the current profile: ``NUM_EPOCHS = scaled(30, fast=1, full=100)``.

    ``full`` defaults to ``default``: a setting the full profile does not change.
    """
    chosen = profile()
    if chosen == "fast":
        return fast
    if chosen == "full" and full is not None:
        return full
    return default


def output_root(working_dir: str | Path = ".") -> Path:
    """The folder that holds generated files, as a process working in ``working_dir`` sees it:
    $VAE_LESSON_OUTPUT_DIR (a relative one read from ``working_dir``), else
    ``working_dir``/generated. Nothing is created. The book's notebooks run in notebooks/."""
    root = Path(os.environ.get("VAE_LESSON_OUTPUT_DIR") or "generated").expanduser()
    return Path(working_dir) / root


def output_dir(*parts: str) -> Path:
    """A folder for generated files (GIFs, tables), created if needed.

    It lies under $VAE_LESSON_OUTPUT_DIR, else under ./generated (``output_root``).
    """
    folder = output_root().joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def append_to_listing(variable: str, entry: dict) -> None:
    """Append ``entry`` as one JSON line to the file ``$variable`` names, if it is set (the build
    sets such variables per notebook: tools/execute_notebooks.py); without it, nothing is written.
    One short write appends one whole line."""
    target = os.environ.get(variable, "").strip()
    if not target:
        return
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")
