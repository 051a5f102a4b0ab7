"""Input checks shared by the public helpers.

Every public function validates its arguments here first, so a reader who passes the wrong thing
gets one sentence naming the argument and the problem instead of a traceback from inside torch.
Messages read "<name> must ..., got ...".
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def _type_name(value) -> str:
    return type(value).__name__


def check_tensor(value, name: str) -> torch.Tensor:
    """Return ``value`` if it is a floating-point tensor with values, else raise a
    TypeError/ValueError naming ``name``."""
    if not isinstance(value, torch.Tensor):
        hint = ""
        if isinstance(value, (list, tuple, np.ndarray)):
            hint = f"; convert it with torch.as_tensor({name}, dtype=torch.float32)"
        raise TypeError(f"{name} must be a torch.Tensor, got {_type_name(value)}{hint}")
    check_not_meta(value, name)
    if not value.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (e.g. torch.float32), got dtype "
            f"{value.dtype}; convert it with {name}.float()"
            + (" (and divide 8-bit images by 255)" if value.dtype == torch.uint8 else "")
        )
    return value


def check_not_meta(value: torch.Tensor, name: str) -> None:
    """A tensor on the "meta" device has a shape but no values: nothing can be computed from it."""
    if value.device.type == "meta":
        raise ValueError(
            f"{name} must hold values, got a tensor on the meta device (a shape without data); "
            "create it on a real device such as 'cpu'"
        )


class NonFiniteError(ValueError):
    """A tensor holds NaN or infinite values (in training: the weights have diverged)."""


def check_finite(value: torch.Tensor, name: str) -> None:
    """Raise a :class:`NonFiniteError` (a ValueError) if ``value`` holds NaN or infinite entries."""
    # One sum decides, in one pass: it is finite when every entry is. It can also overflow with
    # finite entries, so a non-finite sum only sends the tensor to the exact test.
    if value.numel() and not math.isfinite(float(value.detach().sum())):
        n_bad = int((~torch.isfinite(value)).sum())
        if n_bad:
            raise NonFiniteError(f"{name} contains {n_bad} NaN or infinite value(s)")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def check_same_device(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.device != b.device:
        raise ValueError(
            f"{name_a} is on {a.device} but {name_b} is on {b.device}; move both to one device"
        )


def check_mean_ln_var(mean, ln_var) -> None:
    """The parameters of a diagonal Gaussian: finite float tensors of one shape, on one device."""
    check_tensor(mean, "mean")
    check_tensor(ln_var, "ln_var")
    check_same_shape(mean, ln_var, "mean", "ln_var")
    check_same_device(mean, ln_var, "mean", "ln_var")
    check_finite(mean, "mean")
    check_finite(ln_var, "ln_var")


def check_unit_interval(x: torch.Tensor, name: str) -> None:
    """Raise a ValueError if any entry of ``x`` lies outside [0, 1] (or is NaN or infinite)."""
    if x.numel() == 0:
        return
    # One aminmax pass decides (NaN fails the comparison, inf lies outside); the rest only
    # words the error.
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    if 0.0 <= lo and hi <= 1.0:
        return
    what = f"{name} must lie in [0, 1] (pixel intensities or probabilities)"
    if not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{what}, but it contains {int((~torch.isfinite(x)).sum())} NaN or infinite value(s)"
        )
    raise ValueError(f"{what}, got values in [{lo:g}, {hi:g}]; divide 8-bit images by 255")


def check_pixel_values(array: np.ndarray, name: str) -> None:
    """A NumPy array of images to draw: finite pixel values in [0, 1]."""
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} must hold pixel values in [0, 1], but it contains "
            f"{int((~np.isfinite(array)).sum())} NaN or infinite value(s)"
        )
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"{name} must hold pixel values in [0, 1], got values in "
            f"[{array.min():g}, {array.max():g}]"
        )


def check_not_empty(x: torch.Tensor, name: str) -> None:
    if x.dim() == 0 or x.shape[0] == 0 or x.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty batch, got an empty tensor of shape {tuple(x.shape)}"
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
        raise ValueError(
            f"{name} must have shape (batch, {n_features}), got {tuple(x.shape)}{hint}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)})")
    return x


def check_model_input(x: torch.Tensor, name: str, model: torch.nn.Module) -> torch.Tensor:
    """``x`` must be on the device of ``model``'s weights and have their dtype (torch does not
    convert)."""
    weight = next(model.parameters(), None)
    if weight is None:
        return x
    if x.device != weight.device:
        raise ValueError(
            f"{name} is on device {x.device} but the model's weights are on {weight.device}; "
            f"move one of them, e.g. {name}.to({str(weight.device)!r})"
        )
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's weights are {weight.dtype}; "
            f"convert it with {name}.to({weight.dtype})"
        )
    return x


def check_model_has_values(model: torch.nn.Module, name: str = "model") -> None:
    """A model moved to the meta device has shapes but no weights: it cannot compute or be saved."""
    if any(p.device.type == "meta" for p in model.parameters()):
        raise ValueError(
            f"{name} must have weights with values, got a model on the meta device; "
            "build it on a real device such as 'cpu'"
        )


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        hint = ""
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
            hint = f" of type {_type_name(value)}; pass a Python int, e.g. int({name})"
        elif isinstance(value, float) and value.is_integer():
            hint = f"; pass {int(value)} rather than {value!r}"
        raise ValueError(f"{name} must be a positive integer, got {value!r}{hint}")
    return value


def check_int(value, name: str, minimum: int | None = None) -> int:
    """A Python int (not a bool), optionally >= ``minimum``: seeds, counts that may be 0 and
    indices."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return value


def check_seed(seed, name: str = "seed") -> int:
    """A seed for ``torch.Generator.manual_seed``: a Python int (negative seeds are allowed by
    torch)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{name} must be an integer, got {seed!r}")
    return seed


def check_number(
    value, name: str, *, minimum: float | None = None, positive: bool = False, finite: bool = True
) -> float:
    """A real number (int or float, not a bool), finite unless ``finite=False``, > 0 if
    ``positive``,
    >= ``minimum`` if given. Returns it as a float."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok:
        value_f = float(value)
        ok = not math.isnan(value_f) and (not finite or math.isfinite(value_f))
        ok = ok and (not positive or value_f > 0) and (minimum is None or value_f >= minimum)
    if not ok:
        need = "a finite number" if finite else "a number"
        if positive:
            need += " > 0"
        elif minimum is not None:
            need += f" >= {minimum:g}"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return value_f


def check_generator(generator, name: str = "generator") -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {_type_name(generator)}")


def check_kl_weight(C) -> float:
    """The KL weight C of a VAE loss: a finite number >= 0."""
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not (C >= 0 and C != float("inf")):
        raise ValueError(f"C must be a finite number >= 0, got {C!r}")
    return C


def check_image_shape(image_shape, name: str = "image_shape", n_dims: tuple = (2,)) -> tuple:
    """A shape such as (H, W) or (C, H, W): a sequence of positive integers (floats like 28.0 are
    refused)."""
    try:
        dims = tuple(image_shape)
    except TypeError:
        raise ValueError(
            f"{name} must be a sequence of sizes such as (H, W), got {image_shape!r}"
        ) from None
    if len(dims) not in n_dims or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in dims
    ):
        what = " or ".join({2: "(H, W)", 3: "(C, H, W)"}.get(n, f"{n} sizes") for n in n_dims)
        raise ValueError(f"{name} must be {what} with positive integer sizes, got {image_shape!r}")
    return tuple(int(d) for d in dims)


def check_images(x, model: torch.nn.Module, name: str = "x") -> torch.Tensor:
    """What an MLP model's ``encode`` takes: a (batch, model.n_in) batch in [0, 1] with the weights'
    dtype and device."""
    check_batch(x, name, model.n_in)
    check_model_input(x, name, model)
    check_unit_interval(x, name)
    return x


def check_codes(z, model: torch.nn.Module, name: str = "z") -> torch.Tensor:
    """What a model's ``decode`` takes: finite codes of shape (batch, model.n_latent), the weights'
    dtype and device."""
    check_batch(z, name, model.n_latent)
    check_model_input(z, name, model)
    check_finite(z, name)
    return z


def check_posteriors(mean, ln_var) -> None:
    """N diagonal Gaussians: ``mean`` and ``ln_var`` of one shape (N, d), N, d >= 1, finite, one
    dtype."""
    check_mean_ln_var(mean, ln_var)
    if mean.dim() != 2 or mean.shape[0] == 0 or mean.shape[1] == 0:
        raise ValueError(
            f"mean and ln_var must have shape (N, d) with N, d >= 1, got {tuple(mean.shape)}"
        )
    check_finite(mean, "mean")
    check_finite(ln_var, "ln_var")


def check_codes_like(z, mean, name: str = "z") -> None:
    """Codes ``z`` (S, d) with the width and dtype of ``mean`` (N, d)."""
    check_tensor(z, name)
    if z.dim() != 2 or z.shape[1] != mean.shape[1]:
        raise ValueError(
            f"{name} must have shape (S, {mean.shape[1]}) (one code per row, as many coordinates "
            f"as mean), got {tuple(z.shape)}"
        )
    if z.dtype != mean.dtype:
        raise TypeError(f"{name} has dtype {z.dtype} but mean has {mean.dtype}; use one dtype")


def check_class_labels(
    labels,
    n_classes: int | None = None,
    *,
    name: str = "labels",
    n: int | None = None,
    per: str = "image",
) -> torch.Tensor:
    """Integer class labels of shape (n,) from 0 to n_classes - 1, as int64 (any non-negative
    integers when n_classes is None, any length when n is None). Errors call the labels ``name``
    and say there is one label per ``per``."""
    if not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of integer classes, got {type(labels).__name__}; "
            f"convert it with torch.as_tensor({name})"
        )
    check_not_meta(labels, name)
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer classes (e.g. torch.int64), got dtype {labels.dtype}"
        )
    if labels.dim() != 1 or (n is not None and len(labels) != n):
        raise ValueError(
            f"{name} must be a 1-D tensor of shape ({'n' if n is None else n},), one label per "
            f"{per}, got shape {tuple(labels.shape)}"
        )
    if len(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or (n_classes is not None and high >= n_classes):
            allowed = "0 or more" if n_classes is None else f"0 to {n_classes - 1}"
            raise ValueError(f"{name} must be classes {allowed}, got values from {low} to {high}")
    return labels.long()


def check_pixels(x, model: torch.nn.Module, name: str = "x") -> torch.Tensor:
    """Images for a conditional model: (batch, model.n_pixels) in [0, 1], the weights' dtype and
    device."""
    check_batch(x, name, model.n_pixels)
    check_model_input(x, name, model)
    check_unit_interval(x, name)
    return x


def check_label_rows(y, model: torch.nn.Module, batch: int) -> torch.Tensor:
    """``y``: (batch, n_classes) in [0, 1] (one-hot rows, or mixtures of them)."""
    check_batch(y, "y", model.n_classes)
    check_model_input(y, "y", model)
    check_unit_interval(y, "y")
    if len(y) != batch:
        raise ValueError(
            f"y must have one label row per image or code ({batch}), got {len(y)}; "
            f"make them with one_hot(labels, {model.n_classes})"
        )
    return y
