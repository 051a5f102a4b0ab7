"""Shared by the data tests and the notebook tests: small data archives in the real formats, and a local HTTP
server on 127.0.0.1 to download them from (no test ever reaches the network).

- :func:`cifar_tar` writes CIFAR-10's ``cifar-10-python.tar.gz`` layout (five pickled training batches and a
  test batch), :func:`stl_tar` STL-10's ``stl10_binary.tar.gz`` (raw bytes, column-major images, labels 1..10);
- :func:`smooth_colour_images` makes colour images worth reconstructing (gradients and discs, not noise);
- :class:`LocalServer` serves bytes under URL prefixes and records every request.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

__all__ = ["md5_of", "tar_gz", "Truncated", "LocalServer", "smooth_colour_images", "cifar_tar", "stl_tar"]


def md5_of(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def tar_gz(members: dict) -> bytes:
    """A tar.gz holding ``members`` ({name: bytes}) as regular files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


class Truncated:
    """A route that announces the full length, sends the first ``n`` bytes, then hangs up."""

    def __init__(self, body: bytes, n: int):
        self.body, self.n = body, n


class LocalServer:
    """An HTTP server on 127.0.0.1 in a daemon thread; paths not served get 404.

    ``serve(prefix, {name: bytes or Truncated})`` publishes files and returns the mirror URL ending in
    ``/prefix/``; ``requests`` lists every requested path. Use as a context manager, or call ``close()``.
    """

    def __init__(self):
        routes, self.requests = {}, []
        self._routes, requests = routes, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                body = routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                full = body.body if isinstance(body, Truncated) else body
                self.send_response(200)
                self.send_header("Content-Length", str(len(full)))
                self.end_headers()
                self.wfile.write(body.body[: body.n] if isinstance(body, Truncated) else body)
                self.close_connection = True

            def log_message(self, *args):  # keep the test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}/"

    def serve(self, prefix: str, files: dict) -> str:
        for name, body in files.items():
            self._routes[f"/{prefix}/{name}"] = body
        return self.url(prefix)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def smooth_colour_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, 3, size, size) uint8 images: a linear colour gradient in a random direction with a disc of a third
    colour at a random place, so that a small model has something to learn and its reconstructions can be judged
    by eye."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)                     # (size, size) in [0, 1]
    angle = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) / np.sqrt(0.5) + 0.5   # (n, size, size)
    c0, c1, c2 = (rng.uniform(0, 1, (n, 3, 1, 1)) for _ in range(3))
    images = c0 + (c1 - c0) * np.clip(t, 0, 1)[:, None]
    centre = rng.uniform(0.25, 0.75, (n, 2, 1, 1))
    radius = rng.uniform(0.12, 0.3, (n, 1, 1))
    disc = ((yy - centre[:, 0]) ** 2 + (xx - centre[:, 1]) ** 2) < radius ** 2     # (n, size, size)
    images = np.where(disc[:, None], c2, images)
    return np.round(images * 255).astype(np.uint8)


def cifar_tar(train_images: np.ndarray, train_labels, test_images: np.ndarray, test_labels,
              n_batches: int = 5) -> bytes:
    """CIFAR-10's python archive: images (n, 3, 32, 32) or (n, 3072) uint8 and labels 0..9, the training images
    split into ``n_batches`` (5 in the real file) pickled batches ``data_batch_1..n``, plus ``test_batch``."""
    def batch(images, labels, label):
        return pickle.dumps({b"batch_label": label, b"labels": [int(v) for v in labels],
                             b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), 3072),
                             b"filenames": [b"synthetic.png"] * len(images)})

    members = {}
    for i, (images, labels) in enumerate(zip(np.array_split(train_images, n_batches),
                                             np.array_split(np.asarray(train_labels), n_batches)), start=1):
        members[f"cifar-10-batches-py/data_batch_{i}"] = batch(images, labels, f"training batch {i}".encode())
    members["cifar-10-batches-py/test_batch"] = batch(test_images, test_labels, b"testing batch 1")
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": []})
    return tar_gz(members)


def stl_tar(train_images: np.ndarray, train_labels, test_images: np.ndarray, test_labels) -> bytes:
    """STL-10's binary archive from images (n, 3, H, W) uint8 and labels 0..9 (stored as 1..10); each channel
    is written column by column, as in the real files, and a small stand-in for the unlabelled images comes first."""
    def stored(images):
        return np.ascontiguousarray(np.asarray(images, dtype=np.uint8).transpose(0, 1, 3, 2)).tobytes()

    def labels(values):
        return bytes(int(v) + 1 for v in values)

    return tar_gz({"stl10_binary/unlabeled_X.bin": b"\0" * 100,
                   "stl10_binary/train_X.bin": stored(train_images), "stl10_binary/train_y.bin": labels(train_labels),
                   "stl10_binary/test_X.bin": stored(test_images), "stl10_binary/test_y.bin": labels(test_labels)})
