"""Training on the 8x8 digits: it learns, it is deterministic, it stops on NaN, it checkpoints and resumes."""

import pytest
import torch

import vae_lesson as vl
from vae_lesson import VAE, AutoEncoder, CheckpointError, History, NonFiniteLossError


@pytest.fixture(scope="module")
def digits():
    return vl.load_digits(verbose=False)


def _vae(seed=0, **kwargs):
    vl.set_seed(seed)
    return VAE(64, 2, 64, **kwargs)


def test_vae_training_lowers_the_test_loss_by_a_quarter(digits):
    model = _vae()
    before = vl.evaluate(model, digits.x_test_flat)
    history = vl.train(model, digits.x_train_flat, digits.x_test_flat, num_epochs=10, quiet=True)
    after = history.test["total"][-1]
    # Untrained: about 45 nats per image; ten epochs bring it near 28. Demand at least a 25 % drop.
    assert after < 0.75 * before["total"]
    assert history.test["reconstruction"][-1] < before["reconstruction"]
    assert set(history.train) == set(history.test) == {"total", "reconstruction", "kl"}
    assert all(len(v) == 10 for v in (*history.train.values(), *history.test.values(), history.epoch_seconds))
    for split in (history.train, history.test):
        for e in range(10):
            assert split["total"][e] == pytest.approx(split["reconstruction"][e] + split["kl"][e], rel=1e-5)
    # The final test number is what evaluate() reports for the trained weights.
    assert vl.evaluate(model, digits.x_test_flat)["total"] == pytest.approx(after, rel=1e-6)


def test_same_seed_gives_identical_history_and_weights(digits):
    runs = []
    for _ in range(2):
        model = _vae(seed=3)
        history = vl.train(model, digits.x_train_flat, digits.x_test_flat, num_epochs=3, seed=3, quiet=True)
        runs.append((history, model.state_dict()))
    (h1, w1), (h2, w2) = runs
    assert h1.train == h2.train and h1.test == h2.test
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_a_different_seed_gives_a_different_run(digits):
    a = vl.train(_vae(), digits.x_train_flat, num_epochs=2, seed=0, quiet=True)
    b = vl.train(_vae(), digits.x_train_flat, num_epochs=2, seed=1, quiet=True)
    assert a.train["total"] != b.train["total"]


def test_loss_kwargs_reach_the_model(digits):
    history = vl.train(_vae(), digits.x_train_flat, digits.x_test_flat, num_epochs=1, quiet=True,
                       loss_kwargs={"C": 0.0})
    assert history.train["kl"] == [0.0] and history.test["kl"] == [0.0]


def test_autoencoder_trains_with_the_same_loop(digits):
    vl.set_seed(0)
    model = AutoEncoder(64, 2, 64)
    before = vl.evaluate(model, digits.x_test_flat)["total"]
    history = vl.train(model, digits.x_train_flat, digits.x_test_flat, num_epochs=5, quiet=True)
    assert set(history.train) == {"total", "reconstruction"}
    assert history.test["total"][-1] < 0.8 * before


def test_nan_loss_stops_training_with_a_clear_error(digits):
    model = _vae()
    with torch.no_grad():
        model.le1.weight[0, 0] = float("nan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"in epoch 1 \(mean contains"):
        vl.train(model, digits.x_train_flat, num_epochs=1, quiet=True)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) or k == "le1.weight" for k in before)
    assert torch.equal(after["le2.weight"], before["le2.weight"])  # no update was applied


def test_exploding_learning_rate_is_caught(digits):
    with pytest.raises(NonFiniteLossError, match="smaller learning rate"):
        vl.train(_vae(), digits.x_train_flat, num_epochs=20, lr=1e12, quiet=True)


@pytest.mark.parametrize("x,message", [
    (torch.rand(10, 63), r"x_train must have shape \(batch, 64\)"),
    (torch.rand(10, 64) * 16, r"x_train must lie in \[0, 1\]"),
    (torch.randint(0, 2, (10, 64)), "floating-point"),
    (torch.rand(0, 64), "non-empty"),
    (torch.full((10, 64), float("nan")), "NaN"),
])
def test_train_rejects_bad_data(x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        vl.train(_vae(), x, num_epochs=1, quiet=True)


@pytest.mark.parametrize("kwargs,message", [
    ({"num_epochs": 0}, "num_epochs must be a positive integer"),
    ({"num_epochs": 1, "batch_size": 0}, "batch_size must be a positive integer"),
    ({"num_epochs": 1, "lr": -1.0}, "lr must be a finite number > 0"),
])
def test_train_rejects_bad_settings(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        vl.train(_vae(), digits.x_train_flat, quiet=True, **kwargs)


def test_progress_bar_shows_unless_quiet(digits, capsys):
    vl.train(_vae(), digits.x_train_flat[:200], num_epochs=2, quiet=False)
    assert "training VAE" in capsys.readouterr().err
    vl.train(_vae(), digits.x_train_flat[:200], num_epochs=2, quiet=True)
    assert capsys.readouterr().err == ""


# --- checkpoints -----------------------------------------------------------------------------------

def test_checkpoint_messages_show_paths_under_home_as_tilde(digits, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    (home / "ckpt").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    path = home / "ckpt" / "small.pt"
    x = digits.x_train_flat[:100]
    vl.train(_vae(), x, num_epochs=1, checkpoint_path=path, quiet=True)
    vl.train(_vae(), x, num_epochs=1, checkpoint_path=path, quiet=False)
    out = capsys.readouterr().out
    assert "loaded the trained model from ~/ckpt/small.pt (1 epoch)" in out
    assert str(home) not in out
    elsewhere = tmp_path / "other.pt"  # outside home: the path as given
    vl.train(_vae(), x, num_epochs=1, checkpoint_path=elsewhere, quiet=True)
    vl.train(_vae(), x, num_epochs=2, checkpoint_path=elsewhere, quiet=False)
    assert f"resuming from {elsewhere} after epoch 1 of 2" in capsys.readouterr().out


def test_checkpoint_round_trip_rebuilds_the_model(digits, tmp_path):
    model = _vae(act_func=torch.relu)
    history = vl.train(model, digits.x_train_flat, digits.x_test_flat, num_epochs=2, quiet=True)
    path = vl.save_checkpoint(tmp_path / "m.pt", model, epoch=2, history=history.as_dict())
    loaded = vl.load_checkpoint(path)
    assert isinstance(loaded.model, VAE) and loaded.model.config == model.config
    assert loaded.model.act_func is torch.relu and loaded.epoch == 2
    assert History.from_dict(loaded.history) == history
    x = digits.x_test_flat[:7]
    assert torch.equal(loaded.model(x), model(x))


def test_checkpoints_load_with_weights_only(tmp_path, monkeypatch):
    path = vl.save_checkpoint(tmp_path / "m.pt", _vae())
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    vl.load_checkpoint(path)
    assert seen.get("weights_only") is True


class _Evil:
    def __reduce__(self):
        return (print, ("code from a checkpoint ran",))


def test_a_file_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable vae_lesson checkpoint"):
        vl.load_checkpoint(path)
    assert "code from a checkpoint ran" not in capsys.readouterr().out


def test_truncated_checkpoint_is_reported(tmp_path):
    path = vl.save_checkpoint(tmp_path / "m.pt", _vae())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt or not a checkpoint"):
        vl.load_checkpoint(path)


def test_missing_and_foreign_files_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        vl.load_checkpoint(tmp_path / "absent.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vae_lesson checkpoint"):
        vl.load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_from_another_architecture_is_reported(tmp_path):
    path = vl.save_checkpoint(tmp_path / "m.pt", VAE(64, 2, 64))
    with pytest.raises(CheckpointError, match="n_latent=2 in the file but 20 here"):
        vl.load_checkpoint(path, VAE(64, 20, 64))
    with pytest.raises(CheckpointError, match="saved from a VAE, not a AutoEncoder"):
        vl.load_checkpoint(path, AutoEncoder(64, 2, 64))


def test_weights_that_do_not_fit_their_config_are_reported(tmp_path):
    path = vl.save_checkpoint(tmp_path / "m.pt", VAE(64, 2, 64))
    payload = torch.load(path, weights_only=True)
    payload["config"]["n_hidden"] = 32  # a hand-edited or foreign file
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        vl.load_checkpoint(path)


def test_an_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = _vae()
    path = vl.save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    good = path.read_bytes()

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        vl.save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_load_or_train_trains_once_then_loads(digits, tmp_path):
    calls = []
    kwargs = dict(num_epochs=2, quiet=True, callback=lambda epoch, h: calls.append(epoch))
    first = _vae()
    h1 = vl.load_or_train("digits_vae", first, digits.x_train_flat, digits.x_test_flat, **kwargs)
    assert calls == [0, 1]
    assert (vl.checkpoint_dir() / "digits_vae.pt").is_file()
    second = _vae(seed=99)  # different initial weights: loading must overwrite them
    h2 = vl.load_or_train("digits_vae", second, digits.x_train_flat, digits.x_test_flat, **kwargs)
    assert calls == [0, 1]  # nothing trained the second time
    assert h2 == h1
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_load_or_train_lists_what_it_loaded_for_the_build_times_page(digits, tmp_path, monkeypatch):
    """With $VAE_LESSON_LOADED_WORK set (tools/execute_notebooks.py sets it), a checkpoint that loads
    instead of training is listed with the training time it holds; training, or resuming, lists nothing."""
    import json

    listing = tmp_path / "loaded.jsonl"
    monkeypatch.setenv("VAE_LESSON_LOADED_WORK", str(listing))
    history = vl.load_or_train("listed", _vae(), digits.x_train_flat, num_epochs=1, quiet=True)
    assert not listing.exists()  # trained
    vl.load_or_train("listed", _vae(), digits.x_train_flat, num_epochs=2, quiet=True)
    assert not listing.exists()  # resumed for a second epoch: trained again
    by_path = tmp_path / "by_path.pt"
    vl.load_or_train(by_path, _vae(), digits.x_train_flat, num_epochs=1, quiet=True)
    loaded = vl.load_or_train("listed", _vae(), digits.x_train_flat, num_epochs=2, quiet=True)
    loaded_by_path = vl.load_or_train(by_path, _vae(), digits.x_train_flat, num_epochs=1, quiet=True)
    lines = [json.loads(line) for line in listing.read_text().splitlines()]
    assert lines == [{"name": "listed", "seconds": round(sum(loaded.epoch_seconds), 1)},
                     {"name": str(by_path), "seconds": round(sum(loaded_by_path.epoch_seconds), 1)}]
    assert len(loaded.epoch_seconds) == 2 and loaded.epoch_seconds[0] == history.epoch_seconds[0]


def test_load_or_train_retrains_when_settings_change(digits):
    calls = []
    cb = lambda epoch, h: calls.append(epoch)  # noqa: E731
    vl.load_or_train("v", _vae(), digits.x_train_flat, num_epochs=1, quiet=True, callback=cb)
    vl.load_or_train("v", _vae(), digits.x_train_flat, num_epochs=1, lr=3e-3, quiet=True, callback=cb)
    vl.load_or_train("v", _vae(), digits.x_train_flat[:500], num_epochs=1, lr=3e-3, quiet=True, callback=cb)
    assert calls == [0, 0, 0]


def test_a_fast_run_keeps_its_models_apart_from_full_length_ones(digits, monkeypatch):
    # a teacher's quick check (VAE_LESSON_FAST=1) must not replace the models a full run trained
    vl.load_or_train("v", _vae(), digits.x_train_flat, num_epochs=2, quiet=True)
    full_length = vl.checkpoint_dir() / "v.pt"
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    assert vl.checkpoint_dir() == full_length.parent / "fast"
    vl.load_or_train("v", _vae(), digits.x_train_flat[:200], num_epochs=1, quiet=True)
    assert vl.load_checkpoint(vl.checkpoint_dir() / "v.pt").epoch == 1
    monkeypatch.delenv("VAE_LESSON_FAST")
    assert vl.checkpoint_dir() == full_length.parent
    assert vl.load_checkpoint(full_length).epoch == 2  # untouched


def test_load_or_train_replaces_a_corrupt_checkpoint(digits, capsys):
    path = vl.checkpoint_dir() / "v.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    vl.load_or_train("v", _vae(), digits.x_train_flat, num_epochs=1, quiet=False)
    assert "not a readable vae_lesson checkpoint" in capsys.readouterr().out
    assert vl.load_checkpoint(path).epoch == 1


def test_interrupted_training_resumes_to_the_same_weights(digits, tmp_path):
    data = (digits.x_train_flat, digits.x_test_flat)
    reference = _vae()
    full = vl.train(reference, *data, num_epochs=4, quiet=True, checkpoint_path=tmp_path / "full.pt")

    class Interrupt(Exception):
        pass

    def stop_after_second_epoch(epoch, history):
        if epoch == 1:
            raise Interrupt

    interrupted = _vae()
    with pytest.raises(Interrupt):
        vl.train(interrupted, *data, num_epochs=4, quiet=True, checkpoint_path=tmp_path / "run.pt",
                 callback=stop_after_second_epoch)
    assert vl.load_checkpoint(tmp_path / "run.pt").epoch == 2
    resumed_model = _vae(seed=123)  # a fresh process would start from other weights
    resumed = vl.train(resumed_model, *data, num_epochs=4, quiet=True, checkpoint_path=tmp_path / "run.pt")
    assert resumed.train == full.train and resumed.test == full.test
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), resumed_model.state_dict().values()))


def test_registered_models_round_trip_and_unregistered_ones_are_refused(tmp_path):
    from vae_lesson.infra.checkpoint import register_model
    from vae_lesson.chapters.swiss_roll import PointVAE

    vl.set_seed(0)
    model = PointVAE(n_hidden=8, learn_variance=False, init_ln_var=-3.0)
    loaded = vl.load_checkpoint(vl.save_checkpoint(tmp_path / "p.pt", model)).model
    assert isinstance(loaded, PointVAE) and loaded.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))

    class Plain(torch.nn.Module):
        config = {}

    with pytest.raises(TypeError, match="only registered models"):
        vl.save_checkpoint(tmp_path / "x.pt", Plain())
    with pytest.raises(TypeError, match="from_config"):
        register_model(Plain)
