"""Tests for vae_lesson.chapters.augment: the classifier, the VAE and shift augmenters, the experiment and its cache."""

import json

import pytest
import torch
import torch.nn.functional as F

import vae_lesson as vl
from vae_lesson.chapters import augment as A


def _toy_images(n=200, seed=0):
    """Two linearly separable classes of 28x28 images: a bright bar on the left or on the right half."""
    g = torch.Generator().manual_seed(seed)
    x = 0.2 * torch.rand(n, 28, 28, generator=g)
    y = torch.arange(n) % 2
    rows = torch.randint(4, 20, (n,), generator=g)
    for i in range(n):
        c = 5 if y[i] == 0 else 19
        x[i, rows[i]:rows[i] + 6, c:c + 4] = 1.0
    return x, y


@pytest.fixture(scope="module")
def digits28():
    """scikit-learn's 8x8 digits upsampled to 28x28 (bilinear), labels 0..9."""
    d = vl.load_digits(verbose=False)

    def up(x):
        return F.interpolate(x.unsqueeze(1), size=(28, 28), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)
    return up(d.x_train), d.y_train, up(d.x_test), d.y_test


@pytest.fixture(scope="module")
def small_vae(digits28):
    x, _, _, _ = digits28
    torch.manual_seed(0)
    vae = vl.VAE(784, 4, 32)
    vl.train(vae, x[:200].reshape(200, -1), num_epochs=3, batch_size=50, quiet=True)
    return vae


def test_small_cnn_shapes_and_size():
    model = A.SmallCNN(10)
    for shape in [(5, 1, 28, 28), (5, 28, 28), (5, 784)]:
        assert model(torch.rand(shape)).shape == (5, 10)
    assert A.SmallCNN(3)(torch.rand(2, 28, 28)).shape == (2, 3)
    n_params = sum(p.numel() for p in model.parameters())
    assert 10_000 <= n_params <= 60_000
    with pytest.raises(ValueError, match="28x28"):
        model(torch.rand(5, 1, 32, 32))
    with pytest.raises(ValueError, match="n_classes"):
        A.SmallCNN(1)


def test_train_classifier_learns_and_is_deterministic():
    x, y = _toy_images(200)
    xt, yt = _toy_images(100, seed=1)
    weights, histories = [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = A.SmallCNN(2)
        histories.append(A.train_classifier(model, x, y, num_steps=40, batch_size=32, lr=3e-3, seed=3,
                                            x_val=xt, y_val=yt))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert A.accuracy(model, xt, yt) > 0.9
    assert torch.equal(weights[0], weights[1])
    assert histories[0]["train_loss"] == histories[1]["train_loss"]
    assert histories[0]["steps"] == 40 and len(histories[0]["val_accuracy"]) == len(histories[0]["train_loss"])
    assert histories[0]["train_loss"][-1] < histories[0]["train_loss"][0]
    # a different seed shuffles differently
    torch.manual_seed(0)
    other = A.SmallCNN(2)
    A.train_classifier(other, x, y, num_steps=40, seed=4)
    assert not torch.equal(weights[0], torch.cat([p.detach().flatten() for p in other.parameters()]))


def test_train_classifier_epochs_count_steps():
    x, y = _toy_images(50)
    torch.manual_seed(0)
    history = A.train_classifier(A.SmallCNN(2), x, y, num_epochs=3, batch_size=20)
    assert history["steps"] == 3 * 3 and len(history["train_loss"]) == 3


def test_classifier_errors():
    x, y = _toy_images(20)
    model = A.SmallCNN(2)
    with pytest.raises(ValueError, match="exactly one"):
        A.train_classifier(model, x, y)
    with pytest.raises(ValueError, match="exactly one"):
        A.train_classifier(model, x, y, num_epochs=1, num_steps=1)
    with pytest.raises(TypeError, match="y must hold integer classes"):
        A.train_classifier(model, x, y.float(), num_steps=1)
    with pytest.raises(ValueError, match="y must be classes 0 to 1, got values from 1 to 2"):
        A.train_classifier(model, x, y + 1, num_steps=1)
    with pytest.raises(ValueError, match=r"shape \(20,\)"):
        A.train_classifier(model, x, y[:5], num_steps=1)
    with pytest.raises(TypeError, match="floating-point"):
        A.train_classifier(model, (x * 255).to(torch.uint8), y, num_steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        A.accuracy(model, x * 255, y)
    with pytest.raises(ValueError, match="both x_val and y_val"):
        A.train_classifier(model, x, y, num_steps=1, x_val=x)
    with pytest.raises(ValueError, match="num_steps"):
        A.train_classifier(model, x, y, num_steps=0)


def test_balanced_subset():
    y = torch.arange(1000) % 10
    idx = A.balanced_subset(y, 100, seed=0)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert torch.bincount(y[idx], minlength=10).tolist() == [10] * 10
    assert torch.equal(idx, A.balanced_subset(y, 100, seed=0))
    assert not torch.equal(idx, A.balanced_subset(y, 100, seed=1))
    assert torch.bincount(y[A.balanced_subset(y, 23, seed=0)], minlength=10).tolist() == [3, 3, 3] + [2] * 7
    with pytest.raises(ValueError, match="class 0 has 100"):
        A.balanced_subset(y, 2000, seed=0)


def test_augment_with_vae_shapes_labels_range(small_vae, digits28):
    x, y, _, _ = digits28
    x_aug, y_aug = A.augment_with_vae(small_vae, x[:7], y[:7], 5, generator=torch.Generator().manual_seed(0))
    assert x_aug.shape == (35, 28, 28) and y_aug.shape == (35,)
    assert torch.equal(y_aug, y[:7].repeat_interleave(5))
    assert 0 <= float(x_aug.min()) and float(x_aug.max()) <= 1
    flat_aug, _ = A.augment_with_vae(small_vae, x[:7].reshape(7, -1), y[:7], 2)
    assert flat_aug.shape == (14, 784)
    # reproducible with a seeded generator, different with another seed
    again, _ = A.augment_with_vae(small_vae, x[:7], y[:7], 5, generator=torch.Generator().manual_seed(0))
    other, _ = A.augment_with_vae(small_vae, x[:7], y[:7], 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x_aug, again) and not torch.equal(x_aug, other)


def test_vae_codes_spread_matches_posterior(small_vae, digits28):
    x = digits28[0][:3]
    mean, ln_var = small_vae.encode(x.reshape(3, -1))
    for scale in (1.0, 0.5):
        z, m, s = A.vae_codes(small_vae, x, 20_000, scale=scale, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(m, mean.detach(), atol=1e-6) and torch.allclose(s, torch.exp(0.5 * ln_var).detach(), atol=1e-6)
        # Monte Carlo: the sample mean and sd of the codes are those of q(z|x) (sd scaled); 20,000 draws -> ~1% error
        assert torch.allclose(z.mean(1), m, atol=0.05 * float(s.max()) * scale)
        assert torch.allclose(z.std(1) / (scale * s), torch.ones_like(s), atol=0.04)


def test_scale_zero_decodes_the_mean(small_vae, digits28):
    x, y = digits28[0][:4], digits28[1][:4]
    x_aug, _ = A.augment_with_vae(small_vae, x, y, 3, scale=0.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = small_vae.decode(small_vae.encode(x.reshape(4, -1))[0]).reshape(4, 28, 28)
    assert torch.allclose(x_aug, expected.repeat_interleave(3, 0), atol=1e-6)


def test_augment_with_vae_errors(small_vae, digits28):
    x, y = digits28[0][:4], digits28[1][:4]
    with pytest.raises(ValueError, match="factor"):
        A.augment_with_vae(small_vae, x, y, 0)
    with pytest.raises(ValueError, match="784 pixels"):
        A.augment_with_vae(small_vae, torch.rand(4, 8, 8), y, 2)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        A.augment_with_vae(small_vae, x, y[:3], 2)
    with pytest.raises(ValueError, match="scale"):
        A.augment_with_vae(small_vae, x, y, 2, scale=-1.0)
    with pytest.raises(TypeError, match="generator"):
        A.augment_with_vae(small_vae, x, y, 2, generator=0)
    with pytest.raises(TypeError, match="trained VAE"):
        A.augment_with_vae(A.SmallCNN(), x, y, 2)


def test_shift_augment_moves_pixels():
    x = torch.zeros(3, 28, 28)
    x[:, 14, 14] = 1.0
    y = torch.tensor([0, 1, 2])
    shifted, y_aug = A.shift_augment(x, y, 50, max_shift=2, generator=torch.Generator().manual_seed(0))
    assert shifted.shape == (150, 28, 28) and torch.equal(y_aug, y.repeat_interleave(50))
    assert torch.allclose(shifted.sum((1, 2)), torch.ones(150))  # the dot stays inside: nothing lost
    rows, cols = torch.nonzero(shifted)[:, 1], torch.nonzero(shifted)[:, 2]
    assert set(rows.tolist()) == set(range(12, 17)) and set(cols.tolist()) == set(range(12, 17))
    same, _ = A.shift_augment(x, y, 2, max_shift=0)
    assert torch.equal(same, x.repeat_interleave(2, 0))


def test_experiment_rows_and_cache(digits28, tmp_path, monkeypatch):
    listing = tmp_path / "loaded_work.jsonl"  # what the build-times page reads ($VAE_LESSON_LOADED_WORK)
    monkeypatch.setenv("VAE_LESSON_LOADED_WORK", str(listing))
    x, y, xt, yt = digits28
    settings = dict(n_trains=(20, 30), augmentations=("none", "vae-2", "shift-2"), seeds=(0, 1), vae_latent=2,
                    vae_hidden=16, vae_steps=5, classifier_steps=5, batch_size=16)
    rows, path, loaded = A.load_or_run_experiment(x, y, xt[:100], yt[:100], cache_dir=tmp_path, verbose=False,
                                                  **settings)
    assert not loaded and path.is_file()
    assert len(rows) == 2 * 3 * 2
    assert {(r["n_train"], r["augmentation"], r["seed"]) for r in rows} == {
        (n, a, s) for n in (20, 30) for a in ("none", "vae-2", "shift-2") for s in (0, 1)}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert {r["n_images"] for r in rows if r["n_train"] == 20} == {20, 60}
    # every (n_train, seed) has one VAE, measured once: its numbers are shared by that pair's rows
    for n in (20, 30):
        for seed in (0, 1):
            group = [r for r in rows if r["n_train"] == n and r["seed"] == seed]
            assert len({(r["vae_neg_elbo"], r["vae_iwae"], r["vae_epochs"]) for r in group}) == 1
            # the importance-weighted estimate of -log p(x) lies below the -ELBO (same 100 test images)
            assert group[0]["vae_iwae"] < group[0]["vae_neg_elbo"]
            assert all(0 < r["classifier_seconds"] <= r["seconds"] for r in group)
    # the round trip: same settings reload the same table without training
    again, path2, loaded2 = A.load_or_run_experiment(x, y, xt[:100], yt[:100], cache_dir=tmp_path, verbose=False,
                                                     **settings)
    assert loaded2 and path2 == path and again == rows
    # computed once (nothing listed), then loaded: listed with the seconds computing it took
    assert json.loads(listing.read_text()) == {"name": path.name,
                                               "seconds": round(A.experiment_seconds(rows), 1)}
    assert json.loads(path.read_text())["key"]["settings"]["seeds"] == [0, 1]
    # a table that measured less (an older version of the rows) is computed again, not reloaded
    stored = json.loads(path.read_text())
    stored["key"]["measures"] = A.MEASURES - 1
    path.write_text(json.dumps(stored))
    _, _, reloaded = A.load_or_run_experiment(x, y, xt[:100], yt[:100], cache_dir=tmp_path, verbose=False,
                                              **settings)
    assert not reloaded and json.loads(path.read_text())["key"]["measures"] == A.MEASURES
    assert not list(tmp_path.glob("*.tmp"))
    # other settings, other file
    _, path3, loaded3 = A.load_or_run_experiment(x, y, xt[:100], yt[:100], cache_dir=tmp_path, verbose=False,
                                                 **{**settings, "seeds": (0,), "augmentations": ("none",)})
    assert not loaded3 and path3 != path
    summary = A.summarize(rows)
    assert len(summary) == 6 and all(s["n_seeds"] == 2 for s in summary)
    markdown = A.results_table(rows)
    assert markdown.count("\n") == 3 and "± " in markdown  # header, rule, one line per n_train
    html = A.results_table(rows, fmt="html")
    assert html.startswith('<table class="table"') and html.count("<tr>") == 3 and html.count("± ") == 6
    with pytest.raises(ValueError, match="fmt"):
        A.results_table(rows, fmt="latex")
    fig = A.plot_accuracy_vs_n(rows, title="toy")
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and len(ax.get_legend().get_texts()) == 3


def test_experiment_seconds_counts_each_generator_once():
    # one labelled set and seed: a VAE trained in 10 s serves two rows, a CVAE in 6 s one; each row's
    # own work (variants and classifier) takes 1 s, and its "seconds" includes its generator's time
    rows = [{"n_train": 100, "seed": 0, "augmentation": "none", "seconds": 1.0},
            {"n_train": 100, "seed": 0, "augmentation": "vae-10", "seconds": 11.0, "vae_seconds": 10.0},
            {"n_train": 100, "seed": 0, "augmentation": "vae-50", "seconds": 11.0, "vae_seconds": 10.0},
            {"n_train": 100, "seed": 0, "augmentation": "cvae-10", "seconds": 7.0, "cvae_seconds": 6.0}]
    assert A.experiment_seconds(rows) == pytest.approx(4 * 1.0 + 10.0 + 6.0)
    # another seed trains its own VAE: counted too
    other = [{**r, "seed": 1} for r in rows]
    assert A.experiment_seconds(rows + other) == pytest.approx(2 * 20.0)
    assert A.experiment_seconds([]) == 0.0


def test_the_cache_runs_the_loop_it_is_given_and_keys_edited_loops_apart(digits28, tmp_path):
    """load_or_run_experiment runs ``run`` (the chapter passes its own loop); a loop with the book's code keeps
    the book's cache file, an edited one gets a file of its own."""
    import linecache
    import textwrap

    x, y, xt, yt = digits28
    settings = dict(n_trains=(20,), augmentations=("none", "shift-2"), seeds=(0,), classifier_steps=3,
                    batch_size=16)
    rows, path, _ = A.load_or_run_experiment(x, y, xt[:50], yt[:50], cache_dir=tmp_path, verbose=False, **settings)
    calls = []

    def fake(x_train, y_train, x_test, y_test, *, verbose, **given):
        calls.append(given)
        return [{"n_train": 20, "augmentation": "none", "seed": 0, "accuracy": 1.0}]

    fake_rows, fake_path, loaded = A.load_or_run_experiment(x, y, xt[:50], yt[:50], cache_dir=tmp_path,
                                                            verbose=False, run=fake, **settings)
    assert calls == [settings] and fake_rows[0]["accuracy"] == 1.0 and not loaded and fake_path != path

    def as_cell(text, name):  # a function defined in a notebook cell: its source is in linecache
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        namespace = {}
        exec(compile(text, name, "exec"), vars(A) | namespace, namespace)
        return namespace["run_augmentation_experiment"]

    import inspect
    source = textwrap.dedent(inspect.getsource(A.run_augmentation_experiment))
    same = as_cell("# the chapter's copy\n" + source, "<cell-same>")
    again, same_path, loaded = A.load_or_run_experiment(x, y, xt[:50], yt[:50], cache_dir=tmp_path, verbose=False,
                                                        run=same, **settings)
    assert loaded and same_path == path and again == rows
    edited = as_cell(source.replace("1000 + seed", "2000 + seed"), "<cell-edited>")
    _, edited_path, loaded = A.load_or_run_experiment(x, y, xt[:50], yt[:50], cache_dir=tmp_path, verbose=False,
                                                      run=edited, **settings)
    assert not loaded and edited_path not in (path, fake_path)
    with pytest.raises(TypeError, match="run must be"):
        A.load_or_run_experiment(x, y, xt, yt, cache_dir=tmp_path, run="loop")


def test_experiment_settings_fill_in_and_check():
    full = A.experiment_settings({"seeds": (3,)})
    assert full["seeds"] == (3,) and full["n_trains"] == A.DEFAULTS["n_trains"]
    assert A.parse_augmentation("vae-10") == ("vae", 10) and A.parse_augmentation("none") == ("none", 0)
    with pytest.raises(TypeError, match="unknown experiment setting"):
        A.experiment_settings({"epochs": 3})
    with pytest.raises(ValueError, match="augmentation must be"):
        A.experiment_settings({"augmentations": ("none", "vae-0")})
    with pytest.raises(ValueError, match="n_train"):
        A.experiment_settings({"n_trains": (100, 0)})
    with pytest.raises(ValueError, match="classifier_steps"):
        A.experiment_settings({"classifier_steps": 2.5})


def test_experiment_errors(digits28, tmp_path):
    x, y, xt, yt = digits28
    with pytest.raises(ValueError, match="augmentation must be"):
        A.run_augmentation_experiment(x, y, xt, yt, augmentations=("mixup",), verbose=False)
    with pytest.raises(TypeError, match="unknown experiment setting"):
        A.load_or_run_experiment(x, y, xt, yt, cache_dir=tmp_path, n_epochs=3)
    with pytest.raises(ValueError, match="summarize"):
        A.summarize([])


def test_record_reference_summarises_each_size_and_augmentation(digits28, tmp_path, monkeypatch):
    from vae_lesson.chapters.reference import load_results

    monkeypatch.delenv("VAE_LESSON_FAST", raising=False)
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path))
    x, y, xt, yt = digits28
    settings = dict(n_trains=(20, 30), augmentations=("none", "vae-2", "cvae-2"), seeds=(0, 1), vae_latent=2,
                    vae_hidden=16, vae_steps=5, classifier_steps=5, batch_size=16, vae_iwae_k=5)
    rows = A.run_augmentation_experiment(x, y, xt[:100], yt[:100], verbose=False, **settings)
    recorded = A.record_reference(rows, data="digits", settings=settings)
    assert [r["name"] for r in load_results()] == sorted(r["name"] for r in recorded)
    vae_20 = next(r for r in recorded if r["name"] == "VAE on 20 labelled digits")
    runs = [r for r in rows if r["n_train"] == 20 and r["augmentation"] == "none"]
    assert vae_20["test_neg_elbo"] == round(sum(r["vae_neg_elbo"] for r in runs) / 2, 2)
    assert vae_20["test_iwae"] == round(sum(r["vae_iwae"] for r in runs) / 2, 2) and vae_20["iwae_k"] == 5
    assert vae_20["seed"] == "0–1" and vae_20["latent"] == 2
    cvae_30 = next(r for r in recorded if r["name"] == "CVAE on 30 labelled digits")
    runs = {r["seed"]: r for r in rows if r["n_train"] == 30 and r.get("cvae_neg_elbo") is not None}
    assert len(runs) == 2
    assert cvae_30["test_neg_elbo"] == round(sum(r["cvae_neg_elbo"] for r in runs.values()) / 2, 2)
    # the importance-weighted estimate of -log p(x | y), below each CVAE's -ELBO, averaged likewise
    assert all(r["cvae_iwae"] < r["cvae_neg_elbo"] for r in runs.values())
    assert cvae_30["test_iwae"] == round(sum(r["cvae_iwae"] for r in runs.values()) / 2, 2)
    assert cvae_30["iwae_k"] == 5 and cvae_30["model"] == "CVAE"
    assert "mean of 2 CVAEs" in cvae_30["metric"] and "p(x | label)" in cvae_30["metric"]
    cnn = next(r for r in recorded if r["name"] == "small CNN, VAE ×2" or r["name"].endswith("vae-2"))
    means = {s["n_train"]: s["mean"] for s in A.summarize(rows) if s["augmentation"] == "vae-2"}
    assert cnn["metric"] == "test accuracy " + ", ".join(f"{100 * means[n]:.1f}% (n = {n})" for n in (20, 30))
    assert cnn["train_seconds"] == round(sum(r["classifier_seconds"] for r in rows if r["augmentation"] == "vae-2"), 1)
    with pytest.raises(ValueError, match="rows is empty"):
        A.record_reference([], data="digits")


# ----------------------------------------------------------------------------------------------
# the conditional condition: class-conditional samples from a CVAE trained on the subset
# ----------------------------------------------------------------------------------------------


def test_cvae_augmentation_draws_each_label_from_the_prior(digits28):
    x, y, xt, yt = digits28
    settings = A.experiment_settings(dict(vae_latent=3, vae_hidden=32, vae_steps=20))
    cvae, numbers = A.train_subset_cvae(x[:60], y[:60], xt[:50], yt[:50], 0, settings)
    # 60 images in batches of 50: 2 steps an epoch, 20 steps
    assert numbers["cvae_epochs"] == 10 and numbers["cvae_seconds"] > 0
    from vae_lesson.chapters.cvae import with_labels
    rows_test = with_labels(xt[:50].reshape(50, -1), yt[:50])
    assert numbers["cvae_neg_elbo"] == pytest.approx(vl.evaluate(cvae, rows_test)["total"])
    labels = torch.tensor([3, 7, 7])
    images, y_new = A.augment_with_cvae(cvae, labels, 4, generator=torch.Generator().manual_seed(1))
    assert images.shape == (12, 28, 28) and torch.equal(y_new, labels.repeat_interleave(4))
    assert 0.0 <= images.min() and images.max() <= 1.0
    again, _ = A.augment_with_cvae(cvae, labels, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(images, again)  # seeded
    # each sample is the decoder's mean for a prior code and its label
    z = torch.randn(12, 3, generator=torch.Generator().manual_seed(1))
    from vae_lesson.chapters.cvae import one_hot
    with torch.no_grad():
        expected = cvae.decode(z, one_hot(y_new)).reshape(12, 28, 28)
    assert torch.allclose(images, expected)
    with pytest.raises(TypeError, match="cvae must be a trained CVAE"):
        A.augment_with_cvae(vl.VAE(784, 3, 8), labels, 2)
    with pytest.raises(ValueError, match="factor"):
        A.augment_with_cvae(cvae, labels, 0)
    with pytest.raises(ValueError, match="y must be classes 0 to 9, got values from 10 to 10"):
        A.augment_with_cvae(cvae, torch.tensor([10]), 1)


def test_the_experiment_runs_the_cvae_condition_with_the_same_protocol(digits28, tmp_path):
    x, y, xt, yt = digits28
    assert A.parse_augmentation("cvae-10") == ("cvae", 10)
    with pytest.raises(ValueError, match='"cvae-<factor>"'):
        A.parse_augmentation("cvae-x")
    settings = dict(n_trains=(20,), augmentations=("none", "cvae-2"), seeds=(0, 1), vae_latent=2,
                    vae_hidden=16, vae_steps=5, classifier_steps=5, batch_size=16)
    rows = A.run_augmentation_experiment(x, y, xt[:100], yt[:100], verbose=False, **settings)
    assert [(r["augmentation"], r["seed"]) for r in rows] == [
        ("none", 0), ("cvae-2", 0), ("none", 1), ("cvae-2", 1)]
    assert {r["n_images"] for r in rows} == {20, 60}
    for seed in (0, 1):
        pair = [r for r in rows if r["seed"] == seed]
        assert pair[0]["cvae_neg_elbo"] == pair[1]["cvae_neg_elbo"]  # one CVAE per (n, seed)
        assert "vae_neg_elbo" not in pair[0]  # no VAE condition, no VAE trained
        cvae_row = pair[1]
        assert cvae_row["seconds"] >= cvae_row["cvae_seconds"] + cvae_row["classifier_seconds"] * 0.99
    fig = A.plot_accuracy_vs_n(rows)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["no augmentation", "CVAE ×2"]


def test_a_handed_out_table_in_the_checkpoint_folder_is_loaded(digits28, tmp_path, monkeypatch):
    # a teacher's checkpoints folder (tools/make_student_notebooks.py --checkpoints) holds the table
    x, y, xt, yt = digits28
    settings = dict(n_trains=(20,), augmentations=("none",), seeds=(0,), vae_latent=2, vae_hidden=16,
                    vae_steps=5, classifier_steps=5, batch_size=16)
    rows, table, _ = A.load_or_run_experiment(x, y, xt[:50], yt[:50], cache_dir=tmp_path / "teacher",
                                              verbose=False, **settings)
    monkeypatch.setenv("VAE_LESSON_OUTPUT_DIR", str(tmp_path / "student"))
    monkeypatch.setenv("VAE_LESSON_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    from vae_lesson.infra.checkpoint import checkpoint_dir
    handed_out = checkpoint_dir()  # (its subfolder fast/ under VAE_LESSON_FAST=1)
    handed_out.mkdir(parents=True)
    (handed_out / table.name).write_bytes(table.read_bytes())

    loaded_rows, path, loaded = A.load_or_run_experiment(x, y, xt[:50], yt[:50], verbose=False, **settings)
    assert loaded and path == handed_out / table.name and loaded_rows == rows  # read, not computed
    # other settings: not that table, so the loop runs and writes to the student's own cache
    _, path, loaded = A.load_or_run_experiment(x, y, xt[:50], yt[:50], verbose=False,
                                               **{**settings, "seeds": (1,)})
    assert not loaded and path.parent == tmp_path / "student" / "10_augmentation"
    # an explicit cache_dir reads only that folder
    _, _, loaded = A.load_or_run_experiment(x, y, xt[:50], yt[:50], cache_dir=tmp_path / "elsewhere",
                                            verbose=False, **settings)
    assert not loaded
