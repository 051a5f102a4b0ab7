"""An interactive latent explorer for a 2-D VAE, as one self-contained piece of HTML.

The trained decoder is exported with int8 weights (one float32 scale per output row) and float32
biases, together with the latent means and labels of the test digits. :func:`explorer_html` inlines
them with the widget's JavaScript (``explorer.js``, next to this file) into a ``<div>`` and a
``<script>``: the decoder then runs in the reader's browser, in the offline book as in Jupyter or
Colab, with nothing to download.

    data = export_decoder(model_2d, z_test, y_test, classes=mnist.classes)
    IPython.display.HTML(explorer_html(data))

:meth:`ExplorerData.decode` is the PyTorch reference: the same dequantized weights, in float32. The
browser's output matches it to rounding noise; how far both are from the original float32 decoder is
the quantization error, which the chapter measures.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .activations import ACTIVATIONS, activation_name
from .checks import check_finite, check_positive_int
from .plots import CLASS_COLOURS

__all__ = [
    "QuantizedLinear",
    "ExplorerData",
    "quantize_rows",
    "export_decoder",
    "explorer_html",
    "explorer_script",
    "read_payload",
    "FORMAT",
    "SCRIPT_SHA256",
]

FORMAT = "vae-explorer/1"
# Activations explorer.js implements exactly as torch does (gelu would need erf, which
# JavaScript lacks).
JS_ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus", "elu", "leaky_relu")
# The notebooks are re-executed when a .py file of the package changes, not when explorer.js does:
# this hash ties the script to this file (tests/unit/test_explorer.py checks it), so editing the
# script means updating the hash here, which re-executes the chapter that shows the widget.
SCRIPT_SHA256 = "6e1fd436313a4039ce8faa17e115eaa6f3e04c9978ab2f7d74ffc4c70427a302"


@dataclass(frozen=True)
class QuantizedLinear:
    """A linear layer y = W x + b with W stored as int8: W[r, c] = q[r, c] * scale[r].

    q: (n_out, n_in) int8 in [-127, 127]; scale: (n_out,) float32; bias: (n_out,) float32.
    """

    q: np.ndarray
    scale: np.ndarray
    bias: np.ndarray

    def weight(self) -> torch.Tensor:
        """The dequantized (n_out, n_in) float32 weight, exactly as the JavaScript computes it."""
        return torch.from_numpy(self.q.astype(np.float32)) * torch.from_numpy(self.scale)[:, None]

    @property
    def nbytes(self) -> int:
        return self.q.nbytes + self.scale.nbytes + self.bias.nbytes


@dataclass(frozen=True)
class ExplorerData:
    """Everything the widget needs: the quantized decoder and the points of the scatter plot.

    layers: the decoder's linear layers in order (hidden ones followed by ``activation``, the
    last by a sigmoid).
    points: (n, 2) float32 latent means shown (a random sample when there are many).
    labels: (n,) uint8.
    centroids: one (z1, z2) per class, computed from *all* points (None for a class with none).
    """

    layers: tuple
    activation: str
    image_shape: tuple
    points: np.ndarray
    labels: np.ndarray
    centroids: tuple
    classes: tuple
    colors: tuple
    n_points_total: int
    extent: float
    condition: tuple = ()  # a conditional decoder's label names (empty: unconditional)
    initial_label: int = 0  # the label drawn first

    @property
    def is_conditional(self) -> bool:
        return bool(self.condition)

    @property
    def weight_bytes(self) -> int:
        """Bytes of the decoder's weights, scales and biases (before base64)."""
        return sum(layer.nbytes for layer in self.layers)

    def decode(self, z, label=None) -> torch.Tensor:
        """PyTorch reference: (n, 2) latent points -> (n, n_pixels) in [0, 1].

        It decodes with the dequantized weights, in float32, as the browser does. A conditional
        decoder also takes the ``label`` to draw (one class number for all points, or one per
        point), given to it as a one-hot vector after z.
        """
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.shape[1] != 2 or len(z) == 0:
            raise ValueError(f"z must have shape (n_points, 2), got {tuple(z.shape)}")
        if self.is_conditional:
            z = torch.cat([z, self._one_hot(label, len(z))], dim=1)
        elif label is not None:
            raise ValueError("this explorer's decoder is not conditional: it takes no label")
        act = ACTIVATIONS[self.activation]
        h = z
        with torch.no_grad():
            for index, layer in enumerate(self.layers):
                h = torch.nn.functional.linear(h, layer.weight(), torch.from_numpy(layer.bias))
                h = torch.sigmoid(h) if index == len(self.layers) - 1 else act(h)
        return h

    def _one_hot(self, label, n: int) -> torch.Tensor:
        k = len(self.condition)
        labels = torch.as_tensor(label if label is not None else -1).reshape(-1)
        if labels.is_floating_point() or labels.numel() not in (1, n):
            raise ValueError(
                f"label must be one class number (0 to {k - 1}) or one per point, got {label!r:.40}"
            )
        if int(labels.min()) < 0 or int(labels.max()) >= k:
            raise ValueError(f"label must be a class number from 0 to {k - 1}, got {label!r:.40}")
        return torch.nn.functional.one_hot(labels.long().expand(n), k).float()

    def payload(self) -> dict:
        """The JSON-able dict the widget reads (arrays as base64 of little-endian bytes)."""
        return {
            "format": FORMAT,
            "activation": self.activation,
            "image_shape": list(self.image_shape),
            "layers": [
                {
                    "n_in": int(layer.q.shape[1]),
                    "n_out": int(layer.q.shape[0]),
                    "q": _b64(layer.q),
                    "scale": _b64(layer.scale),
                    "bias": _b64(layer.bias),
                }
                for layer in self.layers
            ],
            "points": _b64(self.points),
            "labels": _b64(self.labels),
            "n_points": int(len(self.points)),
            "n_points_total": int(self.n_points_total),
            "centroids": [
                None if c is None else [float(c[0]), float(c[1])] for c in self.centroids
            ],
            "classes": list(self.classes),
            "colors": list(self.colors),
            "extent": float(self.extent),
            **(
                {"condition": {"classes": list(self.condition), "initial": int(self.initial_label)}}
                if self.is_conditional
                else {}
            ),
        }

    @classmethod
    def from_payload(cls, payload: dict) -> "ExplorerData":
        """Rebuild the data from :meth:`payload` (e.g. read back from a page with
        :func:`read_payload`).
        """
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"payload is not a latent explorer payload (format {FORMAT!r})")
        layers = tuple(
            QuantizedLinear(
                _unb64(layer["q"], np.int8).reshape(layer["n_out"], layer["n_in"]),
                _unb64(layer["scale"], np.float32),
                _unb64(layer["bias"], np.float32),
            )
            for layer in payload["layers"]
        )
        return cls(
            layers,
            payload["activation"],
            tuple(payload["image_shape"]),
            _unb64(payload["points"], np.float32).reshape(-1, 2),
            _unb64(payload["labels"], np.uint8),
            tuple(None if c is None else tuple(np.float32(c)) for c in payload["centroids"]),
            tuple(payload["classes"]),
            tuple(payload["colors"]),
            payload["n_points_total"],
            payload["extent"],
            tuple(payload.get("condition", {}).get("classes", ())),
            int(payload.get("condition", {}).get("initial", 0)),
        )


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(
        np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    ).decode("ascii")


def _unb64(text: str, dtype) -> np.ndarray:
    little_endian = np.dtype(dtype).newbyteorder("<")
    return np.frombuffer(base64.b64decode(text), dtype=little_endian).astype(dtype)


def quantize_rows(weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization with one scale per output row.

    weight: (n_out, n_in) float tensor. Returns q (n_out, n_in) int8 in [-127, 127] and scale
    (n_out,) float32 = max |row| / 127, so |q * scale - weight| <= scale / 2 everywhere (a zero row
    gets scale 1).
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(
            "weight must be a 2-D float tensor, "
            f"got {getattr(weight, 'shape', type(weight).__name__)}"
        )
    check_finite(weight, "weight")
    w = weight.detach().to("cpu", torch.float32)
    largest = w.abs().amax(dim=1)
    scale = torch.where(largest > 0, largest / 127, torch.ones_like(largest))
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.numpy(), scale.numpy().astype(np.float32)


def _decoder_layers(model) -> list[nn.Linear]:
    layers = [getattr(model, name, None) for name in ("ld1", "ld2", "ld3")]
    if not isinstance(model, nn.Module) or not all(
        isinstance(layer, nn.Linear) for layer in layers
    ):
        raise TypeError(
            "model must be a vae_lesson.VAE or AutoEncoder (an MLP decoder with layers ld1, ld2, "
            "ld3), "
            f"got {type(model).__name__}"
        )
    return layers


def export_decoder(
    model,
    z,
    labels,
    classes=None,
    image_shape=None,
    max_points: int = 2000,
    seed: int = 0,
    initial_label: int = 0,
) -> ExplorerData:
    """Quantize a trained 2-D VAE's decoder and collect the points of the explorer's scatter plot.

    Args:
        model: a trained :class:`vae_lesson.VAE` (or :class:`vae_lesson.AutoEncoder`) with
            ``n_latent == 2``, or a conditional VAE (:class:`~vae_lesson.chapters.cvae.CVAE`), whose
            decoder also takes the class to draw: the widget then offers a choice of class.
        z: (n, 2) latent means, e.g. ``latent.encode_means(model, x_test)``.
        labels: (n,) integer classes 0 .. K-1 (K <= 10, one of ``plots.CLASS_COLOURS`` each, as in
            the static scatter plot).
        classes: optional K class names (default "0", "1", ...).
        image_shape: (H, W) of the decoded images, H * W == model.n_in (default: square).
        max_points: at most this many points are shown, a random sample (the centroids use all of
            them).
        seed: seed of that sample.
        initial_label: for a conditional model, the class drawn first.

    Returns:
        An :class:`ExplorerData`; pass it to :func:`explorer_html`.
    """
    layers = _decoder_layers(model)
    n_latent = getattr(model, "n_latent", layers[0].in_features)
    if n_latent != 2:
        raise ValueError(
            f"the explorer draws a 2-D latent plane, but the model has n_latent={n_latent}"
        )
    name = activation_name(getattr(model, "act_func", None))
    if name not in JS_ACTIVATIONS:
        raise ValueError(
            f"the explorer's JavaScript decoder implements {', '.join(JS_ACTIVATIONS)}; "
            f"the model uses {name}"
        )
    n_pixels = layers[-1].out_features
    if image_shape is None:
        side = int(round(n_pixels**0.5))
        if side * side != n_pixels:
            raise ValueError(
                f"the model outputs {n_pixels} pixels, not a square image: pass image_shape"
            )
        image_shape = (side, side)
    if len(tuple(image_shape)) != 2 or int(np.prod(image_shape)) != n_pixels:
        raise ValueError(f"image_shape must be (H, W) with H * W == {n_pixels}, got {image_shape}")
    check_positive_int(max_points, "max_points")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")

    points = torch.as_tensor(z).detach().to("cpu", torch.float32)
    if points.dim() != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(
            "z must have shape (n, 2): the latent means of the points to show, "
            f"got {tuple(points.shape)}"
        )
    check_finite(points, "z")
    label_array = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if label_array.shape != (len(points),):
        raise ValueError(
            f"labels must have shape ({len(points)},), one per point of z, got {label_array.shape}"
        )
    kind = label_array.dtype.kind
    if kind not in "iubf" or (kind == "f" and not np.all(label_array == np.round(label_array))):
        raise ValueError(f"labels must be integers (class numbers), got {label_array.dtype} values")
    label_array = label_array.astype(np.int64)
    n_classes = len(classes) if classes is not None else int(label_array.max()) + 1
    if n_classes > 10:
        raise ValueError(
            f"at most 10 classes can be told apart by colour, got {n_classes}"
        )
    if label_array.min() < 0 or label_array.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0 .. {n_classes - 1} (one per class name), "
            f"got values in {label_array.min()} .. {label_array.max()}"
        )
    names = tuple(str(c) for c in (classes if classes is not None else range(n_classes)))
    condition = ()
    n_condition = getattr(model, "n_classes", 0)
    if n_condition:  # a conditional decoder: its input is (z, one-hot label)
        if layers[0].in_features != n_latent + n_condition or n_condition != n_classes:
            raise ValueError(
                f"the conditional model draws {n_condition} classes but {n_classes} are named; "
                "pass classes with one name per class of the model"
            )
        if (
            isinstance(initial_label, bool)
            or not isinstance(initial_label, int)
            or not (0 <= initial_label < n_condition)
        ):
            raise ValueError(
                f"initial_label must be a class number from 0 to {n_condition - 1}, "
                f"got {initial_label!r}"
            )
        condition = names

    quantized = []
    for layer in layers:
        q, scale = quantize_rows(layer.weight)
        quantized.append(
            QuantizedLinear(q, scale, layer.bias.detach().to("cpu", torch.float32).numpy().copy())
        )
    centroids = tuple(
        tuple(points[torch.from_numpy(label_array == c)].mean(0).numpy())
        if (label_array == c).any()
        else None
        for c in range(n_classes)
    )
    shown = np.arange(len(points))
    if len(points) > max_points:  # a random sample keeps the density of the cloud
        generator = torch.Generator().manual_seed(seed)
        shown = np.sort(torch.randperm(len(points), generator=generator)[:max_points].numpy())
    # The view: a square around the origin that holds all but the most distant 0.5 % of the points.
    reach = float(torch.quantile(points.abs().amax(1), 0.995))
    extent = max(1.0, float(np.ceil(reach * 1.1 * 2) / 2))
    return ExplorerData(
        tuple(quantized),
        name,
        tuple(int(s) for s in image_shape),
        points.numpy()[shown].copy(),
        label_array[shown].astype(np.uint8),
        centroids,
        names,
        CLASS_COLOURS[:n_classes],
        len(points),
        extent,
        condition,
        initial_label if condition else 0,
    )


def explorer_script() -> str:
    """The widget's JavaScript source (explorer.js, shipped with the package)."""
    return resources.files("vae_lesson.infra").joinpath("explorer.js").read_text(encoding="utf-8")


def script_path() -> Path:
    """Path of explorer.js (for running it under Node.js in the tests)."""
    return Path(__file__).with_name("explorer.js")


def _json_for_script(payload: dict) -> str:
    # Inside <script>, "</" must never appear; escaping "<", ">" and "&" keeps the JSON valid
    # and inert.
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def explorer_html(data: ExplorerData) -> str:
    """One self-contained HTML snippet: the data in a <div>, a <noscript> note and the script."""
    if not isinstance(data, ExplorerData):
        raise TypeError(
            f"data must be an ExplorerData from export_decoder, got {type(data).__name__}"
        )
    payload = _json_for_script(data.payload())
    # stable across runs
    element_id = "vae-explorer-" + hashlib.sha256(payload.encode()).hexdigest()[:12]
    note = (
        "The interactive latent explorer needs JavaScript. The static figures of the latent space "
        "above show the same model."
    )
    return (
        f'<div class="vae-explorer" id="{element_id}">\n'
        f'<noscript><p class="vae-explorer-noscript">{html.escape(note)}</p></noscript>\n'
        f'<script type="application/json" class="vae-explorer-data">{payload}</script>\n'
        f"</div>\n"
        f"<script>\n{explorer_script()}\n"
        f'VAEExplorer.mount(document.getElementById("{element_id}"));\n</script>\n'
    )


def read_payload(page: str) -> dict:
    """The payload of the first explorer in an HTML page (e.g. a built book page), as a dict."""
    match = re.search(
        r'<script type="application/json" class="vae-explorer-data">(.*?)</script>', page, re.S
    )
    if match is None:
        raise ValueError("no latent explorer in this page")
    return json.loads(match.group(1))
