"""Property tests with bad input: the linear-Gaussian ELBO check (vae_lesson.chapters.elbo), the gradient estimators
(vae_lesson.chapters.gradient_variance) and the swiss roll (vae_lesson.chapters.swiss_roll).

See tests/_bad_inputs.py for what a bad input is and what counts as a clear error or a correct result.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from torch.distributions import MultivariateNormal, kl_divergence

from vae_lesson.chapters import elbo as E
from vae_lesson.chapters import gradient_variance as gv
from vae_lesson.chapters import swiss_roll as sr

from _bad_inputs import (PROPERTY_SETTINGS, Case, T, bad_choice, bad_generator, bad_int, bad_number,
                         bad_seed, bad_tensor, close, count_fixture, is_float_dtype, run_case, valid)

_count_bad_inputs = count_fixture()

F64 = torch.float64
M = E.LinearGaussianModel.random(4, 2, seed=1)
XE = valid(T((4,), dtype=F64), 1)
XS = valid(T((3, 4), dtype=F64), 2)
QM, QL = valid(T((2,), dtype=F64), 3), valid(T((2,), dtype=F64), 4)
EYE2 = torch.eye(2, dtype=F64)
W, B = valid(T((4, 2), dtype=F64), 5), valid(T((4,), dtype=F64), 6)
MU = torch.tensor([0.5, -1.0], dtype=F64)
EPS = valid(T((3, 2), dtype=F64), 7)
TARGET = valid(T((6,), "unit", dtype=F64), 8)
DECODER = gv.DecoderLoss(TARGET, latent_dim=2, hidden=4)
POINTS, ROLL_T = sr.make_roll(30, seed=0)
COORDS = np.c_[ROLL_T, POINTS[:, 1]]
torch.manual_seed(0)
PVAE = sr.PointVAE(3, 2, 8)
XP = valid(T((4, 3)), 9)
SCALING = sr.to_unit_cube(POINTS)[1]

F64_SPEC = dict(dtype=F64)
BAD_COVS = st.sampled_from([
    ("range", torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=F64)), ("range", torch.zeros(2, 2, dtype=F64)),
    ("shape", torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=F64)), ("size", torch.eye(3, dtype=F64)),
    ("ndim", torch.ones(2, dtype=F64)), ("nan", torch.full((2, 2), float("nan"), dtype=F64)),
    ("dtype", torch.eye(2)), ("dtype", torch.eye(2, dtype=torch.int64)), ("device", torch.eye(2, dtype=F64).to("meta")),
    ("type", [[1.0, 0.0], [0.0, 1.0]]), ("empty", torch.zeros(0, 0, dtype=F64))])
COV_WORDS = {"range": ("positive definite",), "shape": ("symmetric",), "size": ("shape",), "ndim": ("square",),
             "empty": ("empty", "shape", "square")}


# ---------------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------------

def _marginal_oracle(kind, value, result):
    """x of shape (D,) or (n, D) in float64 (an empty batch included): log N(x; b, W W^T + sigma^2 I)."""
    if not (isinstance(value, torch.Tensor) and value.dtype == F64 and value.dim() in (1, 2) and value.shape[-1] == 4
            and bool(torch.isfinite(value).all())):
        return "reject"
    if value.numel() == 0:  # an empty batch: no log densities (torch.distributions cannot take it)
        assert result.shape == value.shape[:-1]
        return None
    close(result, MultivariateNormal(M.b, M.marginal_covariance()).log_prob(value), F64)


def _likelihood_oracle(kind, value, result):
    """z of any batch shape that broadcasts against x: log N(x; W z + b, sigma^2 I)."""
    if not (isinstance(value, torch.Tensor) and value.dtype == F64 and value.dim() >= 1 and value.shape[-1] == 2):
        return "reject"
    mean = value @ M.W.T + M.b
    expected = MultivariateNormal(mean, M.sigma**2 * torch.eye(4, dtype=F64)).log_prob(XS)
    close(result, expected, F64)


def _prior_oracle(kind, value, result):
    if not (isinstance(value, torch.Tensor) and value.dtype == F64 and value.dim() >= 1 and value.shape[-1] == 2):
        return "reject"
    if value.numel() == 0:
        assert result.shape == value.shape[:-1]
        return None
    close(result, MultivariateNormal(torch.zeros(2, dtype=F64), EYE2).log_prob(value), F64)


def _kl_oracle(kind, value, result):
    """A batch of means (..., d) against one Gaussian: torch.distributions' KL, batch by batch."""
    if not (isinstance(value, torch.Tensor) and value.dtype == F64 and value.dim() >= 1 and value.shape[-1] == 2):
        return "reject"
    q = MultivariateNormal(value, 0.5 * EYE2 + 0.1)
    close(result, kl_divergence(q, MultivariateNormal(torch.zeros(2, dtype=F64), EYE2)), F64)


def _diag_oracle(kind, value, result):
    if not (isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() >= 1):
        return "reject"
    close(result, torch.diag_embed(value.double().exp()), value.dtype)


def _gradient_oracle(which):
    """pathwise gradients of ||z||^2 are 2 (mean + sigma * eps), whatever the float dtypes (and, for eps, any
    number of leading dimensions (..., K, d))."""
    def oracle(kind, value, result):
        if not (is_float_dtype(kind, value) or (which == "eps" and kind == "ndim" and value.dim() > 2
                                                and value.shape[-1] == 2)):
            return "reject"
        mean, eps = (value, EPS) if which == "mean" else (MU, value)
        close(result, 2 * (mean.double() + 0.7 * eps.double()), mean.dtype, eps.dtype)
    return oracle


def _closed_form_oracle(closed_form):
    """Floats, arrays or lists of finite numbers of the mean: ``closed_form(mean)`` elementwise."""
    def oracle(kind, value, result):
        if isinstance(value, (str, bool)) or value is None:
            return "reject"
        mean = np.asarray(value, dtype=np.float64)
        if not np.isfinite(mean).all() or np.iscomplexobj(value):
            return "reject"
        np.testing.assert_allclose(result, closed_form(mean), rtol=1e-12)
    return oracle


# at sigma = 1: the score function's mu^4 + 14 mu^2 + 15, and with the leave-one-out baseline at
# k = 2, (8 mu^2 + 10) + (8 mu^2 + 2)
_variance_oracle = _closed_form_oracle(lambda mean: mean**4 + 14 * mean**2 + 15)
_leave_one_out_oracle = _closed_form_oracle(lambda mean: 16 * mean**2 + 12)


def _decoder_forward_oracle(kind, value, result):
    """Codes of any batch shape (..., 2), an empty batch included: the loss of each code."""
    if not (isinstance(value, torch.Tensor) and value.dtype == F64 and value.dim() >= 1 and value.shape[-1] == 2):
        return "reject"
    expected = torch.stack([DECODER(z) for z in value.reshape(-1, 2)]) if value.numel() else torch.zeros(0, dtype=F64)
    close(result, expected.reshape(value.shape[:-1]), F64)


def _decoder_target_oracle(kind, value, result):
    """A target of another float dtype gives a decoder in that dtype."""
    if not is_float_dtype(kind, value):
        return "reject"
    assert result.target is value and all(w.dtype == value.dtype for w in result.weights)


def _arc_oracle(kind, value, result):
    """Any shape of finite real numbers (lists, arrays, integer tensors too): the closed form."""
    if isinstance(value, (str, bool)) or value is None:
        return "reject"
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            return "reject"
        value = value.double().numpy()
    t = np.asarray(value, dtype=np.float64)
    if not np.isfinite(t).all():
        return "reject"
    np.testing.assert_allclose(result, 0.5 * (t * np.sqrt(1 + t * t) + np.arcsinh(t)), rtol=1e-12)


def _as_float64_array(value):
    if isinstance(value, torch.Tensor):
        value = value.double().numpy() if value.dtype != torch.bool and not value.is_complex() else None
    return value


def _same_as_float64(fn, ndim=2):
    """Numbers given as float32/float16/int tensors, lists or arrays: the result for the same numbers as a float64
    array (the helpers take NumPy arrays first of all)."""
    def oracle(kind, value, result):
        array = _as_float64_array(value)
        if array is None or isinstance(array, (str, float)) or np.ndim(array) != ndim:
            return "reject"
        expected = fn(np.asarray(array, dtype=np.float64))
        if isinstance(expected, tuple) and not isinstance(expected[0], np.ndarray):
            assert result == expected, f"{result} != {expected}"
            return None
        if isinstance(expected, tuple):  # (tensor, scaling)
            result, expected = result[0], expected[0]
        np.testing.assert_allclose(np.asarray(result, dtype=float), np.asarray(expected, dtype=float), rtol=1e-6)
    return oracle


def _cube_oracle(kind, value, result):
    array = _as_float64_array(value)
    if array is None or np.ndim(array) != 2:
        return "reject"
    np.testing.assert_allclose(result, np.asarray(array, float) * SCALING.scale + SCALING.offset, rtol=1e-6)


def _gaussian_nll_oracle(kind, value, result):
    if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
        return "reject"
    try:
        torch.broadcast_shapes(value.shape, XP.shape)
    except RuntimeError:
        return "reject"
    expected = 0.5 * (math.log(2 * math.pi) + (value.double() - XP.double()) ** 2)
    close(result, expected, value.dtype)


def _gaussian_nll_ln_var_oracle(kind, value, result):
    """Log variances of any float dtype and any shape that broadcasts against x (4, 3) (a scalar, (3,), (4, 1), ...)."""
    if not (isinstance(value, torch.Tensor) and value.is_floating_point()):
        return "reject"
    try:
        shape = torch.broadcast_shapes(value.shape, XP.shape)
    except RuntimeError:
        return "reject"
    close(result, (0.5 * (math.log(2 * math.pi) + value.double())).expand(shape), value.dtype)


def _point_decode_oracle(kind, value, result):
    """Codes of any batch shape (..., n_latent): decode row by row."""
    if not (isinstance(value, torch.Tensor) and value.dtype == torch.float32 and value.dim() >= 2
            and value.shape[-1] == 2 and value.numel()):
        return "reject"
    close(result, PVAE.decode(value.reshape(-1, 2)).reshape(*value.shape[:-1], 3).detach(), torch.float32)


def _figure(kind, value, result):
    """A parameter of another float dtype draws the same figure."""
    if not is_float_dtype(kind, value):
        return "reject"
    assert isinstance(result, Figure) and len(result.axes) == 2


CASES = [
    # elbo.py
    Case("LinearGaussianModel(W)", ("W",), bad_tensor(T((4, 2), fixed=(0,), batch=False, **F64_SPEC)),
         lambda v: E.LinearGaussianModel(v, B, 0.5), words={"size": ("shape",), "empty": ("empty", "shape")}),
    Case("LinearGaussianModel(b)", ("b",), bad_tensor(T((4,), fixed=(0,), batch=False, **F64_SPEC)),
         lambda v: E.LinearGaussianModel(W, v, 0.5), words={"empty": ("shape",)}),
    Case("LinearGaussianModel(sigma)", ("sigma",), bad_number(positive=True), lambda v: E.LinearGaussianModel(W, B, v)),
    Case("LinearGaussianModel.random(data_dim)", ("data_dim",), bad_int(), lambda v: E.LinearGaussianModel.random(v, 2)),
    Case("LinearGaussianModel.random(seed)", ("seed",), bad_seed(), lambda v: E.LinearGaussianModel.random(4, 2, seed=v)),
    Case("LinearGaussianModel.random(dtype)", ("dtype",), bad_choice(torch.int64, "float64", np.float64, None, torch.bool),
         lambda v: E.LinearGaussianModel.random(4, 2, dtype=v), words={"choice": ("floating-point",)}),
    Case("log_marginal(x)", ("x",), bad_tensor(T((3, 4), **F64_SPEC)), M.log_marginal, _marginal_oracle),
    Case("posterior(x)", ("x",), bad_tensor(T((3, 4), **F64_SPEC)), lambda v: M.posterior(v)[0],
         lambda k, v, r: _marginal_oracle(k, v, M.log_marginal(v)) or close(r, M.posterior(v)[0], F64)),
    Case("log_likelihood(z)", ("z",), bad_tensor(T((3, 2), **F64_SPEC)), lambda v: M.log_likelihood(XS, v),
         _likelihood_oracle, words={"empty": ("broadcast",), "ndim": ("shape", "broadcast")}),
    Case("log_likelihood(x)", ("x",), bad_tensor(T((3, 4), **F64_SPEC)), lambda v: M.log_likelihood(v, QM),
         lambda k, v, r: _marginal_oracle(k, v, M.log_marginal(v)) or (r.shape == (0,) if v.numel() == 0 else close(
             r, MultivariateNormal(M.W @ QM + M.b, M.sigma**2 * torch.eye(4, dtype=F64)).log_prob(v), F64))),
    Case("log_prior(z)", ("z",), bad_tensor(T((3, 2), **F64_SPEC)), M.log_prior, _prior_oracle),
    Case("sample(n)", ("n",), bad_int(), M.sample),
    Case("sample(generator)", ("generator",), bad_generator(), lambda v: M.sample(3, v)),
    Case("elbo(x)", ("x",), bad_tensor(T((4,), batch=False, **F64_SPEC)), lambda v: E.elbo(M, v, QM, EYE2),
         words={"ndim": ("shape", "one row per data point")}),
    Case("elbo(q_mean)", ("q_mean",), bad_tensor(T((2,), batch=False, **F64_SPEC)), lambda v: E.elbo(M, XE, v, EYE2),
         words={"ndim": ("shape", "one row per data point")}),
    Case("elbo(q_cov)", ("q_cov",), BAD_COVS, lambda v: E.elbo(M, XE, QM, v), words=COV_WORDS),
    Case("elbo(q_ln_var)", ("q_ln_var",), bad_tensor(T((2,), batch=False, **F64_SPEC)),
         lambda v: E.elbo(M, XE, QM, q_ln_var=v), words={"empty": ("shape",)}),
    Case("kl_to_posterior(q_mean)", ("q_mean",), bad_tensor(T((2,), batch=False, **F64_SPEC)),
         lambda v: E.kl_to_posterior(M, XE, v, EYE2), words={"ndim": ("shape", "one row per data point")}),
    Case("kl_to_posterior(q_cov)", ("q_cov",), BAD_COVS, lambda v: E.kl_to_posterior(M, XE, QM, v), words=COV_WORDS),
    Case("elbo_monte_carlo(num_samples)", ("num_samples",), bad_int(),
         lambda v: E.elbo_monte_carlo(M, XE, QM, EYE2, num_samples=v)),
    Case("elbo_monte_carlo(generator)", ("generator",), bad_generator(),
         lambda v: E.elbo_monte_carlo(M, XE, QM, EYE2, num_samples=3, generator=v)),
    Case("gaussian_kl(mean_q)", ("mean_q",), bad_tensor(T((2,), batch=False, **F64_SPEC)),
         lambda v: E.gaussian_kl(v, 0.5 * EYE2 + 0.1, torch.zeros(2, dtype=F64), EYE2), _kl_oracle,
         words={"dtype": ("dtype",), "size": ("shape", "dimension")}),
    Case("gaussian_kl(cov_p)", ("cov_p",), BAD_COVS, lambda v: E.gaussian_kl(QM, EYE2, QM, v),
         words=COV_WORDS | {"size": ("shape", "match")}),
    Case("diagonal_covariance(ln_var)", ("ln_var",), bad_tensor(T((3, 2))), E.diagonal_covariance, _diag_oracle,
         words={"size": ("shape",)}),
    Case("best_mean_field(x)", ("x",), bad_tensor(T((4,), batch=False, **F64_SPEC)), lambda v: E.best_mean_field(M, v)[0],
         lambda k, v, r: _marginal_oracle(k, v, M.log_marginal(v)) or close(r, M.posterior(v)[0], F64)),
    Case("identity_table(x)", ("x",), bad_tensor(T((4,), batch=False, **F64_SPEC)),
         lambda v: E.identity_table(M, v, {"prior": {"q_mean": QM, "q_cov": EYE2}}), words={"ndim": ("shape", "one data point")}),
    Case("monte_carlo_convergence(sample_sizes)", ("sample_sizes",), bad_choice((0,), (2.5,), (), ("10",), None, 10, (10.0,)),
         lambda v: E.monte_carlo_convergence(M, XE, QM, EYE2, sample_sizes=v), words={"choice": ("must", "integer")}),
    Case("plot_elbo_along_line(t)", ("t",), bad_tensor(T((5,), batch=False, fixed=(), **F64_SPEC)),
         lambda v: E.plot_elbo_along_line(M, XE, v), _figure, words={"ndim": ("shape",), "empty": ("shape",)}),
    # gradient_variance.py
    Case("square_exact_gradient(mean)", ("mean",), bad_tensor(T((2,), batch=False, fixed=(), **F64_SPEC)),
         lambda v: gv.square_exact_gradient(v, 1.0),
         lambda k, v, r: "reject" if not is_float_dtype(k, v) else close(r, 2 * v.double(), v.dtype)),
    Case("square_per_sample_variance(mean)", ("mean",), bad_number(),
         lambda v: gv.square_per_sample_variance(v, 1.0, "score"), _variance_oracle,
         words={"number": ("number", "NaN", "tensor")}),
    Case("square_per_sample_variance(sigma)", ("sigma",), bad_number(positive=True),
         lambda v: gv.square_per_sample_variance(1.0, v, "score"),
         lambda k, v, r: "reject" if not isinstance(v, list) else np.testing.assert_allclose(r, [30.0]),
         words={"number": ("number", "NaN", "positive", "tensor")}),
    Case("square_per_sample_variance(baseline)", ("baseline",), bad_number(),
         lambda v: gv.square_per_sample_variance(1.0, 1.0, "score", baseline=v)),
    Case("square_per_sample_variance(estimator)", ("estimator",), bad_choice("score_baseline", "Pathwise", None),
         lambda v: gv.square_per_sample_variance(1.0, 1.0, v)),
    Case("square_leave_one_out_variance(mean)", ("mean",), bad_number(),
         lambda v: gv.square_leave_one_out_variance(v, 1.0, 2), _leave_one_out_oracle,
         words={"number": ("number", "NaN", "tensor")}),
    Case("square_leave_one_out_variance(sigma)", ("sigma",), bad_number(positive=True),
         lambda v: gv.square_leave_one_out_variance(1.0, v, 3),
         lambda k, v, r: "reject" if not isinstance(v, list) else np.testing.assert_allclose(r, [23.0]),
         words={"number": ("number", "NaN", "positive", "tensor")}),
    Case("square_leave_one_out_variance(k)", ("k",), bad_int(minimum=2),
         lambda v: gv.square_leave_one_out_variance(1.0, 1.0, v)),
    Case("pathwise_samples(mean)", ("mean",), bad_tensor(T((2,), batch=False, fixed=(0,), **F64_SPEC)),
         lambda v: gv.pathwise_samples(gv.square, v, 0.7, EPS), _gradient_oracle("mean"),
         words={"size": ("shape",), "empty": ("empty", "shape")}),
    Case("pathwise_samples(eps)", ("eps",), bad_tensor(T((3, 2), **F64_SPEC)),
         lambda v: gv.pathwise_samples(gv.square, MU, 0.7, v), _gradient_oracle("eps")),
    Case("pathwise_samples(sigma)", ("sigma",), bad_number(positive=True).map(
        lambda kv: kv if kv[1] != [1.0] else ("size", torch.ones(3, dtype=F64))),
         lambda v: gv.pathwise_samples(gv.square, MU, v, EPS),
         words={"number": ("number", "positive", "tensor", "finite"), "size": ("shape",)}),
    Case("pathwise_samples(f)", ("f",), st.sampled_from([
        ("type", None), ("type", 3), ("type", lambda z: "x"), ("ndim", lambda z: z), ("ndim", lambda z: z.sum()),
        ("nan", lambda z: (z * z).sum(-1) * float("nan"))]),
         lambda v: gv.pathwise_samples(v, MU, 0.7, EPS), words={"type": ("function", "tensor")}),
    Case("score_function_samples(baseline)", ("baseline",), bad_number().filter(lambda kv: kv[1] is not None).map(
        lambda kv: kv if kv[1] != "1" else ("choice", "leave_one_out")),
         lambda v: gv.score_function_samples(gv.square, MU, 0.7, EPS, baseline=v),
         words={"choice": ("must be",)}),
    Case("score_function_samples(eps)", ("eps",), bad_tensor(T((3, 2), **F64_SPEC)),
         lambda v: gv.score_function_samples(gv.square, MU, 0.7, v),
         lambda k, v, r: "reject" if not (is_float_dtype(k, v) or (k == "ndim" and v.dim() > 2 and v.shape[-1] == 2))
         else close(
             r, gv.score_function_samples(gv.square, MU, 0.7, v.double()), v.dtype)),
    Case("gradient_estimates(num_samples)", ("num_samples",), bad_int(),
         lambda v: gv.gradient_estimates(gv.square, MU, 0.7, estimator="pathwise", num_samples=v, num_trials=2)),
    Case("gradient_estimates(max_draws_per_chunk)", ("max_draws_per_chunk",), bad_int(),
         lambda v: gv.gradient_estimates(gv.square, MU, 0.7, estimator="pathwise", num_samples=2, num_trials=2,
                                         max_draws_per_chunk=v)),
    Case("gradient_estimates(generator)", ("generator",), bad_generator(),
         lambda v: gv.gradient_estimates(gv.square, MU, 0.7, estimator="score", num_samples=2, num_trials=2, generator=v)),
    Case("gradient_estimates(estimator)", ("estimator",), bad_choice("reinforce", None, ("pathwise",)),
         lambda v: gv.gradient_estimates(gv.square, MU, 0.7, estimator=v, num_samples=2, num_trials=2)),
    Case("quadrature_gradient(num_nodes)", ("num_nodes",), bad_int(), lambda v: gv.quadrature_gradient(gv.square, MU, 0.7, v)),
    Case("quadrature_gradient(mean) in 4-D", ("d",), st.just(("size", torch.zeros(4, dtype=F64))),
         lambda v: gv.quadrature_gradient(gv.square, v, 0.7), words={"size": ("d <= 3",)}),
    Case("DecoderLoss(target)", ("target",), bad_tensor(T((6,), "unit", batch=False, fixed=(), **F64_SPEC)),
         gv.DecoderLoss, _decoder_target_oracle, words={"empty": ("empty",)}),
    Case("DecoderLoss(latent_dim)", ("latent_dim",), bad_int(), lambda v: gv.DecoderLoss(TARGET, latent_dim=v)),
    Case("DecoderLoss.forward(z)", ("z",), bad_tensor(T((5, 2), **F64_SPEC)), DECODER, _decoder_forward_oracle),
    Case("variance_experiment(num_trials)", ("num_trials",), bad_int(minimum=2),
         lambda v: gv.variance_experiment(gv.square, MU, 0.7, sample_sizes=(2,), num_trials=v, estimators=("pathwise",)),
         words={"int": ("integer", "at least 2")}),
    Case("variance_experiment(sample_sizes)", ("sample_sizes",), bad_choice((0,), (2.5,), (), (2.0,), ("2",)),
         lambda v: gv.variance_experiment(gv.square, MU, 0.7, sample_sizes=v, num_trials=3, estimators=("pathwise",)),
         words={"choice": ("must", "integer")}),
    Case("variance_experiment(estimators)", ("estimators", "estimator"), bad_choice("pathwise", ("score_fn",), (None,)),
         lambda v: gv.variance_experiment(gv.square, MU, 0.7, sample_sizes=(2,), num_trials=3, estimators=v),
         words={"choice": ("must be", "unknown")}),
    Case("variance_experiment(seed)", ("seed",), bad_seed(),
         lambda v: gv.variance_experiment(gv.square, MU, 0.7, sample_sizes=(2,), num_trials=3, estimators=("pathwise",), seed=v)),
    # swiss_roll.py
    Case("make_roll(n)", ("n",), bad_int(numpy_ok=True), lambda v: sr.make_roll(v)),
    Case("make_roll(noise)", ("noise",), bad_number(minimum=0), lambda v: sr.make_roll(5, v)),
    Case("make_roll(seed)", ("seed",), bad_int(minimum=0, numpy_ok=True), lambda v: sr.make_roll(5, 0.0, v)),
    Case("arc_length(t)", ("t",), bad_tensor(T((5,), fixed=())), sr.arc_length, _arc_oracle,
         words={"type": ("number", "real"), "dtype": ("real", "dtype")}),
    Case("shortcut_pair(points)", ("points",), bad_tensor(T((30, 3), fixed=(1, 0), **F64_SPEC)),
         lambda v: sr.shortcut_pair(v, ROLL_T), _same_as_float64(lambda p: sr.shortcut_pair(p, ROLL_T)),
         words={"dtype": ("numbers", "dtype"), "type": ("numbers", "shape"), "size": ("shape",)}),
    Case("shortcut_pair(t)", ("t",), bad_tensor(T((30,), fixed=(0,), **F64_SPEC)),
         lambda v: sr.shortcut_pair(POINTS, v), _same_as_float64(lambda t: sr.shortcut_pair(POINTS, t), ndim=1),
         words={"dtype": ("real", "dtype"), "type": ("numbers", "shape", "NaN"), "empty": ("shape",)}),
    Case("shortcut_pair(min_gap)", ("min_gap",), bad_number(positive=True), lambda v: sr.shortcut_pair(POINTS, ROLL_T, v)),
    Case("graph_geodesic(i)", ("i",), bad_int(minimum=0, numpy_ok=True).map(lambda kv: kv if kv[1] != -1 else ("int", 30)),
         lambda v: sr.graph_geodesic(POINTS, v, 1), words={"int": ("integer", "below 30")}),
    Case("graph_geodesic(n_neighbors)", ("n_neighbors",), bad_int(numpy_ok=True).map(lambda kv: kv if kv[1] != -7 else ("int", 30)),
         lambda v: sr.graph_geodesic(POINTS, 0, 1, v), words={"int": ("integer", "smaller than")}),
    Case("to_unit_cube(points)", ("points",), bad_tensor(T((30, 3), fixed=(), **F64_SPEC)).filter(
        lambda kv: not (kv[0] == "ndim" and isinstance(kv[1], torch.Tensor) and kv[1].dim() == 2)),
         lambda v: sr.to_unit_cube(v)[0], _same_as_float64(lambda p: sr.to_unit_cube(p)[0]),
         words={"dtype": ("numbers", "dtype"), "type": ("numbers", "shape", "identical")}),
    Case("to_unit_cube(dtype)", ("dtype",), bad_choice(torch.int64, torch.bool, "float32", np.float32, None),
         lambda v: sr.to_unit_cube(POINTS, dtype=v), words={"choice": ("floating-point",)}),
    Case("to_unit_cube(scaling)", ("scaling",), bad_choice("s", 1.0, (0, 1)).map(lambda kv: ("type", kv[1])),
         lambda v: sr.to_unit_cube(POINTS, v), words={"type": ("CubeScaling",)}),
    Case("from_unit_cube(cube)", ("cube",), bad_tensor(T((5, 3), fixed=(1,), batch=True)),
         lambda v: sr.from_unit_cube(v, SCALING), _cube_oracle,
         words={"dtype": ("numbers", "dtype"), "type": ("numbers", "shape"), "empty": ("shape",)}),
    Case("unroll(method)", ("method",), bad_choice("tsne", None, "Isomap"), lambda v: sr.unroll(POINTS, v)),
    Case("unroll(n_neighbors)", ("n_neighbors",), bad_int(numpy_ok=True), lambda v: sr.unroll(POINTS, n_neighbors=v)),
    Case("spearman(a)", ("a",), bad_tensor(T((30,), fixed=(0,), **F64_SPEC)).map(
        lambda kv: kv if kv[0] != "empty" else ("empty", torch.ones(30, dtype=F64))),
         lambda v: sr.spearman(v, ROLL_T), _same_as_float64(lambda a: sr.spearman(a, ROLL_T), ndim=1),
         words={"empty": ("constant",), "size": ("shape",), "dtype": ("real", "dtype"), "type": ("shape", "number")}),
    Case("fit_direction(target)", ("target",), bad_tensor(T((30,), fixed=(0,), **F64_SPEC)),
         lambda v: sr.fit_direction(COORDS, v), lambda k, v, r: "reject" if _as_float64_array(v) is None
         or np.ndim(_as_float64_array(v)) != 1
         else np.testing.assert_allclose(r, sr.fit_direction(COORDS, np.asarray(_as_float64_array(v), float)), rtol=1e-6,
                                         atol=1e-6),
         words={"empty": ("shape",), "dtype": ("real", "dtype"), "type": ("shape", "number", "NaN")}),
    Case("neighbour_r2(coords)", ("coords",), bad_tensor(T((30, 2), fixed=(0,), **F64_SPEC)),
         lambda v: sr.neighbour_r2(v, ROLL_T), _same_as_float64(lambda c: sr.neighbour_r2(c, ROLL_T)),
         words={"dtype": ("numbers", "dtype"), "type": ("numbers", "shape"), "size": ("shape",),
                "empty": ("shape",), "ndim": ("shape", "n_neighbors")}),
    Case("gaussian_nll(mean)", ("mean",), bad_tensor(T((4, 3))), lambda v: sr.gaussian_nll(XP, v, torch.zeros(3)),
         _gaussian_nll_oracle, words={"ndim": ("broadcast",), "size": ("broadcast",), "empty": ("broadcast",)}),
    Case("gaussian_nll(ln_var)", ("ln_var",), bad_tensor(T((3,), batch=False)),
         lambda v: sr.gaussian_nll(XP, XP, v), _gaussian_nll_ln_var_oracle,
         words={"ndim": ("broadcast",), "size": ("broadcast",)}),
    Case("PointVAE.loss(x)", ("x",), bad_tensor(T((4, 3))), lambda v: PVAE.loss(v)),
    Case("PointVAE.loss(eps)", ("eps",), bad_tensor(T((1, 4, 2), fixed=(0, 1, 2))).filter(lambda kv: kv[1] is not None), lambda v: PVAE.loss(XP, eps=v),
         words={"empty": ("shape",)}),  # eps's shape is fixed by k and the batch
    Case("PointVAE.decode(z)", ("z",), bad_tensor(T((4, 2))), PVAE.decode, _point_decode_oracle),
    Case("PointVAE.sample(n)", ("n",), bad_int(numpy_ok=True), PVAE.sample),
    Case("PointVAE.sample(generator)", ("generator",), bad_generator(), lambda v: PVAE.sample(3, v)),
    Case("PointVAE on meta, sample", ("model",), st.just(("device", 3)), lambda v: sr.PointVAE().to("meta").sample(v)),
    Case("PointVAE(init_ln_var)", ("init_ln_var",), bad_number(), lambda v: sr.PointVAE(init_ln_var=v)),
    Case("PointVAE(learn_variance)", ("learn_variance",), bad_choice(1, "yes", None),
         lambda v: sr.PointVAE(learn_variance=v), words={"choice": ("True or False",)}),
    Case("swiss_roll.latent_grid(limit)", ("limit",), bad_number(positive=True), lambda v: sr.latent_grid(3, v)),
    Case("swiss_roll.latent_grid(n)", ("n",), bad_int(minimum=2, numpy_ok=True), lambda v: sr.latent_grid(v)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_bad_input_gives_a_clear_error_or_a_correct_result(case, data):
    run_case(case, data)
