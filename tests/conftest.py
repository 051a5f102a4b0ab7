import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own checkpoint directory; nothing is written to the user's cache."""
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    yield


@pytest.fixture
def double():
    """Run a test in float64 so comparisons with closed forms are tight."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def pytest_report_header(config):
    return f"torch {torch.__version__}, threads {torch.get_num_threads()}, chainer python: {os.environ.get('VAE_LESSON_CHAINER_PYTHON', 'not set')}"
