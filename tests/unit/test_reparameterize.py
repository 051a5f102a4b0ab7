"""The reparameterized Gaussian sample: values, gradients, and its distribution."""

import math

import pytest
import torch

from vae_lesson import gaussian


def test_sample_is_mean_plus_sigma_times_eps():
    mean = torch.tensor([[0.5, -1.0]])
    ln_var = torch.tensor([[math.log(4.0), 0.0]])
    eps = torch.tensor([[1.0, -2.0]])
    torch.testing.assert_close(gaussian(mean, ln_var, eps), torch.tensor([[2.5, -3.0]]))


def test_gradients_flow_to_mean_and_ln_var():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 3, generator=g, requires_grad=True)
    ln_var = torch.randn(4, 3, generator=g, requires_grad=True)
    z, eps = gaussian(mean, ln_var, return_eps=True)
    weights = torch.randn(4, 3, generator=g)
    (z * weights).sum().backward()
    torch.testing.assert_close(mean.grad, weights)  # dz/dmean = 1
    torch.testing.assert_close(ln_var.grad, weights * 0.5 * torch.exp(0.5 * ln_var.detach()) * eps)


def test_samples_have_the_requested_mean_and_variance():
    n = 200_000
    mean = torch.full((n, 2), 1.5)
    ln_var = torch.stack([torch.full((n,), math.log(0.25)), torch.full((n,), math.log(9.0))], dim=1)
    torch.manual_seed(0)
    z = gaussian(mean, ln_var).double()
    torch.testing.assert_close(z.mean(0), torch.tensor([1.5, 1.5], dtype=torch.float64), atol=4 * 3 / math.sqrt(n), rtol=0)
    # Standard error of a sample variance is about var * sqrt(2 / n).
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 9.0], dtype=torch.float64), rtol=4 * math.sqrt(2 / n), atol=0)


def test_seeded_draws_repeat():
    mean, ln_var = torch.zeros(5, 3), torch.zeros(5, 3)
    torch.manual_seed(7)
    a = gaussian(mean, ln_var)
    torch.manual_seed(7)
    assert torch.equal(a, gaussian(mean, ln_var))


@pytest.mark.parametrize("args,message", [
    ((torch.zeros(2, 3), torch.zeros(3, 2)), "same shape"),
    ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 2)), "mean and eps must have the same shape"),
    ((torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, 3)), "floating-point"),
])
def test_bad_inputs(args, message):
    with pytest.raises((ValueError, TypeError), match=message):
        gaussian(*args)
