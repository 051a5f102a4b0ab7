"""Walking around a trained model's latent space: codes of images, class centroids, paths, grids.

Every function works for a :class:`vae_lesson.VAE` (whose ``encode`` returns the mean and log
variance of q(z|x)) and for a :class:`vae_lesson.AutoEncoder` (whose ``encode`` returns the code z
itself). Models run in eval mode under ``torch.inference_mode()``; the results are ordinary tensors
(no autograd history) that can be edited in place. Only torch is needed here; the figures live in
:mod:`vae_lesson.infra.plots`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .checks import (
    check_batch,
    check_class_labels,
    check_finite,
    check_generator,
    check_image_shape,
    check_model_has_values,
    check_model_input,
    check_positive_int,
    check_tensor,
)

__all__ = [
    "encode_means",
    "decode_points",
    "class_centroids",
    "interpolate",
    "latent_grid",
    "decode_grid",
    "all_pairs_frames",
    "sample_prior",
]


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _check_model(model) -> None:
    if (
        not isinstance(model, nn.Module)
        or not hasattr(model, "encode")
        or not hasattr(model, "decode")
    ):
        raise TypeError(
            f"model must be a VAE or AutoEncoder (an nn.Module with encode and decode), "
            f"got {type(model).__name__}"
        )
    for attribute in ("n_in", "n_latent"):
        if not isinstance(getattr(model, attribute, None), int):
            raise TypeError(
                f"model must have an integer attribute {attribute} (VAE and AutoEncoder do)"
            )
    check_model_has_values(model)


def _dtype(model: nn.Module) -> torch.dtype:
    parameter = next(model.parameters(), None)
    return parameter.dtype if parameter is not None else torch.get_default_dtype()


class _evaluating:
    """Context: the model in eval mode under inference_mode, its previous mode restored on exit."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.model.eval()
        self.inference = torch.inference_mode()
        self.inference.__enter__()

    def __exit__(self, *exc):
        self.inference.__exit__(*exc)
        self.model.train(self.was_training)
        return False


def encode_means(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Where each image lands in latent space: the mean of q(z|x) (VAE) or the code z (AutoEncoder).

    Args:
        model: a trained VAE or AutoEncoder.
        x: (n, n_in) images as rows, or (n, H, W) images with H * W == n_in (flattened here),
            in [0, 1].
        batch_size: images encoded per pass (bounds the memory, not the result).

    Returns:
        (n, n_latent) tensor.
    """
    _check_model(model)
    check_tensor(x, "x")
    if x.dim() == 3 and x[0].numel() == model.n_in:
        x = x.reshape(len(x), -1)  # (n, H, W) images: the MLP wants rows
    check_batch(x, "x", model.n_in)
    check_positive_int(batch_size, "batch_size")
    parts = []
    with _evaluating(model):
        for start in range(0, len(x), batch_size):
            encoded = model.encode(x[start : start + batch_size].to(_device(model)))
            # A VAE returns (mean, ln_var); an AutoEncoder returns z.
            parts.append(encoded[0] if isinstance(encoded, tuple) else encoded)
        z = torch.cat(parts)
    return z.clone()  # a normal tensor again, usable outside inference mode


def decode_points(model: nn.Module, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Decode latent points z (n, n_latent) to pixel probabilities (n, n_in) in [0, 1]."""
    _check_model(model)
    z = _check_points(z, "z", model.n_latent)
    check_positive_int(batch_size, "batch_size")
    with _evaluating(model):
        device = _device(model)
        images = torch.cat(
            [
                model.decode(z[start : start + batch_size].to(device))
                for start in range(0, len(z), batch_size)
            ]
        )
    return images.clone()


def _check_points(z, name: str, n_latent: int | None = None) -> torch.Tensor:
    check_tensor(z, name)
    if z.dim() != 2:
        hint = f"; for a single point use {name}.unsqueeze(0)" if z.dim() == 1 else ""
        raise ValueError(f"{name} must have shape (n_points, n_latent), got {tuple(z.shape)}{hint}")
    if z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch of points (n_points, n_latent), got an empty tensor "
            f"of shape {tuple(z.shape)}"
        )
    if n_latent is not None and z.shape[1] != n_latent:
        raise ValueError(
            f"{name} has {z.shape[1]} latent dimensions but the model has n_latent={n_latent}"
        )
    check_finite(z, name)
    return z


def class_centroids(z: torch.Tensor, labels, n_classes: int | None = None) -> torch.Tensor:
    """Mean latent point of each class: row c is the average of the rows of ``z`` whose label is c.

    Args:
        z: (n, n_latent) latent points, e.g. from :func:`encode_means`.
        labels: (n,) integer class labels 0 .. n_classes - 1 (tensor, array or list).
        n_classes: number of classes; default ``max(labels) + 1``. Every class must occur at least
            once.

    Returns:
        (n_classes, n_latent) tensor.
    """
    z = _check_points(z, "z")
    if n_classes is not None:
        check_positive_int(n_classes, "n_classes")
    if not isinstance(labels, torch.Tensor):  # a NumPy array or a list of classes
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                "labels must be a tensor, array or list of integer class labels, got "
                f"{labels!r:.60}"
            ) from None
    labels = check_class_labels(labels, n_classes, n=len(z), per="row of z").to(z.device)
    if n_classes is None:
        n_classes = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"class(es) {missing} have no points, so they have no centroid")
    sums = torch.zeros(n_classes, z.shape[1], dtype=z.dtype, device=z.device).index_add_(
        0, labels, z
    )
    return sums / counts.unsqueeze(1).to(z.dtype)


def interpolate(z_from: torch.Tensor, z_to: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Evenly spaced points on the straight line from ``z_from`` to ``z_to``, both ends included.

    Frame f is ``(1 - t) * z_from + t * z_to`` with ``t = f / (n_frames - 1)``, so t runs from 0 to
    1, as in chapter 05's walk ``(1 - t) * z_0 + t * z_7``. (The original article writes that line
    as ``t * z_0 + (1 - t) * z_7``, with t running the other way.)

    Args:
        z_from, z_to: (n_latent,) points of the same shape.
        n_frames: number of points, at least 2.

    Returns:
        (n_frames, n_latent) tensor.
    """
    for value, name in ((z_from, "z_from"), (z_to, "z_to")):
        check_tensor(value, name)
        if value.dim() != 1 or len(value) == 0:
            raise ValueError(
                f"{name} must be one latent point of shape (n_latent,) with n_latent >= 1, "
                f"got {tuple(value.shape)}" + (" (empty)" if value.numel() == 0 else "")
            )
        check_finite(value, name)
    if z_from.shape != z_to.shape:
        raise ValueError(
            f"z_from and z_to must have the same shape, got {tuple(z_from.shape)} and "
            f"{tuple(z_to.shape)}"
        )
    if z_from.device != z_to.device:
        raise ValueError(
            f"z_from is on {z_from.device} but z_to is on {z_to.device}; move both to one device"
        )
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 2:
        raise ValueError(
            f"n_frames must be an integer >= 2 (both ends are included), got {n_frames!r}"
        )
    t = torch.linspace(0.0, 1.0, n_frames, dtype=z_from.dtype, device=z_from.device).unsqueeze(1)
    return (1 - t) * z_from + t * z_to


def latent_grid(extent: float = 2.0, n: int = 15) -> tuple[torch.Tensor, torch.Tensor]:
    """A regular n x n grid over [-extent, extent]^2, ordered like the pixels of an image of it.

    Point ``r * n + c`` (row r, column c) has z_1 = values[c] and z_2 = values[n - 1 - r]: z_1 grows
    to the right along a row and z_2 decreases down the rows, so the decoded grid, drawn as an
    image, has z_2 pointing up like an ordinary plot.

    Returns:
        z: (n * n, 2) grid points; values: (n,) the increasing coordinates -extent ... extent.
    """
    if (
        isinstance(extent, bool)
        or not isinstance(extent, (int, float))
        or not 0 < extent < float("inf")
    ):
        raise ValueError(f"extent must be a positive number, got {extent!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    values = torch.linspace(-float(extent), float(extent), n)
    # rows: z2 from top (high) to bottom (low)
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1), values


def decode_grid(model: nn.Module, extent: float = 2.0, n: int = 15) -> torch.Tensor:
    """Decode the :func:`latent_grid` of a model with a 2-D latent space.

    Returns:
        (n, n, n_in) pixel probabilities; entry [r, c] decodes grid point r * n + c.
    """
    _check_model(model)
    if model.n_latent != 2:
        raise ValueError(
            f"a latent grid needs a 2-D latent space, but the model has n_latent={model.n_latent}; "
            "use interpolate() or sample_prior() for higher dimensions"
        )
    z, _ = latent_grid(extent, n)
    return decode_points(model, z.to(_dtype(model))).reshape(n, n, model.n_in)


def all_pairs_frames(
    model: nn.Module, centroids: torch.Tensor, n_steps: int, image_shape
) -> np.ndarray:
    """Frames of a montage in which every class morphs into every other class at once.

    Cell (i, j) of frame k decodes ``(1 - s_k) * centroids[i] + s_k * centroids[j]`` with s_k
    running from 0 to 1 over the frames: row i starts as class i everywhere, column j ends as class
    j everywhere, and the diagonal cells (i, i) show class i throughout.

    Args:
        model: a trained VAE or AutoEncoder.
        centroids: (n_classes, n_latent) points, e.g. from :func:`class_centroids` (10 for digits).
        n_steps: frames, at least 2 (the first and last are included).
        image_shape: (H, W) with H * W == model.n_in.

    Returns:
        float array (n_steps, n_classes * H, n_classes * W) with values in [0, 1].
    """
    _check_model(model)
    centroids = _check_points(centroids, "centroids", model.n_latent)
    check_model_input(centroids, "centroids", model)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2, got {n_steps!r}")
    height, width = _check_image_shape(image_shape, model.n_in)
    k = len(centroids)
    s = torch.linspace(0.0, 1.0, n_steps, dtype=centroids.dtype).view(n_steps, 1, 1, 1)
    # points[f, i, j] = (1 - s_f) * c_i + s_f * c_j, shape (n_steps, k, k, n_latent)
    points = (1 - s) * centroids.view(1, k, 1, -1) + s * centroids.view(1, 1, k, -1)
    images = decode_points(model, points.reshape(-1, model.n_latent))
    images = images.reshape(n_steps, k, k, height, width).permute(0, 1, 3, 2, 4)  # (f, i, H, j, W)
    return images.reshape(n_steps, k * height, k * width).cpu().numpy().clip(0.0, 1.0)


def _check_image_shape(image_shape, n_in: int) -> tuple[int, int]:
    height, width = check_image_shape(image_shape)
    if height * width != n_in:
        raise ValueError(
            f"image_shape {tuple(image_shape)} has {height * width} pixels but the model "
            f"outputs {n_in}"
        )
    return height, width


def sample_prior(
    model: nn.Module, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Decode n draws z ~ N(0, I) from the prior: new images the model generates.

    Args:
        model: a trained VAE (for an AutoEncoder this shows what goes wrong without a prior).
        n: number of samples.
        generator: a seeded ``torch.Generator`` for reproducible samples (default: torch's global
            one).

    Returns:
        (n, n_in) pixel probabilities in [0, 1].
    """
    _check_model(model)
    check_positive_int(n, "n")
    check_generator(generator)
    # drawn on the CPU, like the generator
    z = torch.randn(n, model.n_latent, generator=generator).to(_dtype(model))
    return decode_points(model, z)
