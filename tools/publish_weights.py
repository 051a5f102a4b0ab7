"""Publish the book build's trained weights next to its HTML, in ``<build>/html/weights/``.

    python tools/publish_weights.py [--build _build]        (part of make book)

``tools/execute_notebooks.py`` has every notebook list the named checkpoints it trained or loaded
in ``<build>/weights_ledger/<notebook>.jsonl``. This script copies each of them to
``<build>/html/weights/<name>.pt`` (without the optimizer state: the
runs are finished) and writes ``<build>/html/weights/manifest.json``::

    {"format": "vae_lesson.weights/1",
     "weights": {"<name>": {"sha256": ..., "bytes": ..., "model_class": ..., "epochs": ...,
                            "chapter": "<notebook>"}}}

Published with the book, the folder is what ``vl.use_published_weights()`` downloads from
(``vae_lesson/infra/published.py``). It is rewritten on every run: a file an earlier build
published and this one does not is removed. Every file is written atomically. A listed checkpoint
that is missing or unreadable stops the script with exit status 1 and a message naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import pkgutil
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_lesson.infra.atomic import atomic_path, write_text_atomically  # noqa: E402
from vae_lesson.infra.checkpoint import (  # noqa: E402
    CheckpointError,
    checkpoint_name,
    read_checkpoint,
)
from vae_lesson.infra.published import MANIFEST, MANIFEST_FORMAT  # noqa: E402

LEDGER_FOLDER = "weights_ledger"  # tools/execute_notebooks.py writes it in the build folder
WEIGHTS_FOLDER = "weights"  # in <build>/html


class PublishError(RuntimeError):
    """A ledger or a checkpoint it lists cannot be published; the message names it."""


def _register_models() -> None:
    """Import every chapter module, so that every model class a checkpoint names is known."""
    import vae_lesson.chapters as chapters

    for module in pkgutil.iter_modules(chapters.__path__):
        importlib.import_module(f"vae_lesson.chapters.{module.name}")


def read_ledgers(build: Path) -> dict[str, tuple[Path, str]]:
    """``{name: (checkpoint path, chapter)}`` from every ledger of ``build``, in book order.

    A name listed by several chapters (a chapter that loads another's models) belongs to the first.
    """
    found: dict[str, tuple[Path, str]] = {}
    for ledger in sorted((build / LEDGER_FOLDER).glob("*.jsonl")):
        chapter = ledger.stem
        for number, line in enumerate(ledger.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                name, path = entry["name"], Path(entry["path"])
                if not isinstance(name, str) or checkpoint_name(name) != name:
                    raise ValueError(f"{name!r} is not a checkpoint name")
            except (ValueError, KeyError, TypeError) as err:
                raise PublishError(
                    f"{ledger}:{number}: not a ledger line ({err}): {line[:80]!r}"
                ) from None
            if name in found and found[name][0] != path:
                raise PublishError(
                    f"the checkpoint {name!r} is listed with two files: {found[name][0]} "
                    f"(chapter {found[name][1]}) and {path} (chapter {chapter}); run "
                    "tools/execute_notebooks.py --force to list this build's checkpoints afresh"
                )
            found.setdefault(name, (path, chapter))
    return found


def _copy(source: Path, target: Path) -> dict:
    """Write ``source`` to ``target`` atomically, without its optimizer state (a finished run
    does not need it, and it is two thirds of the file); the copy's SHA-256, size, model class and
    epochs."""
    payload = read_checkpoint(source)  # weights_only=True
    payload["optimizer"] = None
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as file:
            torch.save(payload, file)
        digest, size = hashlib.sha256(), 0
        with open(tmp, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        read_checkpoint(tmp)  # the copy reads back
    return {
        "sha256": digest.hexdigest(),
        "bytes": size,
        "model_class": payload["model_class"],
        "epochs": payload.get("epoch"),
    }


def publish(build: Path) -> dict:
    """Copy every checkpoint the ledgers of ``build`` list into ``build/html/weights`` and write
    its manifest; returns the manifest."""
    html = build / "html"
    if not html.is_dir():
        raise PublishError(f"no built book in {html}: run jupyter-book build first")
    listed = read_ledgers(build)
    missing = [
        f"{name!r} ({path}, chapter {ch})"
        for name, (path, ch) in listed.items()
        if not path.is_file()
    ]
    if missing:
        raise PublishError(
            f"{len(missing)} checkpoint(s) the build used no longer exist: {', '.join(missing)}; "
            "run tools/execute_notebooks.py --force to train them again"
        )
    _register_models()
    folder = html / WEIGHTS_FOLDER
    weights = {}
    for name, (path, chapter) in sorted(listed.items()):
        try:
            weights[name] = {**_copy(path, folder / f"{name}.pt"), "chapter": chapter}
        except CheckpointError as err:
            raise PublishError(
                f"the checkpoint {name!r} of chapter {chapter} cannot be published: {err}"
            ) from None
    manifest = {"format": MANIFEST_FORMAT, "weights": weights}
    write_text_atomically(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    keep = {MANIFEST, *(f"{name}.pt" for name in weights)}
    for stale in folder.iterdir():  # what an earlier build published and this one does not
        if stale.name in keep:
            continue
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--build", type=Path, default=ROOT / "_build", help="the build folder (default: _build)"
    )
    args = parser.parse_args(argv)
    build = args.build.resolve()
    try:
        manifest = publish(build)
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    weights = manifest["weights"]
    folder = build / "html" / WEIGHTS_FOLDER
    if not weights:
        print(
            f"no checkpoints listed in {build / LEDGER_FOLDER}, so none published in {folder} "
            "(notebooks list theirs when tools/execute_notebooks.py runs them; --force runs all)"
        )
        return 0
    total = sum(entry["bytes"] for entry in weights.values())
    chapters = len({entry["chapter"] for entry in weights.values()})
    print(
        f"published {len(weights)} trained models of {chapters} chapter(s), {total / 1e6:.1f} MB, "
        f"in {folder}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
