"""Chapter 06's tools: the aggregate posterior, ELBO surgery against quadrature and known mutual
informations, active units, free bits and warm-up at their neutral settings, the mixture prior,
bounds under any prior, and the per-image q behind the amortization gap."""

import math

import pytest
import torch
from torch import distributions as D

import vae_lesson as vl
from vae_lesson.chapters import kl_term as kt
from vae_lesson.chapters.elbo import LinearGaussianModel, best_mean_field, elbo
from vae_lesson.chapters.iwae import iwae_bound, neg_elbo

F64 = torch.float64


def _posteriors(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=F64),
        -1.0 + 0.5 * torch.randn(n, d, generator=g, dtype=F64),
    )


def test_log_aggregate_posterior_is_the_mixture_density_whatever_the_chunks():
    mean, ln_var = _posteriors(7, 3)
    z = torch.randn(11, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    components = D.Independent(D.Normal(mean, (0.5 * ln_var).exp()), 1)
    expected = torch.logsumexp(components.log_prob(z[:, None]), 1) - math.log(7)
    for chunk_size in (1, 4, 256):
        got = kt.log_aggregate_posterior(z, mean, ln_var, chunk_size=chunk_size)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def _surgery_by_quadrature(mean, ln_var):
    """I_q and KL(q(z) || N(0, 1)) of a 1-D mixture, by the trapezoid rule on a fine grid."""
    z = torch.linspace(-12, 12, 200_001, dtype=F64)
    std = (0.5 * ln_var).exp()
    q = D.Normal(mean[:, 0], std[:, 0]).log_prob(z[:, None]).exp().mean(1)
    p = D.Normal(0.0, 1.0).log_prob(z).exp()
    integrand = torch.where(q > 0, q * (q.log() - p.log()), torch.zeros_like(q))
    marginal_kl = torch.trapezoid(integrand, z).item()
    average_kl = D.kl_divergence(D.Normal(mean, std), D.Normal(0.0, 1.0)).sum(1).mean().item()
    return average_kl, average_kl - marginal_kl, marginal_kl


def test_the_surgery_identity_against_quadrature():
    mean = torch.tensor([[-1.5], [0.3], [2.0]], dtype=F64)
    ln_var = torch.tensor([[-2.0], [0.0], [-1.0]], dtype=F64)
    average_kl, mi, marginal = _surgery_by_quadrature(mean, ln_var)
    s = kt.elbo_surgery(mean, ln_var, n_draws=40_000, generator=torch.Generator().manual_seed(0))
    assert s.average_kl == pytest.approx(average_kl, abs=1e-12)
    assert s.ceiling == pytest.approx(math.log(3))
    # each Monte Carlo term within about four standard errors of 120,000 draws
    assert s.mutual_information == pytest.approx(mi, abs=0.02)
    assert s.marginal_kl == pytest.approx(marginal, abs=0.02)
    assert 0 < mi < math.log(3)


def test_mutual_information_of_separated_identical_and_gaussian_posteriors():
    g = torch.Generator().manual_seed(0)
    # ten posteriors far apart: the code names the image, I_q = log N
    separated = torch.arange(10, dtype=F64)[:, None] * 20.0
    s = kt.elbo_surgery(separated, torch.full_like(separated, -4.0), 200, g)
    assert s.mutual_information == pytest.approx(math.log(10), abs=1e-6)
    # all alike: the code says nothing, I_q = 0 and the whole KL is mismatch
    same = torch.full((10, 2), 0.7, dtype=F64)
    s = kt.elbo_surgery(same, torch.full_like(same, -0.5), 200, g)
    assert s.mutual_information == pytest.approx(0.0, abs=1e-9)
    assert s.marginal_kl == pytest.approx(s.average_kl, abs=0.05)
    # x ~ N(0, 1), z | x ~ N(x, 1): I(x; z) = log(1 + 1) / 2, reached as N grows
    x = torch.randn(6000, 1, generator=g, dtype=F64)
    s = kt.elbo_surgery(x, torch.zeros_like(x), 1, g)
    assert s.mutual_information == pytest.approx(0.5 * math.log(2), abs=0.04)


def test_active_units_are_the_variances_of_the_means_above_the_threshold():
    mean = torch.tensor([[0.0, 1.0, 5.0], [0.0, 1.2, -5.0], [0.0, 0.8, 0.0]])
    activity, n_active = kt.active_units(mean, threshold=0.01)
    torch.testing.assert_close(activity, mean.var(dim=0))
    assert n_active == 2  # the constant first dimension is inactive
    assert kt.active_units(mean, threshold=float(activity[1]))[1] == 1  # strictly above


def test_kl_per_dimension_sums_to_the_kl_term():
    mean, ln_var = _posteriors(5, 4)
    per_dim = kt.kl_per_dimension(mean, ln_var)
    expected = D.kl_divergence(D.Normal(mean, (0.5 * ln_var).exp()), D.Normal(0.0, 1.0)).mean(0)
    torch.testing.assert_close(per_dim, expected)
    torch.testing.assert_close(per_dim.sum(), vl.gaussian_kl_divergence(mean, ln_var) / 5)


def _x(n=8, d=6, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed))


def test_free_bits_of_zero_is_the_vae_loss_and_large_free_bits_stop_the_kl_gradient():
    torch.manual_seed(0)
    model = kt.RemedyVAE(6, 3, 5)
    plain = vl.VAE(6, 3, 5)
    plain.load_state_dict(model.state_dict())
    x = _x()
    torch.manual_seed(1)
    ours = model.loss(x, C=2.0, free_bits=0.0)
    torch.manual_seed(1)
    theirs = plain.loss(x, C=2.0, k=1)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    # every dimension below 100 nats: the KL term is the constant C * 100 * d and gives no gradient
    terms = model.loss(x, C=2.0, free_bits=100.0)
    assert terms.kl.item() == pytest.approx(2.0 * 100.0 * 3)
    grads = torch.autograd.grad(terms.kl, list(model.parameters()), allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in grads)
    # ... while a KL term above its free bits is charged in full, with its gradient
    terms = model.loss(x, C=2.0, free_bits=1e-6)
    grads = torch.autograd.grad(terms.kl, [model.le3_mu.weight])
    assert grads[0].abs().max() > 0


def test_warmup_weights_rise_linearly_and_training_with_them_runs():
    assert [kt.warmup_weight(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [kt.warmup_weight(e, 0) for e in range(3)] == [1.0, 1.0, 1.0]
    model = vl.VAE(6, 2, 5)
    x = _x(40)
    before = vl.evaluate(model, x)["total"]
    weights = kt.train_with_warmup(model, x, 4, 2, C=3.0, batch_size=10, lr=1e-2)
    assert weights == [0.0, 1.5, 3.0, 3.0]
    assert vl.evaluate(model, x)["total"] < before


def test_the_mixture_prior_recovers_a_known_mixture():
    truth = D.MixtureSameFamily(
        D.Categorical(probs=torch.tensor([0.3, 0.7])),
        D.MultivariateNormal(
            torch.tensor([[-4.0, 0.0], [3.0, 1.0]]),
            covariance_matrix=torch.stack([torch.eye(2), 0.5 * torch.eye(2)]),
        ),
    )
    torch.manual_seed(0)
    codes = truth.sample((4000,))
    fitted = kt.fit_mixture_prior(codes, n_components=2, seed=0)
    assert isinstance(fitted, D.MixtureSameFamily)
    test = truth.sample((500,))
    assert (fitted.log_prob(test) - truth.log_prob(test)).abs().mean() < 0.05
    assert fitted.sample((3,)).shape == (3, 2)
    with pytest.raises(ValueError, match="codes must have shape"):
        kt.fit_mixture_prior(codes[:3], n_components=2)
    with pytest.raises(ValueError, match="codes must have shape"):
        kt.fit_mixture_prior(codes[:, 0], n_components=2)


def test_bounds_under_the_standard_prior_agree_with_the_iwae_functions():
    torch.manual_seed(0)
    model = vl.VAE(6, 2, 5)
    x = _x(30)
    standard = D.Independent(D.Normal(torch.zeros(2), torch.ones(2)), 1)
    b = kt.bounds_under_prior(model, x, standard.log_prob, K=400)
    assert (b.neg_iwae <= b.neg_elbo + 1e-5).all()
    reference = neg_elbo(model, x, n_samples=400)
    assert b.neg_elbo.mean().item() == pytest.approx(reference.mean().item(), abs=0.1)
    assert b.neg_iwae.mean().item() == pytest.approx(
        -iwae_bound(model, x, K=400).mean().item(), abs=0.1
    )
    one = kt.bounds_under_prior(model, x, standard.log_prob, K=1)
    torch.testing.assert_close(one.neg_iwae, one.neg_elbo)  # L_1 is a one-sample ELBO
    with pytest.raises(TypeError, match="log_prior"):
        kt.bounds_under_prior(model, x, "N(0, I)")


def test_optimized_posteriors_beat_the_encoder_and_leave_the_model_alone():
    torch.manual_seed(0)
    model = vl.VAE(6, 2, 5)
    x = _x(12)
    before = [p.clone() for p in model.parameters()]
    with torch.no_grad():
        mean, ln_var = model.encode(x)
    opt_mean, opt_ln_var = kt.optimize_posteriors(model, x, steps=150, k=4, lr=0.05)
    encoder = kt.neg_elbo_of(model, x, mean, ln_var, n_samples=500)
    optimized = kt.neg_elbo_of(model, x, opt_mean, opt_ln_var, n_samples=500)
    assert optimized.mean() < encoder.mean() - 0.05
    assert all(torch.equal(a, b) and b.requires_grad for a, b in zip(before, model.parameters()))
    # neg_elbo_of with the encoder's q is the negative ELBO of the iwae module, on other noise
    assert encoder.mean().item() == pytest.approx(
        neg_elbo(model, x, n_samples=500).mean().item(), abs=0.05
    )


def test_a_linear_encoder_reaches_the_best_mean_field_q_of_a_linear_gaussian_model():
    model = LinearGaussianModel.random(4, 2, sigma=0.5, seed=0)
    _, x = model.sample(500, generator=torch.Generator().manual_seed(1))
    encoder = kt.fit_linear_encoder(model, x, steps=1500, lr=0.02)
    mean, ln_var = encoder(x)
    amortized = elbo(model, x, mean, q_ln_var=ln_var).elbo
    best_mean, best_ln_var = best_mean_field(model, x)
    best = elbo(model, x, best_mean, q_ln_var=best_ln_var).elbo
    log_p = model.log_marginal(x)
    assert (amortized <= best + 1e-9).all() and (best <= log_p + 1e-9).all()
    assert (best - amortized).mean() < 0.05
    with pytest.raises(TypeError, match="LinearGaussianModel"):
        kt.fit_linear_encoder(vl.VAE(4, 2, 3), x)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (
            lambda: kt.log_aggregate_posterior(
                torch.zeros(2, 3), torch.zeros(4, 2), torch.zeros(4, 2)
            ),
            ValueError,
            "z must have shape",
        ),
        (
            lambda: kt.log_aggregate_posterior(torch.zeros(2, 2), torch.zeros(4), torch.zeros(4)),
            ValueError,
            "mean and ln_var must have shape",
        ),
        (lambda: kt.elbo_surgery(torch.zeros(4, 2), torch.zeros(4, 2), 0), ValueError, "n_draws"),
        (lambda: kt.elbo_surgery(torch.zeros(4, 2), torch.zeros(4, 3)), ValueError, "ln_var"),
        (lambda: kt.active_units(torch.zeros(1, 3)), ValueError, "N >= 2"),
        (lambda: kt.warmup_weight(-1, 3), ValueError, "epoch"),
        (
            lambda: kt.RemedyVAE(6, 2, 3).loss(torch.zeros(2, 6), free_bits=-0.5),
            ValueError,
            "free_bits",
        ),
    ],
)
def test_bad_inputs_name_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()
