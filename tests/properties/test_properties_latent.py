"""Property tests with bad input: the latent-space tools (vae_lesson.infra.latent) and the likelihood bounds (vae_lesson.chapters.iwae).

See tests/_bad_inputs.py for what a bad input is and what counts as a clear error or a correct result.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import vae_lesson as vl
from vae_lesson.chapters import iwae
from vae_lesson.infra import latent

from _bad_inputs import (PAIRED, PROPERTY_SETTINGS, Case, T, bad_choice, bad_generator, bad_int, bad_number,
                         bad_seed, bad_tensor, close, count_fixture, is_float_dtype, run_case, valid)

_count_bad_inputs = count_fixture()

N_IN, N_H = 6, 8
torch.manual_seed(0)
VAE2, VAE5, AE2 = vl.VAE(N_IN, 2, N_H), vl.VAE(N_IN, 5, N_H), vl.AutoEncoder(N_IN, 2, N_H)
META_VAE = vl.VAE(N_IN, 2, N_H).to("meta")
X = valid(T((4, N_IN), "unit"), 1)
Z = valid(T((4, 2)), 2)
Z3 = valid(T((6, 3)), 3)
LABELS = torch.tensor([0, 1, 2, 0, 1, 2])
Z_FROM, Z_TO = valid(T((3,)), 4), valid(T((3,)), 5)
Q_MEAN, Q_LN_VAR = valid(T((3, 2)), 6), valid(T((3, 2)), 7)
MODEL_TYPES = bad_choice(None, "vae", torch.nn.Linear(2, 2), [VAE2]).map(lambda kv: ("type", kv[1]))


def _log_joint(z):
    return -0.5 * (z * z).sum(-1)


# ---------------------------------------------------------------------------------------------------
# oracles
# ---------------------------------------------------------------------------------------------------

def _encode_means_oracle(kind, value, result):
    """(n, H, W) images with H * W == n_in are flattened: the result is the means of the flattened batch."""
    if not (isinstance(value, torch.Tensor) and value.dim() == 3 and value[0].numel() == N_IN):
        return "reject"
    close(result, VAE2.encode(value.reshape(len(value), -1))[0].detach(), value.dtype)


def _centroids(z, labels, n_classes=3):
    z = z.double()
    return torch.stack([z[labels == c].mean(0) for c in range(n_classes)])


def _centroids_of_z(kind, value, result):
    if not is_float_dtype(kind, value):
        return "reject"
    assert result.dtype == value.dtype
    close(result, _centroids(value, LABELS), value.dtype)


def _centroids_of_labels(kind, value, result):
    """Labels given as a list or a NumPy array of integers are fine."""
    labels = torch.as_tensor(value)
    if labels.dtype not in (torch.int64, torch.int32) or labels.shape != LABELS.shape:
        return "reject"
    close(result, _centroids(Z3, labels), torch.float32)


def _interpolation(kind, value, result, first):
    if not is_float_dtype(kind, value):
        return "reject"
    z_from, z_to = (value, Z_TO) if first else (Z_FROM, value)
    s = torch.linspace(0, 1, 4, dtype=torch.float64).unsqueeze(1)
    close(result, (1 - s) * z_from.double() + s * z_to.double(), z_from.dtype, z_to.dtype)


IMAGE_SHAPES = bad_choice((2.5, 2.4), (2.0, 3.0), (6,), (1, 2, 3), (0, 6), (-2, -3), (3, 3), "ab", None, (True, 6))

CASES = [
    Case("encode_means(x)", ("x",), bad_tensor(T((4, N_IN), "unit")), lambda v: latent.encode_means(VAE2, v),
         _encode_means_oracle),
    Case("encode_means(batch_size)", ("batch_size",), bad_int(), lambda v: latent.encode_means(VAE2, X, v)),
    Case("encode_means(model)", ("model",), MODEL_TYPES, lambda v: latent.encode_means(v, X),
         words={"type": ("encode", "VAE")}),
    Case("encode_means(model on meta)", ("model",), st.just(("device", META_VAE)), lambda v: latent.encode_means(v, X)),
    Case("decode_points(z)", ("z",), bad_tensor(T((4, 2))), lambda v: latent.decode_points(VAE2, v)),
    Case("decode_points(z) of an autoencoder", ("z",), bad_tensor(T((4, 2))), lambda v: latent.decode_points(AE2, v)),
    Case("decode_points(batch_size)", ("batch_size",), bad_int(), lambda v: latent.decode_points(VAE2, Z, v)),
    Case("decode_points(model on meta)", ("model",), st.just(("device", META_VAE)), lambda v: latent.decode_points(v, Z)),
    Case("class_centroids(z)", ("z",), bad_tensor(T((6, 3), fixed=(0,))), lambda v: latent.class_centroids(v, LABELS),
         _centroids_of_z, words={"size": ("shape",)} | PAIRED),
    Case("class_centroids(labels)", ("labels",), bad_tensor(T((6,), "label3", fixed=())),
         lambda v: latent.class_centroids(Z3, v, n_classes=3), _centroids_of_labels,
         words={"range": ("must be classes",), "type": ("shape", "integer", "tensor"), "empty": ("empty", "shape")}),
    Case("class_centroids(n_classes)", ("n_classes",), bad_int().filter(lambda kv: kv[1] is not None), lambda v: latent.class_centroids(Z3, LABELS, v),
         words={"int": ("integer", "must be classes")}),
    Case("interpolate(z_from)", ("z_from",), bad_tensor(T((3,), batch=False)),
         lambda v: latent.interpolate(v, Z_TO, 4), lambda k, v, r: _interpolation(k, v, r, True), words=PAIRED),
    Case("interpolate(z_to)", ("z_to",), bad_tensor(T((3,), batch=False)),
         lambda v: latent.interpolate(Z_FROM, v, 4), lambda k, v, r: _interpolation(k, v, r, False), words=PAIRED),
    Case("interpolate(z_from=z_to) empty", ("z_from",), st.just(("empty", torch.zeros(0))),
         lambda v: latent.interpolate(v, v, 4)),
    Case("interpolate(n_frames)", ("n_frames",), bad_int(minimum=2), lambda v: latent.interpolate(Z_FROM, Z_TO, v)),
    Case("latent_grid(extent)", ("extent",), bad_number(positive=True), lambda v: latent.latent_grid(v, 3)),
    Case("latent_grid(n)", ("n",), bad_int(minimum=2), lambda v: latent.latent_grid(1.0, v)),
    Case("decode_grid(extent)", ("extent",), bad_number(positive=True), lambda v: latent.decode_grid(VAE2, v, 3)),
    Case("decode_grid(n)", ("n",), bad_int(minimum=2), lambda v: latent.decode_grid(VAE2, 1.0, v)),
    Case("decode_grid(model with n_latent=5)", ("n_latent",), st.just(("size", VAE5)), lambda v: latent.decode_grid(v)),
    Case("all_pairs_frames(centroids)", ("centroids",), bad_tensor(T((3, 2))),
         lambda v: latent.all_pairs_frames(VAE2, v, 2, (2, 3))),
    Case("all_pairs_frames(n_steps)", ("n_steps",), bad_int(minimum=2),
         lambda v: latent.all_pairs_frames(VAE2, Z[:3], v, (2, 3))),
    Case("all_pairs_frames(image_shape)", ("image_shape",), IMAGE_SHAPES,
         lambda v: latent.all_pairs_frames(VAE2, Z[:3], 2, v), words={"choice": ("(H, W)", "pixels")}),
    Case("sample_prior(n)", ("n",), bad_int(), lambda v: latent.sample_prior(VAE2, v)),
    Case("sample_prior(generator)", ("generator",), bad_generator(), lambda v: latent.sample_prior(VAE2, 3, v)),
    Case("sample_prior(model on meta)", ("model",), st.just(("device", META_VAE)), lambda v: latent.sample_prior(v, 3)),
    # iwae.py
    Case("importance_weighted_bound(q_mean)", ("q_mean",), bad_tensor(T((3, 2))),
         lambda v: iwae.importance_weighted_bound(_log_joint, v, Q_LN_VAR, 4), words=PAIRED),
    Case("importance_weighted_bound(q_ln_var)", ("q_ln_var",), bad_tensor(T((3, 2))),
         lambda v: iwae.importance_weighted_bound(_log_joint, Q_MEAN, v, 4), words=PAIRED),
    Case("importance_weighted_bound(log_joint)", ("log_joint",), st.sampled_from([
        ("type", 3), ("type", None), ("type", lambda z: [1.0]), ("ndim", lambda z: torch.zeros(3)),
        ("ndim", lambda z: z.sum()), ("nan", lambda z: torch.full(z.shape[:-1], float("nan"))),
        ("inf", lambda z: torch.full(z.shape[:-1], float("inf")))]),
         lambda v: iwae.importance_weighted_bound(v, Q_MEAN, Q_LN_VAR, 4),
         words={"type": ("function", "tensor")}),
    Case("importance_weighted_bound(K)", ("K",), bad_int(), lambda v: iwae.importance_weighted_bound(_log_joint, Q_MEAN, Q_LN_VAR, v)),
    Case("importance_weighted_bound(chunk_size)", ("chunk_size",), bad_int(),
         lambda v: iwae.importance_weighted_bound(_log_joint, Q_MEAN, Q_LN_VAR, 4, chunk_size=v)),
    Case("importance_weighted_bound(generator)", ("generator",), bad_generator(),
         lambda v: iwae.importance_weighted_bound(_log_joint, Q_MEAN, Q_LN_VAR, 4, generator=v)),
    Case("neg_elbo(x)", ("x",), bad_tensor(T((4, N_IN), "unit")), lambda v: iwae.neg_elbo(VAE2, v)),
    Case("neg_elbo(n_samples)", ("n_samples",), bad_int(), lambda v: iwae.neg_elbo(VAE2, X, n_samples=v)),
    Case("neg_elbo(batch_size)", ("batch_size",), bad_int(), lambda v: iwae.neg_elbo(VAE2, X, batch_size=v)),
    Case("neg_elbo(seed)", ("seed",), bad_seed(), lambda v: iwae.neg_elbo(VAE2, X, seed=v)),
    Case("neg_elbo(model)", ("model",), MODEL_TYPES, lambda v: iwae.neg_elbo(v, X), words={"type": ("encode",)}),
    Case("iwae_bound(x)", ("x",), bad_tensor(T((4, N_IN), "unit")), lambda v: iwae.iwae_bound(VAE2, v, K=3)),
    Case("iwae_bound(K)", ("K",), bad_int(), lambda v: iwae.iwae_bound(VAE2, X, K=v)),
    Case("iwae_bound(batch_size)", ("batch_size",), bad_int(), lambda v: iwae.iwae_bound(VAE2, X, K=3, batch_size=v)),
    Case("iwae_bound(chunk_size)", ("chunk_size",), bad_int(), lambda v: iwae.iwae_bound(VAE2, X, K=3, chunk_size=v)),
    Case("iwae_bound(seed)", ("seed",), bad_seed(), lambda v: iwae.iwae_bound(VAE2, X, K=3, seed=v)),
    Case("iwae_bound(model on meta)", ("x",), st.just(("device", META_VAE)), lambda v: iwae.iwae_bound(v, X, K=3)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_bad_input_gives_a_clear_error_or_a_correct_result(case, data):
    run_case(case, data)
