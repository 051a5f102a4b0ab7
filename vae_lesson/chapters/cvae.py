"""The conditional VAE: the article's MLP VAE told which digit it is looking at (chapter 07,
notebooks/07_cvae.ipynb).

Chapter 07 defines what this module keeps for later chapters: :func:`one_hot` and
:func:`with_labels` (a training row is an image's pixels followed by its one-hot label, so the
book's loop trains the model unchanged) and :class:`CVAE` (Sohn et al. 2015; Kingma et al. 2014's
M2 without its unlabelled part): the one-hot label is concatenated to the encoder's input x and to
the decoder's input z, and the loss is the negative conditional ELBO
-E_q(z|x,y)[log p(x | z, y)] + C KL(q(z | x, y) || p(z)). The rest is the chapter's plumbing: the
CVAE seen as a model of its rows (:class:`GivenLabels`, for the -ELBO and IWAE estimates of
log p(x | y)), the share of samples a classifier labels as the class asked for, and the figures.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..core.initializers import xavier_init_
from ..core.losses import bernoulli_nll, gaussian_kl_divergence
from ..core.reparameterize import gaussian
from ..core.vae import VAELoss
from ..infra.checkpoint import from_keywords, model_config, register_model
from ..infra.checks import (
    check_class_labels,
    check_codes,
    check_images,
    check_kl_weight,
    check_label_rows,
    check_number,
    check_pixels,
    check_positive_int,
    check_tensor,
)
from ..infra.plots import COLUMN_WIDTH, OKABE_ITO, legend_below
from .judge import class_probabilities

__all__ = [
    "one_hot",
    "with_labels",
    "CVAE",
    "GivenLabels",
    "requested_class_share",
    "plot_kl_per_dimension",
    "label_from_codes",
    "plot_code_maps",
]


# ----------------------------------------------------------------------------------------------
# Defined in chapter 07: the conditional VAE
# ----------------------------------------------------------------------------------------------


def one_hot(labels, n_classes=10):
    """Integer class labels (batch,) -> float one-hot rows
    (batch, n_classes).

    Defined in chapter 07 (notebooks/07_cvae.ipynb).
    """
    check_positive_int(n_classes, "n_classes")
    labels = check_class_labels(labels, n_classes)
    return F.one_hot(labels, n_classes).float()


def with_labels(x, labels, n_classes=10):
    """Images x (batch, n_pixels) and their labels (batch,) ->
    training rows (batch, n_pixels + n_classes): the pixels,
    then the one-hot label.

    Defined in chapter 07 (notebooks/07_cvae.ipynb).
    """
    check_tensor(x, "x")
    if x.dim() != 2:
        raise ValueError(
            f"x must be flat images of shape (batch, n_pixels), got {tuple(x.shape)}; "
            "flatten them with x.reshape(len(x), -1)"
        )
    y = one_hot(labels, n_classes).to(x.dtype)
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} images but labels has {len(y)} labels: one each")
    return torch.cat([x, y.to(x.device)], dim=1)


class CVAE(nn.Module):
    """The article's MLP VAE, conditioned on a class: the one-hot
    label y joins the encoder's input x and the decoder's input z.

    A training row holds x and y side by side (with_labels);
    loss splits it again. Defined in chapter 07
    (notebooks/07_cvae.ipynb).
    """

    def __init__(self, n_pixels, n_classes, n_latent, n_hidden, act_func=torch.tanh):
        super().__init__()
        self.config = model_config(
            n_pixels=n_pixels,
            n_classes=n_classes,
            n_latent=n_latent,
            n_hidden=n_hidden,
            act_func=act_func,
        )
        self.n_pixels, self.n_classes = n_pixels, n_classes
        self.n_in = n_pixels + n_classes  # the width of a row
        self.n_latent = n_latent
        self.act_func = act_func
        # encoder: (x, y) -> h1 -> h2 -> (mean, ln_var)
        self.le1 = nn.Linear(n_pixels + n_classes, n_hidden)
        self.le2 = nn.Linear(n_hidden, n_hidden)
        self.le3_mu = nn.Linear(n_hidden, n_latent)
        self.le3_ln_var = nn.Linear(n_hidden, n_latent)
        # decoder: (z, y) -> h1 -> h2 -> one logit per pixel
        self.ld1 = nn.Linear(n_latent + n_classes, n_hidden)
        self.ld2 = nn.Linear(n_hidden, n_hidden)
        self.ld3 = nn.Linear(n_hidden, n_pixels)
        xavier_init_(self)  # U(-a, a) weights, zero biases

    def split(self, rows):
        """Training rows -> images x and one-hot labels y."""
        check_images(rows, self, "rows")  # (batch, n_in), [0, 1]
        return rows[:, : self.n_pixels], rows[:, self.n_pixels :]

    def encode(self, x, y):
        """x: (batch, n_pixels), y: (batch, n_classes) -> mean
        and ln_var of q(z | x, y), each (batch, n_latent)."""
        check_pixels(x, self)
        check_label_rows(y, self, len(x))
        h1 = self.act_func(self.le1(torch.cat([x, y], dim=1)))
        h2 = self.act_func(self.le2(h1))
        return self.le3_mu(h2), self.le3_ln_var(h2)

    def decode(self, z, y, sigmoid=True):
        """z: (batch, n_latent), y: (batch, n_classes) -> pixel
        probabilities (batch, n_pixels), or logits."""
        check_codes(z, self)  # shape, dtype, device, finite
        check_label_rows(y, self, len(z))
        h1 = self.act_func(self.ld1(torch.cat([z, y], dim=1)))
        h2 = self.act_func(self.ld2(h1))
        logits = self.ld3(h2)
        return torch.sigmoid(logits) if sigmoid else logits

    def forward(self, rows):
        """Reconstruct each row's image from the mean of q."""
        x, y = self.split(rows)
        mean, _ = self.encode(x, y)
        return self.decode(mean, y)

    def loss(self, rows, C=1.0, k=1):
        """-𝓛 of log p(x | y) for a batch of rows, in two terms."""
        check_kl_weight(C)
        check_positive_int(k, "k")
        x, y = self.split(rows)
        mean, ln_var = self.encode(x, y)
        batch_size = len(x)
        reconstruction = 0.0
        for _ in range(k):  # k samples of z per image
            z = gaussian(mean, ln_var)  # mean + sigma * eps
            logits = self.decode(z, y, sigmoid=False)
            reconstruction += bernoulli_nll(x, logits) / (k * batch_size)
        kl = C * gaussian_kl_divergence(mean, ln_var) / batch_size
        return VAELoss(reconstruction + kl, reconstruction, kl)


register_model(CVAE, from_config=from_keywords(CVAE))


# ----------------------------------------------------------------------------------------------
# The chapter's plumbing: measuring and drawing
# ----------------------------------------------------------------------------------------------


class GivenLabels(nn.Module):
    """A CVAE read as a model of its rows (pixels, then the one-hot label), so that the book's
    estimators written for a VAE, :func:`vae_lesson.chapters.iwae.neg_elbo` and
    :func:`~vae_lesson.chapters.iwae.iwae_bound`, measure log p(x | y) of each row.

    ``encode(rows)`` is q(z | x, y) and ``log_likelihood(rows, z)`` is log p(x | z, y) summed
    over the pixels, for codes z of shape (K, batch, n_latent): (K, batch). The CVAE itself is
    not copied: its weights are this module's.
    """

    def __init__(self, cvae: CVAE):
        super().__init__()
        # any class with CVAE's methods: a chapter's own definition of it works too
        if not isinstance(cvae, nn.Module) or not all(
            callable(getattr(cvae, method, None)) for method in ("split", "encode", "decode")
        ):
            raise TypeError(
                "cvae must be a conditional VAE with split, encode(x, y) and decode(z, y) "
                f"methods, such as CVAE, got {type(cvae).__name__}"
            )
        self.cvae = cvae

    def encode(self, rows):
        return self.cvae.encode(*self.cvae.split(rows))

    def log_likelihood(self, rows, z):
        x, y = self.cvae.split(rows)
        check_tensor(z, "z")
        if z.dim() != 3 or z.shape[1] != len(x):
            raise ValueError(
                f"z must have shape (K, {len(x)}, {self.cvae.n_latent}): K codes for each of "
                f"the {len(x)} rows, got {tuple(z.shape)}"
            )
        labels = y.expand(len(z), -1, -1)  # the row's label for each of its K codes
        logits = self.cvae.decode(z.flatten(0, 1), labels.flatten(0, 1), sigmoid=False)
        nll = bernoulli_nll(x.expand(len(z), -1, -1).flatten(0, 1), logits, reduce="no")
        return -nll.sum(-1).reshape(len(z), len(x))


def requested_class_share(judge: nn.Module, images, labels, threshold: float = 0.9) -> dict:
    """How often a classifier trained on real images sees the class that was asked for.

    ``images`` (n, 784) or (n, 28, 28), ``labels`` (n,) the classes asked for. Returns the share
    labelled with that class (the classifier's most probable class), the share labelled with it
    with probability at least ``threshold``, and the mean probability of the asked-for class.
    """
    check_number(threshold, "threshold", minimum=0)
    if threshold > 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    probabilities = class_probabilities(judge, images)
    labels = check_class_labels(labels, probabilities.shape[1])
    if len(labels) != len(probabilities):
        raise ValueError(
            f"images has {len(probabilities)} images but labels has {len(labels)}: one each"
        )
    asked = probabilities[torch.arange(len(labels)), labels]
    correct = probabilities.argmax(dim=1) == labels
    return {
        "labelled_as_asked": float(correct.float().mean()),
        "confidently_as_asked": float((correct & (asked >= threshold)).float().mean()),
        "mean_probability": float(asked.mean()),
    }


def plot_kl_per_dimension(kl_by_model: dict) -> Figure:
    """Bars of each model's KL per latent dimension (nats), each model's dimensions sorted from
    the largest KL down, side by side."""
    if not kl_by_model:
        raise ValueError("kl_by_model is empty: give at least one model's KL per dimension")
    fig = Figure(figsize=(COLUMN_WIDTH, 3.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(kl_by_model)
    colours = OKABE_ITO[:3] + OKABE_ITO[4:5]
    for i, (name, kl) in enumerate(kl_by_model.items()):
        values = np.sort(np.asarray(torch.as_tensor(kl).detach().cpu(), dtype=float))[::-1]
        positions = np.arange(1, len(values) + 1) + (i - (len(kl_by_model) - 1) / 2) * width
        total = values.sum()
        ax.bar(
            positions,
            values,
            width=width,
            color=colours[i % len(colours)],
            label=f"{name}: {total:.1f} nats in all",
        )
    ax.set_xlabel("latent dimension, from the largest KL down")
    ax.set_ylabel("KL(q(z_j | ·) || N(0, 1)), nats")
    ax.set_title("Which dimensions carry information")
    legend_below(ax)
    return fig


def label_from_codes(codes_train, y_train, codes_test, y_test, k: int = 10) -> float:
    """How well the codes alone tell the digit: the test accuracy of a k-nearest-neighbour
    classifier fitted to the training codes (0.1 is chance for ten balanced classes)."""
    from sklearn.neighbors import KNeighborsClassifier

    check_positive_int(k, "k")
    arrays = []
    for name, value in (("codes_train", codes_train), ("codes_test", codes_test)):
        check_tensor(value, name)
        if value.dim() != 2:
            raise ValueError(f"{name} must have shape (n, d), got {tuple(value.shape)}")
        arrays.append(value.detach().cpu().numpy())
    train_labels = check_class_labels(y_train, name="y_train", n=len(arrays[0])).numpy()
    test_labels = check_class_labels(y_test, name="y_test", n=len(arrays[1])).numpy()
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_labels))).fit(arrays[0], train_labels)
    return float(knn.score(arrays[1], test_labels))


def plot_code_maps(codes: dict, labels, classes=None) -> Figure:
    """The 2-D codes of several models side by side, coloured by class (one legend, on the
    right)."""
    from ..infra.plots import plot_latent_scatter

    if not codes:
        raise ValueError("codes is empty: give at least one model's (n, 2) codes")
    fig = Figure(figsize=(COLUMN_WIDTH, 3.9), layout="constrained")
    axes = fig.subplots(1, len(codes), squeeze=False)[0]
    for ax, (name, z) in zip(axes, codes.items()):
        plot_latent_scatter(z, labels, classes=classes, title=name, ax=ax)
    for ax in axes[:-1]:
        ax.get_legend().remove()
    return fig
