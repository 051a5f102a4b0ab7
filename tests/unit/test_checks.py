"""The finiteness check decides with one sum, and falls back to the exact test only when the sum is not finite."""

import pytest
import torch

from vae_lesson.infra.checks import NonFiniteError, check_finite


def test_finite_entries_whose_sum_overflows_pass():
    check_finite(torch.full((4,), 3e38), "x")  # the float32 sum is inf; every entry is finite
    check_finite(torch.tensor([6e4, 6e4], dtype=torch.float16), "x")


@pytest.mark.parametrize("bad, count", [([1.0, float("nan")], 1), ([float("inf"), -float("inf"), 2.0], 2),
                                        ([float("-inf")], 1)])
def test_nan_and_infinite_entries_are_counted_and_named(bad, count):
    with pytest.raises(NonFiniteError, match=f"x contains {count} NaN or infinite"):
        check_finite(torch.tensor(bad), "x")
