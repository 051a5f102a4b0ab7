"""Killed for real: a training run or a download stopped with SIGKILL (no exception handler, no cleanup)
loses nothing that was complete and leaves nothing that a later run mistakes for complete."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

import vae_lesson as vl
from vae_lesson.infra import data
from vae_lesson.infra.checkpoint import read_checkpoint

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    import vae_lesson as vl

    torch.set_num_threads(1)
    path, marker, pause_after, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    digits = vl.load_digits(verbose=False)
    vl.set_seed(0)
    model = vl.VAE(64, 3, 32)

    def callback(epoch, history):
        if epoch + 1 == pause_after:
            open(marker, "w").write(str(epoch + 1))
            time.sleep(120)          # wait here to be killed

    vl.train(model, digits.x_train_flat[:600], num_epochs=epochs, batch_size=50, checkpoint_path=path, quiet=True,
             callback=callback)
""")


def _run_training(tmp_path, path, pause_after, epochs=6):
    marker = tmp_path / "marker"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(path), str(marker), str(pause_after), str(epochs)], env=env)
    return proc, marker


def _wait_for(predicate, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the training process ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting for the training process"
        time.sleep(0.05)


def _uninterrupted(num_epochs=6):
    digits = vl.load_digits(verbose=False)
    vl.set_seed(0)
    model = vl.VAE(64, 3, 32)
    vl.train(model, digits.x_train_flat[:600], num_epochs=num_epochs, batch_size=50, quiet=True)
    return model


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic as the killed process
    yield
    torch.set_num_threads(before)


def test_a_killed_training_run_resumes_to_the_same_weights(tmp_path, one_thread):
    path = tmp_path / "run.pt"
    proc, marker = _run_training(tmp_path, path, pause_after=3)
    _wait_for(marker.exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # The last complete checkpoint is intact and loadable: epoch 3 of 6.
    assert read_checkpoint(path)["epoch"] == 3
    # Resuming in another process (this one) continues from it and ends where an uninterrupted run ends.
    digits = vl.load_digits(verbose=False)
    vl.set_seed(0)
    resumed = vl.VAE(64, 3, 32)
    history = vl.train(resumed, digits.x_train_flat[:600], num_epochs=6, batch_size=50, checkpoint_path=path,
                       quiet=True)
    assert history.num_epochs == 6
    reference = _uninterrupted()
    for (name, a), (_, b) in zip(resumed.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resuming"


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.2])
def test_killing_at_any_moment_leaves_a_loadable_checkpoint(tmp_path, delay):
    """Killed at an arbitrary moment of a run that saves a checkpoint every few milliseconds, so the kill
    often lands in the middle of writing one."""
    path = tmp_path / "run.pt"
    proc, _ = _run_training(tmp_path, path, pause_after=10_000, epochs=5_000)  # never pauses
    _wait_for(path.exists, proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    payload = read_checkpoint(path)
    assert 1 <= payload["epoch"] < 5_000
    model = vl.VAE(64, 3, 32)
    vl.load_checkpoint(path, model)  # loads, with weights_only=True
    assert len(payload["history"]["epoch_seconds"]) == payload["epoch"]  # weights and history of the same epoch
    # whatever a killed writer left behind is never taken for the checkpoint itself
    leftovers = [p for p in tmp_path.iterdir() if p.name not in ("run.pt", "marker")]
    for p in leftovers:
        assert p.name != "run.pt" and not p.name.endswith(".pt"), f"a stray file looks like a checkpoint: {p.name}"


class _HalfThenHang(BaseHTTPRequestHandler):
    """Sends the headers and half of the body, then hangs until the test lets it go."""

    body = b""
    half_sent = threading.Event()
    release = threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 2])
        self.wfile.flush()
        type(self).half_sent.set()
        type(self).release.wait(60)

    def log_message(self, *args):
        pass


def test_a_killed_download_leaves_nothing_that_looks_complete(tmp_path):
    body = os.urandom(200_000)
    md5 = hashlib.md5(body).hexdigest()
    _HalfThenHang.body = body
    _HalfThenHang.half_sent.clear()
    _HalfThenHang.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HalfThenHang)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/file.gz"
    dest = tmp_path / "cache" / "train-images-idx3-ubyte.gz"
    script = ("import sys; from vae_lesson.infra.data import download_file; "
              "download_file([sys.argv[1]], sys.argv[2], sys.argv[3], timeout=60)")
    proc = subprocess.Popen([sys.executable, "-c", script, url, str(dest), md5])
    try:
        assert _HalfThenHang.half_sent.wait(60), "the download never started"
        time.sleep(0.3)  # let the client write what it received
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _HalfThenHang.release.set()
        server.shutdown()
        server.server_close()
    # The final name never appeared; the partial body sits only under a temporary name.
    assert not dest.exists()
    partial = list(dest.parent.glob("*.part"))
    assert partial and all(0 < p.stat().st_size < len(body) for p in partial)
    # A later run does not take the partial file for the data: with no download allowed the cache is "missing",
    # and a working mirror then gives the verified file.
    assert data._file_problem(dest, md5) == "missing"
    good = ThreadingHTTPServer(("127.0.0.1", 0), _serve(body))
    threading.Thread(target=good.serve_forever, daemon=True).start()
    try:
        path = data.download_file([f"http://127.0.0.1:{good.server_address[1]}/file.gz"], dest, md5, timeout=10)
    finally:
        good.shutdown()
        good.server_close()
    assert path.read_bytes() == body


def _serve(body):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler
