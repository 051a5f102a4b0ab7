"""The helpers agree with Chainer's own functions, values and gradients, to 1e-5 relative.

Chainer 7 needs NumPy 1.x, so it lives in its own environment (``make test`` creates it and sets
VAE_LESSON_CHAINER_PYTHON); this test runs Chainer there on the same inputs and compares.
"""

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_lesson import bernoulli_nll, gaussian, gaussian_kl_divergence

CHAINER_PYTHON = os.environ.get("VAE_LESSON_CHAINER_PYTHON") or str(Path(__file__).parents[2] / ".venv-chainer/bin/python")

CHAINER_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import chainer
    import chainer.functions as F

    data = dict(np.load(sys.argv[1]))
    out = {}
    for reduce in ("sum", "mean", "no"):
        mean, ln_var = chainer.Variable(data["mean"]), chainer.Variable(data["ln_var"])
        loss = F.gaussian_kl_divergence(mean, ln_var, reduce=reduce)
        # Backpropagate a weighted sum so every element's gradient is exercised.
        F.sum(loss * data["w"]) .backward() if reduce == "no" else loss.backward()
        out["kl_" + reduce], out["kl_gmean_" + reduce], out["kl_glnvar_" + reduce] = loss.array, mean.grad, ln_var.grad

        x, y = chainer.Variable(data["x"]), chainer.Variable(data["y"])
        loss = F.bernoulli_nll(x, y, reduce=reduce)
        F.sum(loss * data["w"]).backward() if reduce == "no" else loss.backward()
        out["nll_" + reduce], out["nll_gx_" + reduce], out["nll_gy_" + reduce] = loss.array, x.grad, y.grad

    mean, ln_var = chainer.Variable(data["mean"]), chainer.Variable(data["ln_var"])
    z, eps = F.gaussian(mean, ln_var, return_eps=True)
    F.sum(z * data["w"]).backward()
    out["z"], out["eps"], out["z_gmean"], out["z_glnvar"] = z.array, eps, mean.grad, ln_var.grad
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def chainer_results(tmp_path_factory):
    if not Path(CHAINER_PYTHON).exists():
        pytest.skip(f"Chainer environment not found at {CHAINER_PYTHON}; `make test` creates it")
    rng = np.random.default_rng(0)
    shape = (16, 20)
    data = {
        "mean": rng.normal(0, 1.5, shape).astype(np.float32),
        "ln_var": rng.normal(0, 1.0, shape).astype(np.float32),
        "x": rng.uniform(0, 1, shape).astype(np.float32),
        "y": rng.normal(0, 4.0, shape).astype(np.float32),
        "w": rng.normal(0, 1.0, shape).astype(np.float32),
    }
    data["y"][0, :4] = [100.0, -100.0, 60.0, -60.0]  # the stable-softplus regime
    folder = tmp_path_factory.mktemp("chainer")
    (folder / "run.py").write_text(CHAINER_SCRIPT)
    np.savez(folder / "inputs.npz", **data)
    subprocess.run([CHAINER_PYTHON, str(folder / "run.py"), str(folder / "inputs.npz"), str(folder / "out.npz")],
                   check=True, timeout=300)
    return data, dict(np.load(folder / "out.npz"))


def _leaf(array):
    return torch.tensor(array, requires_grad=True)


def _close(ours, theirs):
    np.testing.assert_allclose(ours.detach().numpy(), theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean", "no"])
def test_gaussian_kl_divergence_matches_chainer(chainer_results, reduce):
    data, ref = chainer_results
    mean, ln_var, w = _leaf(data["mean"]), _leaf(data["ln_var"]), torch.tensor(data["w"])
    loss = gaussian_kl_divergence(mean, ln_var, reduce=reduce)
    (loss * w).sum().backward() if reduce == "no" else loss.backward()
    _close(loss, ref["kl_" + reduce])
    _close(mean.grad, ref["kl_gmean_" + reduce])
    _close(ln_var.grad, ref["kl_glnvar_" + reduce])


@pytest.mark.parametrize("reduce", ["sum", "mean", "no"])
def test_bernoulli_nll_matches_chainer(chainer_results, reduce):
    data, ref = chainer_results
    x, y, w = _leaf(data["x"]), _leaf(data["y"]), torch.tensor(data["w"])
    loss = bernoulli_nll(x, y, reduce=reduce)
    (loss * w).sum().backward() if reduce == "no" else loss.backward()
    _close(loss, ref["nll_" + reduce])
    _close(x.grad, ref["nll_gx_" + reduce])
    _close(y.grad, ref["nll_gy_" + reduce])


def test_gaussian_matches_chainer_given_the_same_noise(chainer_results):
    data, ref = chainer_results
    mean, ln_var = _leaf(data["mean"]), _leaf(data["ln_var"])
    z = gaussian(mean, ln_var, eps=torch.tensor(ref["eps"]))
    (z * torch.tensor(data["w"])).sum().backward()
    _close(z, ref["z"])
    _close(mean.grad, ref["z_gmean"])
    _close(ln_var.grad, ref["z_glnvar"])
