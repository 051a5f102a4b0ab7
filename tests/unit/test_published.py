"""Published trained weights: the book build lists the checkpoints its chapters used, publishes
them with a manifest of SHA-256 sums (tools/publish_weights.py), and load_or_train downloads one
instead of training when it fits, refusing a damaged or foreign file in one line and training
instead.

Everything is served by a local HTTP server on 127.0.0.1: no test touches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from _archives import LocalServer

import vae_lesson as vl
from vae_lesson.core import training
from vae_lesson.infra import published

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import publish_weights  # noqa: E402

N_IN, EPOCHS = 16, 2


def _data(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, N_IN, generator=torch.Generator().manual_seed(seed))


X_TRAIN, X_TEST = _data(64, 1), _data(32, 2)


def _model(n_latent: int = 2) -> vl.VAE:
    vl.set_seed(0)
    return vl.VAE(N_IN, n_latent, 8)


def _train(name, model=None, **kwargs):
    kwargs = {"num_epochs": EPOCHS, "batch_size": 16, "quiet": True, **kwargs}
    model = _model() if model is None else model
    return model, vl.load_or_train(name, model, X_TRAIN, X_TEST, **kwargs)


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/weights/"


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A build folder as `make book` leaves it: one chapter trained "tiny", its ledger lists it, and
    tools/publish_weights.py published it in html/weights/."""
    build = tmp_path_factory.mktemp("build")
    (build / "html").mkdir()
    ledger = build / publish_weights.LEDGER_FOLDER / "05_vae.jsonl"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(build / "checkpoints"))
        monkeypatch.setenv(published.LEDGER_VARIABLE, str(ledger))
        model, history = _train("tiny")
        _train(build / "by_path.pt")  # a path, not a name: not published
        # the same model with other settings and another latent size, for the refusal tests
        _train("tiny_one_epoch", num_epochs=1)
        _train("tiny_3d", _model(n_latent=3))
    manifest = publish_weights.publish(build)
    folder = build / "html" / "weights"
    return SimpleNamespace(
        build=build,
        folder=folder,
        ledger=ledger,
        manifest=manifest,
        files={p.name: p.read_bytes() for p in folder.iterdir()},
        history=history.as_dict(),
        state=model.state_dict(),
    )


@pytest.fixture(autouse=True)
def fetching_off(monkeypatch):
    """Each test starts with fetching off, whatever the environment or an earlier test did."""
    monkeypatch.setattr(published, "_active_url", None)
    monkeypatch.delenv(published.URL_VARIABLE, raising=False)
    monkeypatch.delenv(published.LEDGER_VARIABLE, raising=False)
    monkeypatch.delenv("VAE_LESSON_DOWNLOAD_TIMEOUT", raising=False)
    # use_published_weights() may choose the profile: undone after each test
    monkeypatch.setenv("VAE_LESSON_PROFILE", "")


@pytest.fixture
def server():
    with LocalServer() as local:
        yield local


@pytest.fixture
def epochs_trained(monkeypatch):
    """Counts the epochs trained: train() runs each through training.train_epoch."""
    count = []
    real = training.train_epoch

    def counting(*args, **kwargs):
        count.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", counting)
    return count


def _manifest_with(book, name: str, blob: bytes) -> bytes:
    """The published manifest, with ``name``'s entry describing ``blob`` (a correct entry)."""
    manifest = json.loads(book.files["manifest.json"])
    manifest["weights"][name] = {
        **manifest["weights"]["tiny"],
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
    }
    return json.dumps(manifest).encode()


def _no_leftovers():
    folder = vl.checkpoint_dir()
    return [p.name for p in folder.iterdir() if p.name != "tiny.pt"] if folder.is_dir() else []


# ----------------------------------------------------------------------------------------------
# The ledger and tools/publish_weights.py
# ----------------------------------------------------------------------------------------------


def test_load_or_train_lists_the_named_checkpoints_it_used_in_the_ledger(book):
    lines = [json.loads(line) for line in book.ledger.read_text().splitlines()]
    checkpoints = book.build / "checkpoints"
    assert lines == [
        {"name": "tiny", "path": str((checkpoints / "tiny.pt").resolve())},
        {"name": "tiny_one_epoch", "path": str((checkpoints / "tiny_one_epoch.pt").resolve())},
        {"name": "tiny_3d", "path": str((checkpoints / "tiny_3d.pt").resolve())},
    ]  # by_path.pt, given as a path, is not listed


def test_without_the_ledger_variable_nothing_is_written(tmp_path):
    _train("tiny")
    assert sorted(p.name for p in tmp_path.rglob("*.jsonl")) == []


def test_the_manifest_describes_each_published_file(book):
    assert book.manifest["format"] == "vae_lesson.weights/1"
    assert set(book.manifest["weights"]) == {"tiny", "tiny_one_epoch", "tiny_3d"}
    assert sorted(book.files) == ["manifest.json", "tiny.pt", "tiny_3d.pt", "tiny_one_epoch.pt"]
    assert json.loads(book.files["manifest.json"]) == book.manifest
    for name, entry in book.manifest["weights"].items():
        blob = book.files[f"{name}.pt"]
        assert entry["sha256"] == hashlib.sha256(blob).hexdigest()
        assert entry["bytes"] == len(blob)
        # the same checkpoint without its optimizer state (the run is finished)
        published = torch.load(io.BytesIO(blob), weights_only=True)
        original = torch.load(book.build / "checkpoints" / f"{name}.pt", weights_only=True)
        assert original["optimizer"] is not None and published["optimizer"] is None
        assert len(blob) < 0.6 * (book.build / "checkpoints" / f"{name}.pt").stat().st_size
        for key in ("model_class", "config", "epoch", "history", "settings"):
            assert published[key] == original[key]
        assert published["state_dict"].keys() == original["state_dict"].keys()
        for key, tensor in original["state_dict"].items():
            assert torch.equal(published["state_dict"][key], tensor)
        assert entry["model_class"] == "VAE" and entry["chapter"] == "05_vae"
    assert book.manifest["weights"]["tiny"]["epochs"] == EPOCHS
    assert book.manifest["weights"]["tiny_one_epoch"]["epochs"] == 1


def test_publishing_again_removes_what_is_no_longer_listed(book, tmp_path, capsys):
    build = tmp_path / "build"
    (build / "html" / "weights").mkdir(parents=True)
    (build / "html" / "weights" / "old_model.pt").write_bytes(b"from an earlier build")
    (build / publish_weights.LEDGER_FOLDER).mkdir()
    only = json.loads(book.ledger.read_text().splitlines()[0])
    (build / publish_weights.LEDGER_FOLDER / "01_autoencoder.jsonl").write_text(
        json.dumps(only) + "\n" + json.dumps(only) + "\n"
    )
    assert publish_weights.main(["--build", str(build)]) == 0
    assert sorted(p.name for p in (build / "html" / "weights").iterdir()) == [
        "manifest.json",
        "tiny.pt",
    ]
    manifest = json.loads((build / "html" / "weights" / "manifest.json").read_text())
    assert manifest["weights"]["tiny"]["chapter"] == "01_autoencoder"
    assert "published 1 trained models of 1 chapter(s)" in capsys.readouterr().out


def test_a_listed_checkpoint_that_no_longer_exists_is_an_error_naming_it(tmp_path, capsys):
    build = tmp_path / "build"
    (build / "html").mkdir(parents=True)
    (build / publish_weights.LEDGER_FOLDER).mkdir()
    gone = tmp_path / "checkpoints" / "vae_gone.pt"
    line = json.dumps({"name": "vae_gone", "path": str(gone)})
    (build / publish_weights.LEDGER_FOLDER / "05_vae.jsonl").write_text(line + "\n")
    with pytest.raises(publish_weights.PublishError, match="'vae_gone'.*vae_gone.pt.*05_vae"):
        publish_weights.publish(build)
    assert publish_weights.main(["--build", str(build)]) == 1
    assert "no longer exist: 'vae_gone'" in capsys.readouterr().err
    assert not (build / "html" / "weights").exists()


def test_a_damaged_ledger_line_is_an_error_naming_the_file(tmp_path):
    build = tmp_path / "build"
    (build / "html").mkdir(parents=True)
    (build / publish_weights.LEDGER_FOLDER).mkdir()
    (build / publish_weights.LEDGER_FOLDER / "05_vae.jsonl").write_text(
        '{"name": "a/b", "path": "x"}\n'
    )
    with pytest.raises(publish_weights.PublishError, match=r"05_vae.jsonl:1: not a ledger line"):
        publish_weights.publish(build)


# ----------------------------------------------------------------------------------------------
# Turning it on
# ----------------------------------------------------------------------------------------------


def test_fetching_is_off_by_default_and_turned_on_by_a_call_or_the_environment(monkeypatch):
    assert published.published_weights_url() is None
    monkeypatch.setenv(published.URL_VARIABLE, "http://127.0.0.1:9/w")
    assert published.published_weights_url() == "http://127.0.0.1:9/w/"
    assert vl.use_published_weights() == published.BOOK_URL + "weights/"
    assert published.published_weights_url() == published.BOOK_URL + "weights/"
    assert published.BOOK_URL.startswith("https://") and published.BOOK_URL.endswith("/")


def test_turning_it_on_selects_the_profile_the_book_was_built_with(monkeypatch, capsys):
    from vae_lesson.infra import settings

    vl.use_published_weights()  # nothing chosen yet: the book's profile
    assert settings.profile() == "default"
    assert "follow the default profile" in capsys.readouterr().out
    monkeypatch.setenv("VAE_LESSON_PROFILE", "full")  # chosen by the reader: kept
    vl.use_published_weights()
    assert settings.profile() == "full"
    assert "follow the full profile" in capsys.readouterr().out
    with pytest.raises(ValueError, match="profile must be one of fast, default, full"):
        vl.use_published_weights(profile="huge")


def test_a_bad_address_is_refused_clearly(monkeypatch):
    with pytest.raises(ValueError, match="base_url must be an http:// or https:// URL"):
        vl.use_published_weights("weights/")
    with pytest.raises(TypeError, match="base_url must be a URL"):
        vl.use_published_weights(3)
    monkeypatch.setenv(published.URL_VARIABLE, "ftp://example.org/")
    with pytest.raises(ValueError, match=r"\$VAE_LESSON_WEIGHTS_URL must be an http"):
        published.published_weights_url()


# ----------------------------------------------------------------------------------------------
# Fetching
# ----------------------------------------------------------------------------------------------


def test_load_or_train_downloads_the_published_weights_instead_of_training(
    book, server, monkeypatch, capsys
):
    def no_training(*args, **kwargs):
        raise AssertionError("trained although the published weights fit")

    monkeypatch.setattr(training, "train_epoch", no_training)
    vl.use_published_weights(server.serve("weights", book.files))
    capsys.readouterr()  # the line naming the source
    vl.set_seed(5)
    model = vl.VAE(N_IN, 2, 8)  # other initial weights: the download must replace them
    history = vl.load_or_train("tiny", model, X_TRAIN, X_TEST, num_epochs=EPOCHS, batch_size=16)
    assert history.as_dict() == book.history
    assert all(torch.equal(model.state_dict()[k], v) for k, v in book.state.items())
    out = capsys.readouterr().out
    assert "downloaded the published weights for 'tiny'" in out and "SHA-256 checked" in out
    assert (vl.checkpoint_dir() / "tiny.pt").read_bytes() == book.files["tiny.pt"]
    assert _no_leftovers() == []
    # a second call finds the checkpoint here: nothing is downloaded again
    requests = len(server.requests)
    again = vl.load_or_train("tiny", _model(), X_TRAIN, X_TEST, num_epochs=EPOCHS, batch_size=16)
    assert again.as_dict() == book.history and len(server.requests) == requests


def test_the_environment_variable_turns_fetching_on(book, server, monkeypatch, epochs_trained):
    monkeypatch.setenv(published.URL_VARIABLE, server.serve("weights", book.files))
    _train("tiny")
    assert epochs_trained == [] and (vl.checkpoint_dir() / "tiny.pt").is_file()


def test_a_damaged_file_is_refused_and_the_model_trained(book, server, capsys, epochs_trained):
    blob = book.files["tiny.pt"]
    middle = len(blob) // 2
    damaged = blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1 :]
    vl.use_published_weights(server.serve("weights", {**book.files, "tiny.pt": damaged}))
    capsys.readouterr()  # the line naming the source
    model, history = _train("tiny")
    assert capsys.readouterr().out.splitlines() == [
        "the published weights for 'tiny' do not match their manifest's SHA-256 (damaged "
        "download?); training instead"
    ]
    assert len(epochs_trained) == EPOCHS
    installed = (vl.checkpoint_dir() / "tiny.pt").read_bytes()
    assert (
        installed != damaged and vl.load_checkpoint(vl.checkpoint_dir() / "tiny.pt").epoch == EPOCHS
    )
    # the same seeded run, trained here
    assert (history.train, history.test) == (book.history["train"], book.history["test"])
    assert _no_leftovers() == []


def test_a_file_of_another_size_is_refused(book, server, capsys, epochs_trained):
    vl.use_published_weights(
        server.serve("weights", {**book.files, "tiny.pt": book.files["tiny.pt"] + b"\0"})
    )
    capsys.readouterr()  # the line naming the source
    _train("tiny")
    out = capsys.readouterr().out
    assert "the published weights for 'tiny' are" in out and "but their manifest says" in out
    assert out.strip().endswith("training instead") and len(epochs_trained) == EPOCHS


def test_a_checkpoint_of_another_model_is_refused(book, server, capsys, epochs_trained):
    foreign = book.files["tiny_3d.pt"]
    files = {
        **book.files,
        "tiny.pt": foreign,
        "manifest.json": _manifest_with(book, "tiny", foreign),
    }
    vl.use_published_weights(server.serve("weights", files))
    capsys.readouterr()  # the line naming the source
    _train("tiny")
    assert capsys.readouterr().out.splitlines() == [
        "the published weights for 'tiny' belong to another model (n_latent=3 in the file but 2 "
        "here); training instead"
    ]
    assert len(epochs_trained) == EPOCHS
    assert vl.load_checkpoint(vl.checkpoint_dir() / "tiny.pt").model.config["n_latent"] == 2


def test_a_checkpoint_trained_with_other_settings_is_refused(book, server, capsys, epochs_trained):
    other = book.files["tiny_one_epoch.pt"]
    files = {**book.files, "tiny.pt": other, "manifest.json": _manifest_with(book, "tiny", other)}
    vl.use_published_weights(server.serve("weights", files))
    capsys.readouterr()  # the line naming the source
    _train("tiny")
    assert capsys.readouterr().out.splitlines() == [
        "the published weights for 'tiny' were trained with other settings (epochs 2 here vs 1 "
        "there); training instead"
    ]
    assert len(epochs_trained) == EPOCHS
    # other data and another learning rate are named too
    epochs_trained.clear()
    vl.use_published_weights(server.serve("weights", book.files))
    capsys.readouterr()  # the line naming the source
    vl.load_or_train("tiny_lr", _model(), X_TRAIN[:32], num_epochs=EPOCHS, lr=3e-3, quiet=True)
    out = capsys.readouterr().out
    assert "no published weights named 'tiny_lr' in the manifest" in out
    published.fetch_published(
        "tiny",
        vl.checkpoint_dir() / "elsewhere.pt",
        expected_settings=training._settings(_model(), X_TRAIN[:32], None, 16, 3e-3, 0, {}),
        num_epochs=EPOCHS,
        model=_model(),
    )
    out = capsys.readouterr().out
    assert "lr 0.003 here vs 0.001 there" in out
    assert "other training data (shape [32, 16] here vs [64, 16] there)" in out
    assert "test data none here vs given there" in out
    assert not (vl.checkpoint_dir() / "elsewhere.pt").exists()


def test_a_server_that_is_down_means_training(book, capsys, epochs_trained):
    url = vl.use_published_weights(_closed_port_url())
    capsys.readouterr()  # the line naming the source
    _train("tiny")
    assert capsys.readouterr().out.splitlines() == [
        f"the published weights for 'tiny' could not be downloaded from {url}manifest.json "
        "(connection refused); training instead"
    ]
    assert len(epochs_trained) == EPOCHS


def test_a_server_that_does_not_answer_times_out_and_means_training(
    monkeypatch, capsys, epochs_trained
):
    sock = socket.socket()  # accepts connections (the kernel's backlog) but never answers
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        monkeypatch.setenv("VAE_LESSON_DOWNLOAD_TIMEOUT", "0.5")
        url = vl.use_published_weights(f"http://127.0.0.1:{sock.getsockname()[1]}/weights/")
        capsys.readouterr()  # the line naming the source
        _train("tiny")
    finally:
        sock.close()
    assert capsys.readouterr().out.splitlines() == [
        f"the published weights for 'tiny' could not be downloaded from {url}manifest.json "
        "(timed out after 0.5 s); training instead"
    ]
    assert len(epochs_trained) == EPOCHS


def test_a_missing_file_means_training(book, server, capsys, epochs_trained):
    files = {name: blob for name, blob in book.files.items() if name != "tiny.pt"}
    url = vl.use_published_weights(server.serve("weights", files))
    capsys.readouterr()  # the line naming the source
    _train("tiny")
    assert capsys.readouterr().out.splitlines() == [
        f"the published weights for 'tiny' could not be downloaded from {url}tiny.pt "
        "(HTTP 404 Not Found); training instead"
    ]
    assert len(epochs_trained) == EPOCHS and _no_leftovers() == []


def test_a_name_the_manifest_does_not_list_means_training(book, server, capsys, epochs_trained):
    url = vl.use_published_weights(server.serve("weights", book.files))
    capsys.readouterr()  # the line naming the source
    _train("not_published")
    assert capsys.readouterr().out.splitlines() == [
        f"no published weights named 'not_published' in the manifest at {url}manifest.json; "
        "training instead"
    ]
    assert len(epochs_trained) == EPOCHS


def test_a_page_that_is_not_a_manifest_means_training(server, capsys, epochs_trained):
    url = vl.use_published_weights(server.serve("weights", {"manifest.json": b"<html>404</html>"}))
    capsys.readouterr()  # the line naming the source
    _train("tiny")
    assert capsys.readouterr().out.splitlines() == [
        f"{url}manifest.json is not a weights manifest (not JSON); training instead"
    ]
    assert len(epochs_trained) == EPOCHS


def test_a_checkpoint_given_by_path_is_never_fetched(book, server, tmp_path, epochs_trained):
    vl.use_published_weights(server.serve("weights", book.files))
    _train(tmp_path / "tiny.pt")
    assert server.requests == [] and len(epochs_trained) == EPOCHS


def test_a_bad_argument_is_a_type_error(book):
    with pytest.raises(TypeError, match="name must be a checkpoint name"):
        published.fetch_published(
            "a/b", "x.pt", expected_settings={}, num_epochs=1, model=_model(), base_url="http://x/"
        )
    with pytest.raises(ValueError, match="fetching published weights is off"):
        published.fetch_published("a", "x.pt", expected_settings={}, num_epochs=1, model=_model())
