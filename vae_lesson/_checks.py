"""Input checks shared by the public helpers.

Every public function validates its arguments here first, so a reader who passes the wrong thing
gets one sentence naming the argument and the problem instead of a traceback from inside torch.
"""

from __future__ import annotations

import torch


def check_tensor(value, name: str) -> torch.Tensor:
    """Return ``value`` if it is a floating-point tensor, else raise a TypeError naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (e.g. torch.float32), got dtype {value.dtype}; "
            f"convert it with {name}.float()"
        )
    return value


def check_finite(value: torch.Tensor, name: str) -> None:
    """Raise a ValueError if ``value`` holds NaN or infinite entries."""
    if value.numel() and not bool(torch.isfinite(value).all()):
        n_bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s)")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_same_device(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}; move both to one device")


def check_unit_interval(x: torch.Tensor, name: str) -> None:
    """Raise a ValueError if any entry of ``x`` lies outside [0, 1] (or is NaN)."""
    if x.numel() == 0:
        return
    lo, hi = float(x.detach().min()), float(x.detach().max())
    if not (0.0 <= lo and hi <= 1.0):  # also false for NaN
        raise ValueError(
            f"{name} must lie in [0, 1] (pixel intensities or probabilities), got values in [{lo:g}, {hi:g}]; "
            "divide 8-bit images by 255"
        )


def check_reduce(reduce: str) -> None:
    if reduce not in ("sum", "mean", "no"):
        raise ValueError(f'reduce must be "sum", "mean" or "no", got {reduce!r}')


def check_batch(x, name: str, n_features: int) -> torch.Tensor:
    """Check that ``x`` is a non-empty float batch of shape (batch, n_features)."""
    check_tensor(x, name)
    if x.dim() != 2 or x.shape[1] != n_features:
        hint = ""
        if x.dim() > 2 and x[0].numel() == n_features:
            hint = f"; flatten images first, e.g. {name}.reshape(len({name}), -1)"
        elif x.dim() == 1 and x.numel() == n_features:
            hint = f"; for a single example use {name}.unsqueeze(0)"
        raise ValueError(f"{name} must have shape (batch, {n_features}), got {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")
    return x


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_kl_weight(C) -> float:
    """The KL weight C of a VAE loss: a finite number >= 0."""
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not (C >= 0 and C != float("inf")):
        raise ValueError(f"C must be a finite number >= 0, got {C!r}")
    return C
