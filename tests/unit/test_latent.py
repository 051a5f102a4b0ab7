"""Latent-space helpers: encodings, centroids, straight paths, grids, montages and prior samples."""

import numpy as np
import pytest
import torch

from vae_lesson import VAE, AutoEncoder
from vae_lesson.infra.gif import read_gif, write_gif
from vae_lesson.infra.latent import (all_pairs_frames, class_centroids, decode_grid, decode_points, encode_means,
                               interpolate, latent_grid, sample_prior)

IMAGE_SHAPE = (3, 4)  # 12 pixels: tiny models, fast tests


@pytest.fixture
def vae2():
    torch.manual_seed(0)
    return VAE(n_in=12, n_latent=2, n_hidden=8)


@pytest.fixture
def vae5():
    torch.manual_seed(1)
    return VAE(n_in=12, n_latent=5, n_hidden=8)


@pytest.fixture
def x():
    return torch.rand(37, 12, generator=torch.Generator().manual_seed(2))


# --- encode_means ----------------------------------------------------------------------------------

def test_encode_means_are_the_vae_means_in_any_batch_size(vae5, x):
    vae5.train()
    z = encode_means(vae5, x, batch_size=10)  # 4 batches, the last one short
    assert z.shape == (37, 5)
    torch.testing.assert_close(z, vae5.encode(x)[0].detach())
    assert vae5.training  # the caller's mode is restored
    z[0, 0] = 1.0  # an ordinary tensor, not an inference tensor
    assert not z.requires_grad


def test_encode_means_of_an_autoencoder_are_its_codes(x):
    torch.manual_seed(0)
    ae = AutoEncoder(12, 3, 8)
    torch.testing.assert_close(encode_means(ae, x), ae.encode(x).detach())


def test_encode_means_flattens_images(vae2, x):
    torch.testing.assert_close(encode_means(vae2, x.reshape(37, *IMAGE_SHAPE)), encode_means(vae2, x))


def test_encode_means_rejects_wrong_sizes(vae2):
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 12\)"):
        encode_means(vae2, torch.rand(4, 13))
    with pytest.raises(TypeError, match="model must be a VAE or AutoEncoder"):
        encode_means(torch.nn.Linear(12, 2), torch.rand(4, 12))


# --- class_centroids -------------------------------------------------------------------------------

def test_class_centroids_are_the_class_means():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(50, 4, generator=g)
    labels = torch.arange(50) % 3
    centroids = class_centroids(z, labels)
    assert centroids.shape == (3, 4)
    for c in range(3):
        torch.testing.assert_close(centroids[c], z[labels == c].mean(dim=0))
    # labels as a NumPy array or list work too
    torch.testing.assert_close(class_centroids(z, labels.numpy(), n_classes=3), centroids)
    torch.testing.assert_close(class_centroids(z, labels.tolist()), centroids)


def test_class_centroids_errors():
    z = torch.randn(6, 2)
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no points"):
        class_centroids(z, torch.tensor([0, 0, 2, 2, 2, 0]))
    with pytest.raises(ValueError, match=r"labels must be a 1-D tensor of shape \(6,\)"):
        class_centroids(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels must be classes 0 to 1, got values from 0 to 2"):
        class_centroids(z, torch.tensor([0, 1, 2, 0, 1, 2]), n_classes=2)
    with pytest.raises(TypeError, match="labels must hold integer classes"):
        class_centroids(z, torch.zeros(6))


# --- interpolate -----------------------------------------------------------------------------------

def test_interpolate_hits_both_ends_in_equal_steps():
    z0, z7 = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([-3.0, 2.0, 0.5])
    path = interpolate(z0, z7, 9)
    assert path.shape == (9, 3)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z7)
    steps = path.diff(dim=0)
    torch.testing.assert_close(steps, ((z7 - z0) / 8).expand(8, 3))  # linear: equal steps along one line


def test_interpolate_follows_the_articles_t_convention():
    # The article writes t * z_0 + (1 - t) * z_7; frame f has t = 1 - f / (n - 1).
    z0, z7 = torch.tensor([0.3, 1.1]), torch.tensor([-1.7, 0.2])
    path = interpolate(z0, z7, 5)
    for f, t in enumerate([1.0, 0.75, 0.5, 0.25, 0.0]):
        torch.testing.assert_close(path[f], t * z0 + (1 - t) * z7)


def test_interpolate_errors():
    z = torch.zeros(2)
    with pytest.raises(ValueError, match="n_frames must be an integer >= 2"):
        interpolate(z, z, 1)
    with pytest.raises(ValueError, match="same shape"):
        interpolate(z, torch.zeros(3), 4)
    with pytest.raises(ValueError, match=r"z_from must be one latent point of shape \(n_latent,\)"):
        interpolate(torch.zeros(1, 2), z, 4)


# --- latent_grid / decode_grid ---------------------------------------------------------------------

def test_latent_grid_is_row_major_with_z2_decreasing_down_the_rows():
    z, values = latent_grid(extent=2.0, n=5)
    torch.testing.assert_close(values, torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    assert z.shape == (25, 2)
    grid = z.reshape(5, 5, 2)
    for r in range(5):
        for c in range(5):
            torch.testing.assert_close(grid[r, c], torch.stack([values[c], values[4 - r]]))
    torch.testing.assert_close(z[0], torch.tensor([-2.0, 2.0]))   # top left: smallest z1, largest z2
    torch.testing.assert_close(z[-1], torch.tensor([2.0, -2.0]))  # bottom right


def test_decode_grid_decodes_each_grid_point(vae2):
    images = decode_grid(vae2, extent=1.5, n=4)
    assert images.shape == (4, 4, 12)
    z, _ = latent_grid(1.5, 4)
    torch.testing.assert_close(images.reshape(16, 12), vae2.decode(z).detach())
    assert (images > 0).all() and (images < 1).all()


def test_grid_errors(vae5):
    with pytest.raises(ValueError, match="needs a 2-D latent space.*n_latent=5"):
        decode_grid(vae5)
    with pytest.raises(ValueError, match="extent must be a positive number"):
        latent_grid(extent=0)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        latent_grid(n=1)


# --- all_pairs_frames ------------------------------------------------------------------------------

def test_all_pairs_frames_shape_and_cells(vae5):
    centroids = torch.randn(3, 5, generator=torch.Generator().manual_seed(4))
    frames = all_pairs_frames(vae5, centroids, n_steps=4, image_shape=IMAGE_SHAPE)
    h, w = IMAGE_SHAPE
    assert isinstance(frames, np.ndarray) and frames.shape == (4, 3 * h, 3 * w)
    assert frames.min() >= 0 and frames.max() <= 1
    decoded = vae5.decode(centroids).detach().reshape(3, h, w).numpy()

    def cell(f, i, j):
        return frames[f, i * h:(i + 1) * h, j * w:(j + 1) * w]

    for f in range(4):
        for i in range(3):
            np.testing.assert_allclose(cell(f, i, i), decoded[i], rtol=1e-5, atol=1e-6)  # the diagonal stays put
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(cell(0, i, j), decoded[i], rtol=1e-5, atol=1e-6)   # start: row's class
            np.testing.assert_allclose(cell(3, i, j), decoded[j], rtol=1e-5, atol=1e-6)   # end: column's class
    # an inner frame decodes the point one third of the way from centroid 0 to centroid 2
    third = vae5.decode((2 / 3 * centroids[0] + 1 / 3 * centroids[2]).unsqueeze(0)).detach().reshape(h, w).numpy()
    np.testing.assert_allclose(cell(1, 0, 2), third, rtol=1e-5, atol=1e-6)


def test_all_pairs_frames_errors(vae5):
    with pytest.raises(ValueError, match="centroids has 2 latent dimensions but the model has n_latent=5"):
        all_pairs_frames(vae5, torch.zeros(3, 2), 4, IMAGE_SHAPE)
    with pytest.raises(ValueError, match="image_shape .* has 16 pixels but the model outputs 12"):
        all_pairs_frames(vae5, torch.zeros(3, 5), 4, (4, 4))
    with pytest.raises(ValueError, match="n_steps must be an integer >= 2"):
        all_pairs_frames(vae5, torch.zeros(3, 5), 1, IMAGE_SHAPE)


def test_all_pairs_frames_survive_a_gif_round_trip(vae5, tmp_path):
    centroids = torch.randn(10, 5, generator=torch.Generator().manual_seed(5))
    frames = all_pairs_frames(vae5, centroids, n_steps=6, image_shape=IMAGE_SHAPE)
    path = write_gif(frames, tmp_path / "all_pairs.gif", fps=8, scale=2)
    decoded = read_gif(path)
    assert decoded.shape[:3] == (6, 10 * 3 * 2, 10 * 4 * 2)
    grey = decoded if decoded.ndim == 3 else decoded[..., 0]
    # GIF stores 8-bit grey levels: the first frame comes back within rounding
    np.testing.assert_allclose(grey[0, ::2, ::2] / 255.0, frames[0], atol=1 / 255 + 1e-6)


# --- sample_prior / decode_points ------------------------------------------------------------------

def test_sample_prior_shape_range_and_seed(vae5):
    a = sample_prior(vae5, 7, generator=torch.Generator().manual_seed(0))
    b = sample_prior(vae5, 7, generator=torch.Generator().manual_seed(0))
    c = sample_prior(vae5, 7, generator=torch.Generator().manual_seed(1))
    assert a.shape == (7, 12) and (a > 0).all() and (a < 1).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    z = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, vae5.decode(z).detach())  # the decoded draws z ~ N(0, I)


def test_sample_prior_and_decode_points_errors(vae5):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample_prior(vae5, 0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        sample_prior(vae5, 3, generator=0)
    with pytest.raises(ValueError, match="z has 2 latent dimensions but the model has n_latent=5"):
        decode_points(vae5, torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        decode_points(vae5, torch.zeros(5))
