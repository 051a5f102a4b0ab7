"""Reference results: recorded rows survive, merge, render, and an interrupted write loses nothing."""

import json

import pytest
import torch

import vae_lesson as vl
from vae_lesson.chapters.iwae import neg_elbo
from vae_lesson.chapters.reference import load_results, record_result, record_row, results_table


@pytest.fixture(scope="module")
def trained():
    digits = vl.load_digits(verbose=False)
    vl.set_seed(0)
    model = vl.VAE(64, 3, 32)
    history = vl.train(model, digits.x_train_flat, digits.x_test_flat, num_epochs=2, quiet=True)
    return model, history, digits


@pytest.fixture(autouse=True)
def _not_fast(monkeypatch):
    monkeypatch.delenv("VAE_LESSON_FAST", raising=False)


def test_record_load_and_replace(trained, tmp_path):
    model, history, digits = trained
    path = tmp_path / "results.json"
    row = record_result("05_vae", "VAE, 3-D", model, history, data=digits.source, seed=0,
                        x_test=digits.x_test_flat[:40], iwae_k=20, path=path)
    assert row["latent"] == 3 and row["epochs"] == 2 and row["model"] == "VAE"
    neg_elbo_40 = neg_elbo(model, digits.x_test_flat[:40]).mean().item()
    assert row["test_neg_elbo"] == round(neg_elbo_40, 2)
    assert row["train_seconds"] == round(sum(history.epoch_seconds), 1)
    # The IWAE estimate is a tighter bound: -log p(x) estimate below the -ELBO of the same images.
    assert row["test_iwae"] < neg_elbo_40 and row["iwae_k"] == 20
    assert row["metric"] is None and row["pixels"] == "continuous"
    ae_history = vl.History({"total": [9.0]}, {"total": [12.5]}, [0.5])
    ae_row = record_result("01_autoencoder", "AE", vl.AutoEncoder(64, 2, 8), ae_history, data="x", path=path)
    assert ae_row["metric"] == "test loss 12.5" and ae_row["test_neg_elbo"] is None and ae_row["latent"] == 2
    record_result("05_vae", "VAE, 3-D", model, history, data="replaced", path=path)
    rows = load_results(path)
    assert [r["chapter"] for r in rows] == ["01_autoencoder", "05_vae"]
    assert rows[1]["data"] == "replaced"


def test_fast_mode_records_nothing(trained, tmp_path, monkeypatch):
    model, history, digits = trained
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    record_result("05_vae", "VAE", model, history, data="d", path=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_an_interrupted_write_keeps_the_previous_file(trained, tmp_path, monkeypatch):
    model, history, _ = trained
    path = tmp_path / "r.json"
    record_result("05_vae", "VAE", model, history, data="d", path=path)
    before = path.read_text()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(KeyboardInterrupt):
        record_result("06_conv_vae", "conv", model, history, data="d", path=path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_table_has_a_row_per_result_and_marks_missing_values(trained, tmp_path):
    model, history, _ = trained
    path = tmp_path / "r.json"
    record_result("05_vae", "VAE", model, history, data="MNIST subset", path=path)
    table = results_table(load_results(path), fmt="markdown")
    lines = table.splitlines()
    assert len(lines) == 3 and "MNIST subset" in lines[2] and "–" in lines[2]
    html_table = results_table(load_results(path))
    assert html_table.count("<tr>") == 2 and "<td>MNIST subset</td>" in html_table
    assert "No results recorded yet" in results_table([])
    with pytest.raises(ValueError, match="fmt must be"):
        results_table([], fmt="csv")


def test_corrupt_results_file_is_reported(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results(path)


def test_empty_history_is_refused(tmp_path):
    with pytest.raises(ValueError, match="history is empty"):
        record_result("x", "y", vl.VAE(4, 2, 4), vl.History(), data="d", path=tmp_path / "r.json")


def test_a_vae_trained_with_another_kl_weight_reports_its_true_neg_elbo(trained, tmp_path):
    model, history, digits = trained
    row = record_result("07_loss_choice", "VAE", model, history, data="d", x_test=digits.x_test_flat[:30],
                        path=tmp_path / "r.json", metric="MSE 0.1", latent="three numbers", pixels="8x8 digits")
    assert row["test_neg_elbo"] == round(neg_elbo(model, digits.x_test_flat[:30]).mean().item(), 2)
    assert row["test_iwae"] is None and row["iwae_k"] is None  # no estimate asked for
    assert (row["metric"], row["latent"], row["pixels"]) == ("MSE 0.1", "three numbers", "8x8 digits")


def test_record_row_for_summaries(tmp_path):
    path = tmp_path / "r.json"
    row = record_row("08_augmentation", "VAEs", model="VAE", data="d", epochs=5, seed="0–2", train_seconds=3.04,
                     latent=8, test_neg_elbo=101.234, test_iwae=99.876, iwae_k=50, metric="mean of 3", path=path)
    assert (row["test_neg_elbo"], row["test_iwae"], row["train_seconds"]) == (101.23, 99.88, 3.0)
    html_table = results_table(load_results(path))
    assert "<td>0–2</td>" in html_table and "99.88 (K = 50)" in html_table and "<td>mean of 3</td>" in html_table
