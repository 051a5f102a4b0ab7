"""The GPU estimate counts FLOPs, kernels and syncs as stated, does its arithmetic, and its table
matches the notebooks' full-profile settings."""

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

# benchmarks/ sits at the repository root, next to tests/, and is not installed with the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import gpu_estimate as ge  # noqa: E402

# --- FLOPs ---------------------------------------------------------------------------------------


def _mlp_step_flops(layers, batch, input_requires_grad):
    torch.manual_seed(0)
    mods = []
    for n_in, n_out in layers:
        mods += [nn.Linear(n_in, n_out), nn.Tanh()]
    model = nn.Sequential(*mods[:-1])
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.rand(batch, layers[0][0], requires_grad=input_requires_grad)

    def step():
        loss = model(x).square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return ge.count_flops(step)


@pytest.mark.parametrize("batch", [1, 50])
def test_an_mlp_step_costs_six_flops_per_weight_and_example(batch):
    # forward 2*b*in*out per linear layer, backward twice that (input and weight gradients)
    layers = [(784, 500), (500, 500), (500, 20)]
    closed_form = 6 * batch * sum(i * o for i, o in layers)
    measured = _mlp_step_flops(layers, batch, input_requires_grad=True)
    assert measured == pytest.approx(closed_form, rel=0.03)
    # the data needs no gradient: the first layer skips its input gradient, 2*b*in*out
    measured = _mlp_step_flops(layers, batch, input_requires_grad=False)
    assert measured == pytest.approx(closed_form - 2 * batch * 784 * 500, rel=0.03)


def test_a_vae_training_step_is_measured_with_its_flops_kernels_and_syncs():
    run = ge.Run("xx", "tiny VAE", "VAE(784, 20, 50)", (784,), n_train=100, n_eval=100,
                 batch_size=10, epochs=1, loss_kwargs={"C": 1.0, "k": 1})
    cost = ge.measure(run, {})
    # encoder 784-50-50-(20, 20), decoder 20-50-50-784; only le1 lacks an input gradient
    products = [(784, 50), (50, 50), (50, 20), (50, 20), (20, 50), (50, 50), (50, 784)]
    closed_form = 6 * 10 * sum(i * o for i, o in products) - 2 * 10 * 784 * 50
    assert cost.flops_per_example * 10 == pytest.approx(closed_form, rel=0.03)
    assert cost.eval_flops_per_example == pytest.approx(
        2 * sum(i * o for i, o in products), rel=0.03)
    assert cost.read_syncs == 4  # total, reconstruction, kl, and the finiteness check
    assert cost.step.syncs >= cost.read_syncs  # the argument checks add theirs
    assert 0 < cost.step.kernels < cost.step.leaf_ops
    assert cost.floor_s > 0 and cost.checkpoint_s > 0


def test_refining_the_floors_keeps_each_setups_best_time():
    run = ge.Run("xx", "tiny VAE", "VAE(784, 20, 50)", (784,), n_train=100, n_eval=100,
                 batch_size=10, epochs=1, loss_kwargs={"C": 1.0, "k": 1})
    cache, floors = {}, {}
    measured = ge.measure(run, cache, floors)
    (key,) = floors
    # a first timing caught in a slow spell is replaced by a later pass's
    cache[key] = dataclasses.replace(measured, floor_s=10.0, eval_floor_s=10.0)
    ge.refine_floors(cache, floors, passes=1)
    assert 0 < cache[key].floor_s < 1 and 0 < cache[key].eval_floor_s < 1
    assert dataclasses.replace(cache[key], floor_s=0, eval_floor_s=0) == dataclasses.replace(
        measured, floor_s=0, eval_floor_s=0)  # nothing else changes
    # a best time is never raised by a slower pass
    best = dataclasses.replace(measured, floor_s=1e-9, eval_floor_s=1e-9)
    cache[key] = best
    ge.refine_floors(cache, floors, passes=1)
    assert cache[key] == best


# --- kernels and syncs ---------------------------------------------------------------------------


def test_kernels_and_syncs_of_a_profiled_function():
    a, b = torch.rand(8, 8), torch.rand(8, 8)
    ops = ge.profile_ops(lambda: ((a @ b.t()) + 1).sum().item())
    # mm, add, sum: three kernels (the transpose is a view); one .item()
    assert (ops.kernels, ops.syncs) == (3, 1)


def test_the_optimizers_own_reads_are_not_syncs():
    model = nn.Linear(4, 4)
    optimizer = torch.optim.Adam(model.parameters(), foreach=True)
    model(torch.rand(2, 4)).sum().backward()
    optimizer.step()  # creates the state
    ops = ge.profile_ops(optimizer.step)
    assert ops.syncs == 0 and ops.kernels > 0


# --- the model of a T4 ---------------------------------------------------------------------------


def _cost(flops, kernels, syncs, floor=0.0):
    step = ge.OpCount(kernels=kernels, syncs=syncs, leaf_ops=0)
    batch = ge.OpCount(kernels=10, syncs=2, leaf_ops=0)
    return ge.StepCost(flops_per_example=flops, step=step, read_syncs=syncs,
                       eval_flops_per_example=1e6, eval_batch=batch, floor_s=floor,
                       eval_floor_s=0.0, checkpoint_s=0.05)


def test_the_step_time_model_on_a_made_up_run():
    a = ge.Assumptions("test", efficiency=0.5, launch_s=10e-6, sync_s=20e-6, host_factor=2.0,
                       download_mb_s=1.0, unpack_mb_s=1.0)
    rate = 8.1e12 * 0.5  # FLOP/s
    run = ge.Run("xx", "made up", "VAE(784, 20, 500)", (784,), n_train=1000, n_eval=2500,
                 batch_size=100, epochs=3)
    # a step: 2.025e9 FLOPs = 0.5 ms of compute, 200 kernels = 2 ms of launches, 5 syncs
    cost = _cost(flops=2.025e7, kernels=200, syncs=5)
    estimate = ge.estimate_run(run, cost, columns=(a,))
    step = 200 * 10e-6 + 5 * 20e-6
    # an evaluation batch of 1,000 rows: 1e9 FLOPs (0.25 ms) > 10 kernels (0.1 ms); 2 syncs
    batch = 1e9 / rate + 2 * 20e-6
    # 3 epochs of 10 steps and 3 evaluation batches (2,500 examples)
    assert estimate.gpu_s["test"] == pytest.approx(3 * (10 * step + 3 * batch))
    assert estimate.checkpoint_s == pytest.approx(3 * 0.05)
    assert estimate.total(a) == pytest.approx(estimate.gpu_s["test"] + 2.0 * 3 * 0.05)
    # compute-bound: 1e10 FLOPs per step
    cost = _cost(flops=1e8, kernels=200, syncs=0)
    assert ge.op_seconds(1e8 * 100, cost.step, a) == pytest.approx(1e10 / rate)
    # the measured floor, times the host factor, where it exceeds the launches
    assert ge.op_seconds(0, cost.step, a, floor_s=3e-3) == pytest.approx(6e-3)
    # no test set, no checkpoints: training alone
    run = ge.Run("xx", "bare", "VAE(784, 20, 500)", (784,), n_train=1000, n_eval=0,
                 batch_size=100, epochs=3, checkpoint=False)
    estimate = ge.estimate_run(run, _cost(flops=2.025e7, kernels=200, syncs=5), columns=(a,))
    assert estimate.gpu_s["test"] == pytest.approx(30 * step)
    assert estimate.checkpoint_s == 0


def test_run_sizes():
    run = ge.Run("xx", "r", "VAE(784, 2, 500)", (784,), n_train=60_000, n_eval=10_000,
                 batch_size=32, epochs=30, count=2)
    assert run.steps_per_epoch == math.ceil(60_000 / 32) == 1875
    assert run.steps == 2 * 30 * 1875
    assert run.eval_batches == 10


# --- the table and the notebooks -----------------------------------------------------------------


def test_chapter_05_trains_both_models_for_100_epochs_at_batch_50_in_full():
    runs = [r for r in ge.RUNS if r.chapter == "05"]
    assert {r.name for r in runs} == {"vae_mnist_20d", "vae_mnist_2d"}
    assert all(r.epochs == 100 and r.batch_size == 50 for r in runs)
    assert all(r.n_train == 60_000 and r.n_eval == 10_000 for r in runs)
    settings = ge.full_settings(ge.notebook_path("05"))
    assert (settings["EPOCHS_20D"], settings["EPOCHS_2D"], settings["BATCH_SIZE"]) == (100, 100, 50)
    assert ge.table_mismatches(runs) == []


def test_the_table_agrees_with_every_notebooks_full_settings():
    assert ge.table_mismatches() == []


def test_the_host_work_agrees_with_the_notebooks_settings_it_names():
    assert ge.host_mismatches() == []
    assert any(item.settings for item in ge.HOST_WORK)
    # a made-up entry that assumes the old setting is named
    stale = ge.HostWork("08", "judges", "judge", (60_000, 10_000, 2),
                        settings=((60_000, "N_JUDGE"),))
    (problem,) = ge.host_mismatches([stale])
    assert "N_JUDGE = 60000" in problem and "sets 10000" in problem


def test_chapters_06_to_08_use_their_shortened_full_settings():
    epochs = {(r.chapter, r.name): r.epochs for r in ge.RUNS}
    assert epochs["06", "kl_sweep_C16"] == epochs["06", "warm-up (train_with_warmup)"] == 8
    assert epochs["07", "cvae_mnist_8d"] == epochs["07", "vae_mnist_8d"] == 50
    assert epochs["07", "cvae_mnist_2d"] == 100  # EPOCHS_2D: 05's checkpoint
    assert {r.batch_size for r in ge.RUNS if r.chapter == "08"} == {128}
    host = {(item.chapter, item.kind): item for item in ge.HOST_WORK}
    assert host["08", "judge"].args == (10_000, 10_000, 2)
    assert host["06", "prior_bounds"].args == (100, 1000)  # K, the first 1,000 test images
    iwae_08 = [item.args[-1] for item in ge.HOST_WORK
               if item.chapter == "08" and item.kind == "iwae"]
    assert sorted(iwae_08) == [1000, 1000, 2000]
    surgery = [item.args for item in ge.HOST_WORK
               if item.chapter == "06" and item.kind == "aggregate"]
    assert ((10_000, 10_000, 20),) in surgery  # the training codes: 10,000, one draw
    assert (20_000, 10_000, 20) in surgery[0]  # the test set: 2 draws


def test_chapter_10s_iwae_images_are_the_augmenters():
    # gpu_estimate keeps its own literal (importing augment would load matplotlib at every start of
    # python -m benchmarks); this ties the two
    from vae_lesson.chapters.augment import N_IWAE_TEST

    assert ge.N_IWAE_10 == N_IWAE_TEST
    (iwae_10,) = [item for item in ge.HOST_WORK if item.chapter == "10" and item.kind == "iwae"]
    assert iwae_10.args[-1] == 24 * N_IWAE_TEST  # 12 VAEs and 12 CVAEs


def test_no_private_name_of_vae_lesson_is_imported():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ge))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vae_lesson"):
            assert not any(a.name.startswith("_") for a in node.names), node.module
            assert not any(part.startswith("_") for part in node.module.split("."))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id == "vl"):
            assert not node.attr.startswith("_"), node.attr


def test_settings_are_read_as_each_profile_sees_them(tmp_path):
    source = ("%matplotlib inline\n"
              "EPOCHS = scaled(2 if data.is_full else 15, fast=1, full=100)\n"
              "BATCH, LR = 32, 2e-3\n"
              "SWEEP = scaled(EPOCHS, fast=1, full=20)\n"
              "if data is not None:\n"
              "    N = scaled(10_000, fast=200, full=50_000)\n"
              "n_train = len(data.x_train)\n"
              "N_SMALL = min(N, 10_000)\n"
              "n_used = min(len(data.x_train), 10_000)\n")
    notebook = {"cells": [{"cell_type": "code", "source": source.splitlines(True)}]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    assert ge.full_settings(path) == {"EPOCHS": 100, "BATCH": 32, "LR": 2e-3, "SWEEP": 20,
                                      "N": 50_000, "N_SMALL": 10_000}
    assert ge.full_settings(path, "fast") == {"EPOCHS": 1, "BATCH": 32, "LR": 2e-3, "SWEEP": 1,
                                              "N": 200, "N_SMALL": 200}
    # the default profile on the offline data: is_full is False
    assert ge.full_settings(path, "default")["SWEEP"] == 15


def test_every_model_of_the_tables_builds_and_narrows():
    for model in sorted({r.model for r in ge.RUNS}):
        wide, narrow = ge.build(model), ge.build(model, narrow=True)
        assert sum(p.numel() for p in narrow.parameters()) < sum(
            p.numel() for p in wide.parameters())
