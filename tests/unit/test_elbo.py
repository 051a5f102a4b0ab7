"""The ELBO identity log p(x) = ELBO(q) + KL(q || p(z|x)) on the linear-Gaussian model (float64)."""

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vae_lesson.chapters.elbo import (
    LinearGaussianModel,
    best_mean_field,
    diagonal_covariance,
    elbo,
    elbo_monte_carlo,
    gaussian_kl,
    kl_to_posterior,
)

F64 = torch.float64


def _model_and_data(data_dim=5, latent_dim=3, sigma=0.7, seed=0, n=6):
    model = LinearGaussianModel.random(data_dim, latent_dim, sigma=sigma, seed=seed)
    _, x = model.sample(n, torch.Generator().manual_seed(seed + 100))
    return model, x


def _random_q(n, d, seed=0):
    """n random Gaussians: means (n, d) and full SPD covariances (n, d, d)."""
    g = torch.Generator().manual_seed(seed)
    mean = 2 * torch.randn(n, d, generator=g, dtype=F64)
    a = torch.randn(n, d, d, generator=g, dtype=F64)
    cov = a @ a.transpose(-1, -2) / d + 0.05 * torch.eye(d, dtype=F64)
    return mean, cov


def test_log_marginal_matches_torch_multivariate_normal():
    model, x = _model_and_data()
    reference = MultivariateNormal(
        model.b, covariance_matrix=model.W @ model.W.T + model.sigma**2 * torch.eye(5, dtype=F64)
    )
    torch.testing.assert_close(model.log_marginal(x), reference.log_prob(x), rtol=1e-12, atol=1e-12)
    assert model.log_marginal(x[0]).shape == ()


def test_posterior_matches_the_textbook_formula():
    # Bishop (2006), eq. 2.116: cov = (I + W^T W / s^2)^{-1}, mean = cov W^T (x - b) / s^2.
    model, x = _model_and_data()
    mean, cov = model.posterior(x)
    s2 = model.sigma**2
    expected_cov = torch.linalg.inv(torch.eye(3, dtype=F64) + model.W.T @ model.W / s2)
    torch.testing.assert_close(cov, expected_cov, rtol=1e-12, atol=1e-12)
    for i in range(len(x)):
        torch.testing.assert_close(
            mean[i], expected_cov @ model.W.T @ (x[i] - model.b) / s2, rtol=1e-12, atol=1e-12
        )


def test_posterior_matches_bayes_rule_by_numerical_integration_in_one_dimension():
    model = LinearGaussianModel(
        torch.tensor([[1.3], [-0.4], [0.8]], dtype=F64),
        torch.tensor([0.2, 0.0, -1.0], dtype=F64),
        0.6,
    )
    x = torch.tensor([1.0, -0.5, 0.1], dtype=F64)
    z = torch.linspace(-10, 10, 200_001, dtype=F64).unsqueeze(-1)
    dz = 20 / 200_000
    log_joint = model.log_likelihood(x, z) + model.log_prior(z)  # (grid,)
    evidence = torch.exp(log_joint).sum() * dz  # p(x) = integral of p(x|z) p(z) dz
    posterior = torch.exp(log_joint) / evidence  # Bayes: p(z|x) = p(x|z) p(z) / p(x)
    numeric_mean = (z[:, 0] * posterior).sum() * dz
    numeric_var = ((z[:, 0] - numeric_mean) ** 2 * posterior).sum() * dz
    mean, cov = model.posterior(x)
    assert abs(torch.log(evidence) - model.log_marginal(x)) < 1e-9
    assert abs(numeric_mean - mean[0]) < 1e-9
    assert abs(numeric_var - cov[0, 0]) < 1e-9
    # and the whole density, not only its moments
    closed = torch.exp(Normal(mean[0], cov[0, 0].sqrt()).log_prob(z[:, 0]))
    assert (posterior - closed).abs().max() < 1e-8


def test_gaussian_kl_matches_torch_distributions():
    m1, c1 = _random_q(8, 4, seed=1)
    m2, c2 = _random_q(8, 4, seed=2)
    expected = kl_divergence(MultivariateNormal(m1, c1), MultivariateNormal(m2, c2))
    torch.testing.assert_close(gaussian_kl(m1, c1, m2, c2), expected, rtol=1e-10, atol=1e-10)
    # broadcasting against one shared Gaussian, and a 0-dim result for single Gaussians
    shared = gaussian_kl(m1, c1, m2[0], c2[0])
    torch.testing.assert_close(
        shared, kl_divergence(MultivariateNormal(m1, c1), MultivariateNormal(m2[0], c2[0]))
    )
    assert gaussian_kl(m1[0], c1[0], m2[0], c2[0]).shape == ()


def test_gaussian_kl_is_zero_for_equal_gaussians_and_matches_the_diagonal_formula():
    m, c = _random_q(3, 4)
    torch.testing.assert_close(
        gaussian_kl(m, c, m, c), torch.zeros(3, dtype=F64), atol=1e-12, rtol=0
    )
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    ln_var = torch.tensor([0.3, -2.0, 1.1], dtype=F64)
    expected = 0.5 * (mean**2 + ln_var.exp() - ln_var - 1).sum()  # KL to N(0, I), the VAE's KL term
    got = gaussian_kl(
        mean, diagonal_covariance(ln_var), torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64)
    )
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_evidence_equals_elbo_plus_kl_gap_for_random_q(seed):
    model, x = _model_and_data(seed=seed)
    q_mean, q_cov = _random_q(len(x), model.latent_dim, seed=seed + 10)
    result = elbo(model, x, q_mean, q_cov)
    gap = kl_to_posterior(model, x, q_mean, q_cov)
    assert (gap > 0).all()
    assert (result.elbo < model.log_marginal(x)).all()
    assert (result.elbo + gap - model.log_marginal(x)).abs().max() < 1e-10
    torch.testing.assert_close(
        result.elbo, result.expected_log_likelihood - result.kl_to_prior, rtol=0, atol=1e-12
    )


def test_identity_holds_for_diagonal_q_given_as_log_variances():
    model, x = _model_and_data()
    g = torch.Generator().manual_seed(3)
    q_mean = torch.randn(len(x), model.latent_dim, generator=g, dtype=F64)
    q_ln_var = torch.randn(len(x), model.latent_dim, generator=g, dtype=F64)
    via_ln_var = elbo(model, x, q_mean, q_ln_var=q_ln_var).elbo
    via_cov = elbo(model, x, q_mean, diagonal_covariance(q_ln_var)).elbo
    torch.testing.assert_close(via_ln_var, via_cov, rtol=0, atol=1e-12)
    gap = kl_to_posterior(model, x, q_mean, q_ln_var=q_ln_var)
    assert (via_ln_var + gap - model.log_marginal(x)).abs().max() < 1e-10


def test_bound_is_tight_at_the_posterior():
    model, x = _model_and_data()
    post_mean, post_cov = model.posterior(x)
    assert (elbo(model, x, post_mean, post_cov).elbo - model.log_marginal(x)).abs().max() < 1e-10
    assert kl_to_posterior(model, x, post_mean, post_cov).abs().max() < 1e-10
    # Every other q is strictly worse: nudge the mean, then the covariance.
    assert (elbo(model, x, post_mean + 0.01, post_cov).elbo < model.log_marginal(x) - 1e-6).all()
    assert (elbo(model, x, post_mean, 1.05 * post_cov).elbo < model.log_marginal(x) - 1e-6).all()


def test_best_mean_field_minimises_the_gap_among_diagonal_q():
    model, x = _model_and_data()
    mean, ln_var = best_mean_field(model, x)
    gap = kl_to_posterior(model, x, mean, q_ln_var=ln_var)
    assert (gap > 1e-6).all()  # correlated posterior: a diagonal q cannot close the gap
    for direction in torch.eye(model.latent_dim, dtype=F64):
        for step in (-1e-3, 1e-3):
            assert (kl_to_posterior(model, x, mean, q_ln_var=ln_var + step * direction) > gap).all()
            assert (kl_to_posterior(model, x, mean + step * direction, q_ln_var=ln_var) > gap).all()


@pytest.mark.parametrize("analytic_kl", [False, True])
def test_monte_carlo_elbo_is_within_four_standard_errors(analytic_kl):
    model, x = _model_and_data()
    q_mean, q_cov = _random_q(len(x), model.latent_dim, seed=5)
    exact = elbo(model, x, q_mean, q_cov).elbo
    mc = elbo_monte_carlo(
        model,
        x,
        q_mean,
        q_cov,
        num_samples=20_000,
        generator=torch.Generator().manual_seed(0),
        analytic_kl=analytic_kl,
    )
    assert ((mc.estimate - exact).abs() < 4 * mc.standard_error).all()
    assert (
        mc.standard_error < 0.05 * exact.abs()
    ).all()  # and the test is not passing by being vague


def test_monte_carlo_standard_error_shrinks_like_one_over_sqrt_k():
    model, x = _model_and_data(n=1)
    q_mean, q_cov = _random_q(1, model.latent_dim, seed=6)
    se = [
        elbo_monte_carlo(
            model, x, q_mean, q_cov, num_samples=k, generator=torch.Generator().manual_seed(1)
        ).standard_error.item()
        for k in (1_000, 100_000)
    ]
    assert 8 < se[0] / se[1] < 12.5  # sqrt(100) = 10


def test_full_monte_carlo_estimator_has_zero_variance_at_the_posterior():
    # At q = p(z|x), log p(x, z) - log q(z) = log p(x) for every z.
    model, x = _model_and_data()
    post_mean, post_cov = model.posterior(x)
    mc = elbo_monte_carlo(
        model, x, post_mean, post_cov, num_samples=7, generator=torch.Generator().manual_seed(2)
    )
    assert (mc.estimate - model.log_marginal(x)).abs().max() < 1e-10
    assert mc.standard_error.max() < 1e-10


def test_single_data_point_shapes():
    model, x = _model_and_data()
    mean, cov = model.posterior(x[0])
    assert mean.shape == (3,) and cov.shape == (3, 3)
    result = elbo(model, x[0], mean, cov)
    assert result.elbo.shape == ()
    assert abs(result.elbo - model.log_marginal(x[0])) < 1e-10


@pytest.mark.parametrize(
    "make_args,error,message",
    [
        (
            lambda m, x, q, c: (m, x[:, :4], q, c),
            ValueError,
            r"x must have shape \(5,\) or \(n, 5\)",
        ),
        (lambda m, x, q, c: (m, x, q[:, :2], c), ValueError, r"q_mean must have shape \(3,\)"),
        (lambda m, x, q, c: (m, x, q[:3], c), ValueError, "one row per data point"),
        (lambda m, x, q, c: (m, x, q, c[:, :2, :2]), ValueError, "q_cov must have shape"),
        (lambda m, x, q, c: (m, x, q, -c), ValueError, "not positive definite"),
        (
            lambda m, x, q, c: (m, x, q, c + torch.triu(torch.ones(3, 3, dtype=F64), 1)),
            ValueError,
            "symmetric",
        ),
        (lambda m, x, q, c: (m, x.float(), q, c), TypeError, "x has dtype torch.float32"),
        (lambda m, x, q, c: (m, x, q, None), ValueError, "exactly one of q_cov"),
        (lambda m, x, q, c: (m, x.long(), q, c), TypeError, "floating-point"),
    ],
)
def test_elbo_rejects_bad_inputs(make_args, error, message):
    model, x = _model_and_data()
    q_mean, q_cov = _random_q(len(x), model.latent_dim)
    with pytest.raises(error, match=message):
        elbo(*make_args(model, x, q_mean, q_cov))


def test_gaussian_kl_rejects_non_positive_definite_and_mismatched_inputs():
    m, c = _random_q(1, 3)
    m, c = m[0], c[0]
    singular = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    with pytest.raises(ValueError, match="cov_p is not positive definite"):
        gaussian_kl(m, c, m, singular)
    with pytest.raises(ValueError, match="cov_q must be a square matrix"):
        gaussian_kl(m, c[:2], m, c)
    with pytest.raises(ValueError, match="cov_q must be"):
        gaussian_kl(m[:2], c, m[:2], c[:2, :2])
    with pytest.raises(ValueError, match="same last dimension"):
        gaussian_kl(m, c, m[:2], c[:2, :2])
    with pytest.raises(TypeError, match="share one dtype"):
        gaussian_kl(m, c, m.float(), c.float())
    with pytest.raises(ValueError, match="NaN"):
        gaussian_kl(m * float("nan"), c, m, c)


def test_model_rejects_bad_parameters():
    W = torch.randn(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="sigma must be a finite positive number"):
        LinearGaussianModel(W, torch.zeros(4, dtype=F64), 0.0)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        LinearGaussianModel(W, torch.zeros(3, dtype=F64), 1.0)
    with pytest.raises(ValueError, match="W must be a"):
        LinearGaussianModel(torch.zeros(4, dtype=F64), torch.zeros(4, dtype=F64), 1.0)
    with pytest.raises(TypeError, match="b has dtype"):
        LinearGaussianModel(W, torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        model, x = _model_and_data()
        elbo_monte_carlo(model, x, *model.posterior(x), num_samples=0)


def test_sampling_matches_the_marginal_covariance():
    model = LinearGaussianModel.random(3, 2, sigma=0.5, seed=4)
    n = 200_000
    _, x = model.sample(n, torch.Generator().manual_seed(0))
    centred = x - x.mean(0)
    empirical = centred.T @ centred / (n - 1)
    expected = model.marginal_covariance()
    # standard error of a covariance entry: sqrt((S_ii S_jj + S_ij^2) / n)
    se = torch.sqrt(
        (torch.diagonal(expected)[:, None] * torch.diagonal(expected)[None, :] + expected**2) / n
    )
    assert ((empirical - expected).abs() < 4 * se).all()
    assert ((x.mean(0) - model.b).abs() < 4 * torch.sqrt(torch.diagonal(expected) / n)).all()


def test_identity_and_convergence_tables_report_what_they_compute():
    from vae_lesson.chapters.elbo import convergence_table, identity_table, monte_carlo_convergence

    model, x = _model_and_data()
    x = x[0]
    post_mean, post_cov = model.posterior(x)
    candidates = {
        "prior": dict(q_mean=torch.zeros(3, dtype=F64), q_cov=torch.eye(3, dtype=F64)),
        "posterior": dict(q_mean=post_mean, q_cov=post_cov),
    }
    lines = identity_table(model, x, candidates).splitlines()
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[1:3]}
    prior = elbo(model, x, **candidates["prior"])
    assert rows["prior"][:3] == pytest.approx(
        [prior.expected_log_likelihood.item(), 0.0, prior.elbo.item()], abs=1e-4
    )
    assert (
        rows["prior"][3] > 1 and abs(rows["prior"][4]) < 1e-10
    )  # a real gap, and a residual at rounding level
    assert abs(rows["posterior"][3]) < 1e-4 and abs(rows["posterior"][4]) < 1e-10
    table = monte_carlo_convergence(
        model, x, post_mean + 0.1, post_cov, sample_sizes=(10, 1000), seed=0
    )
    assert table["exact"] == pytest.approx(elbo(model, x, post_mean + 0.1, post_cov).elbo.item())
    text = convergence_table(table).splitlines()
    assert len(text) == 4 and text[-1].split()[0] == "1,000"
    assert float(text[-1].split()[1]) == pytest.approx(table["full"]["estimate"][1], abs=1e-5)


def test_gaussian_log_density_matches_torch_with_broadcasting():
    from vae_lesson.chapters.elbo import gaussian_log_density

    mean, cov = _random_q(4, 3, seed=7)  # four Gaussians with full covariances
    x = torch.randn(
        5, 4, 3, generator=torch.Generator().manual_seed(8), dtype=F64
    )  # five points for each
    expected = MultivariateNormal(mean, cov).log_prob(x)
    torch.testing.assert_close(gaussian_log_density(x, mean, cov), expected, rtol=1e-12, atol=1e-12)
    # one covariance shared by a batch of means, and an empty batch
    shared = gaussian_log_density(x, mean, cov[0])
    torch.testing.assert_close(
        shared, MultivariateNormal(mean, cov[0]).log_prob(x), rtol=1e-12, atol=1e-12
    )
    assert gaussian_log_density(x[:0], mean[0], cov[0]).shape == (0, 4)
    with pytest.raises(ValueError, match="cov is not positive definite"):
        gaussian_log_density(x, mean, -cov)
    with pytest.raises(ValueError, match="same last dimension"):
        gaussian_log_density(x[..., :2], mean, cov)


def test_the_kl_term_of_a_diagonal_q_is_the_vae_s_gaussian_kl_divergence():
    # The chapter's full-covariance KL reduces to the VAE's elementwise one for a diagonal q and
    # p = N(0, I).
    import vae_lesson as vl

    model, x = _model_and_data()
    g = torch.Generator().manual_seed(9)
    q_mean = torch.randn(len(x), model.latent_dim, generator=g, dtype=F64)
    q_ln_var = torch.randn(len(x), model.latent_dim, generator=g, dtype=F64)
    kl = elbo(model, x, q_mean, q_ln_var=q_ln_var).kl_to_prior
    expected = vl.gaussian_kl_divergence(q_mean, q_ln_var, reduce="no").sum(-1)
    torch.testing.assert_close(kl, expected, rtol=1e-12, atol=1e-12)


def _chapter_copy_of_the_model_class():
    """A class with the package model's methods that is not the package's class (as a chapter
    redefines it)."""
    namespace = {
        k: v for k, v in vars(LinearGaussianModel).items() if k not in ("__dict__", "__weakref__")
    }
    return type("LinearGaussianModel", (), namespace)


def test_tables_and_figures_run_the_functions_they_are_given():
    from vae_lesson.chapters.elbo import (
        identity_table,
        monte_carlo_convergence,
        plot_elbo_along_line,
    )

    Model = _chapter_copy_of_the_model_class()
    assert not issubclass(Model, LinearGaussianModel)
    model = Model.random(5, 2, sigma=0.7, seed=3)
    _, x = model.sample(1, torch.Generator().manual_seed(4))
    x = x[0]
    calls = []

    def shifted_elbo(*args, **kwargs):  # a reader's edited ELBO: one nat higher
        calls.append("elbo")
        terms = elbo(*args, **kwargs)
        return terms._replace(elbo=terms.elbo + 1.0)

    def my_gap(*args, **kwargs):
        calls.append("gap")
        return kl_to_posterior(*args, **kwargs)

    def my_monte_carlo(*args, **kwargs):
        calls.append("monte carlo")
        return elbo_monte_carlo(*args, **kwargs)

    def my_mean_field(*args, **kwargs):
        calls.append("mean field")
        return best_mean_field(*args, **kwargs)

    post_mean, post_cov = model.posterior(x)
    q = {"posterior": dict(q_mean=post_mean, q_cov=post_cov)}
    row = (
        identity_table(model, x, q, elbo=shifted_elbo, kl_to_posterior=my_gap)
        .splitlines()[1]
        .split()
    )
    assert float(row[3]) == pytest.approx(
        model.log_marginal(x).item() + 1.0, abs=1e-4
    )  # the edited ELBO
    assert float(row[5]) == pytest.approx(-1.0)  # and the residual shows the edit
    table = monte_carlo_convergence(
        model,
        x,
        post_mean,
        post_cov,
        sample_sizes=(10,),
        elbo=shifted_elbo,
        elbo_monte_carlo=my_monte_carlo,
    )
    assert table["exact"] == pytest.approx(model.log_marginal(x).item() + 1.0)
    plot_elbo_along_line(model, x, elbo=shifted_elbo, best_mean_field=my_mean_field)
    assert {"elbo", "gap", "monte carlo", "mean field"} == set(calls)
    with pytest.raises(TypeError, match="elbo must be a function"):
        identity_table(model, x, q, elbo=None)
    with pytest.raises(TypeError, match="model must be a LinearGaussianModel"):
        identity_table(object(), x, q)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_plot_elbo_along_line_takes_positions_of_any_float_dtype(dtype):
    # NumPy, which draws the curves, has no bfloat16: the positions are converted to the model's
    # dtype first.
    from vae_lesson.chapters.elbo import plot_elbo_along_line

    model, x = _model_and_data()
    fig = plot_elbo_along_line(model, x[0], torch.linspace(0, 2, 5, dtype=dtype))
    assert len(fig.axes) == 2
    with pytest.raises(TypeError, match="t must be a floating-point tensor"):
        plot_elbo_along_line(model, x[0], torch.arange(5))
