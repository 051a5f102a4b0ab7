"""Pathwise and score-function gradient estimators: per-draw values, unbiasedness, variances."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from vae_lesson.chapters.gradient_variance import (
    DecoderLoss,
    gradient_estimates,
    pathwise_samples,
    plot_variance,
    quadrature_gradient,
    score_function_samples,
    square,
    square_exact_gradient,
    square_leave_one_out_variance,
    square_per_sample_variance,
    variance_experiment,
)

F64 = torch.float64
MU = torch.tensor([1.0], dtype=F64)
SIGMA = torch.tensor([0.8], dtype=F64)


def _estimates(estimator, k, trials, seed=0, f=square, mean=MU, sigma=SIGMA):
    return gradient_estimates(
        f,
        mean,
        sigma,
        estimator=estimator,
        num_samples=k,
        num_trials=trials,
        generator=torch.Generator().manual_seed(seed),
    )


def _variance_and_se(est):
    """Sample variance of (T, d) estimates and its standard error from the fourth central moment."""
    centred = est - est.mean(0)
    var = centred.pow(2).sum(0) / (len(est) - 1)
    return var, torch.sqrt((centred.pow(4).mean(0) - var**2) / len(est))


def _decoder_objective():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(16, generator=g, dtype=F64)
    return (
        DecoderLoss(target, latent_dim=2, hidden=8, seed=1),
        torch.tensor([0.3, -0.6], dtype=F64),
        torch.tensor([0.5, 0.9], dtype=F64),
    )


def test_per_draw_values_match_the_formulas():
    eps = torch.randn(3, 5, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    z = MU + SIGMA * eps
    # pathwise: d/dmu (mu + sigma eps)^2 = 2 z
    torch.testing.assert_close(
        pathwise_samples(square, MU, SIGMA, eps), 2 * z, rtol=1e-14, atol=1e-14
    )
    # score: f(z) * d/dmu log N(z; mu, sigma^2) = f(z) (z - mu) / sigma^2
    torch.testing.assert_close(
        score_function_samples(square, MU, SIGMA, eps),
        z**2 * (z - MU) / SIGMA**2,
        rtol=1e-13,
        atol=1e-13,
    )
    torch.testing.assert_close(
        score_function_samples(square, MU, SIGMA, eps, baseline=1.5),
        (z**2 - 1.5) * (z - MU) / SIGMA**2,
        rtol=1e-13,
        atol=1e-13,
    )
    # leave-one-out: draw i uses the mean of f over the other draws of its own estimate
    f = z[..., 0] ** 2
    others = (f.sum(-1, keepdim=True) - f) / 4
    torch.testing.assert_close(
        score_function_samples(square, MU, SIGMA, eps, baseline="leave-one-out"),
        ((f - others) * (z[..., 0] - MU) / SIGMA**2).unsqueeze(-1),
        rtol=1e-13,
        atol=1e-13,
    )


@pytest.mark.parametrize("estimator", ["pathwise", "score", "score_baseline"])
def test_estimators_are_unbiased_for_the_square(estimator):
    est = _estimates(estimator, k=4, trials=20_000, seed=1)
    se = est.std(0) / math.sqrt(len(est))
    assert (est.mean(0) - square_exact_gradient(MU, SIGMA)).abs().item() < 4 * se.item()


@pytest.mark.parametrize("estimator", ["pathwise", "score", "score_baseline"])
def test_estimators_are_unbiased_for_a_decoder_loss(estimator):
    f, mean, sigma = _decoder_objective()
    exact = quadrature_gradient(f, mean, sigma, num_nodes=40)
    est = _estimates(estimator, k=8, trials=4_000, seed=2, f=f, mean=mean, sigma=sigma)
    se = est.std(0) / math.sqrt(len(est))
    assert ((est.mean(0) - exact).abs() < 4 * se).all()


def test_quadrature_is_exact_for_the_square_and_agrees_with_a_huge_sample():
    mean, sigma = torch.tensor([0.7, -1.2], dtype=F64), torch.tensor([0.4, 1.5], dtype=F64)
    torch.testing.assert_close(
        quadrature_gradient(square, mean, sigma, num_nodes=5), 2 * mean, rtol=1e-12, atol=1e-12
    )
    f, mean, sigma = _decoder_objective()
    est = _estimates("pathwise", k=200_000, trials=1, seed=3, f=f, mean=mean, sigma=sigma)[0]
    per_draw = pathwise_samples(
        f,
        mean,
        sigma,
        torch.randn(1, 200_000, 2, generator=torch.Generator().manual_seed(3), dtype=F64),
    )[0]
    se = per_draw.std(0) / math.sqrt(200_000)
    assert ((est - quadrature_gradient(f, mean, sigma)).abs() < 4 * se).all()


@pytest.mark.parametrize("k", [1, 10, 100])
def test_pathwise_variance_is_four_sigma_squared_over_k(k):
    # The draws 2(mu + sigma eps) are Gaussian, so the sample variance has standard error
    # var * sqrt(2 / (T - 1)).
    trials = 20_000
    var = _estimates("pathwise", k, trials, seed=4).var(0).item()
    expected = 4 * SIGMA.item() ** 2 / k
    assert abs(var - expected) < 4 * expected * math.sqrt(2 / (trials - 1))


@pytest.mark.parametrize("k,baseline", [(1, 0.0), (10, 0.0), (50, 0.0), (10, 1.64)])
def test_score_function_variance_matches_its_closed_form_over_k(k, baseline):
    trials = 12_000
    if baseline:
        g = torch.Generator().manual_seed(5)
        eps = torch.randn(trials, k, 1, generator=g, dtype=F64)
        est = score_function_samples(square, MU, SIGMA, eps, baseline=baseline).mean(-2)
    else:
        est = _estimates("score", k, trials, seed=5)
    var, var_se = _variance_and_se(est)
    expected = square_per_sample_variance(MU.item(), SIGMA.item(), "score", baseline=baseline) / k
    assert abs(var.item() - expected) < 4 * var_se.item()
    assert var_se.item() < 0.2 * expected  # tight enough to mean something


@pytest.mark.parametrize("mu,sigma,k", [(1.0, 1.0, 2), (1.0, 1.0, 3), (-0.5, 0.5, 2), (2.0, 0.5, 4)])
def test_the_leave_one_out_variance_matches_its_closed_form(mu, sigma, k):
    # Monte Carlo of the k-draw estimate against k Var = V_c + (Var f / sigma^2 + g^2) / (k - 1)
    mean, sd = torch.tensor([mu], dtype=F64), torch.tensor([sigma], dtype=F64)
    var, var_se = _variance_and_se(
        _estimates("score_baseline", k, 40_000, seed=7, mean=mean, sigma=sd))
    expected = square_leave_one_out_variance(mu, sigma, k) / k
    assert abs(var.item() - expected) < 4 * var_se.item()
    # ... and it tells the formula from its limit, the constant baseline E f = mu^2 + sigma^2
    limit = square_per_sample_variance(mu, sigma, "score", baseline=mu**2 + sigma**2) / k
    assert 4 * var_se.item() < (expected - limit) / 2


def test_the_leave_one_out_variance_at_mu_1_sigma_1_is_18_plus_10_over_k_minus_1():
    # chapter 04's sentence; the constant baseline's 18 is the limit
    for k in (2, 3, 10, 1000):
        assert square_leave_one_out_variance(1.0, 1.0, k) == pytest.approx(18 + 10 / (k - 1))
    ks = torch.tensor([2.0, 5.0], dtype=F64)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        square_leave_one_out_variance(1.0, 1.0, ks)
    arrays = square_leave_one_out_variance([0.0, 1.0], [1.0, 1.0], 2)
    assert arrays.tolist() == pytest.approx([12.0, 28.0])


def test_closed_form_variances_at_mu_1_sigma_1():
    assert square_per_sample_variance(1.0, 1.0, "pathwise") == 4.0
    assert (
        square_per_sample_variance(1.0, 1.0, "score") == 30.0
    )  # mu^4/sigma^2 + 14 mu^2 + 15 sigma^2
    assert (
        square_per_sample_variance(1.0, 1.0, "score", baseline=2.0) == 18.0
    )  # baseline E f = mu^2 + sigma^2
    assert (
        square_per_sample_variance(1.0, 1.0, "score", baseline=4.0) == 14.0
    )  # the best constant, mu^2 + 3 sigma^2


def test_score_function_variance_is_larger_on_both_objectives():
    v_path, _ = _variance_and_se(_estimates("pathwise", 10, 4_000, seed=6))
    v_score, _ = _variance_and_se(_estimates("score", 10, 4_000, seed=6))
    assert v_score.item() > 3 * v_path.item()  # closed forms: 44.56 / 2.56 = 17.4
    f, mean, sigma = _decoder_objective()
    v_path = _estimates("pathwise", 10, 2_000, seed=7, f=f, mean=mean, sigma=sigma).var(0)
    v_base = _estimates("score_baseline", 10, 2_000, seed=7, f=f, mean=mean, sigma=sigma).var(0)
    v_score = _estimates("score", 10, 2_000, seed=7, f=f, mean=mean, sigma=sigma).var(0)
    assert (v_score > v_base).all() and (v_base > v_path).all()


def test_variance_falls_like_one_over_k_for_independent_draws():
    # (Not for the leave-one-out baseline: its draws share the other draws' values, so k * Var
    # falls with k.)
    ks = torch.tensor([1.0, 10.0, 100.0], dtype=F64)
    result = variance_experiment(
        square,
        MU,
        SIGMA,
        sample_sizes=(1, 10, 100),
        num_trials=6_000,
        seed=8,
        estimators=("pathwise", "score"),
    )
    for name, stats in result.stats.items():
        scaled = stats["variance"][:, 0] * ks  # k * Var: constant if Var ~ 1/k
        scaled_se = stats["variance_se"][:, 0] * ks
        for i in range(1, 3):
            assert abs(scaled[i] - scaled[0]) < 4 * math.hypot(scaled_se[i], scaled_se[0]), name


def test_variance_experiment_is_seeded_and_plots():
    kwargs = dict(
        sample_sizes=(1, 5), num_trials=200, seed=3, exact_gradient=square_exact_gradient(MU, SIGMA)
    )
    a = variance_experiment(square, MU, SIGMA, **kwargs)
    b = variance_experiment(square, MU, SIGMA, **kwargs)
    for name in a.stats:
        torch.testing.assert_close(
            a.stats[name]["variance"], b.stats[name]["variance"], equal_nan=True
        )
    assert torch.isnan(
        a.stats["score_baseline"]["mean"][0]
    ).all()  # no leave-one-out baseline with k = 1
    fig = plot_variance(
        a, closed_form={"pathwise": 4 * 0.64, "score_baseline": lambda k: 10.0 + k}
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    # the bands: a number is variance / k at every k; a function of k only where it was measured
    bands = [line for line in fig.axes[0].get_lines() if line.get_linewidth() == 7]
    drawn = [(line.get_xdata().tolist(), line.get_ydata().tolist()) for line in bands]
    assert ([1.0, 5.0], [2.56, 2.56 / 5]) in [
        (x, pytest.approx(y)) for x, y in drawn if len(x) == 2
    ]
    assert ([5.0], [15.0 / 5]) in drawn


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda: pathwise_samples(
                square, torch.tensor(1.0, dtype=F64), 1.0, torch.zeros(2, 1, dtype=F64)
            ),
            ValueError,
            r"mean must have shape \(d,\)",
        ),
        (
            lambda: pathwise_samples(square, MU, -1.0, torch.zeros(2, 1, dtype=F64)),
            ValueError,
            "strictly positive",
        ),
        (
            lambda: pathwise_samples(square, MU, SIGMA, torch.zeros(2, 3, dtype=F64)),
            ValueError,
            "eps must have shape",
        ),
        (
            lambda: score_function_samples(
                square, MU, SIGMA, torch.zeros(1, 1, dtype=F64), baseline="leave-one-out"
            ),
            ValueError,
            "k >= 2",
        ),
        (
            lambda: score_function_samples(
                square, MU, SIGMA, torch.zeros(2, 1, dtype=F64), baseline="mean"
            ),
            ValueError,
            "baseline must be",
        ),
        (
            lambda: gradient_estimates(
                square, MU, SIGMA, estimator="reinforce", num_samples=1, num_trials=1
            ),
            ValueError,
            "estimator must be one of",
        ),
        (
            lambda: gradient_estimates(
                square, MU, SIGMA, estimator="score", num_samples=0, num_trials=1
            ),
            ValueError,
            "num_samples must be a positive integer",
        ),
        (lambda: quadrature_gradient(square, torch.zeros(4, dtype=F64), 1.0), ValueError, "d <= 3"),
        (lambda: DecoderLoss(torch.zeros(2, 2)), ValueError, "flat image"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_computation_graph_figure_names_every_node_and_marks_the_stochastic_ones():
    from vae_lesson.infra.diagrams import reparameterization_graph

    fig = reparameterization_graph()
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    for label in (
        "mathbf{x}",
        "encoder",
        "boldsymbol{\\mu}",
        "log\\boldsymbol{\\sigma}^2",
        "varepsilon} \\sim",
        "mathbf{z} \\sim",
        "mathbf{z} =",
        "decoder",
        "loss",
    ):
        assert label in texts, label
    # exactly one stochastic (dashed, orange) node per panel: z before the trick, eps after it
    dashed = [
        p
        for ax in fig.axes
        for p in ax.patches
        if type(p).__name__ == "FancyBboxPatch" and p.get_linestyle() != "-"
    ]
    assert len(dashed) == 2


def test_variance_table_and_ratio_match_the_stats():
    from vae_lesson.chapters.gradient_variance import variance_ratio, variance_table

    result = variance_experiment(square, MU, SIGMA, sample_sizes=(1, 10), num_trials=500, seed=9)
    ratio = result.stats["score"]["variance"] / result.stats["pathwise"]["variance"]
    geo, lo, hi = variance_ratio(result, "score")
    assert geo == pytest.approx(math.sqrt(ratio[0, 0].item() * ratio[1, 0].item()))
    assert (lo, hi) == (pytest.approx(ratio.min().item()), pytest.approx(ratio.max().item()))
    lines = variance_table(result).splitlines()
    means, kvars = lines[2:4], lines[7:9]
    assert float(kvars[1].split()[1]) == pytest.approx(
        10 * result.stats["pathwise"]["variance"][1, 0].item(), rel=1e-3
    )
    assert float(means[1].split()[1]) == pytest.approx(
        result.stats["pathwise"]["mean"][1, 0].item(), abs=1e-4
    )
    assert (
        means[0].split()[-1] == "-" and kvars[0].split()[-1] == "-"
    )  # no leave-one-out baseline with k = 1


def test_the_experiment_runs_the_estimators_it_is_given():
    # A chapter passes its own estimators; an edited one changes the results.
    calls = []

    def doubled_pathwise(f, mean, sigma, eps):
        calls.append("pathwise")
        return 2 * pathwise_samples(f, mean, sigma, eps)

    def my_score_function(f, mean, sigma, eps, baseline=None):
        calls.append(baseline)
        return score_function_samples(f, mean, sigma, eps, baseline)

    kwargs = dict(sample_sizes=(2,), num_trials=400, seed=1)
    plain = variance_experiment(square, MU, SIGMA, **kwargs)
    edited = variance_experiment(
        square, MU, SIGMA, **kwargs, pathwise=doubled_pathwise, score_function=my_score_function
    )
    assert set(calls) == {"pathwise", None, "leave-one-out"}
    torch.testing.assert_close(
        edited.stats["pathwise"]["mean"], 2 * plain.stats["pathwise"]["mean"]
    )
    torch.testing.assert_close(edited.stats["score"]["mean"], plain.stats["score"]["mean"])
    with pytest.raises(TypeError, match="score_function must be a function"):
        variance_experiment(square, MU, SIGMA, **kwargs, score_function="score")
    with pytest.raises(ValueError, match="pathwise must return one gradient per draw"):
        variance_experiment(square, MU, SIGMA, **kwargs, pathwise=lambda f, m, s, eps: eps.sum())
    with pytest.raises(TypeError, match="pathwise must be a function"):
        gradient_estimates(
            square, MU, SIGMA, estimator="pathwise", num_samples=1, num_trials=1, pathwise=None
        )
