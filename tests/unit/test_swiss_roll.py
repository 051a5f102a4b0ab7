"""The swiss roll chapter's helpers: the roll's geometry, scaling, unrolling, point VAE, GIF."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import vae_lesson as vl
from vae_lesson.chapters import swiss_roll as sr
from vae_lesson.infra.gif import read_gif, write_gif


@pytest.fixture(scope="module")
def clean_roll():
    return sr.make_roll(800, noise=0.0, seed=0)


# -------------------------------------------------------------------------------------- the roll


def test_roll_shape_range_and_seed_determinism():
    points, t = sr.make_roll(300, noise=0.2, seed=5)
    assert points.shape == (300, 3) and t.shape == (300,)
    again, t_again = sr.make_roll(300, noise=0.2, seed=5)
    assert np.array_equal(points, again) and np.array_equal(t, t_again)
    other, _ = sr.make_roll(300, noise=0.2, seed=6)
    assert not np.allclose(points, other)
    assert t.min() >= 1.5 * math.pi and t.max() <= 4.5 * math.pi


def test_clean_roll_lies_exactly_on_the_spiral(clean_roll):
    points, t = clean_roll
    np.testing.assert_allclose(points[:, 0], t * np.cos(t), atol=1e-12)
    np.testing.assert_allclose(points[:, 2], t * np.sin(t), atol=1e-12)
    assert 0 <= points[:, 1].min() and points[:, 1].max() <= 21


def test_arc_length_has_the_spiral_speed_as_derivative():
    t = np.linspace(4.0, 15.0, 50)
    h = 1e-5
    numeric = (sr.arc_length(t + h) - sr.arc_length(t - h)) / (2 * h)
    np.testing.assert_allclose(numeric, np.sqrt(1 + t * t), rtol=1e-8)  # |d/dt (t cos t, t sin t)|
    assert sr.arc_length(0.0) == 0.0


def test_shortcut_pair_is_the_closest_pair_far_apart_along_the_roll():
    points, t = sr.make_roll(200, noise=0.0, seed=2)
    i, j = sr.shortcut_pair(points, t, min_gap=math.pi)
    assert t[j] - t[i] >= math.pi
    best = min(
        np.linalg.norm(points[a] - points[b])
        for a in range(200)
        for b in range(200)
        if abs(t[a] - t[b]) >= math.pi
    )
    assert np.linalg.norm(points[i] - points[j]) == pytest.approx(best)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, np.float16])
def test_shortcut_pair_checks_the_dtype_before_searching(dtype):
    points, t = sr.make_roll(30, seed=0)
    # All positions equal: a search would find no pair; the dtype is reported first.
    bad = np.zeros(30, dtype=dtype) if dtype is np.float16 else torch.zeros(30, dtype=dtype)
    with pytest.raises(TypeError, match="t must hold float32 or float64 numbers, got dtype"):
        sr.shortcut_pair(points, bad)
    with pytest.raises(TypeError, match="points must hold float32 or float64 numbers"):
        sr.shortcut_pair(torch.as_tensor(points).half(), t)
    as_float32 = torch.as_tensor(t, dtype=torch.float32)
    assert sr.shortcut_pair(points, as_float32) == sr.shortcut_pair(points, t)


def test_graph_geodesic_follows_the_sheet_not_the_air():
    points, t = sr.make_roll(2000, noise=0.0, seed=0)
    i, j = sr.shortcut_pair(points, t)
    path, length = sr.graph_geodesic(points, i, j, n_neighbors=10)
    assert path[0] == i and path[-1] == j
    hops = np.linalg.norm(np.diff(points[path], axis=0), axis=1).sum()
    assert hops == pytest.approx(length)
    exact = math.hypot(sr.arc_length(t[i]) - sr.arc_length(t[j]), points[i, 1] - points[j, 1])
    straight = np.linalg.norm(points[i] - points[j])
    # A graph path zigzags, so it is a little longer than the exact distance on the sheet, never
    # shorter by more than rounding; both are several times the straight line through the air.
    assert exact * 0.99 <= length <= exact * 1.1
    assert length > 4 * straight


# --------------------------------------------------------------------------------------- scaling


def test_unit_cube_is_in_range_and_round_trips(clean_roll):
    points, _ = clean_roll
    cube, scaling = sr.to_unit_cube(points, dtype=torch.float64)
    assert cube.dtype == torch.float64 and cube.shape == points.shape
    assert cube.min() == 0.0 and cube.max() == 1.0  # the widest axis spans [0, 1] exactly
    assert (cube.amin(0) == 0).all()
    np.testing.assert_allclose(sr.from_unit_cube(cube, scaling), points, rtol=0, atol=1e-12)
    cube32, _ = sr.to_unit_cube(points)
    assert cube32.dtype == torch.float32 and 0 <= cube32.min() and cube32.max() <= 1
    np.testing.assert_allclose(
        sr.from_unit_cube(cube32, scaling), points, atol=1e-5 * scaling.scale
    )


def test_unit_cube_scales_all_axes_by_one_factor(clean_roll):
    points, _ = clean_roll
    cube, scaling = sr.to_unit_cube(points, dtype=torch.float64)
    d_points = np.linalg.norm(points[:100] - points[100:200], axis=1)
    d_cube = np.linalg.norm(cube[:100].numpy() - cube[100:200].numpy(), axis=1)
    np.testing.assert_allclose(
        d_points / d_cube, scaling.scale
    )  # shape kept, distances shrink by one number
    assert scaling.log_det == pytest.approx(3 * math.log(scaling.scale))


def test_unit_cube_reuses_a_scaling_and_refuses_points_outside(clean_roll):
    points, _ = clean_roll
    _, scaling = sr.to_unit_cube(points)
    again, _ = sr.to_unit_cube(points[:10], scaling)
    assert again.shape == (10, 3)
    with pytest.raises(ValueError, match="outside"):
        sr.to_unit_cube(points[:10] + 100, scaling)


# ------------------------------------------------------------------------------------- unrolling


def test_isomap_unrolls_a_clean_roll(clean_roll):
    points, t = clean_roll
    flat = sr.unroll(points, "isomap", n_neighbors=10)
    assert flat.shape == (800, 2)
    assert abs(sr.spearman(flat[:, 0], t)) > 0.99
    assert abs(sr.spearman(flat[:, 1], points[:, 1])) > 0.95  # the height is the other coordinate
    # Isomap keeps distances: the strip is as long as the spiral (arc length), give or take 10 %.
    spiral = sr.arc_length(t.max()) - sr.arc_length(t.min())
    assert np.ptp(flat[:, 0]) == pytest.approx(spiral, rel=0.1)


def test_lle_keeps_the_order_along_the_roll(clean_roll):
    points, t = clean_roll
    flat = sr.unroll(points, "lle", n_neighbors=12, seed=0)
    assert abs(sr.spearman(flat[:, 0], t)) > 0.9


def test_spearman_fit_direction_and_neighbour_r2():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    assert sr.spearman(x, np.exp(x)) == pytest.approx(1.0)  # monotone, not linear: still 1
    assert sr.spearman(x, -(x**3)) == pytest.approx(-1.0)
    coords = rng.normal(size=(500, 2))
    target = 2 * coords[:, 0] - 3 * coords[:, 1] + 1
    np.testing.assert_allclose(sr.fit_direction(coords, target), target, atol=1e-9)
    assert sr.neighbour_r2(coords, np.sin(coords[:, 0])) > 0.9  # smooth in the coordinates
    assert abs(sr.neighbour_r2(coords, rng.normal(size=500))) < 0.2  # unrelated to them


# -------------------------------------------------------------------------------------- PointVAE


def test_point_vae_loss_is_gaussian_nll_plus_kl(double):
    torch.manual_seed(0)
    model = sr.PointVAE(n_in=3, n_latent=2, n_hidden=8, init_ln_var=-2.0)
    with torch.no_grad():
        model.x_ln_var.copy_(torch.tensor([-1.0, -2.0, -3.0]))
    x = torch.rand(6, 3)
    k, C = 3, 0.5
    eps = torch.randn(k, 6, 2)
    loss = model.loss(x, C=C, k=k, eps=eps)

    mean, ln_var = model.encode(x)
    std = torch.exp(0.5 * ln_var)
    nll = 0.0
    for i in range(k):
        decoded = model.decode(mean + std * eps[i])
        nll = (
            nll
            - torch.distributions.Normal(decoded, torch.exp(0.5 * model.x_ln_var)).log_prob(x).sum()
        )
    q = torch.distributions.Normal(mean, std)
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    kl = torch.distributions.kl_divergence(q, p).sum()
    torch.testing.assert_close(loss.reconstruction, nll / (k * 6))
    torch.testing.assert_close(loss.kl, C * kl / 6)
    torch.testing.assert_close(loss.total, loss.reconstruction + loss.kl)
    assert loss._fields == ("total", "reconstruction", "kl")


def test_gaussian_nll_is_minus_torch_s_normal_log_prob():
    x = torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype=torch.float64)
    mean = torch.tensor([0.1, 0.5, 2.5], dtype=torch.float64)
    ln_var = torch.tensor([0.0, -1.0, 1.0], dtype=torch.float64)  # one per coordinate, broadcast
    normal = torch.distributions.Normal(mean, torch.exp(0.5 * ln_var))
    result = sr.gaussian_nll(x, mean, ln_var)
    torch.testing.assert_close(result, -normal.log_prob(x), rtol=1e-14, atol=1e-14)


def test_gaussian_nll_adds_its_constant_at_the_precision_of_the_result():
    # x and mean in float64, ln_var in float32: log(2 pi) must not be rounded to float32 on the way
    x = torch.tensor([0.25, -1.5, 3.0], dtype=torch.float64)
    result = sr.gaussian_nll(x, torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, 0.5 * (math.log(2 * math.pi) + x**2), rtol=0, atol=1e-15)


def test_log_likelihood_takes_a_stack_of_codes():
    torch.manual_seed(0)
    model = sr.PointVAE(n_hidden=8)
    x, z = torch.rand(5, 3), torch.randn(4, 5, 2)  # k = 4 codes for each of 5 points
    stacked = model.log_likelihood(x, z)
    assert stacked.shape == (4, 5)
    torch.testing.assert_close(stacked[2], model.log_likelihood(x, z[2]))


@pytest.mark.parametrize(
    "eps, match",
    [
        (torch.zeros(1, 4, 2, dtype=torch.float16), "eps has dtype torch.float16"),
        (torch.zeros(1, 4, 2, dtype=torch.float64), "eps has dtype torch.float64"),
        (torch.zeros(1, 4, 2, dtype=torch.int64), "eps must be a floating-point tensor"),
        (np.zeros((1, 4, 2), dtype=np.float32), "eps must be a torch.Tensor"),
        (torch.zeros(2, 4, 2), r"eps must have shape \(k, batch, n_latent\) = \(1, 4, 2\)"),
        (torch.full((1, 4, 2), float("nan")), "eps contains 8 NaN"),
    ],
)
def test_point_vae_loss_refuses_bad_noise(eps, match):
    model = sr.PointVAE(n_hidden=8)
    with pytest.raises((TypeError, ValueError), match=match):
        model.loss(torch.rand(4, 3), eps=eps)


def test_fixed_noise_makes_the_loss_reproducible():
    torch.manual_seed(0)
    model, x, eps = sr.PointVAE(n_hidden=8), torch.rand(4, 3), torch.randn(2, 4, 2)
    assert torch.equal(model.loss(x, k=2, eps=eps).total, model.loss(x, k=2, eps=eps).total)


def test_diverged_weights_stop_training_with_a_clear_error():
    model = sr.PointVAE(n_hidden=8)
    with torch.no_grad():
        model.le1.weight[0, 0] = float("nan")
    with pytest.raises(vl.NonFiniteLossError):
        vl.train(model, torch.rand(10, 3), num_epochs=1, batch_size=5, quiet=True)


def test_point_vae_gradients_reach_the_encoder_and_the_variance():
    torch.manual_seed(0)
    model = sr.PointVAE(n_hidden=16)
    model.loss(torch.rand(20, 3)).total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert {"le1.weight", "le3_mu.weight", "le3_ln_var.weight", "x_ln_var"} <= dict(
        model.named_parameters()
    ).keys()


def test_fixed_variance_is_not_trained():
    torch.manual_seed(0)
    model = sr.PointVAE(n_hidden=16, learn_variance=False, init_ln_var=-5.0)
    assert "x_ln_var" not in dict(model.named_parameters()) and "x_ln_var" in model.state_dict()
    x = torch.rand(50, 3)
    vl.train(model, x, num_epochs=2, batch_size=10, quiet=True)
    assert torch.equal(model.x_ln_var, torch.full((3,), -5.0))
    torch.testing.assert_close(model.decoder_std, torch.full((3,), math.exp(-2.5)))


@pytest.fixture
def one_thread():
    """A 32-unit MLP only loses time to thread hand-offs: train it on one thread, then restore."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_short_training_lowers_the_test_loss(one_thread):
    points, _ = sr.make_roll(1200, noise=0.3, seed=1)
    cube, _ = sr.to_unit_cube(points)
    vl.set_seed(0)
    model = sr.PointVAE(n_hidden=32)
    before = vl.evaluate(model, cube[1000:])["total"]
    history = vl.train(model, cube[:1000], cube[1000:], num_epochs=15, lr=3e-3, quiet=True)
    after = history.test["total"][-1]
    # Untrained, the decoder's variance exp(-4) is far too small for its guesses: about 64 nats per
    # point. Fifteen epochs bring the negative ELBO to about 1 nat; demand that it end below 2 nats.
    assert before > 30 and after < 2.0
    assert history.test["reconstruction"][-1] < history.test["reconstruction"][0]


def test_sample_decode_and_latent_grid():
    torch.manual_seed(0)
    model = sr.PointVAE(n_hidden=8)
    a = model.sample(7, generator=torch.Generator().manual_seed(1))
    b = model.sample(7, generator=torch.Generator().manual_seed(1))
    assert a.shape == (7, 3) and torch.equal(a, b)
    noisy = model.sample(7, generator=torch.Generator().manual_seed(1), noise=True)
    assert not torch.equal(a, noisy)
    grid = sr.latent_grid(5, 2.0)
    assert grid.shape == (25, 2)
    torch.testing.assert_close(grid[0], torch.tensor([-2.0, -2.0]))
    torch.testing.assert_close(
        grid[1], torch.tensor([-2.0, -1.0])
    )  # second coordinate varies fastest
    assert model.decode(grid).shape == (25, 3)


# ------------------------------------------------------------------------------- GIF and figures


def test_rotating_frames_make_a_gif_of_the_expected_size(tmp_path):
    points, t = sr.make_roll(200, seed=0)
    frames = sr.rotating_roll_frames(points, t, n_frames=6, figsize=(2.0, 1.8), dpi=50)
    assert len(frames) == 6 and all(f.shape == frames[0].shape for f in frames)
    assert frames[0].dtype == np.uint8 and frames[0].shape == (90, 100, 3)
    assert not np.array_equal(frames[0], frames[3])  # the view turns
    path = write_gif(frames, tmp_path / "roll.gif", fps=10)
    decoded = read_gif(path)
    assert decoded.shape[:3] == (6, 90, 100)
    assert path.stat().st_size < 2_000_000


def test_frames_without_text_leave_out_the_title_and_axis_labels():
    points, t = sr.make_roll(200, seed=0)
    kwargs = dict(n_frames=2, figsize=(2.4, 2.2), dpi=80)
    with_text = sr.rotating_roll_frames(points, t, **kwargs)[0]
    plain = sr.rotating_roll_frames(points, t, title=None, axis_labels=False, **kwargs)[0]
    assert plain.shape == with_text.shape
    top = slice(0, with_text.shape[0] // 10)  # where the title is drawn
    assert with_text[top].min() < 100 and plain[top].min() > 200
    # the axis labels: pixels that are dark in the labelled frame and white without labels
    assert ((with_text.min(-1) < 100) & (plain.min(-1) > 250)).sum() > (
        (with_text[top].min(-1) < 100).sum()
    )


def test_figure_helpers_return_figures(clean_roll):
    points, t = clean_roll
    history = vl.History(
        {"total": [1, 0], "reconstruction": [2, 1], "kl": [-1, -1]},
        {"total": [1, 0], "reconstruction": [2, 1], "kl": [-1, -1]},
        [0.1, 0.1],
    )
    figures = [
        sr.plot_roll_3d(points, t),
        sr.plot_unrolled({"a": points[:, :2], "b": points[:, 1:]}, t, points[:, 1]),
        sr.plot_latent_means(points[:, :2], t, points[:, 1]),
        sr.plot_learned_surface(points, t, np.zeros((4, 4, 3))),
        sr.plot_prior_samples(points, points[:5]),
        sr.plot_loss_curves(history),
        sr.plot_image_rows([("a", np.zeros((3, 4, 4))), ("b", np.ones((2, 4, 4)))]),
        sr.plot_embedding_by_class(
            points[:, :2], np.arange(800) % 10, [str(k) for k in range(10)], "x"
        ),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert len(figures[1].axes) == 3  # two panels and a colour bar


# ------------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: sr.make_roll(0), ValueError, "n must be"),
        (lambda: sr.make_roll(10, noise=-1.0), ValueError, "noise must be"),
        (lambda: sr.make_roll(10, seed=1.5), ValueError, "seed must be"),
        (lambda: sr.to_unit_cube(np.zeros((5, 3))), ValueError, "identical"),
        (lambda: sr.to_unit_cube(np.ones((5,))), ValueError, r"shape \(n, 3\)"),
        (lambda: sr.to_unit_cube(np.array([[0.0, np.nan, 1.0]])), ValueError, "NaN"),
        (lambda: sr.from_unit_cube(np.zeros((2, 3)), scaling=(0, 1)), TypeError, "CubeScaling"),
        (lambda: sr.unroll(np.random.rand(20, 3), method="pca"), ValueError, "isomap"),
        (lambda: sr.unroll(np.random.rand(5, 3), n_neighbors=10), ValueError, "n_neighbors"),
        (lambda: sr.spearman([1.0, 2.0, 3.0], [1.0, 2.0]), ValueError, r"b must have shape \(3,\)"),
        (
            lambda: sr.rotating_roll_frames(np.random.rand(5, 3), np.zeros(4)),
            ValueError,
            "t must have shape",
        ),
        (
            lambda: sr.rotating_roll_frames(np.random.rand(5, 3), np.zeros(5), n_frames=1),
            ValueError,
            "n_frames",
        ),
        (lambda: sr.PointVAE(n_hidden=0), ValueError, "n_hidden"),
        (lambda: sr.PointVAE(learn_variance="yes"), TypeError, "learn_variance"),
        (lambda: sr.PointVAE().loss(torch.rand(4, 2)), ValueError, r"shape \(batch, 3\)"),
        (lambda: sr.PointVAE().loss(torch.rand(4, 3), C=-1.0), ValueError, "C must be"),
        (
            lambda: sr.PointVAE().loss(torch.rand(4, 3), k=2, eps=torch.zeros(1, 4, 2)),
            ValueError,
            "eps must have shape",
        ),
        (
            lambda: sr.PointVAE().decode(torch.zeros(4, 3)),
            ValueError,
            r"z must have shape \(batch, 2\)",
        ),
        (lambda: sr.graph_geodesic(np.random.rand(10, 3), 0, 10), ValueError, "indices below 10"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
