"""Xavier (Glorot) initialization as the original Chainer article writes it.

The article draws every weight from U(-a, a) with a = constant * sqrt(6 / (fan_in + fan_out)) and
leaves the biases at zero (Chainer's default). That is exactly ``torch.nn.init.xavier_uniform_``
with ``gain=constant``, so we call torch's initializer rather than writing our own.
"""

from __future__ import annotations

import math

from torch import nn

from ..infra.checks import check_number, check_positive_int

__all__ = ["xavier_bound", "xavier_init_"]


def xavier_bound(fan_in, fan_out, constant=1.0):
    """The half-width a = constant * sqrt(6 / (fan_in + fan_out))
    of Xavier's uniform range U(-a, a).

    Defined in chapter 05 (notebooks/05_vae.ipynb).
    """
    check_positive_int(fan_in, "fan_in")
    check_positive_int(fan_out, "fan_out")
    check_number(constant, "constant", positive=True)
    return constant * math.sqrt(6.0 / (fan_in + fan_out))


def xavier_init_(module, constant=1.0):
    """Xavier-uniform weights and zero biases for every nn.Linear
    inside module, in place, as the article's Chainer code does.

    Defined in chapter 05 (notebooks/05_vae.ipynb).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    check_number(constant, "constant", positive=True)
    for layer in module.modules():
        if isinstance(layer, nn.Linear):  # W: (fan_out, fan_in)
            nn.init.xavier_uniform_(layer.weight, gain=constant)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
