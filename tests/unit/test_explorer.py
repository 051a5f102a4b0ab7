"""The latent explorer: int8 quantization, the exported page snippet, and the JavaScript decoder against PyTorch.

The JavaScript test runs the decode function of vae_lesson/infra/explorer.js itself, the file the page inlines,
under Node.js; it is skipped when ``node`` is not installed.
"""

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vae_lesson as vl
from vae_lesson.infra import explorer, plots

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")

NODE_RUNNER = """
const fs = require("fs");
const api = require(process.argv[2]);
const input = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const decoder = api.loadDecoder(input.payload);
const images = input.z.map((z, i) => Array.from(api.decode(decoder, z, input.labels ? input.labels[i] : undefined)));
fs.writeFileSync(process.argv[4], JSON.stringify(images));
"""


def _spread_model(act_func=torch.tanh, n_in=784, n_hidden=500, seed=0):
    """A 2-D VAE whose decoder saturates tanh and gives pixels near 0 and 1 as well as in between."""
    torch.manual_seed(seed)
    model = vl.VAE(n_in, 2, n_hidden, act_func=act_func)
    with torch.no_grad():
        for layer in (model.ld1, model.ld2, model.ld3):
            layer.weight.mul_(3.0)
            layer.bias.normal_(0.0, 0.5)
    return model


def _points(n, seed=0, n_classes=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.randint(0, n_classes, (n,), generator=g)


def _decode(model, z):
    with torch.no_grad():
        return model.decode(torch.as_tensor(z, dtype=torch.float32))


# ---------------------------------------------------------------- quantization


def test_quantize_rows_is_within_half_a_step_of_every_weight():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(40, 30, generator=g) * torch.logspace(-3, 1, 40).unsqueeze(1)  # rows of every size
    weight[7] = 0.0
    q, scale = explorer.quantize_rows(weight)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and q.shape == (40, 30) and scale.shape == (40,)
    assert np.abs(q.astype(int)).max() <= 127
    nonzero = np.arange(40) != 7
    assert (np.abs(q[nonzero].astype(int)).max(axis=1) == 127).all(), "each row uses the full int8 range"
    assert (q[7] == 0).all() and scale[7] == 1.0
    error = (torch.from_numpy(q.astype(np.float32)) * torch.from_numpy(scale)[:, None] - weight).abs()
    assert (error <= torch.from_numpy(scale)[:, None] * (0.5 + 1e-5)).all()


def test_quantize_rows_rejects_what_it_cannot_quantize():
    with pytest.raises(ValueError, match="2-D float"):
        explorer.quantize_rows(torch.ones(3))
    with pytest.raises(ValueError, match="weight contains 1 NaN"):
        explorer.quantize_rows(torch.tensor([[1.0, float("nan")]]))


def test_the_reference_decoder_is_the_model_with_dequantized_weights():
    model = _spread_model()
    data = explorer.export_decoder(model, *_points(100))
    dequantized = copy.deepcopy(model)
    with torch.no_grad():
        for layer, quantized in zip((dequantized.ld1, dequantized.ld2, dequantized.ld3), data.layers):
            layer.weight.copy_(quantized.weight())
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(1)) * 2
    torch.testing.assert_close(data.decode(z), _decode(dequantized, z), rtol=0, atol=1e-6)
    # exporting the dequantized model again changes nothing: the int8 grid is reproduced exactly
    again = explorer.export_decoder(dequantized, *_points(100))
    for a, b in zip(data.layers, again.layers):
        np.testing.assert_array_equal(a.q, b.q)


def test_int8_weights_change_the_decoded_pixels_very_little():
    model = _spread_model()
    data = explorer.export_decoder(model, *_points(100))
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(2)) * 2
    original, rounded = _decode(model, z), data.decode(z)
    assert float(original.std()) > 0.2, "the test model should draw more than grey"
    error = (rounded - original).abs()
    assert float(error.max()) < 0.03 and float(error.mean()) < 2e-3, (float(error.max()), float(error.mean()))
    assert data.weight_bytes == sum(p.numel() for name, p in model.named_parameters() if name.startswith("ld") and
                                    name.endswith("weight")) + 8 * (500 + 500 + 784)  # int8 + float32 scale, bias


# ---------------------------------------------------------------- payload and HTML


def test_payload_survives_json_and_reading_back_from_a_page():
    data = explorer.export_decoder(_spread_model(), *_points(300), classes=[f"c{i}" for i in range(10)])
    snippet = explorer.explorer_html(data)
    payload = explorer.read_payload(f"<html><body><p>text</p>{snippet}</body></html>")
    assert payload == json.loads(json.dumps(data.payload()))
    back = explorer.ExplorerData.from_payload(payload)
    for a, b in zip(data.layers, back.layers):
        for name in ("q", "scale", "bias"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(back.points, data.points)
    np.testing.assert_array_equal(back.labels, data.labels)
    z = torch.randn(20, 2)
    torch.testing.assert_close(back.decode(z), data.decode(z), rtol=0, atol=0)
    with pytest.raises(ValueError, match="not a latent explorer payload"):
        explorer.ExplorerData.from_payload({"format": "other"})
    with pytest.raises(ValueError, match="no latent explorer"):
        explorer.read_payload("<html></html>")


def test_html_snippet_is_self_contained_and_small():
    model = _spread_model()
    z, labels = _points(1000)
    data = explorer.export_decoder(model, z, labels)
    snippet = explorer.explorer_html(data)
    assert snippet == explorer.explorer_html(data), "the same data give the same bytes (and element id)"
    ids = re.findall(r'<div class="vae-explorer" id="([\w-]+)">', snippet)
    assert len(ids) == 1 and f'VAEExplorer.mount(document.getElementById("{ids[0]}"))' in snippet
    assert "<noscript>" in snippet, "without JavaScript the reader is told what is missing"
    assert explorer.script_path().read_text() in snippet, "the widget's script is inlined as it is"
    assert not re.search(r"""(src|href)\s*=|https?://|import\s*\(""", snippet), "nothing is loaded from elsewhere"
    assert snippet.count("</script>") == 2
    size = len(snippet.encode())
    # base64 makes 4 characters of every 3 bytes; the script and the points add a little
    assert 4 / 3 * data.weight_bytes < size < 4 / 3 * data.weight_bytes + 120_000, size
    assert size < 1024 * 1024


def test_class_names_cannot_break_out_of_the_script():
    z, labels = _points(20, n_classes=2)
    snippet = explorer.explorer_html(explorer.export_decoder(_spread_model(), z, labels,
                                                             classes=["</script><b>", "a&b"]))
    assert snippet.count("</script>") == 2
    assert explorer.read_payload(snippet)["classes"] == ["</script><b>", "a&b"]


def test_many_points_are_sampled_but_the_centroids_use_all():
    z, labels = _points(5000)
    data = explorer.export_decoder(_spread_model(), z, labels, max_points=2000)
    assert len(data.points) == 2000 and data.n_points_total == 5000
    rows = {tuple(row): int(label) for row, label in zip(z.numpy(), labels.numpy())}
    assert all(rows[tuple(p)] == int(c) for p, c in zip(data.points, data.labels))
    for c in range(10):
        np.testing.assert_allclose(data.centroids[c], z[labels == c].mean(0).numpy(), atol=1e-6)
    same = explorer.export_decoder(_spread_model(), z, labels, max_points=2000)
    other = explorer.export_decoder(_spread_model(), z, labels, max_points=2000, seed=1)
    np.testing.assert_array_equal(same.points, data.points)
    assert not np.array_equal(other.points, data.points)
    assert data.extent >= float(np.quantile(np.abs(z.numpy()).max(1), 0.995))
    assert data.colors == plots.CLASS_COLOURS  # the static scatter's colours


@pytest.mark.parametrize("change, error, match", [
    ({"model": vl.VAE(784, 20, 50)}, ValueError, "2-D latent plane.*n_latent=20"),
    ({"model": torch.nn.Sequential(torch.nn.Linear(2, 784))}, TypeError, "must be a vae_lesson.VAE or AutoEncoder"),
    ({"model": vl.VAE(784, 2, 50, act_func=F.gelu)}, ValueError, "implements tanh.*uses gelu"),
    ({"model": vl.VAE(30, 2, 10)}, ValueError, "not a square image: pass image_shape"),
    ({"image_shape": (28, 27)}, ValueError, r"image_shape must be \(H, W\) with H \* W == 784"),
    ({"z": torch.zeros(100, 3)}, ValueError, r"z must have shape \(n, 2\)"),
    ({"z": torch.full((100, 2), float("nan"))}, ValueError, "z contains 200 NaN"),
    ({"labels": torch.zeros(99, dtype=torch.long)}, ValueError, r"labels must have shape \(100,\)"),
    ({"labels": torch.full((100,), 10)}, ValueError, r"labels must lie in 0 \.\. 9"),
    ({"labels": torch.full((100,), -1)}, ValueError, r"labels must lie in 0 \.\. 9"),
    ({"labels": torch.full((100,), 0.5)}, ValueError, "labels must be integers"),
    ({"labels": np.array(["a"] * 100)}, ValueError, "labels must be integers"),
    ({"labels": torch.arange(100) % 11, "classes": None}, ValueError, "at most 10 classes"),
    ({"max_points": 0}, ValueError, "max_points must be a positive integer"),
    ({"seed": 0.5}, ValueError, "seed must be an integer"),
])
def test_export_names_the_wrong_argument(change, error, match):
    z, labels = _points(100)
    arguments = {"model": vl.VAE(784, 2, 50), "z": z, "labels": labels, "classes": [str(c) for c in range(10)],
                 **change}
    model = arguments.pop("model")
    with pytest.raises(error, match=match):
        explorer.export_decoder(model, arguments.pop("z"), arguments.pop("labels"), **arguments)
    with pytest.raises(TypeError, match="ExplorerData"):
        explorer.explorer_html({"format": explorer.FORMAT})


# ---------------------------------------------------------------- the script itself


def test_the_script_hash_is_recorded_in_explorer_py():
    # The build re-executes notebooks when a .py file of vae_lesson changes; this ties explorer.js to one.
    actual = hashlib.sha256(explorer.script_path().read_bytes()).hexdigest()
    assert actual == explorer.SCRIPT_SHA256, (
        f"explorer.js changed: set SCRIPT_SHA256 = {actual!r} in vae_lesson/infra/explorer.py")


def test_a_wheel_of_the_package_ships_the_script(tmp_path):
    # Colab installs vae_lesson from git: the .js file must be package data, not only in the checkout.
    source = tmp_path / "source"  # a copy, so that setuptools' build/ folder is not left in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "vae_lesson", source / "vae_lesson", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True, timeout=120)
    wheel = next(tmp_path.glob("vae_lesson-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("vae_lesson/infra/explorer.js") == explorer.script_path().read_bytes()


def _node_decode(data, z, tmp_path, labels=None):
    if NODE is None:
        pytest.skip("Node.js is not installed (Debian: apt-get install nodejs): the JavaScript decoder is not tested")
    (tmp_path / "runner.js").write_text(NODE_RUNNER)
    (tmp_path / "input.json").write_text(json.dumps(
        {"payload": data.payload(), "z": z.tolist(), "labels": None if labels is None else labels.tolist()}))
    subprocess.run([NODE, str(tmp_path / "runner.js"), str(explorer.script_path()), str(tmp_path / "input.json"),
                    str(tmp_path / "output.json")], check=True, capture_output=True, timeout=120)
    return torch.tensor(json.loads((tmp_path / "output.json").read_text()))


def test_javascript_decoder_matches_pytorch_within_1e_3_per_pixel(tmp_path):
    model = _spread_model()
    data = explorer.export_decoder(model, *_points(500))
    g = torch.Generator().manual_seed(3)
    # a few hundred codes: inside the view, far outside it, both axes, and the origin
    z = torch.cat([(torch.rand(300, 2, generator=g) * 2 - 1) * data.extent, torch.randn(20, 2, generator=g) * 8,
                   torch.tensor([[0.0, 0.0], [data.extent, -data.extent], [-1e-8, 3e-7]])])
    reference = data.decode(z)
    javascript = _node_decode(data, z, tmp_path)
    assert javascript.shape == reference.shape == (len(z), 784)
    difference = float((javascript - reference).abs().max())
    assert difference < 1e-3, f"JavaScript and PyTorch differ by up to {difference:.2e} per pixel"
    # float32 weights, float64 sums: only rounding noise remains, a wide margin below the bound
    assert difference < 1e-5, difference
    assert float(reference.min()) < 0.02 and float(reference.max()) > 0.98, "the test reaches both ends of [0, 1]"


def test_javascript_decoder_matches_a_trained_model_and_every_activation(tmp_path):
    digits = vl.load_digits()
    vl.set_seed(0)
    trained = vl.VAE(64, 2, 64)
    vl.train(trained, digits.x_train_flat[:500], num_epochs=3, batch_size=50, quiet=True)
    models = {"trained tanh (8x8 digits)": trained}
    for name in ("relu", "sigmoid", "softplus", "elu", "leaky_relu"):
        models[name] = _spread_model(act_func=vl.infra.activations.ACTIVATIONS[name], n_in=64, n_hidden=40, seed=1)
    z = torch.randn(200, 2, generator=torch.Generator().manual_seed(4)) * 3
    for name, model in models.items():
        data = explorer.export_decoder(model, *_points(50), image_shape=(8, 8))
        difference = float((_node_decode(data, z, tmp_path) - data.decode(z)).abs().max())
        assert difference < 1e-5, f"{name}: JavaScript and PyTorch differ by {difference:.2e}"


# ---------------------------------------------------------------- the conditional explorer (chapter 07's CVAE)


def _spread_cvae(seed=0):
    """A 2-D conditional VAE whose decoder gives pixels near 0 and 1, and different images per label."""
    from vae_lesson.chapters.cvae import CVAE

    torch.manual_seed(seed)
    model = CVAE(784, 10, 2, 64)
    with torch.no_grad():
        for layer in (model.ld1, model.ld2, model.ld3):
            layer.weight.mul_(3.0)
            layer.bias.normal_(0.0, 0.5)
    return model


def test_a_conditional_decoder_is_exported_with_its_classes_and_decodes_each_label():
    from vae_lesson.chapters.cvae import one_hot

    model = _spread_cvae()
    data = explorer.export_decoder(model, *_points(300), classes=[str(c) for c in range(10)], initial_label=7)
    assert data.is_conditional and data.condition == tuple(str(c) for c in range(10)) and data.initial_label == 7
    assert data.layers[0].q.shape == (64, 12)  # z and the one-hot label
    again = explorer.ExplorerData.from_payload(json.loads(json.dumps(data.payload())))
    assert again.condition == data.condition and again.initial_label == 7
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    for label in (0, 7):
        with torch.no_grad():
            exact = model.decode(z, one_hot(torch.full((6,), label)))
        assert (data.decode(z, label) - exact).abs().max() < 0.05  # int8 weights: close, not equal
    assert (data.decode(z, 0) - data.decode(z, 7)).abs().max() > 0.1  # the label changes the image
    per_point = data.decode(z, torch.arange(6))
    assert torch.allclose(per_point[3], data.decode(z[3:4], 3)[0], atol=1e-6)
    with pytest.raises(ValueError, match="class number from 0 to 9"):
        data.decode(z, 10)
    with pytest.raises(ValueError, match="class number from 0 to 9, got None"):
        data.decode(z, None)
    with pytest.raises(ValueError, match="one class number .* or one per point"):
        data.decode(z, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="not conditional"):
        explorer.export_decoder(_spread_model(), *_points(50)).decode(z, 3)
    with pytest.raises(ValueError, match="initial_label"):
        explorer.export_decoder(model, *_points(50), initial_label=10)
    with pytest.raises(ValueError, match="10 classes but 3 are named"):
        explorer.export_decoder(model, *_points(50, n_classes=3), classes=["a", "b", "c"])


def test_javascript_conditional_decoder_matches_pytorch_for_every_label(tmp_path):
    model = _spread_cvae(seed=1)
    data = explorer.export_decoder(model, *_points(300))
    g = torch.Generator().manual_seed(5)
    z = (torch.rand(200, 2, generator=g) * 2 - 1) * data.extent
    labels = torch.arange(200) % 10
    javascript = _node_decode(data, z, tmp_path, labels)
    difference = float((javascript - data.decode(z, labels)).abs().max())
    assert difference < 1e-5, f"JavaScript and PyTorch differ by {difference:.2e}"
    html = explorer.explorer_html(data)
    assert '"condition":{"classes":["0","1"' in html
