"""Property tests with bad input: the convolutional VAE, the VQ-VAE, the reconstruction losses, the augmentation tools.

See tests/_bad_inputs.py for what a bad input is and what counts as a clear error or a correct result.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from vae_lesson.chapters import augment, conv, reconstruction as rec, vqvae
import vae_lesson as vl

from _bad_inputs import (PAIRED, PROPERTY_SETTINGS, Case, T, bad_choice, bad_generator, bad_int, bad_number,
                         bad_seed, bad_tensor, close, count_fixture, is_float_dtype, run_case, valid)

_count_bad_inputs = count_fixture()

torch.manual_seed(0)
CONV_VAE, CONV_AE = conv.ConvVAE(1, 8, 3), conv.ConvAutoEncoder(1, 8, 3)
VQ = vqvae.VQVAE(1, 8, 4, 8, image_size=8)
CNN = augment.SmallCNN(3)
VAE784 = vl.VAE(784, 2, 16)
RAE, RVAE = rec.ReconstructionAE(6, 2, 8), rec.ReductionVAE(6, 2, 8)
X8 = valid(T((2, 1, 8, 8), "unit"), 1)
Z3 = valid(T((2, 3)), 2)
X6, LOGITS6 = valid(T((4, 6), "unit"), 3), valid(T((4, 6)), 4)
X28 = valid(T((3, 28, 28), "unit"), 5)
Y3 = torch.tensor([0, 1, 2])
CODES = valid(T((5, 3)), 6)
MODEL_TYPES = bad_choice(None, "model", [CONV_VAE], torch.zeros(2)).map(lambda kv: ("type", kv[1]))
IMAGES8 = T((2, 1, 8, 8), "unit", fixed=(1, 2, 3))


def _seeded():
    return torch.Generator().manual_seed(0)


def _same_as_reshaped(method, shape, tolerance_dtype=torch.float32):
    """Oracle for helpers that also accept other layouts of the same images: the result equals the one for
    ``value.reshape(shape)`` (a layout the helper documents), and nothing else is accepted."""
    def oracle(kind, value, result):
        if not (isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.numel()
                and value.shape[1:] != torch.Size(shape[1:]) and value[0].numel() == np.prod(shape[1:])):
            return "reject"
        expected = method(value.reshape(len(value), *shape[1:]))
        for got, want in zip(*(r if isinstance(r, tuple) else (r,) for r in (result, expected))):
            if isinstance(want, torch.Tensor) and want.is_floating_point():
                close(got.detach(), want.detach(), tolerance_dtype)
            elif isinstance(want, torch.Tensor):
                assert torch.equal(got, want)
    return oracle


def _bootstrap_oracle(kind, value, result):
    """Another float dtype: every coordinate of every new code is one of that column's values."""
    if not is_float_dtype(kind, value):
        return "reject"
    assert result.dtype == value.dtype and result.shape == (4, value.shape[1])
    for j in range(value.shape[1]):
        assert set(result[:, j].tolist()) <= set(value[:, j].tolist())


def _perplexity_oracle(kind, value, result):
    """Counts as integers, another float dtype, a list or an array, with zeros allowed: exp(entropy)."""
    counts = np.asarray(value.float() if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16
                        else value, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
        return "reject"
    if isinstance(value, torch.Tensor) and (value.dtype == torch.bool or value.is_complex()):
        return "reject"
    p = counts / counts.sum()
    expected = np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())
    close(result, torch.tensor(expected, dtype=torch.float64),
          value.dtype if isinstance(value, torch.Tensor) else torch.float64)


def _reconstruction_oracle(x_first):
    def oracle(kind, value, result):
        if not is_float_dtype(kind, value):
            return "reject"
        x, y = (value, LOGITS6) if x_first else (X6, value)
        expected = (F.softplus(y.double()) - x.double() * y.double()).sum() / len(x)
        close(result, expected, x.dtype, y.dtype)
    return oracle


def _labels_oracle(factor):
    """Labels above the classes seen so far are still labels: each image's label, repeated ``factor`` times."""
    def oracle(kind, value, result):
        if not (kind == "range" and int(value.min()) >= 0):
            return "reject"
        assert torch.equal(result[1], value.repeat_interleave(factor)) and len(result[0]) == len(value) * factor
    return oracle


def _shift_oracle(kind, value, result):
    """Another float dtype: the same shifts as for float32 images (shifting only copies pixels)."""
    if not is_float_dtype(kind, value):
        return "reject"
    expected, labels = augment.shift_augment(value.float(), Y3[:2], 2, generator=_seeded())
    assert result[0].dtype == value.dtype and torch.equal(result[1], labels)
    close(result[0], expected, value.dtype)


CASES = []
for name, model in (("ConvVAE", CONV_VAE), ("ConvAutoEncoder", CONV_AE)):
    CASES += [
        Case(f"{name}.encode(x)", ("x",), bad_tensor(IMAGES8), lambda v, m=model: m.encode(v)),
        Case(f"{name}.forward(x)", ("x",), bad_tensor(IMAGES8), lambda v, m=model: m(v)),
        Case(f"{name}.loss(x)", ("x",), bad_tensor(IMAGES8), lambda v, m=model: m.loss(v)),
        Case(f"{name}.decode(z)", ("z",), bad_tensor(T((2, 3))), lambda v, m=model: m.decode(v)),
        Case(f"{name}(in_channels)", ("in_channels",), bad_int(), lambda v, c=type(model): c(v, 8, 3)),
        Case(f"{name}(image_size)", ("image_size",), bad_int(minimum=8), lambda v, c=type(model): c(1, v, 3),
             words={"int": ("integer", "at least 8")}),
        Case(f"{name}(n_latent)", ("n_latent",), bad_int(), lambda v, c=type(model): c(1, 8, v)),
        Case(f"{name} on meta, x on cpu", ("x",), st.just(("device", X8)), lambda v, c=type(model): c(1, 8, 3).to("meta").loss(v)),
    ]
CASES += [
    Case("ConvVAE.loss(C)", ("C",), bad_number(minimum=0), lambda v: CONV_VAE.loss(X8, C=v)),
    Case("ConvVAE.loss(k)", ("k",), bad_int(), lambda v: CONV_VAE.loss(X8, k=v)),
    Case("bootstrap_codes(codes)", ("codes",), bad_tensor(T((5, 3), fixed=())),
         lambda v: conv.bootstrap_codes(v, 4, _seeded()), _bootstrap_oracle),
    Case("bootstrap_codes(codes) with no latent", ("codes",), st.just(("empty", torch.zeros(5, 0))),
         lambda v: conv.bootstrap_codes(v, 4)),
    Case("bootstrap_codes(n)", ("n",), bad_int(), lambda v: conv.bootstrap_codes(CODES, v)),
    Case("bootstrap_codes(generator)", ("generator",), bad_generator(), lambda v: conv.bootstrap_codes(CODES, 4, v)),
    Case("uniform_codes(n)", ("n",), bad_int(), lambda v: conv.uniform_codes(v, 3)),
    Case("uniform_codes(n_latent)", ("n_latent",), bad_int(), lambda v: conv.uniform_codes(3, v)),
    Case("uniform_codes(low)", ("low",), bad_number().map(lambda kv: kv if kv[1] != -float("inf") else ("number", 2.0)),
         lambda v: conv.uniform_codes(3, 2, v, 1.0), words={"number": ("number", "low < high")}),
    Case("uniform_codes(high)", ("high",), bad_number(minimum=-1.0),
         lambda v: conv.uniform_codes(3, 2, -1.0, v), words={"number": ("number", "low < high")}),
    Case("uniform_codes(generator)", ("generator",), bad_generator(), lambda v: conv.uniform_codes(3, 2, generator=v)),
    Case("per_pixel(nats_per_image)", ("nats_per_image",), bad_number(), lambda v: conv.per_pixel(v, (1, 28, 28))),
    Case("per_pixel(image_shape)", ("image_shape",), bad_choice((1, 28.5, 28), (0, 28, 28), 784, (28,), None, "28x28",
                                                                (1, 2, 3, 4), (-1, 28, 28)),
         lambda v: conv.per_pixel(100.0, v), words={"choice": ("must be",)}),
    Case("history_per_pixel(image_shape)", ("image_shape",), bad_choice((0, 28, 28), (28.0, 28.0), 784, None),
         lambda v: conv.history_per_pixel({"train": {"total": [1.0]}, "test": {}}, v), words={"choice": ("must be",)}),
    Case("count_parameters(model)", ("model",), MODEL_TYPES, lambda v: conv.count_parameters(v), words={"type": ("Module",)}),
    # vqvae.py
    Case("VQVAE.encode(x)", ("x",), bad_tensor(IMAGES8), lambda v: VQ.encode(v),
         _same_as_reshaped(VQ.encode, (2, 1, 8, 8))),
    Case("VQVAE.forward(x)", ("x",), bad_tensor(IMAGES8), lambda v: VQ(v), _same_as_reshaped(VQ, (2, 1, 8, 8))),
    Case("VQVAE.loss(x)", ("x",), bad_tensor(IMAGES8), lambda v: VQ.loss(v), _same_as_reshaped(VQ.loss, (2, 1, 8, 8))),
    Case("VQVAE.encode_indices(x)", ("x",), bad_tensor(IMAGES8), lambda v: VQ.encode_indices(v),
         _same_as_reshaped(VQ.encode_indices, (2, 1, 8, 8))),
    Case("VQVAE.decode_indices(indices)", ("indices",), bad_tensor(T((2, 2, 2), "label8", fixed=())),
         lambda v: VQ.decode_indices(v), words={"range": ("lie in",)}),
    Case("VQVAE on meta, x on cpu", ("x",), st.just(("device", X8)),
         lambda v: vqvae.VQVAE(1, 8, 4, 8, image_size=8).to("meta").loss(v)),
    Case("VectorQuantizer.forward(z_e)", ("z_e",), bad_tensor(T((2, 4, 2, 2), fixed=(1,))), lambda v: VQ.quantizer(v)),
    Case("VectorQuantizer.nearest(z_e)", ("z_e",), bad_tensor(T((2, 4, 2, 2), fixed=(1,))),
         lambda v: VQ.quantizer.nearest(v)),
    Case("VectorQuantizer(beta)", ("beta",), bad_number(minimum=0), lambda v: vqvae.VectorQuantizer(8, 4, v)),
    Case("VQVAE(image_size)", ("image_size",), bad_int(minimum=4).map(lambda kv: kv if kv[1] != 3 else ("int", 6)),
         lambda v: vqvae.VQVAE(image_size=v), words={"int": ("multiple of 4",)}),
    Case("VQVAE(n_codes)", ("n_codes",), bad_int(), lambda v: vqvae.VQVAE(n_codes=v, image_size=8)),
    Case("codebook_usage(x)", ("x",), bad_tensor(IMAGES8), lambda v: vqvae.codebook_usage(VQ, v),
         _same_as_reshaped(lambda x: vqvae.codebook_usage(VQ, x), (2, 1, 8, 8))),
    Case("codebook_usage(batch_size)", ("batch_size",), bad_int(), lambda v: vqvae.codebook_usage(VQ, X8, v)),
    Case("codebook_usage(model)", ("model",), MODEL_TYPES, lambda v: vqvae.codebook_usage(v, X8),
         words={"type": ("VQVAE",)}),
    Case("perplexity(counts)", ("counts",), bad_tensor(T((8,), "positive", fixed=())), vqvae.perplexity,
         _perplexity_oracle, words={"type": ("shape", "tensor"), "range": ("non-negative",)}),
    # reconstruction.py
    Case("reconstruction_loss(x)", ("x",), bad_tensor(T((4, 6), "unit")), lambda v: rec.reconstruction_loss(v, LOGITS6),
         _reconstruction_oracle(True), words=PAIRED),
    Case("reconstruction_loss(logits)", ("logits",), bad_tensor(T((4, 6))), lambda v: rec.reconstruction_loss(X6, v),
         _reconstruction_oracle(False), words=PAIRED),
    Case("reconstruction_loss(kind)", ("kind",), bad_choice("bernoulli", "BCE", None, 1),
         lambda v: rec.reconstruction_loss(X6, LOGITS6, kind=v)),
    Case("reconstruction_loss(reduction)", ("reduction",), bad_choice("mean", "sum", None, ""),
         lambda v: rec.reconstruction_loss(X6, LOGITS6, reduction=v)),
    Case("effective_beta(n_pixels)", ("n_pixels",), bad_int(), lambda v: rec.effective_beta("pixel_mean", v, 10)),
    Case("effective_beta(batch_size)", ("batch_size",), bad_int(), lambda v: rec.effective_beta("batch_sum", 784, v)),
    Case("ReconstructionAE.loss(x)", ("x",), bad_tensor(T((4, 6), "unit")), lambda v: RAE.loss(v)),
    Case("ReductionVAE.loss(x)", ("x",), bad_tensor(T((4, 6), "unit")), lambda v: RVAE.loss(v)),
    Case("ReductionVAE(reduction)", ("reduction",), bad_choice("mean", None), lambda v: rec.ReductionVAE(6, 2, 8, reduction=v)),
    Case("train_steps(x)", ("x",), bad_tensor(T((4, 6), "unit")),
         lambda v: rec.train_steps(RAE, v, lr=0.1, num_steps=1, batch_size=2), words={"empty": ("empty", "N >= batch_size")}),
    Case("train_steps(lr)", ("lr",), bad_number(positive=True), lambda v: rec.train_steps(RAE, X6, lr=v, num_steps=1, batch_size=2)),
    Case("train_steps(num_steps)", ("num_steps",), bad_int(), lambda v: rec.train_steps(RAE, X6, lr=0.1, num_steps=v)),
    Case("train_steps(batch_size)", ("batch_size",), bad_int(), lambda v: rec.train_steps(RAE, X6, lr=0.1, num_steps=1, batch_size=v)),
    Case("train_steps(seed)", ("seed",), bad_seed(), lambda v: rec.train_steps(RAE, X6, lr=0.1, num_steps=1, batch_size=2, seed=v)),
    Case("train_steps(model)", ("model",), MODEL_TYPES, lambda v: rec.train_steps(v, X6, lr=0.1, num_steps=1, batch_size=2),
         words={"type": ("Module",)}),
    Case("train_steps(optimizer)", ("optimizer",), bad_choice("SGD", "rmsprop", None),
         lambda v: rec.train_steps(RAE, X6, optimizer=v, lr=0.1, num_steps=1, batch_size=2)),
    # augment.py
    Case("SmallCNN.forward(x)", ("x",), bad_tensor(T((3, 1, 28, 28), "unit", fixed=(1, 2, 3))), lambda v: CNN(v),
         _same_as_reshaped(CNN, (3, 1, 28, 28))),
    Case("SmallCNN(n_classes)", ("n_classes",), bad_int(minimum=2), lambda v: augment.SmallCNN(v),
         words={"int": ("integer", "at least 2")}),
    Case("accuracy(x)", ("x",), bad_tensor(T((3, 28, 28), "unit", fixed=(1, 2))), lambda v: augment.accuracy(CNN, v, Y3),
         words=PAIRED | {"ndim": ("shape",)}),
    Case("accuracy(y)", ("y",), bad_tensor(T((3,), "label3", fixed=())), lambda v: augment.accuracy(CNN, X28, v),
         words={"range": ("must be classes 0",), "empty": ("shape",)}),
    Case("accuracy(batch_size)", ("batch_size",), bad_int(), lambda v: augment.accuracy(CNN, X28, Y3, v)),
    Case("accuracy(model)", ("model",), MODEL_TYPES.filter(lambda kv: not isinstance(kv[1], torch.nn.Module)),
         lambda v: augment.accuracy(v, X28, Y3), words={"type": ("Module",)}),
    Case("train_classifier(x)", ("x",), bad_tensor(T((3, 28, 28), "unit", fixed=(1, 2))),
         lambda v: augment.train_classifier(augment.SmallCNN(3), v, Y3, num_steps=1), words=PAIRED),
    Case("train_classifier(lr)", ("lr",), bad_number(positive=True),
         lambda v: augment.train_classifier(CNN, X28, Y3, num_steps=1, lr=v)),
    Case("train_classifier(seed)", ("seed",), bad_seed(), lambda v: augment.train_classifier(CNN, X28, Y3, num_steps=1, seed=v)),
    Case("train_classifier(num_steps)", ("num_steps",), bad_int().filter(lambda kv: kv[1] is not None),
         lambda v: augment.train_classifier(CNN, X28, Y3, num_steps=v)),
    Case("balanced_subset(y)", ("y",), bad_tensor(T((12,), "label3", fixed=())),
         lambda v: augment.balanced_subset(v, 6, seed=0, n_classes=3), words={"range": ("must be classes 0",)}),
    Case("balanced_subset(n)", ("n",), bad_int(), lambda v: augment.balanced_subset(torch.arange(12) % 3, v, seed=0)),
    Case("balanced_subset(seed)", ("seed",), bad_seed(), lambda v: augment.balanced_subset(torch.arange(12) % 3, 6, seed=v)),
    Case("balanced_subset(n_classes)", ("n_classes",), bad_int().filter(lambda kv: kv[1] is not None),
         lambda v: augment.balanced_subset(torch.arange(12) % 3, 6, seed=0, n_classes=v)),
    Case("vae_codes(x)", ("x",), bad_tensor(T((3, 28, 28), "unit", fixed=(1, 2))),
         lambda v: augment.vae_codes(VAE784, v, 2, generator=_seeded()),
         _same_as_reshaped(lambda x: augment.vae_codes(VAE784, x, 2, generator=_seeded()), (3, 28, 28))),
    Case("vae_codes(factor)", ("factor",), bad_int(), lambda v: augment.vae_codes(VAE784, X28, v)),
    Case("vae_codes(scale)", ("scale",), bad_number(minimum=0), lambda v: augment.vae_codes(VAE784, X28, 2, scale=v)),
    Case("vae_codes(generator)", ("generator",), bad_generator(), lambda v: augment.vae_codes(VAE784, X28, 2, generator=v)),
    Case("augment_with_vae(y)", ("y",), bad_tensor(T((3,), "label3", fixed=())),
         lambda v: augment.augment_with_vae(VAE784, X28, v, 2), _labels_oracle(2),
         words={"range": ("must be classes 0",), "empty": ("shape",)}),
    Case("augment_with_vae(vae)", ("vae",), bad_choice(vl.AutoEncoder(784, 2, 16), None, CNN).map(lambda kv: ("type", kv[1])),
         lambda v: augment.augment_with_vae(v, X28, Y3, 2), words={"type": ("VAE",)}),
    Case("shift_augment(x)", ("x",), bad_tensor(T((2, 5, 5), "unit", fixed=())),
         lambda v: augment.shift_augment(v, Y3[:2], 2, generator=_seeded()), _shift_oracle,
         words={"empty": ("empty", "shape")}),
    Case("shift_augment(y)", ("y",), bad_tensor(T((2,), "label3", fixed=())),
         lambda v: augment.shift_augment(X28[:2], v, 2), _labels_oracle(2),
         words={"range": ("must be classes 0",), "empty": ("shape",)}),
    Case("shift_augment(factor)", ("factor",), bad_int(), lambda v: augment.shift_augment(X28[:2], Y3[:2], v)),
    Case("shift_augment(max_shift)", ("max_shift",), bad_int(minimum=0),
         lambda v: augment.shift_augment(X28[:2], Y3[:2], 2, max_shift=v)),
    Case("shift_augment(generator)", ("generator",), bad_generator(),
         lambda v: augment.shift_augment(X28[:2], Y3[:2], 2, generator=v)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_bad_input_gives_a_clear_error_or_a_correct_result(case, data):
    run_case(case, data)
