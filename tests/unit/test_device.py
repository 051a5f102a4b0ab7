"""The device helper and the profiles, with CUDA and MPS reported present or absent by monkeypatching;
training moves the model to the chosen device and back, and a GPU out-of-memory error names the
batch size. The tests at the end run only where a CUDA GPU exists."""

import pytest
import torch

import vae_lesson as vl
from vae_lesson.core import training
from vae_lesson.infra import device as dev
from vae_lesson.infra import settings


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has the accelerators named: machine("cuda"), machine("mps"), machine()."""
    monkeypatch.delenv("VAE_LESSON_DEVICE", raising=False)
    monkeypatch.delenv("VAE_LESSON_PROFILE", raising=False)
    monkeypatch.delenv("VAE_LESSON_FAST", raising=False)

    def set_up(*present, gpus=1):
        monkeypatch.setattr(dev, "_cuda_available", lambda: "cuda" in present)
        monkeypatch.setattr(dev, "_mps_available", lambda: "mps" in present)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if "cuda" in present else 0)

    return set_up


@pytest.mark.parametrize(
    "present, expected",
    [(("cuda", "mps"), "cuda"), (("cuda",), "cuda"), (("mps",), "mps"), ((), "cpu")],
)
def test_the_device_is_cuda_else_mps_else_cpu(machine, present, expected):
    machine(*present)
    assert vl.pick_device() == torch.device(expected)
    assert dev.accelerator_present() == (expected != "cpu")


def test_the_environment_variable_overrides_the_choice(machine, monkeypatch):
    machine("cuda", gpus=2)
    monkeypatch.setenv("VAE_LESSON_DEVICE", "cpu")
    assert vl.pick_device() == torch.device("cpu")
    monkeypatch.setenv("VAE_LESSON_DEVICE", " CUDA:1 ")
    assert vl.pick_device() == torch.device("cuda", 1)
    # an explicit argument beats the variable
    assert vl.pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    "present, asked, words",
    [
        ((), "cuda", ["no CUDA GPU", "Change runtime type"]),
        (("cuda",), "cuda:3", ["1 CUDA GPU", "cuda:0 to cuda:0"]),
        (("cuda",), "mps", ["no Apple GPU"]),
        ((), "tpu", ["'cpu', 'cuda', 'cuda:N' or 'mps'", "tpu"]),
        ((), "", None),  # an empty variable means "not set"
    ],
)
def test_an_absent_or_unknown_device_is_a_clear_error(machine, monkeypatch, present, asked, words):
    machine(*present)
    monkeypatch.setenv("VAE_LESSON_DEVICE", asked)
    if words is None:
        assert vl.pick_device() == torch.device("cpu")
        return
    with pytest.raises(ValueError) as info:
        vl.pick_device()
    assert "$VAE_LESSON_DEVICE" in str(info.value)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("bad", [3, None.__class__, "cuda:x"])
def test_a_bad_device_argument_is_a_clear_error(machine, bad):
    machine()
    with pytest.raises(ValueError, match="device must be one of"):
        vl.pick_device(bad)


def test_describe_device_states_what_a_seed_fixes(machine):
    machine()
    assert "bit-identical" in vl.describe_device()
    machine("mps")
    assert "not bit-identical" in vl.describe_device("mps")


@pytest.mark.parametrize(
    "present, environment, expected",
    [
        ((), {}, "default"),
        (("cuda",), {}, "full"),
        (("mps",), {}, "full"),
        (("cuda",), {"VAE_LESSON_DEVICE": "cpu"}, "default"),  # a CPU run beside a GPU
        (("cuda",), {"VAE_LESSON_PROFILE": "default"}, "default"),
        ((), {"VAE_LESSON_PROFILE": "full"}, "full"),
        (("cuda",), {"VAE_LESSON_FAST": "1"}, "fast"),
        ((), {"VAE_LESSON_PROFILE": " Fast "}, "fast"),
        ((), {"VAE_LESSON_FAST": "1", "VAE_LESSON_PROFILE": "default"}, "default"),
    ],
)
def test_the_profile_follows_the_machine_unless_told(
    machine, monkeypatch, present, environment, expected
):
    machine(*present)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert settings.profile() == expected
    assert settings.fast_mode() == (expected == "fast")
    assert (
        settings.scaled(30, fast=1, full=100) == {"fast": 1, "default": 30, "full": 100}[expected]
    )
    # a setting the full profile does not change
    assert settings.scaled(30, fast=1) == (1 if expected == "fast" else 30)


def test_an_unknown_profile_is_a_clear_error(machine, monkeypatch):
    machine()
    monkeypatch.setenv("VAE_LESSON_PROFILE", "huge")
    with pytest.raises(
        ValueError, match=r"\$VAE_LESSON_PROFILE must be one of fast, default, full"
    ):
        settings.scaled(1, fast=1)


class _Recorder(vl.VAE):
    """A VAE that records where it is asked to move."""

    moves: list

    def to(self, *args, **kwargs):
        self.moves.append(torch.device(args[0]))
        return super().to(*args, **kwargs)


def test_train_moves_the_model_to_the_chosen_device_and_back(machine, monkeypatch):
    machine()
    chosen = []
    monkeypatch.setattr(
        training, "pick_device", lambda name=None: chosen.append(name) or torch.device("cpu")
    )
    vl.set_seed(0)
    model = _Recorder(16, 2, 8)
    model.moves = []
    x = torch.rand(20, 16)
    vl.train(model, x, num_epochs=1, quiet=True)
    assert chosen == [None]  # the default asks the helper
    assert model.moves == [torch.device("cpu"), torch.device("cpu")]  # there, then home
    vl.train(model, x, num_epochs=1, quiet=True, device="cpu")
    assert chosen[-1] == "cpu"


def test_train_names_a_bad_device(machine):
    machine()
    with pytest.raises(
        ValueError, match="device must be one of 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"
    ):
        vl.train(vl.VAE(16, 2, 8), torch.rand(20, 16), num_epochs=1, quiet=True, device="gpu")
    machine("mps")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        vl.train(vl.VAE(16, 2, 8), torch.rand(20, 16), num_epochs=1, quiet=True, device="cuda")


def test_the_manual_backward_trains_on_the_cpu(machine):
    machine("cuda")  # a GPU is reported, but the hand-derived gradients stay on the CPU
    vl.set_seed(0)
    model = vl.VAE(16, 2, 8)
    vl.train(model, torch.rand(20, 16), num_epochs=1, quiet=True, backward="manual")
    with pytest.raises(ValueError, match="backward='manual' trains on the CPU only"):
        training._epoch_function(model, {}, "manual", torch.device("cuda"))


@pytest.mark.parametrize(
    "error",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"),
    ],
)
def test_running_out_of_gpu_memory_names_the_batch_size_to_lower(error, monkeypatch):
    def loss(x, **kwargs):
        raise error

    vl.set_seed(0)
    model = vl.VAE(16, 2, 8)
    monkeypatch.setattr(model, "loss", loss)
    with pytest.raises(vl.GPUMemoryError) as info:
        vl.train(model, torch.rand(20, 16), num_epochs=1, quiet=True, batch_size=64)
    message = str(info.value)
    assert "batch_size=64" in message and "batch_size=32" in message
    assert "VAE_LESSON_DEVICE=cpu" in message


def test_other_runtime_errors_pass_unchanged(monkeypatch):
    def loss(x, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    model = vl.VAE(16, 2, 8)
    monkeypatch.setattr(model, "loss", loss)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        vl.train(model, torch.rand(20, 16), num_epochs=1, quiet=True)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_on_a_gpu_training_matches_the_cpu_and_the_model_comes_home():
    x = torch.rand(300, 16)
    runs = {}
    for device in ("cpu", "cuda"):
        vl.set_seed(0)
        model = vl.VAE(16, 2, 8)
        history = vl.train(model, x, x[:50], num_epochs=2, quiet=True, device=device)
        assert next(model.parameters()).device.type == "cpu"
        runs[device] = history
    # The same seed draws other noise on the GPU's generator: close, not identical.
    assert runs["cuda"].test["total"][-1] == pytest.approx(runs["cpu"].test["total"][-1], rel=0.1)


@needs_cuda
def test_on_a_gpu_a_resumed_run_matches_an_uninterrupted_one(tmp_path):
    x = torch.rand(300, 16)
    vl.set_seed(0)
    whole = vl.train(
        vl.VAE(16, 2, 8),
        x,
        num_epochs=3,
        quiet=True,
        device="cuda",
        checkpoint_path=tmp_path / "whole.pt",
    )
    vl.set_seed(0)
    part = tmp_path / "part.pt"
    vl.train(vl.VAE(16, 2, 8), x, num_epochs=2, quiet=True, device="cuda", checkpoint_path=part)
    vl.set_seed(0)
    resumed = vl.train(
        vl.VAE(16, 2, 8), x, num_epochs=3, quiet=True, device="cuda", checkpoint_path=part
    )
    assert resumed.train["total"] == pytest.approx(whole.train["total"], rel=1e-5)
