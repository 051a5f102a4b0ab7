"""vae_lesson.chapters.judge: the share of images a classifier labels with confidence."""

import math

import pytest
import torch
from torch import nn

import vae_lesson as vl
from vae_lesson.chapters.judge import class_probabilities, confident_share, train_judge


class FixedLogits(nn.Module):
    """A 'classifier' whose logits are given: image i gets row i of ``logits``."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.n_classes = logits.shape[1]
        self.weight = nn.Parameter(torch.zeros(1))  # a parameter, so checks see a float32 model

    def forward(self, x):
        index = (x.flatten(1)[:, 0] * 255).round().long()  # the first pixel says which row
        return self.logits[index]


def _images(n):
    x = torch.zeros(n, 28, 28)
    x[:, 0, 0] = torch.arange(n) / 255
    return x


def test_the_share_counts_the_images_above_the_threshold():
    # probabilities 0.95, 0.5 (two classes tied) and exp(3)/(exp(3)+1) = 0.9526 of the largest class
    logits = torch.tensor([[math.log(19.0), 0.0], [1.0, 1.0], [3.0, 0.0]])
    judge = FixedLogits(logits)
    probabilities = class_probabilities(judge, _images(3))
    torch.testing.assert_close(probabilities.sum(1), torch.ones(3))
    torch.testing.assert_close(probabilities[0, 0], torch.tensor(0.95))
    assert confident_share(judge, _images(3), threshold=0.9) == pytest.approx(2 / 3)
    assert confident_share(judge, _images(3), threshold=0.951) == pytest.approx(1 / 3)
    assert confident_share(judge, _images(3), threshold=0.5) == 1.0
    assert confident_share(judge, _images(3), threshold=0.0) == 1.0


def test_batches_do_not_change_the_answer():
    logits = torch.randn(7, 10, generator=torch.Generator().manual_seed(0)) * 3
    judge = FixedLogits(logits)
    whole = class_probabilities(judge, _images(7))
    torch.testing.assert_close(class_probabilities(judge, _images(7), batch_size=2), whole)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), True, "0.9"])
def test_a_threshold_must_be_a_probability(threshold):
    judge = FixedLogits(torch.zeros(3, 2))
    with pytest.raises((ValueError, TypeError), match="threshold"):
        confident_share(judge, _images(3), threshold=threshold)


def test_nothing_to_judge_is_refused():
    with pytest.raises(ValueError, match="empty"):
        confident_share(FixedLogits(torch.zeros(1, 2)), torch.zeros(0, 28, 28))
    with pytest.raises(TypeError, match="judge must be a torch.nn.Module"):
        confident_share(lambda x: x, _images(1))


def test_a_trained_judge_is_confident_on_real_digits_and_not_on_noise():
    digits = vl.load_digits(verbose=False)  # 8x8 digits, scaled up to 28x28 below
    def big(x):
        return torch.nn.functional.interpolate(x.reshape(-1, 1, 8, 8), size=28, mode="bilinear").reshape(-1, 28, 28)
    judge, test_accuracy = train_judge(big(digits.x_train_flat), digits.y_train, num_epochs=4,
                                       x_test=big(digits.x_test_flat), y_test=digits.y_test)
    assert test_accuracy > 0.85
    real = confident_share(judge, big(digits.x_test_flat))
    noise = confident_share(judge, torch.rand(200, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert real > 0.6 and real > noise + 0.3
    # the same seed trains the same judge
    again, _ = train_judge(big(digits.x_train_flat), digits.y_train, num_epochs=4)
    torch.testing.assert_close(class_probabilities(again, big(digits.x_test_flat)),
                               class_probabilities(judge, big(digits.x_test_flat)))
