"""The VAE and the plain autoencoder: shapes, the loss against a hand-written version, Xavier init."""

import math

import pytest
import torch
from torch import nn

from vae_lesson import VAE, AutoEncoder, bernoulli_nll, gaussian_kl_divergence, xavier_bound, xavier_init_


@pytest.fixture
def vae():
    torch.manual_seed(0)
    return VAE(n_in=12, n_latent=3, n_hidden=8)


@pytest.fixture
def batch():
    return torch.rand(5, 12, generator=torch.Generator().manual_seed(1))


def test_vae_layers_are_the_articles(vae):
    shapes = {name: tuple(p.shape) for name, p in vae.named_parameters() if name.endswith("weight")}
    assert shapes == {
        "le1.weight": (8, 12), "le2.weight": (8, 8), "le3_mu.weight": (3, 8), "le3_ln_var.weight": (3, 8),
        "ld1.weight": (8, 3), "ld2.weight": (8, 8), "ld3.weight": (12, 8),
    }


def test_encode_decode_shapes_and_ranges(vae, batch):
    mean, ln_var = vae.encode(batch)
    assert mean.shape == ln_var.shape == (5, 3)
    probs = vae.decode(mean)
    logits = vae.decode(mean, sigmoid=False)
    assert probs.shape == (5, 12) and (probs > 0).all() and (probs < 1).all()
    torch.testing.assert_close(torch.sigmoid(logits), probs)


def test_calling_the_model_reconstructs_from_the_mean(vae, batch):
    mean, _ = vae.encode(batch)
    torch.testing.assert_close(vae(batch), vae.decode(mean))
    assert torch.equal(vae(batch), vae(batch))  # no sampling


def test_loss_matches_the_articles_formula(vae, batch):
    C, k = 0.7, 3
    torch.manual_seed(42)
    loss = vae.loss(batch, C=C, k=k)
    # The article: rec = sum_l bernoulli_nll(x, decode(z_l)) / (k * batch); latent = C * KL / batch.
    torch.manual_seed(42)
    mean, ln_var = vae.encode(batch)
    eps = [torch.randn_like(mean) for _ in range(k)]  # one draw per sample, as the article's loop draws them
    rec = sum(bernoulli_nll(batch, vae.decode(mean + torch.exp(0.5 * ln_var) * eps[l], sigmoid=False)) for l in range(k))
    rec = rec / (k * len(batch))
    kl = C * gaussian_kl_divergence(mean, ln_var) / len(batch)
    torch.testing.assert_close(loss.reconstruction, rec)
    torch.testing.assert_close(loss.kl, kl)
    torch.testing.assert_close(loss.total, loss.reconstruction + loss.kl)
    assert loss._fields == ("total", "reconstruction", "kl")


def test_loss_with_C_zero_has_no_kl_term_and_gradients_reach_the_encoder(vae, batch):
    assert vae.loss(batch, C=0.0).kl.item() == 0.0
    vae.loss(batch).total.backward()
    for name, p in vae.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name  # the reparameterization lets gradients through


def test_get_loss_func_is_the_articles_closure(vae, batch):
    torch.manual_seed(3)
    a = vae.get_loss_func(C=2.0, k=2)(batch)
    torch.manual_seed(3)
    b = vae.loss(batch, C=2.0, k=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_more_samples_reduce_the_variance_of_the_reconstruction_term(vae, batch):
    def spread(k):
        return torch.stack([vae.loss(batch, k=k).reconstruction.detach() for _ in range(200)]).var()
    torch.manual_seed(0)
    assert spread(16) < spread(1) / 4  # variance falls like 1/k


def test_torch_xavier_is_the_articles_xavier():
    # The article: U(-a, a), a = constant * sqrt(6 / (fan_in + fan_out)). torch draws the same numbers.
    fan_out, fan_in, constant = 30, 50, 1.3
    a = constant * math.sqrt(6.0 / (fan_in + fan_out))
    assert xavier_bound(fan_in, fan_out, constant) == pytest.approx(a)
    torch.manual_seed(5)
    ours = nn.init.xavier_uniform_(torch.empty(fan_out, fan_in), gain=constant)
    torch.manual_seed(5)
    articles = torch.empty(fan_out, fan_in).uniform_(-a, a)
    assert torch.equal(ours, articles)


def test_vae_starts_xavier_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = VAE(784, 20, 500)
    for name, layer in model.named_children():
        fan_out, fan_in = layer.weight.shape
        a = xavier_bound(fan_in, fan_out)
        assert layer.weight.abs().max() <= a, name
        assert torch.equal(layer.bias, torch.zeros(fan_out)), name
    big = model.le1.weight  # 392,000 draws: the variance of U(-a, a) is a^2 / 3
    assert big.var().item() == pytest.approx(xavier_bound(784, 500) ** 2 / 3, rel=0.01)


def test_xavier_init_rejects_non_modules():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        xavier_init_(torch.zeros(3))


@pytest.mark.parametrize("loss_name", ["bce", "mse"])
def test_autoencoder_shapes_and_loss(loss_name, batch):
    torch.manual_seed(0)
    ae = AutoEncoder(12, 2, 8, loss=loss_name)
    z = ae.encode(batch)
    assert z.shape == (5, 2)
    out = ae(batch)
    torch.testing.assert_close(out, ae.decode(z))
    logits = ae.decode(z, sigmoid=False)
    expected = (bernoulli_nll(batch, logits) if loss_name == "bce" else ((torch.sigmoid(logits) - batch) ** 2).sum()) / 5
    loss = ae.loss(batch)
    torch.testing.assert_close(loss.total, expected)
    torch.testing.assert_close(loss.reconstruction, expected)


@pytest.mark.parametrize("call,message", [
    (lambda m: m.encode(torch.rand(4, 10)), r"x must have shape \(batch, 12\), got \(4, 10\)"),
    (lambda m: m.encode(torch.rand(4, 3, 4)), "flatten images first"),
    (lambda m: m.encode(torch.rand(12)), "unsqueeze"),
    (lambda m: m.encode(torch.rand(0, 12)), "empty batch"),
    (lambda m: m.encode(torch.randint(0, 2, (4, 12))), "floating-point"),
    (lambda m: m.decode(torch.rand(4, 5)), r"z must have shape \(batch, 3\)"),
    (lambda m: m.loss(torch.rand(4, 12) * 255), r"x must lie in \[0, 1\]"),
    (lambda m: m.loss(torch.rand(4, 12), k=0), "k must be a positive integer"),
    (lambda m: m.loss(torch.rand(4, 12), C=-1.0), "C must be a finite number"),
    (lambda m: m.loss(torch.rand(4, 12), C=float("nan")), "C must be a finite number"),
])
def test_vae_rejects_bad_input_clearly(vae, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(vae)


@pytest.mark.parametrize("kwargs,message", [
    ({"n_in": 0, "n_latent": 2, "n_hidden": 4}, "n_in must be a positive integer"),
    ({"n_in": 4, "n_latent": 2.5, "n_hidden": 4}, "n_latent must be a positive integer"),
    ({"n_in": 4, "n_latent": 2, "n_hidden": 4, "act_func": lambda t: t}, "act_func must be"),
])
def test_constructors_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VAE(**kwargs)
    with pytest.raises(ValueError, match=message):
        AutoEncoder(**kwargs)


def test_autoencoder_rejects_unknown_loss():
    with pytest.raises(ValueError, match='loss must be "bce" or "mse"'):
        AutoEncoder(4, 2, 4, loss="l1")
