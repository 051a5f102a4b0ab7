"""Judging generated images with a classifier trained on real ones (introduced in chapter 01, used
again in chapters 06, 07 and 08).

A sample "looks like" an image of the data set when a classifier trained on real images assigns it
to one class with confidence: :func:`confident_share` is the share of images whose largest class
probability is at least ``threshold`` (0.9 by default). Real test images give the ceiling, since
even they are not all classified with confidence; blurred or hybrid samples score lower. The
classifier is :class:`~vae_lesson.chapters.augment.SmallCNN`, trained by :func:`train_judge`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..infra.checks import check_number, check_positive_int, check_seed
from .augment import SmallCNN, _as_images, _check_classifier_data, accuracy, train_classifier

__all__ = ["train_judge", "class_probabilities", "confident_share"]


def train_judge(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int = 10,
    num_epochs: int = 8,
    seed: int = 0,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
) -> tuple[nn.Module, float | None]:
    """A :class:`SmallCNN` trained on real images ``x`` (n, 28, 28) with labels ``y``, in eval mode.

    Seeded (weights and shuffling), so the same data give the same judge. Returns the classifier
    and its accuracy on ``x_test``, ``y_test`` (None without them). About 6 s for 4,000 images on
    one CPU thread.
    """
    check_positive_int(num_epochs, "num_epochs")
    check_seed(seed)
    torch.manual_seed(seed)
    judge = SmallCNN(n_classes)
    x, y = _check_classifier_data(judge, x, y)
    train_classifier(judge, x, y, num_epochs=num_epochs, batch_size=64, lr=3e-3, seed=seed)
    judge.eval()
    test_accuracy = None if x_test is None else accuracy(judge, x_test, y_test)
    return judge, test_accuracy


@torch.inference_mode()
def class_probabilities(
    judge: nn.Module, images: torch.Tensor, batch_size: int = 1000
) -> torch.Tensor:
    """The judge's class probabilities for ``images`` ((n, 28, 28), (n, 1, 28, 28) or (n, 784)
    values in [0, 1]): (n, n_classes), each row summing to 1."""
    if not isinstance(judge, nn.Module):
        raise TypeError(f"judge must be a torch.nn.Module, got {type(judge).__name__}")
    check_positive_int(batch_size, "batch_size")
    images = _as_images(images, "images")
    if len(images) == 0:
        raise ValueError("images is empty: there is nothing to judge")
    was_training = judge.training
    judge.eval()
    starts = range(0, len(images), batch_size)
    logits = torch.cat([judge(images[s : s + batch_size]) for s in starts])
    judge.train(was_training)
    return torch.softmax(logits, dim=1)


def confident_share(
    judge: nn.Module, images: torch.Tensor, threshold: float = 0.9, batch_size: int = 1000
) -> float:
    """The share of ``images`` that ``judge`` assigns to one class with probability at least
    ``threshold``, in [0, 1]."""
    check_number(threshold, "threshold", minimum=0)
    if threshold > 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    probabilities = class_probabilities(judge, images, batch_size)
    return float((probabilities.max(dim=1).values >= threshold).float().mean())
