"""The benchmarks compute the right quantities and print the machine-readable lines (no timed assertions)."""

import re
import sys
from pathlib import Path

import pytest
import torch

import vae_lesson as vl

# benchmarks/ sits at the repository root, next to tests/, and is not installed with the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import quality  # noqa: E402
from benchmarks.__main__ import Config, parse_args, run  # noqa: E402
from benchmarks._timing import interleave  # noqa: E402
from benchmarks.reference import ReferenceLoop, reference_train  # noqa: E402
from benchmarks.training import Product, matmul_workload, step_flops, step_products  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return vl.load_digits(verbose=False)


def _tiny(seed=0):
    vl.set_seed(seed)
    return vl.VAE(6, 2, 4)


# --- FLOP counting ---------------------------------------------------------------------------------

def test_flop_count_matches_a_hand_computation():
    # VAE(6, 2, 4) at batch 3; each product costs 2*m*k*n. le1 (6 -> 4): forward + weight gradient only
    # (its input is the data), 2 * 144; le2 (4 -> 4): 3 * 96; le3_mu, le3_ln_var (4 -> 2): 3 * 48 each;
    # ld1 (2 -> 4): 3 * 48; ld2 (4 -> 4): 3 * 96; ld3 (4 -> 6): 3 * 144.
    hand = 2 * 144 + 3 * 96 + 2 * 3 * 48 + 3 * 48 + 3 * 96 + 3 * 144
    assert hand == 1728
    products = step_products(_tiny(), torch.rand(3, 6))
    assert step_flops(products) == hand
    by_layer = {}
    for p in products:
        by_layer.setdefault(p.layer, set()).add(p.kind)
    assert by_layer["le1"] == {"forward", "grad_weight"}
    assert all(kinds == {"forward", "grad_weight", "grad_input"} for name, kinds in by_layer.items() if name != "le1")
    assert Product("le2", "forward", 3, 4, 4) in products


def test_flop_count_follows_the_number_of_z_samples():
    # With k = 2 samples of z the three decoder layers see 6 rows instead of 3: their FLOPs double.
    products = step_products(_tiny(), torch.rand(3, 6), {"k": 2})
    assert step_flops(products) == 2 * 144 + 3 * 96 + 2 * 3 * 48 + 2 * (3 * 48 + 3 * 96 + 3 * 144)


def test_counting_leaves_the_random_stream_alone():
    model, x = _tiny(), torch.rand(3, 6)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    step_products(model, x)  # runs model.loss, which samples z
    assert torch.equal(torch.get_rng_state(), state)


def test_matmul_workload_performs_the_counted_products(monkeypatch):
    products = step_products(_tiny(), torch.rand(3, 6))
    seen = []
    real_mm, real_addmm = torch.Tensor.mm, torch.addmm

    def mm(a, b):
        seen.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
        return real_mm(a, b)

    def addmm(bias, a, b):
        seen.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
        return real_addmm(bias, a, b)

    monkeypatch.setattr(torch.Tensor, "mm", mm)
    monkeypatch.setattr(torch, "addmm", addmm)
    matmul_workload(products)()
    assert sorted(seen) == sorted(p.flops for p in products)


# --- the loops -------------------------------------------------------------------------------------

def test_reference_loop_and_vl_train_both_learn(digits):
    x_train, x_test = digits.x_train_flat, digits.x_test_flat
    ours, theirs = vl.VAE(64, 2, 32), vl.VAE(64, 2, 32)
    theirs.load_state_dict(ours.state_dict())
    before = vl.evaluate(ours, x_test)["total"]
    history = vl.train(ours, x_train, num_epochs=5, seed=0, quiet=True)
    losses = reference_train(theirs, x_train, num_epochs=5, seed=0)
    assert history.train["total"][-1] < 0.8 * history.train["total"][0]
    assert len(losses) == 5 and losses[-1] < 0.8 * losses[0]
    for model in (ours, theirs):
        assert vl.evaluate(model, x_test)["total"] < 0.8 * before


def test_reference_loop_is_the_tutorial_loop(digits):
    loop = ReferenceLoop(_tiny(), torch.rand(250, 6), batch_size=100, seed=0)
    assert isinstance(loop.loader, torch.utils.data.DataLoader) and loop.loader.batch_size == 100
    assert isinstance(loop.loader.sampler, torch.utils.data.RandomSampler)  # shuffled
    group = loop.optimizer.param_groups[0]
    assert not group["fused"] and not group["foreach"]  # torch's default Adam on CPU
    assert loop.run_epochs(2) == 500 and len(loop.epoch_losses) == 2


def test_vl_train_uses_fused_adam_and_falls_back_without_it(digits, tmp_path, monkeypatch):
    x = digits.x_train_flat[:300]
    vl.train(_vae64(), x, num_epochs=1, quiet=True, checkpoint_path=tmp_path / "a.pt")
    saved = vl.load_checkpoint(tmp_path / "a.pt").optimizer_state
    assert saved["param_groups"][0]["fused"] is True  # torch >= 2.4 has a fused CPU Adam

    real_adam = torch.optim.Adam

    def adam_without_fused(params, *args, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return real_adam(params, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", adam_without_fused)
    fallback = vl.train(_vae64(), x, num_epochs=2, quiet=True, checkpoint_path=tmp_path / "b.pt")
    assert fallback.train["total"][1] < fallback.train["total"][0]
    assert not vl.load_checkpoint(tmp_path / "b.pt").optimizer_state["param_groups"][0]["fused"]


def test_a_run_resumed_from_an_unfused_checkpoint_continues_with_fused_adam(digits, tmp_path, monkeypatch):
    x, path = digits.x_train_flat[:300], tmp_path / "run.pt"
    real_adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda params, *a, fused=None, **k: real_adam(params, *a, **k))
    vl.train(_vae64(), x, num_epochs=1, quiet=True, checkpoint_path=path)
    assert not vl.load_checkpoint(path).optimizer_state["param_groups"][0]["fused"]
    monkeypatch.setattr(torch.optim, "Adam", real_adam)
    history = vl.train(_vae64(), x, num_epochs=2, quiet=True, checkpoint_path=path)
    assert history.num_epochs == 2
    assert vl.load_checkpoint(path).optimizer_state["param_groups"][0]["fused"] is True


def _vae64(seed=0):
    vl.set_seed(seed)
    return vl.VAE(64, 2, 16)


# --- timing and the runner -------------------------------------------------------------------------

def test_contenders_alternate_their_order():
    calls = []
    contenders = {name: (lambda name=name: calls.append(name) or 1) for name in "abc"}
    result = interleave(contenders, rounds=3, warmup=False)
    assert calls == list("abccbaabc")
    assert all(len(rates) == 3 for rates in result.rates.values())


def test_quick_flag_selects_the_short_configuration():
    quick, full = parse_args(["--quick"]), parse_args([])
    assert quick == Config.quick() and full == Config.full()
    assert quick.rounds < full.rounds and quick.quality_epochs < full.quality_epochs
    assert 100 in quick.batch_sizes and 100 in full.batch_sizes
    assert parse_args(["--threads", "1,2"]).threads == (1, 2)


def test_a_run_ends_with_the_two_machine_readable_lines(digits, capsys):
    config = Config.quick(data=(digits.x_train_flat, digits.x_test_flat), n_latent=2, n_hidden=16, batch_sizes=(100, 200),
                          threads=(1,), rounds=1, examples_per_round=400, quality_epochs=1, quality_seeds=(0,),
                          n_train=400, n_test=100)
    results = run(config)
    lines = capsys.readouterr().out.strip().splitlines()
    r = re.fullmatch(r"throughput ratio vs reference \(batch 100\): (\d+\.\d+)", lines[-2])
    f = re.fullmatch(r"fraction of matmul peak \(batch 100\): (\d+\.\d+)", lines[-1])
    assert r and f, lines[-2:]
    threads = torch.get_num_threads()
    head = results["training"][100]
    assert float(r.group(1)) == pytest.approx(head.ratio_vs_reference(threads), abs=1e-3)
    assert float(f.group(1)) == pytest.approx(head.fraction_of_peak("vl.train", threads), abs=1e-3)
    assert float(r.group(1)) > 0 and float(f.group(1)) > 0
    text = "\n".join(lines)
    assert "torch threads:" in text and "cpu:" in text
    assert "batch 200:" in text  # the larger batch is measured too
    assert f"with {threads} thread(s)" in lines[-3]


# --- quality at equal budget -----------------------------------------------------------------------

def test_equal_budget_quality_uses_the_same_data_seed_and_start(digits, monkeypatch):
    calls = []
    real_train, real_reference = vl.train, quality.reference_train

    def spy(kind, fn):
        def wrapped(model, x, **kwargs):
            calls.append((kind, x, kwargs["seed"], kwargs["num_epochs"], kwargs["batch_size"],
                          {k: v.clone() for k, v in model.state_dict().items()}))
            return fn(model, x, **kwargs)
        return wrapped

    monkeypatch.setattr(quality.vl, "train", spy("ours", real_train))
    monkeypatch.setattr(quality, "reference_train", spy("reference", real_reference))
    x_train, x_test = digits.x_train_flat[:300], digits.x_test_flat[:100]
    result = quality.run(x_train, x_test, epochs=2, seeds=(3, 4), n_latent=2, n_hidden=16, verbose=False)
    assert [c[0] for c in calls] == ["ours", "reference", "ours", "reference"]
    for ours, theirs in (calls[:2], calls[2:]):
        assert ours[1] is theirs[1] is x_train
        assert ours[2:5] == theirs[2:5]
        assert all(torch.equal(ours[5][k], theirs[5][k]) for k in ours[5])
    assert [c[2] for c in calls] == [3, 3, 4, 4]
    assert [row.seed for row in result.rows] == [3, 4] and all(row.same_start for row in result.rows)
    # Scored by the same evaluation: the reported numbers are what vl.evaluate gives for each model.
    assert all(0 < row.ours < 100 and 0 < row.reference < 100 for row in result.rows)
    assert result.mean_difference() == pytest.approx(sum(r.ours - r.reference for r in result.rows) / 2)


def test_ablation_times_every_variant(digits, capsys):
    from benchmarks import ablation

    result = ablation.run(digits.x_train_flat[:200], batch_size=100, rounds=1, n_latent=2, n_hidden=16)
    out = capsys.readouterr().out
    for name in (*ablation.LADDER, *ablation.SIDE):
        assert name in out and len(result["training"].rates[name]) == 1
    assert "inference_mode" in out


def test_the_build_benchmark_is_run_only_when_named():
    from benchmarks.__main__ import parse_args

    assert "build" not in parse_args([]).only
    config = parse_args(["--only", "build", "--quick"])
    assert config.only == ("build",) and config.fast_build
    assert not parse_args(["--only", "build"]).fast_build
