"""The IWAE bound: E[L_1] is the ELBO, L_K rises with K and reaches the exact log p(x)."""

import math

import pytest
import torch

import vae_lesson as vl
from vae_lesson.chapters.elbo import LinearGaussianModel, best_mean_field, elbo
from vae_lesson.chapters.iwae import (importance_log_weights, importance_weighted_bound, iwae_bound, iwae_log_weights,
                                     nested_bounds, neg_elbo)
from vae_lesson.chapters.reconstruction import ReductionVAE


@pytest.fixture(scope="module")
def setting():
    model = LinearGaussianModel.random(data_dim=6, latent_dim=2, sigma=0.7, seed=3)
    _, x = model.sample(4, generator=torch.Generator().manual_seed(0))
    q_mean, q_ln_var = best_mean_field(model, x)
    q_ln_var = q_ln_var.expand_as(q_mean).clone()
    # A deliberately imperfect encoder: shifted means and too-wide variances leave a clear gap (a wide
    # proposal keeps the importance weights well behaved, so L_K converges quickly).
    q_mean, q_ln_var = q_mean + 0.4, q_ln_var + 0.8

    def log_joint(z):
        return model.log_likelihood(x, z) + model.log_prior(z)

    return model, x, q_mean, q_ln_var, log_joint


def _repeated(setting, K, repeats, seed):
    """(repeats, n) independent draws of L_K, computed in one vectorized call by tiling the data."""
    model, x, q_mean, q_ln_var, _ = setting
    x_tiled = x.repeat(repeats, 1)

    def log_joint(z):
        return model.log_likelihood(x_tiled, z) + model.log_prior(z)

    bounds = importance_weighted_bound(log_joint, q_mean.repeat(repeats, 1), q_ln_var.repeat(repeats, 1), K,
                                       generator=torch.Generator().manual_seed(seed), chunk_size=500)
    return bounds.reshape(repeats, len(x))


def test_one_sample_is_an_unbiased_elbo(setting):
    model, x, q_mean, q_ln_var, _ = setting
    draws = _repeated(setting, K=1, repeats=20000, seed=1)
    exact = torch.stack([elbo(model, x[i], q_mean[i], q_ln_var=q_ln_var[i]).elbo for i in range(len(x))])
    stderr = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 4 * stderr + 1e-9).all()


def test_the_bound_rises_with_K_and_reaches_log_px(setting):
    model, x = setting[:2]
    log_px = model.log_marginal(x)
    means = {K: _repeated(setting, K, repeats, seed=K).mean(0)
             for K, repeats in ((1, 4000), (10, 1000), (100, 200), (5000, 20))}
    gap1 = log_px - means[1]
    assert (gap1 > 0.2).all()  # the imperfect q leaves a real gap
    assert (means[1] < means[10]).all() and (means[10] < means[100]).all()
    assert ((log_px - means[5000]).abs() < 0.02 * gap1 + 1e-3).all()
    assert (means[5000] <= log_px + 0.01).all()  # a lower bound, up to Monte Carlo noise


def test_exact_posterior_gives_log_px_for_every_K():
    # Orthogonal columns make the posterior covariance diagonal, so a diagonal q can be exact.
    q, _ = torch.linalg.qr(torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64))
    model = LinearGaussianModel(q * torch.tensor([2.0, 0.5], dtype=torch.float64), torch.zeros(5, dtype=torch.float64), 0.3)
    _, x = model.sample(3, generator=torch.Generator().manual_seed(5))
    mean, cov = model.posterior(x)
    ln_var = torch.log(torch.diagonal(cov)).expand(len(x), -1)
    for K in (1, 7):
        bound = importance_weighted_bound(lambda z: model.log_likelihood(x, z) + model.log_prior(z), mean, ln_var, K,
                                          generator=torch.Generator().manual_seed(6))
        torch.testing.assert_close(bound, model.log_marginal(x), rtol=0, atol=1e-9)


def test_chunking_does_not_change_the_estimate(setting):
    _, x, q_mean, q_ln_var, log_joint = setting
    a = importance_weighted_bound(log_joint, q_mean, q_ln_var, 60, generator=torch.Generator().manual_seed(7), chunk_size=60)
    b = importance_weighted_bound(log_joint, q_mean, q_ln_var, 60, generator=torch.Generator().manual_seed(7), chunk_size=7)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_vae_log_likelihood_and_iwae_bound():
    digits = vl.load_digits(verbose=False)
    vl.set_seed(0)
    model = vl.VAE(64, 4, 32)
    vl.train(model, digits.x_train_flat, num_epochs=3, quiet=True)
    x = digits.x_test_flat[:50]
    z = torch.randn(3, 50, 4)
    expected = -torch.stack([vl.bernoulli_nll(x, model.decode(z[i], sigmoid=False), reduce="no").sum(-1) for i in range(3)])
    torch.testing.assert_close(model.log_likelihood(x, z), expected)
    neg_elbo = vl.evaluate(model, x)["total"]
    one = iwae_bound(model, x.repeat(400, 1), K=1, batch_size=20000).mean().item()  # 400 draws per image
    assert abs(-one - neg_elbo) < 0.02 * neg_elbo  # E[L_1] is the ELBO
    k100 = iwae_bound(model, x, K=100).mean().item()
    assert k100 > -neg_elbo  # tighter than the ELBO
    assert torch.equal(iwae_bound(model, x, K=5, seed=3), iwae_bound(model, x, K=5, seed=3))  # seeded


@pytest.mark.parametrize("call,message", [
    (lambda: importance_weighted_bound(lambda z: z.sum(-1), torch.zeros(2, 3), torch.zeros(2, 4), 5), "same shape"),
    (lambda: importance_weighted_bound(lambda z: z.sum(-1), torch.zeros(2, 3), torch.zeros(2, 3), 0), "K must be"),
    (lambda: importance_weighted_bound(lambda z: z.sum(), torch.zeros(2, 3), torch.zeros(2, 3), 5), r"shape \(k, n\)"),
    (lambda: iwae_bound(torch.nn.Linear(2, 2), torch.zeros(2, 2)), "encode"),
])
def test_bad_input(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


class _FixedEncoder(torch.nn.Module):
    """A linear-Gaussian model with a fixed q(z|x) per data point, seen through the VAE interface."""

    def __init__(self, model, x, q_mean, q_ln_var):
        super().__init__()
        self.model, self.x, self.q_mean, self.q_ln_var = model, x, q_mean, q_ln_var

    def encode(self, x):
        assert torch.equal(x, self.x[: len(x)])
        return self.q_mean[: len(x)], self.q_ln_var[: len(x)]

    def log_likelihood(self, x, z):
        return self.model.log_likelihood(x, z)


def test_neg_elbo_matches_the_closed_form_elbo(setting):
    model, x, q_mean, q_ln_var, _ = setting
    exact = torch.stack([elbo(model, x[i], q_mean[i], q_ln_var=q_ln_var[i]).elbo for i in range(len(x))])
    estimate = neg_elbo(_FixedEncoder(model, x, q_mean, q_ln_var), x, n_samples=200_000, seed=2)
    # the KL is exact, so only the reconstruction term is sampled; 200,000 draws leave < 0.01 nats of noise
    torch.testing.assert_close(estimate, -exact, rtol=0, atol=0.02)


def test_neg_elbo_ignores_how_the_model_was_trained():
    digits = vl.load_digits(verbose=False)
    x = digits.x_test_flat[:50]
    vl.set_seed(0)
    vae = vl.VAE(64, 3, 16)
    vl.train(vae, digits.x_train_flat[:300], num_epochs=2, quiet=True, loss_kwargs={"C": 5.0})
    # a model with another loss (pixel-mean reduction) but the same weights has the same -ELBO, sample for sample
    other = ReductionVAE(64, 3, 16, reduction="pixel_mean")
    other.load_state_dict(vae.state_dict())
    torch.testing.assert_close(neg_elbo(other, x, seed=3), neg_elbo(vae, x, seed=3), rtol=0, atol=0)
    # and it is the C = 1 loss of VAE.loss, whatever C the model was trained with (many samples: equal means)
    many = neg_elbo(vae, x, n_samples=4000).mean().item()
    torch.manual_seed(4)
    with torch.no_grad():
        by_loss = vae.loss(x, C=1.0, k=4000).total.item()
    assert abs(many - by_loss) < 0.02 * abs(by_loss) / 10
    with pytest.raises(TypeError, match="encode"):
        neg_elbo(vl.AutoEncoder(64, 2, 8), x)


def test_log_weights_give_the_same_bound(setting):
    _, _, q_mean, q_ln_var, log_joint = setting
    log_w = importance_log_weights(log_joint, q_mean, q_ln_var, 64, generator=torch.Generator().manual_seed(5))
    bound = importance_weighted_bound(log_joint, q_mean, q_ln_var, 64, generator=torch.Generator().manual_seed(5))
    assert log_w.shape == (64, len(q_mean))
    torch.testing.assert_close(torch.logsumexp(log_w, 0) - math.log(64), bound, rtol=0, atol=1e-12)


def test_nested_bounds_are_monotone_for_every_point_and_start_at_the_elbo(setting):
    model, x, q_mean, q_ln_var, log_joint = setting
    log_w = importance_log_weights(log_joint, q_mean, q_ln_var, 1024, generator=torch.Generator().manual_seed(6))
    ks = [1, 2, 4, 16, 64, 256, 1024]
    bounds = nested_bounds(log_w, ks)
    for small, large in zip(ks, ks[1:]):
        assert (bounds[large] >= bounds[small] - 1e-12).all()
    # K = 1: the mean of the 1024 single-sample ELBOs, within Monte Carlo error of the closed form
    exact = torch.stack([elbo(model, x[i], q_mean[i], q_ln_var=q_ln_var[i]).elbo for i in range(len(x))])
    torch.testing.assert_close(bounds[1], log_w.mean(0))
    stderr = log_w.std(0) / math.sqrt(len(log_w))
    assert ((bounds[1] - exact).abs() < 4 * stderr).all()
    # K = M: the ordinary bound on all the samples
    torch.testing.assert_close(bounds[1024], torch.logsumexp(log_w, 0) - math.log(1024))
    # one draw of L_1024 is close to log p(x), on either side of it (a bound only in expectation)
    assert ((bounds[1024] - model.log_marginal(x)).abs() < 0.1).all()


def test_nested_bounds_refuse_groups_that_do_not_nest():
    log_w = torch.zeros(100, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="3 does not divide"):
        nested_bounds(log_w, [1, 3, 10])
    with pytest.raises(ValueError, match="does not divide 100"):
        nested_bounds(log_w, [1, 2, 8])
    with pytest.raises(ValueError, match="empty"):
        nested_bounds(log_w, [])
    with pytest.raises(ValueError, match=r"shape \(M, n\)"):
        nested_bounds(torch.zeros(5), [1])


def test_vae_log_weights_match_iwae_bound():
    vl.set_seed(0)
    model = vl.VAE(12, 3, 8)
    x = torch.rand(7, 12)
    log_w = iwae_log_weights(model, x, K=32, batch_size=3, seed=4)
    assert log_w.shape == (32, 7)
    torch.testing.assert_close(torch.logsumexp(log_w, 0) - math.log(32), iwae_bound(model, x, K=32, batch_size=3, seed=4))
