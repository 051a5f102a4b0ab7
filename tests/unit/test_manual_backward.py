"""The hand-derived VAE gradients against autograd, and vl.train's use of them."""

import pytest
import torch
import torch.nn.functional as F

import vae_lesson as vl
from vae_lesson.chapters import manual_backward
from vae_lesson.chapters.manual_backward import (ManualStep, _AdamStep, manual_gradients, manual_train_epoch,
                                                  tanh_form, unsupported_reason)
from vae_lesson.core.training import _adam, _epoch_function


@pytest.fixture(scope="module")
def digits():
    return vl.load_digits(verbose=False)


def _model(n_in=64, n_latent=3, n_hidden=32, dtype=torch.float32, seed=0, **kwargs):
    vl.set_seed(seed)
    return vl.VAE(n_in, n_latent, n_hidden, **kwargs).to(dtype)


def _autograd(model, x, C, seed):
    for p in model.parameters():
        p.grad = None
    torch.manual_seed(seed)
    loss = model.loss(x, C=C)
    loss.total.backward()
    return [t.detach() for t in loss], {name: p.grad.clone() for name, p in model.named_parameters()}


def _manual(model, x, C, seed):
    torch.manual_seed(seed)
    loss = manual_gradients(model, x, C=C)
    return list(loss), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.fixture(params=["tanh", "sigmoid"])
def form(request, monkeypatch):
    """Each test that takes it runs with both ways of evaluating tanh, whatever this processor picks."""
    monkeypatch.setattr(manual_backward, "tanh_form", lambda: request.param)
    return request.param


@pytest.mark.parametrize("n_latent, n_hidden, batch, C", [(3, 32, 17, 1.0), (2, 16, 1, 0.25), (8, 48, 40, 4.0),
                                                      (3, 32, 9, 0.0)])
def test_float64_gradients_equal_autograd_to_rounding(digits, n_latent, n_hidden, batch, C, form):
    # In float64 the hand derivation must agree with autograd to ~1e-12: a missing or wrong term cannot hide.
    assert ManualStep(_model()).tanh_form == form
    model = _model(n_latent=n_latent, n_hidden=n_hidden, dtype=torch.float64)
    x = digits.x_train_flat[:batch].double()
    want_loss, want = _autograd(model, x, C, seed=7)
    got_loss, got = _manual(model, x, C, seed=7)
    for a, b in zip(got_loss, want_loss):
        assert float(a) == pytest.approx(float(b), rel=1e-12, abs=1e-12)
    for name in want:
        scale = want[name].abs().max().clamp_min(1e-30)
        assert float((got[name] - want[name]).abs().max() / scale) < 1e-10, name


def test_float32_gradients_on_the_books_mnist_vae_match_autograd(form):
    # The 784-500-500-20 model the book trains, on values like MNIST's (many exact zeros and ones).
    model = _model(784, 20, 500)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(100, 784, generator=g) * 1.6 - 0.3).clamp(0, 1)
    want_loss, want = _autograd(model, x, 1.0, seed=3)
    got_loss, got = _manual(model, x, 1.0, seed=3)
    for a, b in zip(got_loss, want_loss):
        assert float(a) == pytest.approx(float(b), rel=1e-5)
    for name in want:
        assert float((got[name] - want[name]).abs().max() / want[name].abs().max()) < 1e-5, name


def test_saturated_logits_stay_finite_and_correct(digits, form):
    # Decoder biases of +-60 put the logits far in the tails, where log(sigmoid) and log(1 - sigmoid) underflow.
    model = _model(dtype=torch.float64)
    with torch.no_grad():
        model.ld3.bias.copy_(torch.where(torch.arange(64) % 2 == 0, 60.0, -60.0))
    x = digits.x_train_flat[:10].double()
    want_loss, want = _autograd(model, x, 1.0, seed=1)
    got_loss, got = _manual(model, x, 1.0, seed=1)
    assert all(torch.isfinite(t) for t in got_loss)
    assert float(got_loss[1]) == pytest.approx(float(want_loss[1]), rel=1e-12)
    assert torch.allclose(got["ld3.bias"], want["ld3.bias"], rtol=1e-10, atol=1e-14)


def test_tanh_as_a_sigmoid_agrees_with_torch_tanh():
    a = torch.cat([torch.linspace(-30, 30, 20001), torch.tensor([0.0, 1e-8, -1e-8, 88.0, -88.0])])
    via_sigmoid = torch.sigmoid(2 * a).lerp_(torch.ones(()), -1.0)
    assert float((via_sigmoid - torch.tanh(a)).abs().max()) < 2.5e-7
    assert via_sigmoid.abs().max() <= 1.0


def test_tanh_form_follows_the_processor_not_a_timing(monkeypatch):
    # torch.tanh (MKL's) only where torch runs AVX-512 code with MKL; the same answer on every call.
    assert tanh_form() in ("tanh", "sigmoid") and len({tanh_form() for _ in range(5)}) == 1
    for capability, mkl, want in [("AVX512", True, "tanh"), ("AVX512", False, "sigmoid"), ("AVX2", True, "sigmoid"),
                                  ("DEFAULT", True, "sigmoid"), ("NO AVX", True, "sigmoid")]:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        monkeypatch.setattr(torch.backends.mkl, "is_available", lambda m=mkl: m)
        assert tanh_form() == want, (capability, mkl)
    monkeypatch.delattr(torch.backends.cpu, "get_cpu_capability")  # an older torch
    assert tanh_form() == "sigmoid"


def test_the_bernoulli_sum_equals_torchs_stable_kernel():
    # softplus(y) = max(y, 0) - log(max(p, 1 - p)), p = sigmoid(y): the form the step uses.
    y = torch.cat([torch.linspace(-200, 200, 4001), torch.tensor([0.0, 1e-6, -1e-6])]).double()
    x = torch.rand(len(y), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = torch.sigmoid(y)
    ours = (y.clamp_min(0) - torch.maximum(p, 1 - p).log() - x * y).sum()
    assert float(ours) == pytest.approx(float(F.binary_cross_entropy_with_logits(y, x, reduction="sum")), rel=1e-12)


def test_the_gradient_buffers_are_overwritten_not_accumulated(digits):
    model = _model()
    x = digits.x_train_flat[:20]
    step = ManualStep(model)
    torch.manual_seed(0)
    step(x, torch.arange(20))
    first = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(0)
    step(x, torch.arange(20))
    assert all(torch.equal(a, p.grad) for a, p in zip(first, model.parameters()))
    step.release()
    assert all(p.grad is None for p in model.parameters())


def test_batches_of_different_sizes_use_their_own_buffers(digits):
    model = _model(dtype=torch.float64)
    x = digits.x_train_flat[:50].double()
    step = ManualStep(model)
    for rows in (torch.arange(0, 32), torch.arange(32, 50), torch.arange(0, 32)):
        want_loss, want = _autograd(model, x[rows], 1.0, seed=5)
        torch.manual_seed(5)
        got_loss = step(x, rows)
        assert float(got_loss.total) == pytest.approx(float(want_loss[0]), rel=1e-12)
        assert all(torch.allclose(p.grad, want[n], rtol=1e-9, atol=1e-12) for n, p in model.named_parameters())


@pytest.mark.parametrize("make, kwargs, reason", [
    (lambda: _model(act_func=torch.relu), {}, "tanh"),
    (lambda: _model(), {"k": 3}, "k=1"),
    (lambda: _model(), {"beta": 1}, "unknown loss arguments"),
    (lambda: vl.AutoEncoder(64, 3, 32), {}, "plain vae_lesson.VAE"),
    (lambda: type("MyVAE", (vl.VAE,), {})(64, 3, 32), {}, "plain vae_lesson.VAE"),
    (lambda: _model().half(), {}, "float32 or all float64"),
])
def test_unsupported_models_are_named_and_refused(digits, make, kwargs, reason):
    model = make()
    assert reason in unsupported_reason(model, kwargs)
    assert _epoch_function(model, kwargs, "autograd") is vl.train_epoch
    with pytest.raises(ValueError, match="backward='manual' cannot train this model"):
        _epoch_function(model, kwargs, "manual")


def test_frozen_weights_and_hooks_turn_the_manual_path_off():
    frozen = _model()
    frozen.le1.weight.requires_grad_(False)
    assert "frozen" in unsupported_reason(frozen, {})
    hooked = _model()
    hooked.ld2.register_forward_hook(lambda *args: None)
    assert "hooks" in unsupported_reason(hooked, {})


def test_backward_setting_is_checked(digits):
    with pytest.raises(ValueError, match="backward must be 'autograd' or 'manual', got 'fast'"):
        vl.train(_model(), digits.x_train_flat, num_epochs=1, quiet=True, backward="fast")
    with pytest.raises(ValueError, match="manual_gradients cannot differentiate this model: only tanh"):
        manual_gradients(_model(act_func=torch.relu), digits.x_train_flat[:4])
    with pytest.raises(ValueError, match="x must lie in \\[0, 1\\]"):
        manual_gradients(_model(), digits.x_train_flat[:4] * 255)


def test_train_manual_and_autograd_give_the_same_run(digits, form):
    runs = {}
    for backward in ("manual", "autograd"):
        model = _model(dtype=torch.float64)
        history = vl.train(model, digits.x_train_flat.double(), digits.x_test_flat.double(), num_epochs=3,
                           seed=2, quiet=True, backward=backward, loss_kwargs={"C": 0.5})
        runs[backward] = (history, model)
    (h_m, m_m), (h_a, m_a) = runs["manual"], runs["autograd"]
    for split in ("train", "test"):
        for key in ("total", "reconstruction", "kl"):
            assert getattr(h_m, split)[key] == pytest.approx(getattr(h_a, split)[key], rel=1e-9)
    w_m, w_a = m_m.state_dict(), m_a.state_dict()
    assert all(torch.allclose(w_m[k], w_a[k], rtol=1e-7, atol=1e-9) for k in w_m)
    assert all(p.grad is None for p in m_m.parameters())  # the manual path releases its gradient buffers


def test_manual_path_is_an_opt_in(digits, monkeypatch):
    calls = []
    original = ManualStep.__call__

    def counting(self, x, index):
        calls.append(len(index))
        return original(self, x, index)
    monkeypatch.setattr(ManualStep, "__call__", counting)
    model = _model()
    assert _epoch_function(model, {}, "manual") is manual_train_epoch
    vl.train(model, digits.x_train_flat[:250], num_epochs=1, batch_size=100, quiet=True)
    assert calls == []  # the default is the autograd loop of chapter 01
    vl.train(model, digits.x_train_flat[:250], num_epochs=1, batch_size=100, quiet=True, backward="manual")
    assert calls == [100, 100, 50]
    assert all(p.grad is None for p in model.parameters())  # the buffers are released after training
    calls.clear()
    vl.train(model, digits.x_train_flat[:250], num_epochs=1, quiet=True, backward="autograd")
    assert calls == []


def test_adam_step_equals_torchs_adam_bit_for_bit(digits):
    # Same gradients into two copies; one optimizer steps with optimizer.step(), the other with _AdamStep.
    x = digits.x_train_flat[:64]
    models = [_model(), _model()]
    optimizers = [_adam(m, 3e-3) for m in models]
    steps = [ManualStep(m) for m in models]
    ours = _AdamStep(optimizers[1])
    for i in range(6):
        for step in steps:
            torch.manual_seed(i)
            step(x, torch.arange(i, 64, 2))
        optimizers[0].step()
        ours()
    assert ours._plan  # the direct kernel did run
    for a, b in zip(*(m.parameters() for m in models)):
        assert torch.equal(a, b)
    s0, s1 = (o.state_dict()["state"] for o in optimizers)
    assert all(torch.equal(s0[k][name], s1[k][name]) for k in s0 for name in s0[k])


def test_manual_training_resumes_from_a_checkpoint_to_the_same_weights(digits, tmp_path):
    path = tmp_path / "vae.pt"
    whole = _model(seed=4)
    vl.train(whole, digits.x_train_flat, num_epochs=3, seed=4, quiet=True, backward="manual")
    split = _model(seed=4)
    vl.train(split, digits.x_train_flat, num_epochs=1, seed=4, quiet=True, checkpoint_path=path, backward="manual")
    resumed = _model(seed=99)  # other weights: they must all come from the checkpoint
    vl.train(resumed, digits.x_train_flat, num_epochs=3, seed=4, quiet=True, checkpoint_path=path, backward="manual")
    assert all(torch.equal(a, b) for a, b in zip(whole.parameters(), resumed.parameters()))
