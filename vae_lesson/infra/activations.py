"""Activation functions by name, so a model's constructor arguments can be saved as plain data."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "elu": F.elu,
    "leaky_relu": F.leaky_relu,
    "gelu": F.gelu,
}


def activation_name(func) -> str:
    """The registry name of ``func``; a ValueError for a function a checkpoint could not rebuild."""
    for name, known in ACTIVATIONS.items():
        if func is known:
            return name
    raise ValueError(
        "act_func must be torch.tanh, torch.relu, torch.sigmoid or torch.nn.functional's softplus, "
        f"elu, leaky_relu or gelu, got {func!r}: a checkpoint stores the activation by name, so "
        "only these can be reloaded"
    )


def activation_from_name(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]
