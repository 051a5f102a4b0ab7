"""Xavier (Glorot) initialization as the original Chainer article writes it.

The article draws every weight from U(-a, a) with a = constant * sqrt(6 / (fan_in + fan_out)) and
leaves the biases at zero (Chainer's default). That is exactly ``torch.nn.init.xavier_uniform_``
with ``gain=constant``, so we call torch's initializer rather than writing our own.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..infra.checks import check_number, check_positive_int

__all__ = ["xavier_bound", "xavier_init_"]


def xavier_bound(fan_in: int, fan_out: int, constant: float = 1.0) -> float:
    """The half-width a of the uniform range: constant * sqrt(6 / (fan_in + fan_out)).

    fan_in, fan_out: positive integers (a layer's input and output sizes); constant: a finite number > 0.
    """
    check_positive_int(fan_in, "fan_in")
    check_positive_int(fan_out, "fan_out")
    check_number(constant, "constant", positive=True)
    return constant * math.sqrt(6.0 / (fan_in + fan_out))


def xavier_init_(module: nn.Module, constant: float = 1.0) -> nn.Module:
    """Give every ``nn.Linear`` inside ``module`` Xavier-uniform weights and zero biases, in place.

    A Linear layer's weight has shape (fan_out, fan_in), as in Chainer's ``L.Linear``.
    Returns ``module`` so the call can be chained.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    check_number(constant, "constant", positive=True)
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight, gain=constant)
            if layer.bias is not None:
                with torch.no_grad():
                    layer.bias.zero_()
    return module
