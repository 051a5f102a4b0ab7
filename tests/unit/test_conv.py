"""Tests of vae_lesson.chapters.conv: shapes, the loss against a hand computation, training,
checkpoints, sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vae_lesson as vl
from vae_lesson.chapters import conv
from vae_lesson.chapters.conv import ConvAutoEncoder, ConvVAE, bootstrap_codes, uniform_codes


@pytest.mark.parametrize(
    "channels, size, maps", [(1, 28, (14, 7, 4)), (3, 32, (16, 8, 4)), (3, 48, (24, 12, 6))]
)
def test_encoder_and_decoder_shapes(channels, size, maps):
    torch.manual_seed(0)
    model = ConvVAE(channels, size)
    x = torch.rand(5, channels, size, size)
    h = x
    sides = []
    for layer in model.encoder:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv2d) and layer.stride == (2, 2):
            sides.append(h.shape[-1])
    assert tuple(sides) == maps
    assert h.shape == (5, 256 * maps[-1] ** 2)
    mean, ln_var = model.encode(x)
    assert mean.shape == ln_var.shape == (5, 64)
    probs, logits = model.decode(mean), model.decode(mean, sigmoid=False)
    assert probs.shape == logits.shape == (5, channels, size, size)
    assert torch.allclose(probs, torch.sigmoid(logits))
    assert model(x).shape == x.shape
    # decoder before the crop: 8 * s on each side (32 for 28-pixel inputs, cropped by 2 per border)
    assert model.decoder(model.dec_linear(mean)).shape[-1] == 8 * maps[-1]
    assert ConvAutoEncoder(channels, size).encode(x).shape == (5, 64)


def test_loss_matches_hand_computation_with_fixed_eps(monkeypatch):
    torch.manual_seed(1)
    model = ConvVAE(3, 32, n_latent=8)
    x = torch.rand(4, 3, 32, 32)
    eps = torch.randn(2 * 4, 8)
    monkeypatch.setattr(conv, "gaussian", lambda mean, ln_var: mean + torch.exp(0.5 * ln_var) * eps)
    terms = model.loss(x, C=0.5, k=2)
    with torch.no_grad():
        mean, ln_var = model.encode(x)
        nll = 0.0
        for sample in range(2):
            z = mean + torch.exp(0.5 * ln_var) * eps[4 * sample : 4 * sample + 4]
            p = model.decode(z).double()
            xd = x.double()
            nll += -(xd * torch.log(p) + (1 - xd) * torch.log1p(-p)).sum()
        reconstruction = nll / (2 * 4)
        kl = 0.5 * 0.5 * (mean**2 + ln_var.exp() - ln_var - 1).sum() / 4
    assert terms.reconstruction.item() == pytest.approx(reconstruction.item(), rel=1e-4)
    assert terms.kl.item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms.total.item() == pytest.approx(
        terms.reconstruction.item() + terms.kl.item(), rel=1e-6
    )


def test_autoencoder_loss_is_bce_of_its_reconstruction():
    torch.manual_seed(2)
    model = ConvAutoEncoder(1, 28, n_latent=4)
    x = torch.rand(3, 1, 28, 28)
    terms = model.loss(x)
    expected = F.binary_cross_entropy(model(x), x, reduction="sum") / 3
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-4)
    assert terms.total is terms.reconstruction


@pytest.mark.parametrize("cls", [ConvVAE, ConvAutoEncoder])
def test_gradients_reach_every_parameter(cls):
    torch.manual_seed(3)
    model = cls(1, 28, n_latent=6)
    model.loss(torch.rand(4, 1, 28, 28)).total.backward()
    unused = {"enc_ln_var.weight", "enc_ln_var.bias"} if cls is ConvAutoEncoder else set()
    for name, p in model.named_parameters():
        if name in unused:
            assert p.grad is None
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def _digits_16():
    """scikit-learn's 8x8 digits upsampled to 16x16, shape (N, 1, 16, 16) in [0, 1]."""
    ds = vl.load_digits(verbose=False)

    def up(x):
        return F.interpolate(x.unsqueeze(1), scale_factor=2, mode="nearest")

    return up(ds.x_train[:300]), up(ds.x_test[:100])


def test_training_a_few_epochs_lowers_the_loss():
    x_train, x_test = _digits_16()
    vl.set_seed(0)
    model = ConvVAE(1, 16, n_latent=8)
    history = vl.train(model, x_train, x_test, num_epochs=4, batch_size=50, lr=2e-3, quiet=True)
    assert history.test["total"][-1] < 0.85 * history.test["total"][0]
    assert history.train["total"][-1] < history.train["total"][0]


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(4)
    model = ConvVAE(3, 32, n_latent=5, width=8)
    path = vl.save_checkpoint(tmp_path / "conv.pt", model)
    loaded = vl.load_checkpoint(path).model
    assert isinstance(loaded, ConvVAE) and loaded.config == {
        "in_channels": 3,
        "image_size": 32,
        "n_latent": 5,
        "width": 8,
    }
    assert loaded.dec_out.in_channels == 8 and loaded.encoder[-3].out_channels == 64
    z = torch.randn(2, 5)
    assert torch.equal(loaded.decode(z), model.eval().decode(z))
    ae = ConvAutoEncoder(1, 28, n_latent=3)
    assert isinstance(
        vl.load_checkpoint(vl.save_checkpoint(tmp_path / "ae.pt", ae)).model, ConvAutoEncoder
    )


def test_load_or_train_reuses_the_checkpoint():
    x_train, x_test = _digits_16()
    vl.set_seed(0)
    first = vl.load_or_train(
        "conv_tiny", ConvAutoEncoder(1, 16, 4), x_train[:100], num_epochs=1, quiet=True
    )
    second = vl.load_or_train(
        "conv_tiny", ConvAutoEncoder(1, 16, 4), x_train[:100], num_epochs=1, quiet=True
    )
    assert second.train == first.train and second.epoch_seconds == first.epoch_seconds


def test_bootstrap_codes_keep_each_column_marginal():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(7, 5, generator=g)
    new = bootstrap_codes(codes, 200, generator=g)
    assert new.shape == (200, 5)
    for j in range(5):
        assert torch.isin(new[:, j], codes[:, j]).all()
        assert len(torch.unique(new[:, j])) == 7  # 200 draws from 7 values hit all of them
    # the columns are resampled independently: most new rows are not rows of the source
    rows_reused = (new.unsqueeze(1) == codes.unsqueeze(0)).all(-1).any(-1).float().mean()
    assert rows_reused < 0.05


def test_bootstrap_is_reproducible_with_a_seeded_generator():
    codes = torch.randn(10, 3)
    a = bootstrap_codes(codes, 20, generator=torch.Generator().manual_seed(5))
    b = bootstrap_codes(codes, 20, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_uniform_codes_range():
    z = uniform_codes(5000, 4, low=-1.0, high=1.0, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5000, 4) and z.min() >= -1 and z.max() < 1
    assert abs(z.mean().item()) < 0.03 and z.var().item() == pytest.approx(1 / 3, rel=0.05)
    z2 = uniform_codes(100, 2, low=2.0, high=3.0)
    assert z2.min() >= 2 and z2.max() < 3
    with pytest.raises(ValueError, match="low < high"):
        uniform_codes(3, 2, low=1.0, high=1.0)


def test_per_pixel_helpers():
    assert conv.per_pixel(784.0, (1, 28, 28)) == pytest.approx(1.0)
    assert conv.per_pixel(3072.0, (3, 32, 32)) == pytest.approx(1.0)
    history = vl.History({"total": [784.0, 392.0]}, {"total": [1568.0]}, [1.0, 1.0])
    data = conv.history_per_pixel(history, (28, 28))
    assert data["train"]["total"] == [1.0, 0.5] and data["test"]["total"] == [2.0]


def test_clear_errors_on_bad_inputs():
    model = ConvVAE(1, 28)
    with pytest.raises(ValueError, match=r"unsqueeze\(1\)"):
        model.encode(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"\(batch, 1, 28, 28\)"):
        model.loss(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="permute"):
        ConvVAE(3, 32).encode(torch.rand(2, 32, 32, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.loss(torch.rand(2, 1, 28, 28) * 255)
    with pytest.raises(TypeError, match="floating-point"):
        model.encode(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 64\)"):
        model.decode(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="in_channels"):
        ConvVAE(0, 28)
    with pytest.raises(ValueError, match="image_size"):
        ConvVAE(1, 4)
    with pytest.raises(ValueError, match="codes must have shape"):
        bootstrap_codes(torch.zeros(5), 3)
    with pytest.raises(ValueError, match="rows"):
        conv.image_rows({})


def test_conv_vae_log_likelihood_matches_the_loss_and_gives_an_iwae_bound():
    from vae_lesson.chapters.iwae import iwae_bound

    torch.manual_seed(0)
    model = ConvVAE(in_channels=1, image_size=28, n_latent=4)
    x = torch.rand(3, 1, 28, 28)
    z = torch.randn(2, 3, 4)
    expected = torch.stack(
        [
            -vl.bernoulli_nll(x, model.decode(z[i], sigmoid=False), reduce="no").sum(dim=(1, 2, 3))
            for i in range(2)
        ]
    )
    torch.testing.assert_close(model.log_likelihood(x, z), expected)
    bound = iwae_bound(model, x, K=4)
    assert bound.shape == (3,) and torch.isfinite(bound).all()


def test_the_autoencoder_is_the_vae_without_its_variational_part():
    torch.manual_seed(5)
    vae = ConvVAE(1, 16, n_latent=4)
    torch.manual_seed(5)
    ae = ConvAutoEncoder(
        1, 16, n_latent=4
    )  # the same layers and, for the same seed, the same weights
    assert isinstance(ae, ConvVAE)
    assert all(
        torch.equal(a, b) for a, b in zip(vae.state_dict().values(), ae.state_dict().values())
    )
    x = torch.rand(3, 1, 16, 16)
    mean, _ = vae.encode(x)
    assert torch.equal(ae.encode(x), mean)  # the code is the mean head's output
    assert torch.equal(ae(x), vae(x))  # both decode the mean
    assert set(ae.loss(x)._fields) == {"total", "reconstruction"}


def test_he_init_gives_zero_biases_he_weights_and_xavier_outputs():
    torch.manual_seed(6)
    model = ConvVAE(1, 28, n_latent=64)
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            assert torch.count_nonzero(module.bias) == 0
    # Xavier-uniform outputs: |w| <= sqrt(6 / (fan_in + fan_out))
    for layer in (model.enc_mean, model.enc_ln_var):
        assert layer.weight.abs().max() <= (6 / (4096 + 64)) ** 0.5
    # He-normal: the variance of a 3x3 convolution's weights is 2 / fan_in (fan_in = 64 * 9 here)
    assert model.encoder[4].weight.var().item() == pytest.approx(2 / (64 * 9), rel=0.05)
    # a kernel-2 transposed convolution: each output pixel sees one position per input channel
    assert model.decoder[2].weight.var().item() == pytest.approx(2 / 256, rel=0.05)


def test_a_class_defined_outside_the_package_checkpoints_under_its_name(tmp_path):
    """The chapter defines its own ConvVAE; its checkpoints load into the package's class and
    back."""
    Chapters = type(
        "ConvVAE", (ConvVAE,), {}
    )  # another class object with the same name, as in the notebook
    torch.manual_seed(7)
    model = Chapters(1, 8, n_latent=3)
    path = vl.save_checkpoint(tmp_path / "chapter.pt", model)
    loaded = vl.load_checkpoint(path).model
    assert type(loaded) is ConvVAE and loaded.config == model.config
    again = vl.load_checkpoint(path, Chapters(1, 8, n_latent=3)).model
    z = torch.randn(2, 3)
    assert torch.equal(again.decode(z), model.eval().decode(z)) and torch.equal(
        loaded.decode(z), again.decode(z)
    )


def test_weights_that_diverged_stop_training_with_a_clear_error():
    torch.manual_seed(8)
    model = ConvVAE(1, 8, n_latent=3)
    with torch.no_grad():
        model.encoder[0].weight.view(-1)[0] = float("nan")
    x = torch.rand(10, 1, 8, 8)
    with pytest.raises(ValueError, match="NaN"):  # the public losses refuse NaN (a NonFiniteError)
        model.loss(x)
    with pytest.raises(vl.NonFiniteLossError):
        vl.train(model, x, num_epochs=1, batch_size=5, quiet=True)


def test_the_defaults_are_the_articles_network_and_width_scales_every_layer():
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(ConvVAE(1, 28)) == 1_350_529  # the total that ex-conv-1's solution derives by hand
    half = ConvVAE(1, 28, n_latent=8, width=16)
    channels = [m.out_channels for m in half.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert channels == [16, 32, 64, 128, 64, 32, 16, 1]
    with pytest.raises(ValueError, match="width"):
        ConvVAE(1, 28, width=0)
