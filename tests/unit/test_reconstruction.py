"""Tests for vae_lesson.chapters.reconstruction: the three reductions, effective beta, and the loss-choice models."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vae_lesson as vl
from vae_lesson.chapters import reconstruction
from vae_lesson.chapters.reconstruction import (ReconstructionAE, ReductionVAE, effective_beta, per_pixel_loss,
                                                reconstruction_loss, train_steps)
from vae_lesson.infra.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 12, generator=g)
    logits = 3 * torch.randn(5, 12, generator=g)
    return x, logits


def test_reductions_against_hand_computation(batch):
    x, y = batch
    s = 1 / (1 + torch.exp(-y))
    bce = -(x * torch.log(s) + (1 - x) * torch.log(1 - s))
    mse = (s - x) ** 2
    B, P = x.shape
    for kind, per_pixel in (("bce", bce), ("mse", mse)):
        total = float(per_pixel.double().sum())
        assert float(reconstruction_loss(x, y, kind, "pixel_mean")) == pytest.approx(total / (B * P), rel=1e-5)
        assert float(reconstruction_loss(x, y, kind, "sample_sum")) == pytest.approx(total / B, rel=1e-5)
        assert float(reconstruction_loss(x, y, kind, "batch_sum")) == pytest.approx(total, rel=1e-5)


def test_reductions_against_torch_functional(batch):
    x, y = batch
    B = x.shape[0]
    s = torch.sigmoid(y)
    pairs = [
        (reconstruction_loss(x, y, "bce", "pixel_mean"), F.binary_cross_entropy_with_logits(y, x, reduction="mean")),
        (reconstruction_loss(x, y, "bce", "sample_sum"), F.binary_cross_entropy_with_logits(y, x, reduction="sum") / B),
        (reconstruction_loss(x, y, "bce", "batch_sum"), F.binary_cross_entropy_with_logits(y, x, reduction="sum")),
        (reconstruction_loss(x, y, "mse", "pixel_mean"), F.mse_loss(s, x, reduction="mean")),
        (reconstruction_loss(x, y, "mse", "sample_sum"), F.mse_loss(s, x, reduction="sum") / B),
        (reconstruction_loss(x, y, "mse", "batch_sum"), F.mse_loss(s, x, reduction="sum")),
        (reconstruction_loss(x, y, "bce", "sample_sum"), vl.bernoulli_nll(x, y) / B),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs)


def test_per_pixel_loss_is_the_unreduced_loss(batch):
    x, y = batch
    torch.testing.assert_close(per_pixel_loss(x, y, "bce"), vl.bernoulli_nll(x, y, reduce="no"))
    torch.testing.assert_close(per_pixel_loss(x, y, "mse"), (torch.sigmoid(y) - x) ** 2)
    for kind in ("bce", "mse"):
        assert per_pixel_loss(x, y, kind).shape == x.shape
        torch.testing.assert_close(per_pixel_loss(x, y, kind).sum(), reconstruction_loss(x, y, kind, "batch_sum"))


def test_image_shaped_batches_count_all_pixels():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    flat = reconstruction_loss(x.reshape(3, 20), y.reshape(3, 20), "mse", "sample_sum")
    torch.testing.assert_close(reconstruction_loss(x, y, "mse", "sample_sum"), flat)


@pytest.mark.parametrize("kind", ["bce", "mse"])
def test_ratios_between_reductions(batch, kind):
    x, y = batch
    B, P = x.shape
    pm, ss, bs = (float(reconstruction_loss(x, y, kind, r)) for r in ("pixel_mean", "sample_sum", "batch_sum"))
    assert ss / pm == pytest.approx(P, rel=1e-5)
    assert bs / ss == pytest.approx(B, rel=1e-5)
    # effective beta of the KL term = (sample_sum / reduction)
    assert effective_beta("pixel_mean", P, B) == pytest.approx(ss / pm, rel=1e-5)
    assert effective_beta("batch_sum", P, B) == pytest.approx(ss / bs, rel=1e-5)
    assert effective_beta("sample_sum", P, B) == 1.0


def test_effective_beta_values_and_errors():
    assert effective_beta("pixel_mean", 784, 100) == 784.0
    assert effective_beta("batch_sum", 784, 100) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="reduction"):
        effective_beta("mean", 784, 100)
    with pytest.raises(ValueError, match="n_pixels"):
        effective_beta("pixel_mean", 0, 100)
    with pytest.raises(ValueError, match="batch_size"):
        effective_beta("pixel_mean", 784, 2.5)


def test_reduction_vae_matches_beta_weighted_elbo():
    """pixel_mean loss * P == VAE.loss(C=P); batch_sum loss / B == VAE.loss(C=1/B): the derivation in code."""
    vl.set_seed(0)
    model = ReductionVAE(64, 3, 16, reduction="pixel_mean")
    x = vl.load_digits().x_train_flat[:10]
    B, P = x.shape
    torch.manual_seed(5)
    ours = model.loss(x)
    torch.manual_seed(5)
    ref = vl.VAE.loss(model, x, C=float(P))
    torch.testing.assert_close(ours.total * P, ref.total)
    model.reduction = "batch_sum"
    torch.manual_seed(5)
    ours = model.loss(x)
    torch.manual_seed(5)
    ref = vl.VAE.loss(model, x, C=1.0 / B)
    torch.testing.assert_close(ours.total / B, ref.total)
    # reported terms are in ELBO units whatever the reduction
    torch.testing.assert_close(ours.reconstruction, ref.reconstruction)
    torch.testing.assert_close(ours.kl, ref.kl * B)


def test_saturated_outputs_mse_gradient_vanishes_bce_does_not():
    """A confidently wrong pixel (target 1, output ~0): BCE pushes with gradient ~ -1 per logit, MSE with ~ -2e-4."""
    x = torch.ones(1, 1)
    for logit in (-5.0, -10.0):
        y = torch.full((1, 1), logit, requires_grad=True)
        (g_bce,) = torch.autograd.grad(reconstruction_loss(x, y, "bce", "batch_sum"), y)
        (g_mse,) = torch.autograd.grad(reconstruction_loss(x, y, "mse", "batch_sum"), y)
        s = 1 / (1 + math.exp(-logit))
        assert float(g_bce) == pytest.approx(s - 1, rel=1e-5)           # d/dy [softplus(y) - y]
        assert float(g_mse) == pytest.approx(2 * (s - 1) * s * (1 - s), rel=1e-4)
        assert abs(float(g_mse)) < 0.02 * abs(float(g_bce))
    # grey target 0.3: both losses are minimized at output 0.3, BCE's minimum is not zero
    x = torch.full((1, 1), 0.3)
    y = torch.full((1, 1), math.log(0.3 / 0.7), requires_grad=True)
    for kind in ("bce", "mse"):
        (g,) = torch.autograd.grad(reconstruction_loss(x, y, kind, "batch_sum"), y)
        assert abs(float(g)) < 1e-6
    entropy = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))
    assert float(reconstruction_loss(x, y.detach(), "bce", "batch_sum")) == pytest.approx(entropy, rel=1e-5)


def test_errors():
    x, y = torch.rand(2, 4), torch.randn(2, 4)
    with pytest.raises(ValueError, match="kind"):
        reconstruction_loss(x, y, "l1")
    with pytest.raises(ValueError, match="reduction"):
        reconstruction_loss(x, y, "bce", "mean")
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_loss(x, y[:, :3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reconstruction_loss(x * 255, y)
    with pytest.raises(ValueError, match="batch"):
        reconstruction_loss(x[0], y[0])
    with pytest.raises(TypeError, match="logits"):
        reconstruction_loss(x, y.numpy())
    with pytest.raises(ValueError, match="logits"):
        reconstruction_loss(x, y.masked_fill(y > 0, float("nan")))
    with pytest.raises(ValueError, match="kind"):
        per_pixel_loss(x, y, "l1")
    with pytest.raises(ValueError, match="kind"):
        ReconstructionAE(4, 2, 3, kind="l2")
    with pytest.raises(ValueError, match="reduction"):
        ReductionVAE(4, 2, 3, reduction="sum")
    with pytest.raises(ValueError, match="optimizer"):
        train_steps(ReconstructionAE(4, 2, 3), x, optimizer="rmsprop", lr=0.1, num_steps=1, batch_size=2)


def test_autoencoder_loss_and_checkpoint(tmp_path):
    vl.set_seed(0)
    model = ReconstructionAE(64, 4, 16, kind="mse", reduction="pixel_mean")
    x = vl.load_digits().x_train_flat[:20]
    terms = model.loss(x)
    logits = model.decode(model.encode(x), sigmoid=False)
    torch.testing.assert_close(terms.total, reconstruction_loss(x, logits, "mse", "pixel_mean"))
    torch.testing.assert_close(terms.mse_per_pixel, F.mse_loss(torch.sigmoid(logits), x))
    torch.testing.assert_close(terms.bce_per_pixel, F.binary_cross_entropy_with_logits(logits, x))
    save_checkpoint(tmp_path / "ae.pt", model)
    loaded = load_checkpoint(tmp_path / "ae.pt").model
    assert isinstance(loaded, ReconstructionAE) and loaded.reduction == "pixel_mean" and loaded.kind == "mse"
    torch.testing.assert_close(loaded(x), model(x))
    vae = ReductionVAE(64, 3, 16, reduction="batch_sum")
    save_checkpoint(tmp_path / "vae.pt", vae)
    loaded = load_checkpoint(tmp_path / "vae.pt").model
    assert isinstance(loaded, ReductionVAE) and loaded.reduction == "batch_sum"
    torch.testing.assert_close(loaded(x), vae(x))


def test_models_train_on_the_module_s_loss_function(monkeypatch):
    """The models call reconstruction_loss by name, so the chapter's definition is the one they use."""
    calls = []

    def spy(x, logits, kind="bce", reduction="sample_sum"):
        calls.append((kind, reduction))
        return per_pixel_loss(x, logits, kind).sum() * 0 + 7.0

    monkeypatch.setattr(reconstruction, "reconstruction_loss", spy)
    x = vl.load_digits().x_train_flat[:8]
    assert float(ReconstructionAE(64, 2, 8, kind="mse", reduction="batch_sum").loss(x).total.detach()) == 7.0
    assert calls == [("mse", "batch_sum"), ("mse", "pixel_mean"), ("bce", "pixel_mean")]
    calls.clear()
    vae = ReductionVAE(64, 2, 8, reduction="pixel_mean")
    terms = vae.loss(x)
    assert calls == [("bce", "pixel_mean"), ("bce", "sample_sum")] and float(terms.reconstruction) == 7.0


def test_diverged_weights_stop_training_with_a_clear_error():
    """NaN weights: the public loss functions refuse the NaN, vl.train names the problem, train_steps records NaN."""
    x = vl.load_digits().x_train_flat[:40]
    for model in (ReconstructionAE(64, 2, 8), ReductionVAE(64, 2, 8)):
        with torch.no_grad():
            model.le1.weight.fill_(float("nan"))
        with pytest.raises(ValueError, match="NaN"):
            model.loss(x)
        with pytest.raises(vl.NonFiniteLossError):
            vl.train(model, x, num_epochs=1, batch_size=20, quiet=True)
    vl.set_seed(0)
    model = ReconstructionAE(64, 2, 8, torch.relu, kind="bce", reduction="batch_sum")
    trained, losses = train_steps(model, x, optimizer="sgd", lr=5.0, num_steps=12, batch_size=20)
    assert len(losses) == 12 and math.isfinite(losses[0]) and math.isnan(losses[-1])
    first_nan = int(np.argmax(np.isnan(losses)))
    assert all(math.isnan(v) for v in losses[first_nan:])


def test_sgd_learning_rate_absorbs_the_scale_adam_nearly_ignores_it():
    """SGD on pixel_mean with lr * P follows sample_sum with lr exactly; Adam gives nearly the same run either way."""
    x = vl.load_digits().x_train_flat[:200]
    P = x.shape[1]
    vl.set_seed(0)
    ss = ReconstructionAE(64, 4, 16, kind="bce", reduction="sample_sum")
    pm = ReconstructionAE(64, 4, 16, kind="bce", reduction="pixel_mean")
    pm.load_state_dict(ss.state_dict())
    a, _ = train_steps(ss, x, optimizer="sgd", lr=1e-3, num_steps=30, batch_size=20)
    b, _ = train_steps(pm, x, optimizer="sgd", lr=1e-3 * P, num_steps=30, batch_size=20)
    c, _ = train_steps(pm, x, optimizer="sgd", lr=1e-3, num_steps=30, batch_size=20)
    start = torch.cat([p.flatten() for p in ss.parameters()])
    wa, wb, wc = (torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, b, c))
    torch.testing.assert_close(wb, wa, rtol=1e-4, atol=1e-5)
    assert (wc - start).norm() < 0.05 * (wa - start).norm()      # same lr, 64x smaller gradients: barely moves
    a, _ = train_steps(ss, x, optimizer="adam", lr=1e-3, num_steps=30, batch_size=20)
    c, _ = train_steps(pm, x, optimizer="adam", lr=1e-3, num_steps=30, batch_size=20)
    wa, wc = (torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, c))
    assert (wc - wa).norm() < 0.01 * (wa - start).norm()
