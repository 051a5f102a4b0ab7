"""The device the book trains on: a CUDA GPU if there is one, else Apple's MPS, else the CPU.

``$VAE_LESSON_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the choice, e.g. to train
on the CPU beside a GPU. :func:`vae_lesson.train` trains on :func:`pick_device`'s choice and hands
the model back where it was (the CPU, as the chapters build it), so every figure after training
runs the same code on any machine.

What a seed fixes on each device:

- **CPU**: everything. The same seed, data, torch version and thread count give bit-identical
  weights, losses and figures (the book's build checks this).
- **CUDA**: the same seed draws the same random numbers (shuffling, initial weights and the
  reparameterization noise), but some GPU kernels add in an order that varies from run to run
  (atomic additions in the backward pass of indexing and of some convolutions, cuDNN's choice of
  algorithm), so two runs agree to float32 rounding at first and drift apart by a little over many
  epochs. The numbers a chapter reports move in their last digits, not in their meaning. Setting
  ``$VAE_LESSON_DETERMINISTIC=1`` asks torch for deterministic kernels
  (``torch.use_deterministic_algorithms``): bit-identical on the same GPU and software, slower.
- **MPS**: seeded like CUDA; Apple does not promise deterministic kernels either.
"""

from __future__ import annotations

import os

import torch

__all__ = ["pick_device", "describe_device", "accelerator_present", "DEVICE_VARIABLE"]

DEVICE_VARIABLE = "VAE_LESSON_DEVICE"
DETERMINISTIC_VARIABLE = "VAE_LESSON_DETERMINISTIC"
_KINDS = ("cpu", "cuda", "mps")


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _parse(name, source: str) -> torch.device:
    """``name`` as a torch.device this machine has; a ValueError naming ``source`` if not."""
    text = str(name).strip().lower() if isinstance(name, (str, torch.device)) else None
    if not text or text.split(":")[0] not in _KINDS:
        raise ValueError(
            f"{source} must be one of 'cpu', 'cuda', 'cuda:N' or 'mps', got {name!r:.60}"
        )
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(
            f"{source} must be one of 'cpu', 'cuda', 'cuda:N' or 'mps', got {name!r:.60}"
        ) from None
    if device.type == "cuda":
        if not _cuda_available():
            raise ValueError(
                f"{source} asks for {text!r}, but torch finds no CUDA GPU here "
                "(torch.cuda.is_available() is False); use 'cpu', or in Colab choose a GPU "
                "runtime (Runtime > Change runtime type)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"{source} asks for {text!r}, but this machine has {count} CUDA GPU(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    if device.type == "mps" and not _mps_available():
        raise ValueError(
            f"{source} asks for 'mps', but torch finds no Apple GPU here "
            "(torch.backends.mps.is_available() is False); use 'cpu'"
        )
    return device


def pick_device(name=None) -> torch.device:
    """The device to train on: ``name`` if given, else ``$VAE_LESSON_DEVICE`` if set, else CUDA
    if available, else MPS if available, else the CPU.

    A device that is asked for but absent is a ValueError that says so (not a silent fallback).
    """
    if name is not None:
        return _parse(name, "device")
    override = os.environ.get(DEVICE_VARIABLE, "").strip()
    if override:
        return _parse(override, f"${DEVICE_VARIABLE}")
    if _cuda_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def accelerator_present() -> bool:
    """True when :func:`pick_device` chooses a GPU (CUDA or MPS)."""
    return pick_device().type != "cpu"


def use_deterministic_kernels() -> bool:
    """Turn on torch's deterministic kernels when ``$VAE_LESSON_DETERMINISTIC`` is 1/true/yes;
    returns whether it did. CUDA needs a fixed cuBLAS workspace for that, set here too."""
    if os.environ.get(DETERMINISTIC_VARIABLE, "").strip().lower() not in ("1", "true", "yes"):
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    return True


def describe_device(device=None) -> str:
    """One line for a notebook: the device and what a seed makes reproducible on it."""
    device = pick_device() if device is None else _parse(device, "device")
    if device.type == "cpu":
        return "training on the CPU: seeded runs are bit-identical"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        return (
            f"training on {name} (CUDA): seeded, identical to float32 rounding, not bit for bit "
            f"(${DETERMINISTIC_VARIABLE}=1 makes it so, slower)"
        )
    return "training on the Apple GPU (MPS): seeded, not bit-identical from run to run"
