"""Chapter 01's code: the AutoEncoder and the minibatch loop train_epoch, as the chapter tells."""

import math

import pytest
import torch

import vae_lesson as vl
from vae_lesson import AELoss, AutoEncoder, NonFiniteLossError, bernoulli_nll, train_epoch


@pytest.fixture(scope="module")
def digits():
    return vl.load_digits(verbose=False)


def _model(seed=0, **kwargs):
    vl.set_seed(seed)
    return AutoEncoder(64, 2, 32, **kwargs)


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_loss_is_summed_over_pixels_and_averaged_over_images():
    model = _model()
    x = torch.rand(6, 64)
    logits = model.decode(model.encode(x), sigmoid=False)
    per_image = torch.stack([bernoulli_nll(x[i : i + 1], logits[i : i + 1]) for i in range(6)])
    loss = model.loss(x)
    assert isinstance(loss, AELoss) and loss._fields == ("total", "reconstruction")
    torch.testing.assert_close(loss.total, per_image.mean())
    # the mean over images does not depend on how the images are batched
    halves = (model.loss(x[:3]).total + model.loss(x[3:]).total) / 2
    torch.testing.assert_close(halves, loss.total)


def test_forward_is_decode_of_encode_in_the_unit_interval():
    model = _model()
    x = torch.rand(5, 64)
    out = model(x)
    torch.testing.assert_close(out, model.decode(model.encode(x)))
    torch.testing.assert_close(out, torch.sigmoid(model.decode(model.encode(x), sigmoid=False)))
    assert out.shape == (5, 64) and 0 <= out.min() and out.max() <= 1


def test_an_untrained_autoencoder_costs_about_ln_2_per_pixel():
    # the chapter's check: Xavier-initialized logits sit near 0, so each pixel costs about ln 2 nats
    vl.set_seed(0)
    model = AutoEncoder(784, 20, 500)
    loss = model.loss(torch.rand(100, 784)).total.item()
    assert loss == pytest.approx(784 * math.log(2), rel=0.03)


@pytest.mark.parametrize("kwargs", [{}, {"loss": "mse", "act_func": torch.relu}])
def test_a_checkpoint_rebuilds_the_same_autoencoder(tmp_path, kwargs):
    model = _model(**kwargs)
    loaded = vl.load_checkpoint(vl.save_checkpoint(tmp_path / "ae.pt", model)).model
    assert type(loaded) is AutoEncoder and loaded.config == model.config
    assert loaded.act_func is model.act_func and loaded.loss_name == model.loss_name
    x = torch.rand(4, 64)
    torch.testing.assert_close(loaded(x), model(x))
    torch.testing.assert_close(loaded.loss(x).total, model.loss(x).total)


def test_train_epoch_returns_each_term_s_mean_over_the_examples(digits):
    # lr = 0: the weights stay, so the epoch's means are the loss of the data,
    # batched unevenly (4 + 4 + 2)
    model, x = _model(), digits.x_train_flat[:10]
    before = _weights(model)
    means = train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), x, batch_size=4)
    assert set(means) == {"total", "reconstruction"}
    expected = model.loss(x).total.item()
    assert means["total"] == pytest.approx(expected, rel=1e-5)
    assert means["reconstruction"] == pytest.approx(expected, rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(model)))
    assert model.training


def test_train_epoch_takes_one_step_per_minibatch(digits):
    steps = []

    class CountingSGD(torch.optim.SGD):
        def step(self, closure=None):
            steps.append(len(steps))
            return super().step(closure)

    model = _model()
    train_epoch(
        model, CountingSGD(model.parameters(), lr=0.01), digits.x_train_flat[:10], batch_size=4
    )
    assert len(steps) == 3


def test_the_generator_fixes_the_minibatch_order(digits):
    x = digits.x_train_flat[:200]

    def one_epoch(shuffle_seed):
        model = _model()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train_epoch(
            model,
            optimizer,
            x,
            batch_size=20,
            generator=torch.Generator().manual_seed(shuffle_seed),
        )
        return _weights(model)

    first, again, other = one_epoch(0), one_epoch(0), one_epoch(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_a_non_finite_loss_stops_before_its_step(digits):
    class Diverging(AutoEncoder):
        calls = 0

        def loss(self, x):
            Diverging.calls += 1
            terms = super().loss(x)
            return terms if self.calls < 2 else AELoss(terms.total * math.inf, terms.reconstruction)

    vl.set_seed(0)
    model = Diverging(64, 2, 32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = digits.x_train_flat[:12]
    train_epoch(model, optimizer, x[:4], batch_size=4)  # one good step
    before = _weights(model)
    with pytest.raises(NonFiniteLossError, match="the loss became inf at batch 1"):
        train_epoch(model, optimizer, x, batch_size=4)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(model)))


def test_the_chapter_s_loop_lowers_the_test_loss(digits):
    # what chapter 01 runs: Adam, shuffled minibatches of 100, a for loop over epochs
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = model.loss(digits.x_test_flat).total.item()
    for _ in range(5):
        means = train_epoch(
            model, optimizer, digits.x_train_flat, batch_size=100, generator=shuffle
        )
        assert math.isfinite(means["total"])
    with torch.no_grad():
        after = model.loss(digits.x_test_flat).total.item()
    assert after < 0.8 * before
