"""The KL and Bernoulli terms against torch.distributions, Monte Carlo and direct formulas."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_lesson import bernoulli_nll, gaussian_kl_divergence


def _random_gaussians(shape=(7, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * 2, torch.randn(shape, generator=g, dtype=torch.float64)


def test_kl_matches_torch_distributions_elementwise():
    mean, ln_var = _random_gaussians()
    expected = kl_divergence(Normal(mean, torch.exp(0.5 * ln_var)), Normal(torch.zeros_like(mean), torch.ones_like(mean)))
    torch.testing.assert_close(gaussian_kl_divergence(mean, ln_var, reduce="no"), expected, rtol=1e-12, atol=1e-12)


def test_kl_reductions_sum_every_element_and_mean_every_element():
    mean, ln_var = _random_gaussians((4, 3))
    per_element = gaussian_kl_divergence(mean, ln_var, reduce="no")
    assert per_element.shape == (4, 3)
    # "sum" is over the batch too: it is not divided by the batch size.
    torch.testing.assert_close(gaussian_kl_divergence(mean, ln_var), per_element.sum())
    torch.testing.assert_close(gaussian_kl_divergence(mean, ln_var, reduce="mean"), per_element.sum() / 12)


def test_kl_is_zero_only_at_the_prior():
    zero = torch.zeros(3, 2, dtype=torch.float64)
    assert gaussian_kl_divergence(zero, zero).item() == 0.0
    mean, ln_var = _random_gaussians()
    assert (gaussian_kl_divergence(mean, ln_var, reduce="no") > 0).all()


@pytest.mark.parametrize("mean,ln_var", [(0.0, 0.0), (1.5, math.log(0.25)), (-2.0, math.log(3.0))])
def test_kl_matches_monte_carlo(mean, ln_var):
    n = 400_000
    g = torch.Generator().manual_seed(1)
    q = Normal(torch.tensor(mean, dtype=torch.float64), torch.tensor(math.exp(0.5 * ln_var), dtype=torch.float64))
    z = q.mean + q.stddev * torch.randn(n, generator=g, dtype=torch.float64)
    log_ratio = q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)  # E_q[log q - log p] = KL(q || p)
    estimate, stderr = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(n)
    closed = gaussian_kl_divergence(torch.tensor([mean], dtype=torch.float64), torch.tensor([ln_var], dtype=torch.float64)).item()
    assert abs(estimate - closed) < 4 * stderr + 1e-12


def test_kl_gradients_match_closed_form():
    mean, ln_var = _random_gaussians()
    mean.requires_grad_(True)
    ln_var.requires_grad_(True)
    gaussian_kl_divergence(mean, ln_var).backward()
    torch.testing.assert_close(mean.grad, mean.detach())
    torch.testing.assert_close(ln_var.grad, 0.5 * (torch.exp(ln_var.detach()) - 1))


def test_bernoulli_nll_matches_the_direct_formula():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 9, generator=g, dtype=torch.float64)  # continuous targets
    y = torch.randn(6, 9, generator=g, dtype=torch.float64) * 3
    p = torch.sigmoid(y)
    direct = -(x * torch.log(p) + (1 - x) * torch.log(1 - p))
    torch.testing.assert_close(bernoulli_nll(x, y, reduce="no"), direct, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bernoulli_nll(x, y), direct.sum(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bernoulli_nll(x, y, reduce="mean"), direct.mean(), rtol=1e-10, atol=1e-12)


def test_bernoulli_nll_matches_torch_bernoulli_on_binary_targets():
    g = torch.Generator().manual_seed(3)
    y = torch.randn(50, 20, generator=g, dtype=torch.float64) * 4
    x = (torch.rand(50, 20, generator=g, dtype=torch.float64) < 0.4).double()
    expected = -Bernoulli(logits=y).log_prob(x)
    torch.testing.assert_close(bernoulli_nll(x, y, reduce="no"), expected, rtol=1e-10, atol=1e-12)


def test_bernoulli_nll_is_stable_for_extreme_logits():
    y = torch.tensor([100.0, 100.0, 100.0, -100.0, -100.0, -100.0], requires_grad=True)
    x = torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 0.5])
    loss = bernoulli_nll(x, y, reduce="no")
    # softplus(y) - x*y: exact values are log1p(exp(-100)) ~ 3.7e-44, 100, 50, ~0, 100, 50.
    torch.testing.assert_close(loss, torch.tensor([0.0, 100.0, 50.0, 0.0, 100.0, 50.0]), atol=1e-6, rtol=1e-6)
    loss.sum().backward()
    torch.testing.assert_close(y.grad, torch.sigmoid(y.detach()) - x)  # d/dy = sigmoid(y) - x, finite


def test_bernoulli_nll_argument_order_is_target_first():
    x = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[2.0, -3.0]])
    swapped = torch.nn.functional.binary_cross_entropy_with_logits(y, x, reduction="sum")
    torch.testing.assert_close(bernoulli_nll(x, y), swapped)


@pytest.mark.parametrize("call,message", [
    (lambda: gaussian_kl_divergence(torch.zeros(2, 3), torch.zeros(2, 4)), "same shape"),
    (lambda: gaussian_kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3), reduce="avg"), "reduce"),
    (lambda: gaussian_kl_divergence(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), "mean must be a floating-point"),
    (lambda: gaussian_kl_divergence([0.0], torch.zeros(1)), "mean must be a torch.Tensor"),
    (lambda: bernoulli_nll(torch.full((2, 3), 255.0), torch.zeros(2, 3)), "x must lie in [0, 1]"),
    (lambda: bernoulli_nll(torch.full((2, 3), -0.1), torch.zeros(2, 3)), "x must lie in [0, 1]"),
    (lambda: bernoulli_nll(torch.full((2, 3), float("nan")), torch.zeros(2, 3)), "x must lie in [0, 1]"),
    (lambda: bernoulli_nll(torch.zeros(2, 3), torch.zeros(3, 2)), "same shape"),
    (lambda: bernoulli_nll(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32)), "y must be a floating-point"),
])
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert message in str(info.value)
