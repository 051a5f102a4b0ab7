"""Checkpoints: a model's weights plus everything needed to rebuild it and continue its training.

A checkpoint is a plain dictionary of tensors, numbers and strings saved with ``torch.save`` and
read back with ``torch.load(..., weights_only=True)``, which never runs code from the file. It is
written to a temporary file and renamed into place, so an interrupted save leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .activations import activation_from_name, activation_name
from .atomic import atomic_path
from .checks import check_model_has_values, check_positive_int
from .settings import fast_mode

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_dir",
    "from_keywords",
    "model_config",
    "register_model",
    "MODEL_CLASSES",
]

FORMAT = "vae_lesson.infra.checkpoint/1"
_REQUIRED_KEYS = ("format", "model_class", "config", "state_dict")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, or belongs to another model."""


# Model classes a checkpoint can name, by class name; filled by @register_model.
MODEL_CLASSES: dict = {}


# How to rebuild each registered class from its config: its from_config, or the function given
# to register_model.
_BUILDERS: dict = {}


def register_model(cls, from_config=None):
    """Let checkpoints save and rebuild ``cls`` (usable as a class decorator).

    The class needs a ``config`` dict of its constructor arguments (plain data), and a way to
    rebuild it from that dict: a ``from_config`` classmethod, or the function
    ``from_config(config)`` given here.
    """
    builder = from_config if from_config is not None else getattr(cls, "from_config", None)
    if not callable(builder):
        raise TypeError(
            f"{cls.__name__} needs a from_config classmethod to be rebuilt from a checkpoint"
        )
    MODEL_CLASSES[cls.__name__] = cls
    _BUILDERS[cls.__name__] = builder
    return cls


def model_config(**arguments) -> dict:
    """A model's constructor arguments as plain data, the ``config`` a checkpoint stores, each
    checked.

    Sizes (names starting with ``n_``) must be positive integers; ``act_func`` must be one of the
    activations a checkpoint can name (:mod:`vae_lesson.infra.activations`), and is stored by name.
    """
    config = {}
    for name, value in arguments.items():
        if name == "act_func":
            value = activation_name(value)
        elif name.startswith("n_"):
            check_positive_int(value, name)
        config[name] = value
    return config


def from_keywords(cls):
    """A ``from_config`` for :func:`register_model`: ``cls(**config)``, with the activation rebuilt
    from its name. For classes whose ``config`` holds their constructor's keyword arguments, as
    :func:`model_config` returns them."""

    def from_config(config: dict):
        arguments = dict(config)
        if "act_func" in arguments:
            arguments["act_func"] = activation_from_name(arguments["act_func"])
        return cls(**arguments)

    return from_config


def checkpoint_dir() -> Path:
    """Where named checkpoints live: $VAE_LESSON_CHECKPOINT_DIR, else
    ~/.cache/vae_lesson/checkpoints. The fast profile ($VAE_LESSON_FAST=1) keeps its tiny
    models in the subfolder ``fast``, so that a quick check of a notebook never replaces a
    model trained at full length under the same name."""
    env = os.environ.get("VAE_LESSON_CHECKPOINT_DIR")
    if env:
        root = Path(env).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(cache) / "vae_lesson" / "checkpoints"
    return root / "fast" if fast_mode() else root


def _check_path(path, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path.strip()):
        raise TypeError(f"{name} must be a file path (str or pathlib.Path), got {path!r:.60}")
    return Path(path)


def checkpoint_name(path_or_name) -> str | None:
    """``path_or_name`` if it is a bare name such as ``"vae_2d"`` (no folder, no ``.pt``), else
    None: a path."""
    if not isinstance(path_or_name, (str, os.PathLike)) or not os.fspath(path_or_name).strip():
        raise TypeError(
            f"checkpoint must be a name such as 'vae_2d' or a file path, got {path_or_name!r:.60}"
        )
    text = os.fspath(path_or_name)
    if not isinstance(text, str) or os.sep in text or "/" in text or text.endswith(".pt"):
        return None
    return text


def resolve_checkpoint_path(path_or_name) -> Path:
    """A bare name such as ``"vae_2d"`` means ``checkpoint_dir() / "vae_2d.pt"``; anything else is a
    path."""
    name = checkpoint_name(path_or_name)
    if name is not None:
        return checkpoint_dir() / f"{name}.pt"
    return Path(os.fspath(path_or_name)).expanduser()


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns. ``model`` holds the saved weights, in eval mode."""

    model: nn.Module
    epoch: int | None = None
    history: dict | None = None
    settings: dict | None = None
    optimizer_state: dict | None = None
    rng_state: dict = field(default_factory=dict)


def save_checkpoint(
    path,
    model: nn.Module,
    *,
    epoch=None,
    history=None,
    settings=None,
    optimizer=None,
    rng_state=None,
) -> Path:
    """Save ``model`` (state_dict and constructor arguments) and training state atomically; return
    the path.

    ``history`` is a dict of plain lists (``History.as_dict()``), ``settings`` the training settings
    that produced it, ``rng_state`` a dict of RNG state tensors for an exact resume.
    """
    path = _check_path(path)
    name = type(model).__name__
    if name not in MODEL_CLASSES or not isinstance(getattr(model, "config", None), dict):
        raise TypeError(
            f"cannot checkpoint a {name}: only registered models with a config can be rebuilt "
            f"({', '.join(MODEL_CLASSES)}; see register_model)"
        )
    check_model_has_values(model)
    payload = {
        "format": FORMAT,
        "model_class": name,
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": epoch,
        "history": history,
        "settings": settings,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng_state": rng_state or {},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_checkpoint(path) -> dict:
    """The raw checkpoint dictionary, checked for format; a CheckpointError says what is wrong."""
    path = _check_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, code refused by weights_only ...
        raise CheckpointError(
            f"{path} is not a readable vae_lesson checkpoint (truncated, corrupt or not a "
            "checkpoint: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); delete it to "
            "train again"
        ) from None
    if not isinstance(payload, dict) or any(key not in payload for key in _REQUIRED_KEYS):
        raise CheckpointError(
            f"{path} is a torch file but not a vae_lesson checkpoint (missing model "
            "class/config/weights)"
        )
    if payload["format"] != FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format']!r}; this version reads {FORMAT!r}"
        )
    if payload["model_class"] not in MODEL_CLASSES:
        raise CheckpointError(
            f"{path} holds a {payload['model_class']!r}, which is not a registered model class; "
            "import the module that defines it first"
        )
    return payload


def load_checkpoint(path, model: nn.Module | None = None) -> Checkpoint:
    """Load a checkpoint with ``weights_only=True``.

    Without ``model``, the model is rebuilt from the saved constructor arguments. With ``model``,
    the checkpoint must have been saved from the same class with the same configuration (else a
    CheckpointError names the difference), and the weights are loaded into it.
    """
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module (or None to rebuild it from the file), got "
            f"{type(model).__name__}"
        )
    payload = read_checkpoint(path)
    if model is None:
        try:
            model = _BUILDERS[payload["model_class"]](payload["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: cannot rebuild {payload['model_class']} from {payload['config']!r}: {exc}"
            ) from None
    else:
        describe_mismatch = config_mismatch(model, payload)
        if describe_mismatch:
            raise CheckpointError(f"{path} does not fit this model: {describe_mismatch}")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: the saved weights do not fit a {payload['model_class']}{payload['config']}: "
            f"{_state_dict_mismatch(model, payload['state_dict']) or str(exc).splitlines()[0]}"
        ) from None
    model.eval()
    return Checkpoint(
        model,
        payload.get("epoch"),
        payload.get("history"),
        payload.get("settings"),
        payload.get("optimizer"),
        payload.get("rng_state") or {},
    )


def _state_dict_mismatch(model: nn.Module, saved: dict) -> str:
    """Which weights differ in name or shape between ``model`` and a saved state_dict (torch's own
    message starts with a line that names neither)."""
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in saved.items() if isinstance(v, torch.Tensor)}
    parts = [
        f"{k} has shape {theirs[k]} in the file but {ours[k]} in the model"
        for k in ours
        if k in theirs and ours[k] != theirs[k]
    ]
    parts += [f"{k} is missing from the file" for k in ours if k not in theirs]
    parts += [f"{k} in the file is not a weight of the model" for k in theirs if k not in ours]
    return "; ".join(parts)


def config_mismatch(model: nn.Module, payload: dict) -> str:
    """An empty string if ``payload`` was saved from a model like ``model``, else what differs."""
    name = type(model).__name__
    if payload["model_class"] != name:
        return f"it was saved from a {payload['model_class']}, not a {name}"
    ours, theirs = getattr(model, "config", {}), payload["config"]
    diffs = [
        f"{key}={theirs.get(key)!r} in the file but {ours.get(key)!r} here"
        for key in sorted(set(ours) | set(theirs))
        if ours.get(key) != theirs.get(key)
    ]
    return "; ".join(diffs)
