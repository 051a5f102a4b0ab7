"""The conditional VAE of chapter 07: its loss against a direct computation with torch.distributions,
the unconditional VAE as the special case that ignores the label, what training on labelled digits
buys, the labelled rows, the judge's measure against a classifier with known outputs, bad inputs."""

import pytest
import torch
from torch import distributions as D
from torch import nn

import vae_lesson as vl
from vae_lesson.chapters import cvae
from vae_lesson.chapters.cvae import CVAE, one_hot, with_labels


def _rows(n=12, pixels=16, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, pixels, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return x, labels, with_labels(x, labels, classes)


@pytest.mark.parametrize("C, k", [(1.0, 1), (0.5, 3)])
def test_the_loss_is_the_negative_conditional_elbo(double, C, k):
    vl.set_seed(1)
    model = CVAE(16, 4, 3, 8).double()
    x, labels, rows = _rows()
    rows, x = rows.double(), x.double()
    torch.manual_seed(7)
    terms = model.loss(rows, C=C, k=k)
    # the same noise, drawn in the same order, by hand
    torch.manual_seed(7)
    y = nn.functional.one_hot(labels, 4).double()
    h = torch.tanh(model.le2(torch.tanh(model.le1(torch.cat([x, y], 1)))))
    mean, ln_var = model.le3_mu(h), model.le3_ln_var(h)
    q = D.Normal(mean, torch.exp(0.5 * ln_var))
    log_lik = 0.0
    for _ in range(k):
        z = mean + torch.exp(0.5 * ln_var) * torch.randn_like(mean)
        g = torch.tanh(model.ld2(torch.tanh(model.ld1(torch.cat([z, y], 1)))))
        log_lik = log_lik + D.Bernoulli(logits=model.ld3(g), validate_args=False).log_prob(x).sum(1) / k
    kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum(1)
    assert terms.reconstruction.item() == pytest.approx(-log_lik.mean().item(), rel=1e-12)
    assert terms.kl.item() == pytest.approx(C * kl.mean().item(), rel=1e-12)
    assert terms.total.item() == pytest.approx((-log_lik + C * kl).mean().item(), rel=1e-12)


def test_a_cvae_that_ignores_the_label_is_the_unconditional_vae():
    vl.set_seed(0)
    vae = vl.VAE(16, 3, 8)
    model = CVAE(16, 4, 3, 8)
    with torch.no_grad():
        for name, layer in model.named_children():
            source = getattr(vae, name)
            layer.bias.copy_(source.bias)
            layer.weight.zero_()  # the label's columns stay zero
            layer.weight[:, : source.weight.shape[1]] = source.weight
    x, _, _ = _rows()
    for labels in (torch.zeros(12, dtype=torch.long), torch.arange(12) % 4):
        torch.manual_seed(3)
        conditional = model.loss(with_labels(x, labels, 4), k=2)
        torch.manual_seed(3)
        plain = vae.loss(x, k=2)
        for a, b in zip(conditional, plain):
            assert a.item() == pytest.approx(b.item(), rel=1e-6)
        assert torch.allclose(model(with_labels(x, labels, 4)), vae(x), atol=1e-6)


def test_the_label_is_what_the_decoder_draws():
    vl.set_seed(0)
    model = CVAE(16, 4, 3, 8)
    z = torch.randn(5, 3)
    images = [model.decode(z, one_hot(torch.full((5,), c), 4)) for c in range(4)]
    assert not torch.allclose(images[0], images[1])
    mixed = model.decode(z, 0.5 * (one_hot(torch.zeros(5, dtype=torch.long), 4)
                                   + one_hot(torch.ones(5, dtype=torch.long), 4)))
    assert mixed.shape == (5, 16)  # a mixture of labels is a valid input


def test_with_labels_puts_the_one_hot_label_after_the_pixels():
    x = torch.rand(3, 5)
    rows = with_labels(x, torch.tensor([2, 0, 1]), 3)
    assert rows.shape == (3, 8)
    assert torch.equal(rows[:, :5], x)
    assert torch.equal(rows[:, 5:], torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]))
    model = CVAE(5, 3, 2, 4)
    x_back, y_back = model.split(rows)
    assert torch.equal(x_back, x) and torch.equal(y_back, rows[:, 5:])


def test_trained_on_digits_the_label_takes_over_what_the_codes_carried():
    """On sklearn's 8x8 digits, a CVAE and a VAE of the same size trained alike: the CVAE's codes
    carry fewer nats (the KL term), and its conditional bound is lower."""
    digits = vl.load_digits(verbose=False)
    x_train, x_test = digits.x_train_flat, digits.x_test_flat
    rows_train = with_labels(x_train, digits.y_train)
    rows_test = with_labels(x_test, digits.y_test)
    vl.set_seed(0)
    vae = vl.VAE(64, 4, 64)
    vl.train(vae, x_train, num_epochs=25, quiet=True)
    vl.set_seed(0)
    model = CVAE(64, 10, 4, 64)
    history = vl.train(model, rows_train, rows_test, num_epochs=25, quiet=True)
    plain, conditional = vl.evaluate(vae, x_test), vl.evaluate(model, rows_test)
    assert history.test["total"][-1] == pytest.approx(conditional["total"], rel=1e-6)
    assert conditional["kl"] < plain["kl"] - 1.0
    assert conditional["total"] < plain["total"]


def test_a_trained_cvae_round_trips_through_its_checkpoint(tmp_path):
    _, _, rows = _rows(n=40)
    vl.set_seed(0)
    model = CVAE(16, 4, 3, 8)
    history = vl.load_or_train(tmp_path / "cvae.pt", model, rows, num_epochs=2)
    loaded = vl.load_checkpoint(tmp_path / "cvae.pt").model
    assert isinstance(loaded, CVAE) and loaded.config == model.config
    assert torch.equal(loaded(rows), model(rows))
    vl.set_seed(0)
    again = vl.load_or_train(tmp_path / "cvae.pt", CVAE(16, 4, 3, 8), rows, num_epochs=2)
    assert again.train == history.train  # loaded, not trained again


class _FixedJudge(nn.Module):
    """A 'classifier' whose class probabilities are given: softmax(log p) = p."""

    def __init__(self, probabilities):
        super().__init__()
        self.log_p = torch.log(torch.as_tensor(probabilities))
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        return self.log_p[: len(images)]


def test_the_requested_class_share_counts_what_the_classifier_sees():
    p = [[0.95, 0.05, 0.0], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]
    judge = _FixedJudge([[*row] for row in p])
    images = torch.rand(4, 28, 28)
    result = cvae.requested_class_share(judge, images, torch.tensor([0, 0, 0, 2]))
    # argmax matches for images 0, 1 and 3; with probability >= 0.9 only image 0
    assert result["labelled_as_asked"] == pytest.approx(3 / 4)
    assert result["confidently_as_asked"] == pytest.approx(1 / 4)
    assert result["mean_probability"] == pytest.approx((0.95 + 0.6 + 0.2 + 0.8) / 4, rel=1e-5)
    loose = cvae.requested_class_share(judge, images, torch.tensor([0, 0, 0, 2]), threshold=0.5)
    assert loose["confidently_as_asked"] == pytest.approx(3 / 4)


def test_label_from_codes_is_a_nearest_neighbour_vote():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 4
    centres = 10.0 * torch.randn(4, 2, generator=g)
    separated = centres[labels] + 0.1 * torch.randn(200, 2, generator=g)
    assert cvae.label_from_codes(separated[:100], labels[:100], separated[100:], labels[100:]) == 1.0
    # codes that say nothing about the label: about 1 in 4, never near 1
    noise = torch.randn(2000, 2, generator=g)
    y = torch.randint(0, 4, (2000,), generator=g)
    assert 0.15 < cvae.label_from_codes(noise[:1000], y[:1000], noise[1000:], y[1000:]) < 0.35
    with pytest.raises(ValueError, match="one label"):
        cvae.label_from_codes(noise[:10], y[:9], noise[10:20], y[10:20])
    with pytest.raises(ValueError, match="y_train must be classes 0 or more, got values from -1 to 0"):
        cvae.label_from_codes(noise[:2], torch.tensor([0, -1]), noise[2:4], y[2:4])


def test_the_kl_figure_draws_one_bar_per_dimension_and_model():
    fig = cvae.plot_kl_per_dimension({"CVAE": torch.tensor([0.1, 2.0, 0.5]),
                                      "VAE": torch.tensor([3.0, 1.0, 0.0])})
    bars = fig.axes[0].patches
    assert len(bars) == 6
    assert [b.get_height() for b in bars[:3]] == pytest.approx([2.0, 0.5, 0.1])  # sorted
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["CVAE: 2.6 nats in all", "VAE: 4.0 nats in all"]


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: one_hot(torch.tensor([0.0, 1.0])), TypeError, "integer classes"),
        (lambda: one_hot(torch.tensor([0, 10])), ValueError, "classes 0 to 9, got values from 0 to 10"),
        (lambda: one_hot(torch.tensor([[0, 1]])), ValueError, "1-D tensor"),
        (lambda: one_hot([1, 2]), TypeError, "labels must be a torch.Tensor of integer classes"),
        (lambda: with_labels(torch.rand(3, 4), torch.tensor([0, 1])), ValueError, "3 images but labels has 2"),
        (lambda: with_labels(torch.rand(3, 2, 2), torch.tensor([0, 1, 2])), ValueError, "flatten"),
        (lambda: CVAE(16, 4, 3, 8).loss(torch.rand(5, 16)), ValueError, "rows"),
        (lambda: CVAE(16, 4, 3, 8).decode(torch.randn(5, 3), torch.rand(4, 4)), ValueError, "one label row per"),
        (lambda: CVAE(16, 4, 3, 8).encode(torch.rand(5, 16), torch.rand(5, 3)), ValueError, "y"),
        (lambda: CVAE(16, 0, 3, 8), ValueError, "n_classes must be a positive integer"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_given_labels_estimates_log_p_x_given_y_by_importance_sampling(double):
    """Read through GivenLabels, a CVAE's -ELBO is its own loss with C = 1 and its IWAE bound the
    log-mean-exp of log p(x | z, y) + log p(z) - log q(z | x, y), written out with
    torch.distributions."""
    from vae_lesson.chapters.iwae import iwae_bound, neg_elbo

    vl.set_seed(2)
    model = CVAE(16, 4, 3, 8).double()
    x, labels, rows = _rows(n=6)
    x, rows = x.double(), rows.double()
    given = cvae.GivenLabels(model)
    K = 5
    bound = iwae_bound(given, rows, K=K, seed=4)
    # the same noise: iwae_bound draws (K, n, d) from a generator seeded with seed
    eps = torch.randn(K, 6, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = nn.functional.one_hot(labels, 4).double()
    with torch.no_grad():
        mean, ln_var = model.encode(x, y)
        q = D.Normal(mean, torch.exp(0.5 * ln_var))
        z = mean + torch.exp(0.5 * ln_var) * eps
        log_w = []
        for k in range(K):
            logits = model.decode(z[k], y, sigmoid=False)
            log_w.append(D.Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(1)
                         + D.Normal(0.0, 1.0).log_prob(z[k]).sum(1) - q.log_prob(z[k]).sum(1))
        by_hand = torch.logsumexp(torch.stack(log_w), 0) - torch.log(torch.tensor(K, dtype=torch.float64))
    assert torch.allclose(bound, by_hand, rtol=1e-10)
    # one sample per row: the -ELBO with C = 1 averages to the loss's expectation
    many = neg_elbo(given, rows.repeat(400, 1), seed=1).mean()
    torch.manual_seed(1)
    losses = torch.stack([model.loss(rows).total for _ in range(400)]).mean()
    assert many.item() == pytest.approx(losses.item(), rel=0.02)
    assert (-bound).mean() <= neg_elbo(given, rows.repeat(50, 1), seed=2).mean() + 0.5


def test_given_labels_names_bad_codes_and_models():
    vl.set_seed(0)
    given = cvae.GivenLabels(CVAE(16, 4, 3, 8))
    _, _, rows = _rows(n=5)
    with pytest.raises(ValueError, match=r"z must have shape \(K, 5, 3\)"):
        given.log_likelihood(rows, torch.randn(5, 3))
    with pytest.raises(TypeError, match="cvae must be a conditional VAE .* got VAE"):
        cvae.GivenLabels(vl.VAE(16, 3, 8))
