"""Trained weights published with the book, downloaded instead of training.

The book's build copies the checkpoints its chapters trained into ``weights/`` next to the HTML,
with ``weights/manifest.json`` giving each file's size and SHA-256 (``tools/publish_weights.py``).
After :func:`use_published_weights` (or with ``$VAE_LESSON_WEIGHTS_URL`` set to the base URL),
:func:`vae_lesson.load_or_train` fetches the checkpoint a chapter names, checks it against the
manifest, the model and the training settings, and loads it instead of training. Anything that does
not fit (no network, a damaged or foreign file, other settings) is reported in one line and the
model is trained as usual. Nothing is downloaded unless asked for: the offline build and the tests
never touch the network.

``BOOK_URL`` is written by ``tools/book_links.py`` from ``repository.url`` in _config.yml: the
book is published on the repository's GitHub Pages site.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import urllib.parse
from pathlib import Path

from .atomic import atomic_path
from .checkpoint import CheckpointError, config_mismatch, read_checkpoint
from .data import _failure_reason, _fetch, _resolve_timeout
from .settings import append_to_listing

__all__ = [
    "BOOK_URL",
    "use_published_weights",
    "published_weights_url",
    "fetch_published",
    "record_in_ledger",
]

BOOK_URL = "https://vae-book.github.io/vae-book/"

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "vae_lesson.weights/1"
URL_VARIABLE = "VAE_LESSON_WEIGHTS_URL"
LEDGER_VARIABLE = "VAE_LESSON_WEIGHTS_LEDGER"

_active_url: str | None = None  # set by use_published_weights()


class _Refused(Exception):
    """Why the published weights cannot be used; the message is shown, and training goes on."""


def _check_base_url(url, where: str) -> str:
    if not isinstance(url, str):
        raise TypeError(f"{where} must be a URL (a str), got {type(url).__name__}")
    url = url.strip()
    if urllib.parse.urlsplit(url).scheme not in ("http", "https") or "://" not in url:
        raise ValueError(
            f"{where} must be an http:// or https:// URL such as {BOOK_URL}weights/, "
            f"got {url!r:.80}"
        )
    return url if url.endswith("/") else url + "/"


def use_published_weights(base_url: str | None = None, profile: str = "default") -> str:
    """Let :func:`vae_lesson.load_or_train` download the book's trained weights in this process.

    ``base_url`` is the folder that holds ``manifest.json`` and the ``.pt`` files; by default the
    published book's ``weights/`` (``BOOK_URL + "weights/"``). Returns the base URL in use. Weights
    are used only when they were trained with the same model, data and settings as the call that
    asks for them; otherwise, or without network, the model is trained as usual.

    The book is built in the ``default`` profile, so this also selects ``profile`` (``default``)
    for the chapter's settings, unless ``$VAE_LESSON_PROFILE`` already chooses one: on a GPU, where
    the ``full`` profile would otherwise ask for other epochs, the chapter then asks for what the
    book trained. Run it before the cell that sets the chapter's epochs.
    """
    global _active_url
    from .settings import PROFILE_VARIABLE, PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r:.40}")
    _active_url = _check_base_url(
        BOOK_URL + "weights/" if base_url is None else base_url, "base_url"
    )
    if not os.environ.get(PROFILE_VARIABLE, "").strip():
        os.environ[PROFILE_VARIABLE] = profile
    print(
        f"published weights from {_active_url}; the chapters' settings follow the "
        f"{os.environ[PROFILE_VARIABLE].strip()} profile (${PROFILE_VARIABLE})"
    )
    return _active_url


def published_weights_url() -> str | None:
    """The base URL the weights are fetched from, or None when fetching is off (the default).

    On after :func:`use_published_weights`, or when ``$VAE_LESSON_WEIGHTS_URL`` holds a base URL.
    """
    if _active_url is not None:
        return _active_url
    text = os.environ.get(URL_VARIABLE, "").strip()
    return _check_base_url(text, f"${URL_VARIABLE}") if text else None


def record_in_ledger(name: str, path) -> None:
    """Append ``{"name": name, "path": path}`` to the file ``$VAE_LESSON_WEIGHTS_LEDGER`` names, if
    set: the list of checkpoints a book build may publish (``tools/execute_notebooks.py`` sets it
    for each notebook)."""
    append_to_listing(LEDGER_VARIABLE, {"name": name, "path": str(Path(path).resolve())})


def _download(url: str, target, timeout: float, what: str) -> tuple[str, int]:
    try:
        return _fetch(url, target, None, timeout, "sha256")
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise _Refused(
            f"{what} could not be downloaded from {url} ({_failure_reason(err, timeout)})"
        ) from None


def _manifest_entry(base: str, name: str, timeout: float, what: str) -> dict:
    url = base + MANIFEST
    buffer = io.BytesIO()
    _download(url, buffer, timeout, what)
    try:
        manifest = json.loads(buffer.getvalue().decode("utf-8"))
    except ValueError:  # not UTF-8, not JSON
        raise _Refused(f"{url} is not a weights manifest (not JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise _Refused(
            f"{url} is not a weights manifest of format {MANIFEST_FORMAT!r} (found {found!r:.40})"
        )
    weights = manifest.get("weights")
    entry = weights.get(name) if isinstance(weights, dict) else None
    if entry is None:
        raise _Refused(f"no published weights named {name!r} in the manifest at {url}")
    sha256, size = (entry.get("sha256"), entry.get("bytes")) if isinstance(entry, dict) else (0, 0)
    if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)) or not (
        isinstance(size, int) and not isinstance(size, bool) and size > 0
    ):
        raise _Refused(f"the manifest at {url} has no valid SHA-256 and size for {what}")
    return entry


def _settings_difference(ours: dict, theirs, num_epochs: int, their_epoch) -> str:
    """What differs between this call's training settings and the file's, in a few words."""
    if not isinstance(theirs, dict):
        return "the file records no training settings"
    parts = []
    if their_epoch != num_epochs:
        parts.append(f"epochs {num_epochs} here vs {their_epoch} there")
    data = {"x_train": "training data", "x_test": "test data"}
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        a, b = ours.get(key), theirs.get(key)
        if a == b:
            continue
        if key not in data:
            parts.append(f"{key} {a!r:.40} here vs {b!r:.40} there")
        elif a is None or b is None:
            parts.append(
                f"{data[key]} {'none' if a is None else 'given'} here vs "
                f"{'none' if b is None else 'given'} there"
            )
        elif isinstance(b, list) and b[:1] == a[:1]:
            parts.append(f"other {data[key]} of the same shape")
        else:
            shape = b[0] if isinstance(b, list) and b else b
            parts.append(f"other {data[key]} (shape {a[0]} here vs {shape!r:.40} there)")
    return "; ".join(parts)


def fetch_published(
    name: str,
    destination,
    *,
    expected_settings: dict,
    num_epochs: int,
    model,
    base_url: str | None = None,
    timeout: float | None = None,
) -> bool:
    """Download the published checkpoint ``name`` to ``destination`` if it fits; True if it did.

    Reads ``manifest.json`` at ``base_url`` (default: :func:`published_weights_url`), downloads
    ``<name>.pt`` into a temporary file, and checks its size and SHA-256 against the manifest, then
    that it is a checkpoint (read with ``weights_only=True``) of a model configured like ``model``,
    trained with ``expected_settings`` for ``num_epochs`` epochs. Only then is it moved into place,
    atomically. Otherwise prints one line saying what was wrong and that the model is trained
    instead, leaves no file behind, and returns False. Network and file problems never raise.
    """
    if not isinstance(name, str) or not name.strip() or "/" in name or os.sep in name:
        raise TypeError(f"name must be a checkpoint name such as 'vae_2d', got {name!r:.60}")
    if not isinstance(expected_settings, dict):
        raise TypeError(f"expected_settings must be a dict, got {type(expected_settings).__name__}")
    base = published_weights_url() if base_url is None else _check_base_url(base_url, "base_url")
    if base is None:
        raise ValueError(
            "fetching published weights is off: call vae_lesson.use_published_weights() first, "
            "or pass base_url"
        )
    timeout = _resolve_timeout(timeout)
    what = f"the published weights for {name!r}"
    url = base + urllib.parse.quote(name) + ".pt"
    try:
        entry = _manifest_entry(base, name, timeout, what)
        with atomic_path(destination, suffix=".part") as tmp:
            with open(tmp, "wb") as file:
                sha256, size = _download(url, file, timeout, what)
            if size != entry["bytes"]:
                raise _Refused(
                    f"{what} are {size:,} bytes but their manifest says {entry['bytes']:,} "
                    "(truncated or replaced file?)"
                )
            if sha256 != entry["sha256"]:
                raise _Refused(f"{what} do not match their manifest's SHA-256 (damaged download?)")
            try:
                payload = read_checkpoint(tmp)  # weights_only=True: never runs code from the file
            except CheckpointError:
                raise _Refused(f"{what} are not a readable vae_lesson checkpoint") from None
            try:
                mismatch = config_mismatch(model, payload)
            except (AttributeError, TypeError):  # a config that is not a dict
                mismatch = f"its config is {payload['config']!r:.60}"
            if mismatch:
                raise _Refused(f"{what} belong to another model ({mismatch})")
            settings, epoch = payload.get("settings"), payload.get("epoch")
            if settings != expected_settings or epoch != num_epochs:
                difference = _settings_difference(expected_settings, settings, num_epochs, epoch)
                raise _Refused(f"{what} were trained with other settings ({difference})")
    except _Refused as refused:
        print(f"{refused}; training instead")
        return False
    except OSError as err:  # the checkpoint folder cannot be written
        print(f"{what} could not be saved to {destination} ({err}); training instead")
        return False
    print(f"downloaded {what} ({size / 1e6:.1f} MB, SHA-256 checked) from {url}")
    return True
