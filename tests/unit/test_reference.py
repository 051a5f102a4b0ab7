"""Reference results: recorded rows survive, merge, render, and an interrupted write loses nothing."""

import dataclasses
import json

import pytest

import vae_lesson as vl
from vae_lesson.chapters.iwae import neg_elbo
from vae_lesson.chapters.reference import (
    compare_with_expected,
    data_label,
    load_results,
    record_result,
    record_row,
    results_path,
    results_table,
    row_tolerance,
)


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


def test_fast_mode_records_in_its_own_file(trained, tmp_path, monkeypatch):
    model, history, _ = trained
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path))
    record_result("05_vae", "VAE", model, history, data="book")
    monkeypatch.setenv("VAE_LESSON_FAST", "1")
    assert results_path().name == "reference_results_fast.json"
    record_result("05_vae", "VAE", model, history, data="fast")
    assert [row["data"] for row in load_results()] == ["fast"]
    monkeypatch.delenv("VAE_LESSON_FAST")
    assert [row["data"] for row in load_results()] == ["book"]


def _row(**changes):
    row = {"chapter": "05_vae", "name": "VAE", "model": "VAE", "data": "MNIST", "pixels": "continuous",
           "latent": 20, "epochs": 15, "seed": 0, "iwae_k": 100, "test_neg_elbo": 122.25,
           "test_iwae": 116.13, "metric": "test MSE per pixel 0.0284, 12 active dims"}
    return {**row, **changes}


def test_the_build_matches_an_identical_table_and_numbers_within_the_tolerance():
    expected = {"05_vae/VAE": _row()}
    assert compare_with_expected([_row()], expected) == []
    # 1 % of 122.25 plus 0.1 nats is 1.32 nats; 2 % of a metric's numbers
    assert compare_with_expected([_row(test_neg_elbo=122.25 + 1.3, test_iwae=116.13 - 1.2)], expected) == []
    assert compare_with_expected([_row(metric="test MSE per pixel 0.0289, 12 active dims")], expected) == []


@pytest.mark.parametrize("changes, words", [
    ({"test_neg_elbo": 122.25 + 1.4}, "test_neg_elbo is 123.65 nats, expected 122.25"),
    ({"test_iwae": 110.0}, "test_iwae is 110.00 nats, expected 116.13"),
    ({"test_iwae": None}, "test_iwae is None"),
    ({"epochs": 16}, "epochs is 16, expected 15"),
    ({"data": "MNIST (full)"}, "data is 'MNIST (full)'"),
    ({"metric": "test MSE per pixel 0.0300, 12 active dims"}, "beyond the tolerance"),
    ({"metric": "test MSE per pixel 0.0284, 11 active dims"}, "beyond the tolerance"),
    ({"metric": "test BCE 0.0284, 12 active dims"}, "metric reads 'test BCE"),
])
def test_a_change_beyond_the_tolerance_names_the_model_and_the_number(changes, words):
    problems = compare_with_expected([_row(**changes)], {"05_vae/VAE": _row()})
    assert len(problems) == 1 and problems[0].startswith("05_vae/VAE: ") and words in problems[0], problems


def test_a_row_may_widen_its_own_tolerance_with_a_reason():
    wide = _row(tolerance={"nats_relative": 0.03, "count_absolute": 3, "because": "moves between processors"})
    expected = {"05_vae/VAE": wide}
    # 3 % of 122.25 plus 0.1 nats is 3.77 nats; a count within 3, the metric's other numbers still within 2 %
    assert compare_with_expected([_row(test_neg_elbo=122.25 + 3.7)], expected) == []
    assert compare_with_expected([_row(metric="test MSE per pixel 0.0284, 15 active dims")], expected) == []
    for changes in ({"test_neg_elbo": 122.25 + 3.8}, {"metric": "test MSE per pixel 0.0284, 16 active dims"},
                    {"metric": "test MSE per pixel 0.0300, 12 active dims"}):
        assert len(compare_with_expected([_row(**changes)], expected)) == 1, changes
    # a number written with a decimal point is a measurement, not a count, even when it is whole
    measured = {"05_vae/VAE": _row(metric="test BCE 99.0 nats", tolerance=wide["tolerance"])}
    assert compare_with_expected([_row(metric="test BCE 96.0 nats")], measured)
    assert compare_with_expected([_row(metric="test BCE 97.5 nats")], measured) == []
    # the other rows keep the table's tolerance
    expected["05_vae/VAE, 2-D"] = _row(name="VAE, 2-D")
    problems = compare_with_expected([_row(test_neg_elbo=122.25 + 3.7),
                                      _row(name="VAE, 2-D", test_neg_elbo=122.25 + 3.7)], expected)
    assert problems and all(p.startswith("05_vae/VAE, 2-D: test_neg_elbo") for p in problems), problems
    with pytest.raises(ValueError, match="must say why"):
        compare_with_expected([_row()], {"05_vae/VAE": _row(tolerance={"nats_relative": 0.03})})
    with pytest.raises(ValueError, match="unknown tolerance"):
        compare_with_expected([_row()], {"05_vae/VAE": _row(tolerance={"nats": 0.03, "because": "x"})})


def test_a_missing_or_new_model_is_a_difference():
    other = _row(name="VAE, 2-D")
    problems = compare_with_expected([other], {"05_vae/VAE": _row()})
    assert problems == ["05_vae/VAE: expected but not recorded by the build",
                        "05_vae/VAE, 2-D: recorded but not in the expected table"]


def test_the_tool_updates_the_table_with_a_reason_and_then_checks_it(tmp_path, capsys):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import reference_numbers

    results, expected = tmp_path / "results.json", tmp_path / "expected.json"
    results.write_text(json.dumps({"05_vae/VAE": _row()}))
    with pytest.raises(SystemExit, match="--because"):
        reference_numbers.update(results, "book", " ", expected)
    assert reference_numbers.main(["update", "--results", str(results), "--expected", str(expected),
                                   "--because", "first table"]) == 0
    table = json.loads(expected.read_text())
    assert list(table) == ["about", "tolerance", "profiles", "changes"]
    assert table["changes"][-1]["because"] == "first table" and table["changes"][-1]["profile"] == "book"
    assert reference_numbers.main(["check", "--results", str(results), "--expected", str(expected)]) == 0
    # a row's own tolerance survives an update of the numbers
    table["profiles"]["book"]["05_vae/VAE"]["tolerance"] = {"nats_relative": 0.1, "because": "a test"}
    expected.write_text(json.dumps(table))
    results.write_text(json.dumps({"05_vae/VAE": _row(test_neg_elbo=123.0)}))
    assert reference_numbers.main(["update", "--results", str(results), "--expected", str(expected),
                                   "--because", "second table"]) == 0
    row = json.loads(expected.read_text())["profiles"]["book"]["05_vae/VAE"]
    assert row["test_neg_elbo"] == 123.0 and row["tolerance"] == {"nats_relative": 0.1, "because": "a test"}
    results.write_text(json.dumps({"05_vae/VAE": _row(test_neg_elbo=140.0)}))
    assert reference_numbers.main(["check", "--results", str(results), "--expected", str(expected)]) == 1
    out = capsys.readouterr().out
    assert "05_vae/VAE: test_neg_elbo is 140.00 nats, expected 123.00" in out and "--because" in out
    with pytest.raises(ValueError, match="no profile 'fast'"):
        reference_numbers.check(results, "fast", expected)


def test_the_committed_table_has_both_profiles_and_a_reason_for_each():
    from pathlib import Path
    table = json.loads((Path(__file__).resolve().parents[2] / "tests" / "expected_reference_numbers.json").read_text())
    assert set(table["profiles"]) == {"book", "fast"}
    assert {change["profile"] for change in table["changes"]} >= {"book", "fast"}
    book = table["profiles"]["book"]
    for rows in table["profiles"].values():  # a row's own tolerance names known keys and a reason
        for key, row in rows.items():
            row_tolerance(row, key)
    vaes = [key for key, row in book.items() if row["test_neg_elbo"] is not None]
    assert "05_vae/VAE, 20-D latent" in vaes and len(vaes) >= 10


def test_an_interrupted_write_keeps_the_previous_file(trained, tmp_path, monkeypatch):
    model, history, _ = trained
    path = tmp_path / "r.json"
    record_result("05_vae", "VAE", model, history, data="d", path=path)
    before = path.read_text()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(KeyboardInterrupt):
        record_result("08_conv_vae", "conv", model, history, data="d", path=path)
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
    # each number with the decimals it was stored with: nats to 2, seconds to 1
    row = dict(load_results(path)[0], test_neg_elbo=-0.04, test_iwae=-0.13, iwae_k=50,
               train_seconds=19.3)
    cells = results_table([row], fmt="markdown").splitlines()[2].split(" | ")
    assert "-0.04" in cells and "-0.13 (K = 50)" in cells and "19.3" in cells
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
    row = record_result("09_loss_choice", "VAE", model, history, data="d", x_test=digits.x_test_flat[:30],
                        path=tmp_path / "r.json", metric="MSE 0.1", latent="three numbers", pixels="8x8 digits")
    assert row["test_neg_elbo"] == round(neg_elbo(model, digits.x_test_flat[:30]).mean().item(), 2)
    assert row["test_iwae"] is None and row["iwae_k"] is None  # no estimate asked for
    assert (row["metric"], row["latent"], row["pixels"]) == ("MSE 0.1", "three numbers", "8x8 digits")


def test_the_data_label_says_which_mnist(trained):
    digits = trained[2]
    assert data_label(digits, 1500) == "8x8 digits, 1,500 training images"
    for is_full, which in ((False, "offline subset"), (True, "full")):
        mnist = dataclasses.replace(digits, name="mnist", is_full=is_full)
        assert data_label(mnist, 4000) == f"MNIST ({which}), 4,000 training images"
    fashion = dataclasses.replace(digits, name="fashion-mnist")
    assert data_label(fashion, 60_000) == "Fashion-MNIST, 60,000 training images"


def test_record_row_for_summaries(tmp_path):
    path = tmp_path / "r.json"
    row = record_row("10_augmentation", "VAEs", model="VAE", data="d", epochs=5, seed="0–2", train_seconds=3.04,
                     latent=8, test_neg_elbo=101.234, test_iwae=99.876, iwae_k=50, metric="mean of 3", path=path)
    assert (row["test_neg_elbo"], row["test_iwae"], row["train_seconds"]) == (101.23, 99.88, 3.0)
    html_table = results_table(load_results(path))
    assert "<td>0–2</td>" in html_table and "99.88 (K = 50)" in html_table and "<td>mean of 3</td>" in html_table
