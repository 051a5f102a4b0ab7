"""Figures: each function returns a Figure with the promised panels, labels, texts and extents, via no pyplot."""

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (only to check that no pyplot figure is created)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vae_lesson import History  # noqa: E402
from vae_lesson.infra.gif import figure_to_array  # noqa: E402
from vae_lesson.infra.latent import latent_grid  # noqa: E402
from vae_lesson.infra.plots import (CLASS_COLOURS, image_grid, plot_frame_strip, plot_history,  # noqa: E402
                              plot_latent_map, plot_latent_scatter, show_reconstructions)

SHAPE = (8, 8)


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """Every test must leave pyplot's list of open figures exactly as it found it."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


@pytest.fixture
def images():
    return torch.rand(12, 64, generator=torch.Generator().manual_seed(0))


def _render(fig):
    """Save the figure as a PNG once: catches drawing and layout errors, and must not touch pyplot."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=50)
    assert buffer.getvalue().startswith(b"\x89PNG")


def _line(ax, gid):
    return [line for line in ax.lines if line.get_gid() == gid]


# --- plot_history ----------------------------------------------------------------------------------

def _vae_history():
    return History(train={"total": [200.0, 180.0, 170.0], "reconstruction": [190.0, 160.0, 145.0],
                          "kl": [10.0, 20.0, 25.0]},
                   test={"total": [205.0, 185.0, 176.0], "reconstruction": [195.0, 165.0, 150.0],
                         "kl": [10.0, 20.0, 26.0]},
                   epoch_seconds=[1.0, 1.0, 1.0])


def test_plot_history_has_one_panel_per_term_with_train_solid_and_test_dashed():
    fig = plot_history(_vae_history(), title="VAE")
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["Total loss", "Reconstruction term", "KL term"]
    assert fig.get_suptitle() == "VAE"
    for ax, field in zip(axes, ["total", "reconstruction", "kl"]):
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel().startswith("nats per image")
        train, test = ax.lines
        assert (train.get_label(), train.get_linestyle()) == ("train", "-")
        assert (test.get_label(), test.get_linestyle()) == ("test", "--")
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])  # epochs count from 1
        np.testing.assert_array_equal(train.get_ydata(), _vae_history().train[field])
    assert "latents" in axes[2].get_ylabel() and "pixels" in axes[1].get_ylabel()
    _render(fig)


def test_plot_history_of_an_autoencoder_skips_the_duplicate_panel_and_takes_a_dict():
    history = {"train": {"total": [5.0, 4.0], "reconstruction": [5.0, 4.0]}, "test": {}}
    fig = plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["Total loss"]
    assert len(fig.axes[0].lines) == 1  # no test curve recorded
    fig = plot_history(_vae_history(), fields=["kl"], ylabel="nats")
    assert [ax.get_ylabel() for ax in fig.axes] == ["nats"]
    with pytest.raises(ValueError, match="fields must name recorded loss terms"):
        plot_history(_vae_history(), fields=["elbo"])
    with pytest.raises(ValueError, match="history must be a History"):
        plot_history({"test": {}})


# --- images ----------------------------------------------------------------------------------------

def test_show_reconstructions_two_labelled_rows(images):
    fig = show_reconstructions(images, 1 - images, SHAPE, n=6, title="pairs")
    assert len(fig.axes) == 12
    assert fig.axes[0].get_ylabel() == "input" and fig.axes[6].get_ylabel() == "reconstruction"
    assert fig.get_suptitle() == "pairs"
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), images[0].reshape(SHAPE).numpy())
    np.testing.assert_allclose(fig.axes[6].images[0].get_array(), 1 - images[0].reshape(SHAPE).numpy(), atol=1e-6)
    assert fig.axes[0].images[0].get_cmap().name == "gray" and fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    _render(fig)


def test_show_reconstructions_compares_several_models(images):
    fig = show_reconstructions(images.reshape(12, 8, 8), {"20-D": images, "2-D": images}, SHAPE, n=4)
    assert [fig.axes[4 * r].get_ylabel() for r in range(3)] == ["input", "20-D", "2-D"]
    with pytest.raises(ValueError, match="same number of images"):
        show_reconstructions(images, images[:5], SHAPE)
    with pytest.raises(ValueError, match=r"x must hold pixel values in \[0, 1\]"):
        show_reconstructions(images * 2, images, SHAPE)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 49\) or \(n, 7, 7\)"):
        show_reconstructions(images, images, (7, 7))


def test_image_grid_has_one_tile_per_image_and_captions(images):
    fig = image_grid(images, SHAPE, n_cols=5, title="samples", labels=[f"#{i}" for i in range(12)])
    assert len(fig.axes) == 12  # 3 rows of 5, the three spare cells removed
    assert [ax.get_title() for ax in fig.axes] == [f"#{i}" for i in range(12)]
    assert fig.get_suptitle() == "samples"
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in fig.axes)
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        image_grid(images, SHAPE, labels=["a"])
    _render(fig)


def test_plot_frame_strip_prints_t_under_each_frame(images):
    ts = np.linspace(1, 0, 5)
    fig = plot_frame_strip(images[:5], SHAPE, ts=ts, title="0 to 7")
    assert [ax.get_xlabel() for ax in fig.axes] == ["t = 1.00", "t = 0.75", "t = 0.50", "t = 0.25", "t = 0.00"]
    assert fig.get_suptitle() == "0 to 7"
    with pytest.raises(ValueError, match="ts must have one value per frame"):
        plot_frame_strip(images[:5], SHAPE, ts=ts[:3])
    _render(fig)


# --- latent scatter --------------------------------------------------------------------------------

def _clusters():
    g = np.random.default_rng(0)
    centres = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    labels = np.repeat(np.arange(3), 40)
    z = centres[labels] + 0.3 * g.standard_normal((120, 2))
    return z, labels


def test_scatter_moves_apart_the_labels_of_classes_whose_centroids_coincide():
    """Two overlapping classes (as 4 and 9 in a 2-D code): their labels are pushed apart, symmetrically about the
    shared centroid, to LABEL_SPACING of the points' extent; a label far from the others stays at its centroid."""
    from vae_lesson.infra.plots import LABEL_SPACING

    g = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    labels = np.repeat(np.arange(3), 50)
    z = centres[labels] + 0.5 * g.standard_normal((150, 2))
    fig = plot_latent_scatter(torch.tensor(z), torch.tensor(labels))
    spots = {t.get_gid(): np.array(t.get_position()) for t in fig.axes[0].texts if t.get_gid().startswith("centroid")}
    means = [z[labels == c].mean(axis=0) for c in range(3)]
    span = np.ptp(z, axis=0).max()
    assert np.linalg.norm(spots["centroid-0"] - spots["centroid-1"]) == pytest.approx(LABEL_SPACING * span)
    np.testing.assert_allclose((spots["centroid-0"] + spots["centroid-1"]) / 2, (means[0] + means[1]) / 2)
    np.testing.assert_allclose(spots["centroid-2"], means[2])
    assert np.linalg.norm(means[0] - means[1]) < 0.3 * LABEL_SPACING * span  # the labels did need moving


def test_scatter_puts_each_class_label_at_its_centroid():
    z, labels = _clusters()
    path = np.array([[-2.0, 0.0], [0.0, 0.5], [2.0, 1.0]])
    fig = plot_latent_scatter(torch.tensor(z), torch.tensor(labels), title="latent means", path=path)
    (ax,) = fig.axes
    texts = {t.get_gid(): t for t in ax.texts if t.get_gid().startswith("centroid")}
    assert sorted(texts) == ["centroid-0", "centroid-1", "centroid-2"]
    for c in range(3):
        assert texts[f"centroid-{c}"].get_text() == str(c)
        np.testing.assert_allclose(texts[f"centroid-{c}"].get_position(), z[labels == c].mean(axis=0))
    assert len(ax.collections) == 3
    np.testing.assert_allclose(ax.collections[1].get_offsets(), z[labels == 1])
    assert tuple(ax.collections[2].get_facecolor()[0][:3]) == pytest.approx(matplotlib.colors.to_rgb(CLASS_COLOURS[2]))
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("$z_1$", "$z_2$", "latent means")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    (line,) = _line(ax, "path")  # the path, and an arrow whose head is at its end
    np.testing.assert_allclose(np.column_stack(line.get_data()), path)
    (arrow,) = [a for a in ax.texts if a.get_gid() == "path-arrow"]
    np.testing.assert_allclose(arrow.xy, path[-1])
    _render(fig)


def test_scatter_with_class_names_axis_labels_and_an_existing_axes():
    z, labels = _clusters()
    fig = Figure()
    ax = fig.add_subplot()
    returned = plot_latent_scatter(z, labels, classes=["a", "b", "c"], xlabel="t-SNE 1", ylabel="t-SNE 2", ax=ax)
    assert returned is fig
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("t-SNE 1", "t-SNE 2")
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "c"]
    assert not _line(ax, "path")


def test_scatter_errors():
    z, labels = _clusters()
    with pytest.raises(ValueError, match=r"z must have shape \(n, 2\)"):
        plot_latent_scatter(np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="labels must be 120 non-negative integers"):
        plot_latent_scatter(z, labels[:10])
    with pytest.raises(ValueError, match="path must be a sequence of at least two 2-D points"):
        plot_latent_scatter(z, labels, path=[[0.0, 1.0]])


# --- latent map ------------------------------------------------------------------------------------

def test_latent_map_extent_centres_tiles_on_their_z(images):
    n = 5
    _, values = latent_grid(extent=2.0, n=n)
    grid = torch.rand(n, n, 64, generator=torch.Generator().manual_seed(1))
    path = np.array([[-1.0, -1.5], [0.5, 0.0], [1.5, 1.0]])
    fig = plot_latent_map(grid, values, SHAPE, title="decoded grid", path=path)
    (ax,) = fig.axes
    (image,) = ax.images
    # grid spacing 1, so the picture spans [-2.5, 2.5]: tile centres fall exactly on -2, -1, ..., 2
    np.testing.assert_allclose(image.get_extent(), [-2.5, 2.5, -2.5, 2.5])
    np.testing.assert_allclose(ax.get_xlim(), [-2.5, 2.5])
    np.testing.assert_allclose(ax.get_ylim(), [-2.5, 2.5])
    picture = image.get_array()
    assert picture.shape == (n * 8, n * 8)
    # top-left tile is grid[0, 0] (z = (-2, +2)); bottom-right is grid[4, 4] (z = (+2, -2))
    np.testing.assert_allclose(picture[:8, :8], grid[0, 0].reshape(SHAPE).numpy())
    np.testing.assert_allclose(picture[-8:, -8:], grid[4, 4].reshape(SHAPE).numpy())
    np.testing.assert_allclose(picture[:8, 8:16], grid[0, 1].reshape(SHAPE).numpy())  # row-major
    (line,) = _line(ax, "path")
    np.testing.assert_allclose(np.column_stack(line.get_data()), path)
    assert line.get_marker() == "o"
    assert ax.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # the path stays inside: no margin
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("$z_1$", "$z_2$", "decoded grid")
    _render(fig)


def test_latent_map_errors():
    _, values = latent_grid(2.0, 4)
    with pytest.raises(ValueError, match=r"images_grid must have shape \(4, 4, 64\)"):
        plot_latent_map(torch.rand(3, 4, 64), values, SHAPE)
    with pytest.raises(ValueError, match="values must be strictly increasing"):
        plot_latent_map(torch.rand(4, 4, 64), values.flip(0), SHAPE)


def test_figures_render_to_pixels_without_pyplot(images):
    # figure_to_array is how a figure becomes a GIF frame; it must not leave a pyplot figure behind.
    frame = figure_to_array(image_grid(images[:4], SHAPE, n_cols=4), dpi=40)
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8


def test_latent_map_grows_to_show_a_path_that_leaves_the_square():
    _, values = latent_grid(extent=2.0, n=5)
    grid = torch.rand(5, 5, 64, generator=torch.Generator().manual_seed(2))
    fig = plot_latent_map(grid, values, SHAPE, path=[[0.0, 0.0], [3.0, -1.0]])
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.images[0].get_extent(), [-2.5, 2.5, -2.5, 2.5])  # the picture is unchanged
    assert ax.get_xlim()[1] > 3.0 and ax.get_xlim()[0] == pytest.approx(-2.5)
    np.testing.assert_allclose(ax.get_ylim(), [-2.5, 2.5])
    assert ax.get_facecolor()[:3] == pytest.approx((0.8, 0.8, 0.8))  # grey: outside the decoded square


def test_figures_display_as_png_in_ipython_without_pyplot(images):
    # Jupyter shows a bare Figure only if a PNG formatter is registered; plots does that on import.
    from IPython.core.interactiveshell import InteractiveShell

    from vae_lesson.infra import plots

    shell = InteractiveShell.instance()
    try:
        shell.display_formatter.formatters["image/png"].pop(Figure, None)
        plots._register_notebook_display()
        data, _ = shell.display_formatter.format(image_grid(images[:2], SHAPE))
        assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
        # a format chosen by the user (here SVG) is left alone
        shell.display_formatter.formatters["image/png"].pop(Figure)
        shell.display_formatter.formatters["image/svg+xml"].for_type(Figure, lambda fig: "<svg/>")
        plots._register_notebook_display()
        data, _ = shell.display_formatter.format(image_grid(images[:2], SHAPE))
        assert "image/png" not in data and data["image/svg+xml"] == "<svg/>"
    finally:
        InteractiveShell.clear_instance()


# Colour-vision deficiency simulated with the matrices of Machado, Oliveira and Fernandes (2009) at
# full severity, applied to linear RGB; colours compared by their CIELAB distance (Delta E 1976).
_CVD = {
    "normal vision": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _lab(linear_rgb):
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ np.clip(linear_rgb, 0.0, 1.0)
    t = xyz / np.array([0.95047, 1.0, 1.08883])  # D65 white
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest_pair(colours, vision):
    srgb = np.array([matplotlib.colors.to_rgb(c) for c in colours])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    lab = [_lab(_CVD[vision] @ c) for c in linear]
    return min(np.linalg.norm(lab[i] - lab[j]) for i in range(len(lab)) for j in range(i))


@pytest.mark.parametrize("vision", sorted(_CVD))
def test_class_colours_stay_apart_for_colour_blind_readers(vision):
    # tab10, matplotlib's default, has pairs 4.6 (protanopia) and 7.2 (deuteranopia) apart: the
    # measure tells such palettes apart
    tab10 = [matplotlib.colormaps["tab10"](c)[:3] for c in range(10)]
    assert _closest_pair(tab10, "protanopia") < 8
    assert len(set(CLASS_COLOURS)) == 10
    assert _closest_pair(CLASS_COLOURS, vision) > 15
