"""Tests for vae_lesson.chapters.vqvae: nearest-code lookup, straight-through gradients, the two
VQ losses, perplexity, the small conv VQ-VAE, its training and its checkpoints."""

import math

import pytest
import torch
from matplotlib.figure import Figure

import vae_lesson as vl
from vae_lesson.chapters import vqvae as vqvae_module
from vae_lesson.chapters.vqvae import (
    VQVAE,
    VectorQuantizer,
    codebook_usage,
    perplexity,
    plot_code_usage,
    plot_perplexity,
)


def _quantizer(n_codes=8, code_dim=3, beta=0.25, seed=0):
    torch.manual_seed(seed)
    q = VectorQuantizer(n_codes, code_dim, beta)
    with torch.no_grad():  # spread the codes out so that nearest-code choices are not all ties
        q.codebook.weight.copy_(torch.randn(n_codes, code_dim))
    return q


def _map(shape=(4, 3, 5, 5), seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_picks_the_nearest_code_like_brute_force():
    q = _quantizer()
    z_e = _map()
    out = q(z_e)
    codes = q.codebook.weight.detach()
    for b in range(z_e.shape[0]):
        for i in range(z_e.shape[2]):
            for j in range(z_e.shape[3]):
                distances = ((codes - z_e[b, :, i, j]) ** 2).sum(1)
                assert out.indices[b, i, j] == int(distances.argmin())
                assert torch.allclose(out.z_q[b, :, i, j], codes[out.indices[b, i, j]])
    assert out.indices.shape == (4, 5, 5) and out.indices.dtype == torch.int64
    assert torch.equal(q.nearest(z_e), out.indices)


def test_straight_through_gradient_is_the_identity():
    q = _quantizer()
    z_e = _map().requires_grad_(True)
    w = torch.randn(z_e.shape, generator=torch.Generator().manual_seed(2))
    (w * q(z_e).z_q).sum().backward()
    assert torch.allclose(z_e.grad, w)
    # ... while the plain lookup e = codebook[argmin], without the trick, is not connected to z_e
    e = q.lookup(q.nearest(z_e))
    assert torch.autograd.grad((w * e).sum(), z_e, allow_unused=True) == (None,)


def test_codebook_gets_gradient_only_from_the_codebook_loss():
    q = _quantizer()
    z_e = _map().requires_grad_(True)
    out = q(z_e)
    codebook = q.codebook.weight
    g_cb = torch.autograd.grad(
        out.codebook_loss, (codebook, z_e), retain_graph=True, allow_unused=True
    )
    g_cm = torch.autograd.grad(
        out.commitment_loss, (codebook, z_e), retain_graph=True, allow_unused=True
    )
    g_zq = torch.autograd.grad(out.z_q.pow(2).sum(), (codebook, z_e), allow_unused=True)
    # codebook loss: gradient to the codebook only
    assert g_cb[0] is not None and g_cb[0].abs().sum() > 0
    assert g_cb[1] is None or torch.count_nonzero(g_cb[1]) == 0
    # commitment loss: gradient to the encoder output only
    assert g_cm[0] is None or torch.count_nonzero(g_cm[0]) == 0
    assert g_cm[1] is not None and g_cm[1].abs().sum() > 0
    # whatever the decoder does with z_q reaches z_e (straight through) but not the codebook
    assert g_zq[0] is None or torch.count_nonzero(g_zq[0]) == 0
    assert torch.allclose(g_zq[1], 2 * out.z_q.detach())


def test_commitment_gradient_closed_form():
    q = _quantizer(beta=0.25)
    z_e = _map().requires_grad_(True)
    out = q(z_e)
    (grad,) = torch.autograd.grad(out.commitment_loss, z_e)
    expected = 0.25 * 2 * (z_e.detach() - out.z_q.detach()) / z_e.numel()
    assert torch.allclose(grad, expected, atol=1e-7)


def test_codebook_step_moves_used_codes_towards_their_encoder_outputs():
    q = _quantizer(n_codes=16)
    z_e = _map((8, 3, 4, 4))
    out = q(z_e)
    before = q.codebook.weight.detach().clone()
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    idx = out.indices.reshape(-1)
    opt = torch.optim.SGD(q.parameters(), lr=0.5)
    opt.zero_grad()
    out.codebook_loss.backward()
    opt.step()
    after = q.codebook.weight.detach()
    used = torch.unique(idx)
    for k in range(16):
        if k in used:
            target = flat[idx == k].mean(
                0
            )  # the codebook loss pulls code k to the mean of its assigned outputs
            assert (after[k] - target).norm() < (before[k] - target).norm()
        else:
            assert torch.equal(after[k], before[k])  # unused codes get no gradient
    # one step of size lr: e_k <- e_k - lr * 2 n_k (e_k - mean_k) / numel, exactly
    k = int(used[0])
    n_k = int((idx == k).sum())
    step = 0.5 * 2 * n_k / z_e.numel()
    assert torch.allclose(
        after[k], before[k] + step * (flat[idx == k].mean(0) - before[k]), atol=1e-6
    )


@pytest.mark.parametrize("beta", [0.25, 1.0, 0.0])
def test_commitment_is_beta_times_codebook_loss_in_value(beta):
    q = _quantizer(beta=beta)
    out = q(_map())
    assert torch.allclose(out.commitment_loss, beta * out.codebook_loss)
    assert out.codebook_loss > 0


def test_perplexity_closed_forms():
    assert math.isclose(
        float(perplexity(torch.tensor([5.0, 5.0, 5.0, 5.0, 0.0, 0.0]))), 4.0, rel_tol=1e-9
    )
    assert math.isclose(float(perplexity(torch.tensor([0, 7, 0]))), 1.0, rel_tol=1e-12)
    # p = (1/2, 1/4, 1/4): H = 1.5 bits, so the perplexity is 2 ** 1.5
    assert math.isclose(float(perplexity(torch.tensor([2, 1, 1]))), 2**1.5, rel_tol=1e-9)
    q = _quantizer()
    out = q(_map())
    assert out.counts.sum() == 4 * 5 * 5
    assert torch.allclose(out.perplexity, perplexity(out.counts).float())


def test_perplexity_and_quantizer_errors():
    with pytest.raises(ValueError, match="counts"):
        perplexity(torch.zeros(3))
    with pytest.raises(ValueError, match="counts"):
        perplexity(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="n_codes"):
        VectorQuantizer(0, 3)
    with pytest.raises(ValueError, match="beta"):
        VectorQuantizer(4, 3, beta=-1)
    q = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match="z_e"):
        q(torch.zeros(2, 5, 3, 3))
    with pytest.raises(TypeError, match="z_e"):
        q(torch.zeros(2, 3, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="indices"):
        q.lookup(torch.full((1, 2, 2), 4))


def test_codebook_init_is_uniform_small():
    q = VectorQuantizer(50, 4)
    assert q.codebook.weight.abs().max() <= 1 / 50


def test_vqvae_shapes_and_loss_terms():
    torch.manual_seed(0)
    model = VQVAE(1, n_codes=16, code_dim=4, hidden=8)
    x = torch.rand(5, 28, 28)
    assert model.encode(x).shape == (5, 4, 7, 7)
    idx = model.encode_indices(x)
    assert idx.shape == (5, 7, 7) and idx.dtype == torch.int64
    out = model.decode_indices(idx).detach()
    assert out.shape == (5, 1, 28, 28) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.allclose(
        model(x.reshape(5, 784)), out
    )  # flat input works, and forward = decode(encode)
    terms = model.loss(x)
    assert torch.allclose(terms.total, terms.reconstruction + terms.codebook + terms.commitment)
    assert torch.allclose(terms.reconstruction, ((out - x.unsqueeze(1)) ** 2).mean())
    assert torch.allclose(terms.commitment, 0.25 * terms.codebook)
    assert 1 <= float(terms.perplexity) <= float(terms.codes_used) <= 16
    counts = codebook_usage(model, x)
    assert counts.shape == (16,) and int(counts.sum()) == 5 * 49
    assert torch.equal(counts, torch.bincount(idx.reshape(-1), minlength=16))


def test_vqvae_input_errors():
    model = VQVAE(1, 8, 2, 4)
    with pytest.raises(ValueError, match="28x28"):
        model.loss(torch.rand(3, 1, 14, 14))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.loss(torch.rand(3, 28, 28) * 2)
    with pytest.raises(ValueError, match="hidden"):
        VQVAE(1, 8, 2, 0)
    with pytest.raises(TypeError, match="VQVAE"):
        codebook_usage(vl.VAE(784, 2, 8), torch.rand(2, 784))


def _blobs(n=200, seed=0):
    """Synthetic 28x28 images: one bright square at a random place on a dark background."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 28, 28)
    corners = torch.randint(0, 20, (n, 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        x[i, r : r + 8, c : c + 8] = 1.0
    return x


def test_short_training_lowers_the_loss_and_checkpoint_round_trip(tmp_path):
    vl.set_seed(0)
    model = VQVAE(1, n_codes=16, code_dim=4, hidden=8)
    x = _blobs(200)
    before = vl.evaluate(model, x)
    history = vl.train(model, x, x[:50], num_epochs=6, batch_size=20, lr=3e-3, quiet=True)
    after = vl.evaluate(model, x)
    assert after["reconstruction"] < 0.7 * before["reconstruction"]
    assert set(history.train) == {
        "total",
        "reconstruction",
        "codebook",
        "commitment",
        "perplexity",
        "codes_used",
    }
    assert len(history.test["perplexity"]) == 6
    path = vl.save_checkpoint(tmp_path / "vq.pt", model, epoch=6, history=history.as_dict())
    loaded = vl.load_checkpoint(path).model
    assert isinstance(loaded, VQVAE) and loaded.config == model.config
    assert torch.equal(loaded.encode_indices(x[:10]), model.encode_indices(x[:10]))
    assert torch.allclose(loaded(x[:10]), model(x[:10]))
    # load_or_train on the same settings loads instead of training
    vl.set_seed(0)
    m2 = VQVAE(1, n_codes=16, code_dim=4, hidden=8)
    h1 = vl.load_or_train("vq_small", m2, x, num_epochs=1, batch_size=50, quiet=True)
    m3 = VQVAE(1, n_codes=16, code_dim=4, hidden=8)
    h2 = vl.load_or_train("vq_small", m3, x, num_epochs=1, batch_size=50, quiet=True)
    assert h1.train == h2.train
    assert torch.equal(m2.quantizer.codebook.weight, m3.quantizer.codebook.weight)


def test_figures():
    counts = torch.tensor([0, 3, 10, 1, 0, 6])
    fig = plot_code_usage(counts, title="usage")
    assert isinstance(fig, Figure)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == sorted(heights, reverse=True) and math.isclose(sum(heights), 100)
    history = {
        "train": {"perplexity": [2.0, 3.0], "codes_used": [3.0, 4.0]},
        "test": {"perplexity": [2.5, 3.1], "codes_used": [3.0, 5.0]},
    }
    fig = plot_perplexity(history, n_codes=6)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    with pytest.raises(ValueError, match="perplexity"):
        plot_perplexity({"train": {"total": [1.0]}}, n_codes=6)
    with pytest.raises(ValueError, match="counts"):
        plot_code_usage(torch.zeros(4))


# -------------------------------------------------------------------------------------------------
# image sizes other than 28x28: colour 32x32 (CIFAR-10)
# -------------------------------------------------------------------------------------------------


def _colour_blobs(n=8, size=32, seed=0):
    """(n, 3, size, size) images in [0, 1]: a coloured square on a background of another colour."""
    g = torch.Generator().manual_seed(seed)
    background, square = torch.rand(n, 3, 1, 1, generator=g), torch.rand(n, 3, 1, 1, generator=g)
    x = background.expand(n, 3, size, size).clone()
    corners = torch.randint(0, size - 10, (n, 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        x[i, :, r : r + 10, c : c + 10] = square[i]
    return x


def test_colour_32x32_model_gives_an_8x8_grid_and_32x32_images():
    torch.manual_seed(0)
    model = VQVAE(3, n_codes=16, code_dim=4, hidden=8, image_size=32)
    assert model.config["image_size"] == 32 and model.grid_size == 8
    x = _colour_blobs(5)
    assert model.encode(x).shape == (5, 4, 8, 8)
    idx = model.encode_indices(x)
    assert idx.shape == (5, 8, 8) and idx.dtype == torch.int64
    out = model(x).detach()
    assert out.shape == (5, 3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.allclose(model.decode_indices(idx), out)
    terms = model.loss(x)
    assert torch.allclose(terms.reconstruction, ((out - x) ** 2).mean())
    assert torch.allclose(terms.total, terms.reconstruction + terms.codebook + terms.commitment)
    counts = codebook_usage(model, x)
    assert int(counts.sum()) == 5 * 64 and torch.equal(
        counts, torch.bincount(idx.reshape(-1), minlength=16)
    )
    # other multiples of 4 work too: a 16x16 grey model has a 4x4 grid and takes (batch, 256) input
    small = VQVAE(1, 8, 2, 4, image_size=16)
    assert small.encode_indices(torch.rand(3, 256)).shape == (3, 4, 4)
    assert small(torch.rand(3, 16, 16)).shape == (3, 1, 16, 16)


def test_colour_model_gradients_reach_encoder_codebook_and_decoder():
    torch.manual_seed(0)
    model = VQVAE(3, n_codes=16, code_dim=4, hidden=8, image_size=32)
    model.loss(_colour_blobs(6)).total.backward()
    for part in (model.encoder, model.decoder):
        for name, p in part.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    grad = model.quantizer.codebook.weight.grad
    used = torch.unique(model.encode_indices(_colour_blobs(6)))
    assert grad[used].abs().sum(1).gt(0).all()  # every chosen code is pulled ...
    unused = torch.ones(16, dtype=torch.bool)
    unused[used] = False
    assert torch.count_nonzero(grad[unused]) == 0  # ... and the others are left alone


def test_colour_model_trains_and_round_trips_through_a_checkpoint(tmp_path):
    vl.set_seed(0)
    model = VQVAE(3, n_codes=16, code_dim=4, hidden=8, image_size=32)
    x = _colour_blobs(60)
    before = vl.evaluate(model, x)["reconstruction"]
    history = vl.train(model, x, x[:20], num_epochs=15, batch_size=10, lr=5e-3, quiet=True)
    assert (
        vl.evaluate(model, x)["reconstruction"] < 0.8 * before
    )  # 0.085 (grey guess) -> about 0.058
    path = vl.save_checkpoint(tmp_path / "vq32.pt", model, epoch=15, history=history.as_dict())
    loaded = vl.load_checkpoint(path).model
    assert isinstance(loaded, VQVAE) and loaded.config == model.config and loaded.image_size == 32
    assert torch.equal(loaded.encode_indices(x[:10]), model.encode_indices(x[:10]))
    assert torch.allclose(loaded(x[:10]), model(x[:10]))
    # load_or_train finds the 32x32 run again, and a 28x28 model does not take it for its own
    h1 = vl.load_or_train("vq_colour", model, x, num_epochs=1, batch_size=30, quiet=True)
    again = VQVAE(3, n_codes=16, code_dim=4, hidden=8, image_size=32)
    assert (
        vl.load_or_train("vq_colour", again, x, num_epochs=1, batch_size=30, quiet=True).train
        == h1.train
    )
    assert torch.equal(again.quantizer.codebook.weight, model.quantizer.codebook.weight)
    with pytest.raises(vl.CheckpointError, match="image_size=32 in the file but 28 here"):
        vl.load_checkpoint(path, VQVAE(3, n_codes=16, code_dim=4, hidden=8))


def test_old_configs_without_image_size_are_28x28_models():
    model = VQVAE.from_config(
        {"in_channels": 1, "n_codes": 8, "code_dim": 2, "hidden": 4, "beta": 0.25}
    )
    assert model.image_size == 28 and model.config["image_size"] == 28
    assert model.encode_indices(torch.rand(2, 28, 28)).shape == (2, 7, 7)


@pytest.mark.parametrize("bad", [30, 0, -4, 2, 32.0, True, "32"])
def test_bad_image_size_is_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match=r"image_size must be a positive multiple of 4.*got"):
        VQVAE(3, 8, 2, 4, image_size=bad)


def test_input_errors_name_the_expected_shape():
    model = VQVAE(3, 8, 2, 4, image_size=32)
    with pytest.raises(
        ValueError,
        match=r"32x32 images with 3 channel\(s\): \(batch, 3, 32, 32\), got \(2, 3, 28, 28\)",
    ):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\(batch, 3, 32, 32\), got \(2, 32, 32\)"):
        model.loss(
            torch.rand(2, 32, 32)
        )  # a grey batch for a colour model: no silent channel guessing
    grey = VQVAE(1, 8, 2, 4)
    with pytest.raises(
        ValueError,
        match=r"\(batch, 1, 28, 28\), \(batch, 28, 28\) or \(batch, 784\), got \(2, 1024\)",
    ):
        grey(torch.rand(2, 1024))


# -------------------------------------------------------------------------------------------------
# the quantizer the chapter defines: the model takes its class, checkpoints rebuild the package's
# -------------------------------------------------------------------------------------------------


def test_the_model_quantizes_with_the_class_it_is_given(tmp_path):
    calls = []

    class VectorQuantizer(
        vqvae_module.VectorQuantizer
    ):  # as a chapter would define it: the same name
        def forward(self, z_e):
            calls.append(tuple(z_e.shape))
            return super().forward(z_e)

    torch.manual_seed(0)
    model = VQVAE(1, n_codes=8, code_dim=2, hidden=4, quantizer_class=VectorQuantizer)
    assert type(model.quantizer) is VectorQuantizer
    assert "quantizer_class" not in model.config  # the config stays plain data
    x = torch.rand(3, 28, 28)
    model.loss(x)
    model(x)
    assert calls == [(3, 2, 7, 7), (3, 2, 7, 7)]
    # same seed, same weights as with the package's quantizer: only the class differs
    torch.manual_seed(0)
    plain = VQVAE(1, n_codes=8, code_dim=2, hidden=4)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values())
    )
    loaded = vl.load_checkpoint(vl.save_checkpoint(tmp_path / "vq.pt", model)).model
    assert type(loaded.quantizer) is vqvae_module.VectorQuantizer
    assert torch.equal(loaded.encode_indices(x), model.encode_indices(x))


def test_weights_that_diverged_stop_training_with_a_clear_error():
    torch.manual_seed(0)
    model = VQVAE(1, n_codes=8, code_dim=2, hidden=4)
    with torch.no_grad():
        model.encoder[0].weight.view(-1)[0] = float("nan")
    x = torch.rand(10, 28, 28)
    with pytest.raises(
        ValueError, match="z_e contains"
    ):  # the quantizer refuses NaN (a NonFiniteError)
        model.loss(x)
    with pytest.raises(vl.NonFiniteLossError):
        vl.train(model, x, num_epochs=1, batch_size=5, quiet=True)


def test_lookup_takes_int32_indices_too():
    q = _quantizer()
    idx = torch.randint(0, 8, (2, 3, 3))
    assert torch.equal(q.lookup(idx.int()), q.lookup(idx))
    assert q.lookup(idx).shape == (2, 3, 3, 3)
