/*
 * The latent explorer: a 2-D VAE decoder running in the reader's browser.
 *
 * vae_lesson/explorer.py exports a trained decoder (int8 weights with one float32 scale per output
 * row, float32 biases) and the test set's latent means into a JSON payload, and inlines this file
 * next to it. Nothing is loaded from the network, so the widget works in the offline book, in
 * Jupyter and in Colab alike.
 *
 * A conditional decoder (payload.condition: the class names of its label input) takes the one-hot label of
 * the class to draw after z; the widget then offers a choice of class.
 *
 * The same file runs under Node.js (module.exports), where the tests compare decode() with PyTorch.
 * Arithmetic: the dequantized weights are float32 (Float32Array), products are summed in float64
 * and every layer's output is rounded to float32 again, so the result differs from PyTorch's
 * float32 decoder by rounding noise (about 1e-6), far below the 1e-3 per pixel it is tested to.
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) { module.exports = api; }
  if (typeof window !== "undefined") { window.VAEExplorer = api; }
}(this, function () {
  "use strict";

  var FORMAT = "vae-explorer/1";

  // ---------------------------------------------------------------- the decoder (no DOM needed)

  function bytesFromBase64(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes;
  }

  // Little-endian float32 values, whatever the platform's byte order.
  function float32FromBase64(text) {
    var bytes = bytesFromBase64(text);
    var view = new DataView(bytes.buffer);
    var out = new Float32Array(bytes.length / 4);
    for (var i = 0; i < out.length; i++) { out[i] = view.getFloat32(4 * i, true); }
    return out;
  }

  function softplus(x) { return x > 20 ? x : Math.log1p(Math.exp(x)); }  // torch's threshold of 20
  function sigmoid(x) { return 1 / (1 + Math.exp(-x)); }

  // The hidden activations a VAE may use (vae_lesson/_activations.py), as torch defines them.
  var ACTIVATIONS = {
    tanh: Math.tanh,
    relu: function (x) { return x > 0 ? x : 0; },
    sigmoid: sigmoid,
    softplus: softplus,
    elu: function (x) { return x > 0 ? x : Math.expm1(x); },
    leaky_relu: function (x) { return x > 0 ? x : 0.01 * x; }
  };

  /** Build the decoder from a payload: layers with float32 weights (n_out x n_in, row-major). */
  function loadDecoder(payload) {
    if (!payload || payload.format !== FORMAT) {
      throw new Error("not a latent explorer payload (expected format " + FORMAT + ")");
    }
    var act = ACTIVATIONS[payload.activation];
    if (!act) { throw new Error("unknown activation " + payload.activation); }
    var layers = payload.layers.map(function (layer) {
      var q = new Int8Array(bytesFromBase64(layer.q).buffer);
      var scale = float32FromBase64(layer.scale);
      var bias = float32FromBase64(layer.bias);
      if (q.length !== layer.n_out * layer.n_in || scale.length !== layer.n_out || bias.length !== layer.n_out) {
        throw new Error("a layer of the payload has the wrong size");
      }
      var weight = new Float32Array(q.length);  // float32 storage rounds q * scale as PyTorch does
      for (var r = 0; r < layer.n_out; r++) {
        for (var c = 0; c < layer.n_in; c++) { weight[r * layer.n_in + c] = q[r * layer.n_in + c] * scale[r]; }
      }
      return { nIn: layer.n_in, nOut: layer.n_out, weight: weight, bias: bias };
    });
    var nCondition = payload.condition ? payload.condition.classes.length : 0;
    return {
      layers: layers, act: act, nLatent: layers[0].nIn - nCondition, nCondition: nCondition,
      nPixels: layers[layers.length - 1].nOut
    };
  }

  /**
   * Decode one latent point z (array of nLatent numbers) to pixel probabilities (Float32Array); a
   * conditional decoder also takes the class number to draw, which it reads as a one-hot vector after z.
   */
  function decode(decoder, z, label) {
    var x = new Float32Array(decoder.layers[0].nIn);  // zeros: the one-hot part stays 0 but for the label
    for (var i = 0; i < decoder.nLatent; i++) { x[i] = z[i]; }  // z is float32 in PyTorch too
    if (decoder.nCondition > 0) {
      if (!(label >= 0 && label < decoder.nCondition)) { throw new Error("label must be a class number"); }
      x[decoder.nLatent + label] = 1;
    }
    var last = decoder.layers.length - 1;
    decoder.layers.forEach(function (layer, index) {
      var out = new Float32Array(layer.nOut);
      var w = layer.weight, nIn = layer.nIn;
      for (var r = 0; r < layer.nOut; r++) {
        var sum = 0, row = r * nIn;
        for (var c = 0; c < nIn; c++) { sum += w[row + c] * x[c]; }
        sum += layer.bias[r];
        out[r] = index === last ? sigmoid(sum) : decoder.act(sum);
      }
      x = out;
    });
    return x;
  }

  // ---------------------------------------------------------------- the widget

  var STYLE = [
    ".vae-explorer{margin:1em 0;font-size:0.95em}",
    ".vae-explorer .vx-help{margin:0 0 0.5em 0}",
    ".vae-explorer .vx-modes{display:flex;gap:1.2em;flex-wrap:wrap;margin:0 0 0.6em 0}",
    ".vae-explorer .vx-modes label{cursor:pointer}",
    ".vae-explorer .vx-row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}",
    ".vae-explorer .vx-plot{max-width:100%}",
    ".vae-explorer .vx-plotrow{display:flex;align-items:center;gap:0.5em}",
    ".vae-explorer .vx-plotrow canvas{flex:0 1 auto;min-width:0}",
    ".vae-explorer .vx-side{width:196px}",
    ".vae-explorer canvas{display:block}",
    ".vae-explorer .vx-scatter{width:360px;max-width:100%;height:auto;cursor:crosshair;touch-action:none;" +
      "box-shadow:0 0 0 1px #ccc;background:#fff}",  // a shadow, not a border: no offset between box and drawing,
    ".vae-explorer .vx-scatter:focus-visible{outline:2px solid #1f77b4;outline-offset:2px}",
    ".vae-explorer .vx-digit{width:196px;height:196px;image-rendering:pixelated;background:#000}",
    ".vae-explorer .vx-z{font-family:monospace;margin:0.4em 0 0 0;white-space:nowrap}",
    ".vae-explorer .vx-interp{margin-top:0.6em}",
    ".vae-explorer .vx-interp select{max-width:100%}",
    ".vae-explorer .vx-label{margin:0 0 0.5em 0}",
    ".vae-explorer .vx-interp[hidden]{display:none}",
    ".vae-explorer .vx-interp p{margin:0.2em 0}",
    ".vae-explorer .vx-interp input[type=range]{width:100%}",
    ".vae-explorer .vx-legend{display:flex;flex-direction:column;gap:0.1em;list-style:none;padding:0;margin:0;" +
      "font-size:0.9em;white-space:nowrap}",
    ".vae-explorer .vx-legend li{margin:0;display:flex;align-items:center;gap:0.3em}",
    ".vae-explorer .vx-swatch{display:inline-block;width:0.8em;height:0.8em;border-radius:50%}",
    ".vae-explorer .vx-note{font-size:0.85em;opacity:0.8;margin:0.4em 0 0 0}",
    // the note under the plot wraps at the plot's width instead of widening it (which would push the
    // decoded image under the plot)
    ".vae-explorer .vx-plot > .vx-note{width:0;min-width:100%}"
  ].join("\n");

  function addStyle(doc) {
    if (doc.getElementById("vae-explorer-style")) { return; }
    var style = doc.createElement("style");
    style.id = "vae-explorer-style";
    style.textContent = STYLE;
    doc.head.appendChild(style);
  }

  function element(doc, tag, attributes, text) {
    var el = doc.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) { el.setAttribute(key, attributes[key]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  function niceStep(extent) {
    var steps = [0.25, 0.5, 1, 2, 5, 10, 20, 50];
    for (var i = 0; i < steps.length; i++) { if (2 * extent / steps[i] <= 8) { return steps[i]; } }
    return 100;
  }

  function formatNumber(value) { return (value < 0 ? "\u2212" : "") + Math.abs(value).toFixed(2); }

  var SIZE = 360, LEFT = 48, RIGHT = 12, TOP = 12, BOTTOM = 48;  // scatter canvas, CSS pixels
  var DIGIT_SIZE = 196;                                           // 7 canvas pixels per image pixel

  /** Build the widget inside container, reading the payload from its JSON script element. */
  function mount(container) {
    var doc = container.ownerDocument;
    var source = container.querySelector("script.vae-explorer-data");
    var payload = JSON.parse(source.textContent);
    var decoder = loadDecoder(payload);
    var height = payload.image_shape[0], width = payload.image_shape[1];
    var points = float32FromBase64(payload.points);
    var labels = bytesFromBase64(payload.labels);
    var extent = payload.extent;
    addStyle(doc);

    // ---- layout
    var uid = container.id || "vae-explorer";
    var help = element(doc, "p", { "class": "vx-help" },
      "Move the pointer over the plot, or drag a finger across it (or focus it and use the arrow keys), to " +
      "decode that point of the latent plane. Choose \u201cWalk\u201d to move along a straight line between two points." +
      (decoder.nCondition > 0 ? " The menu above the image chooses which class the decoder draws." : ""));
    var modes = element(doc, "div", { "class": "vx-modes", role: "radiogroup", "aria-label": "mode" });
    [["explore", "Explore the plane"], ["walk", "Walk between two points"]].forEach(function (mode, i) {
      var label = element(doc, "label");
      var input = element(doc, "input", { type: "radio", name: uid + "-mode", value: mode[0] });
      if (i === 0) { input.checked = true; }
      label.appendChild(input);
      label.appendChild(doc.createTextNode(" " + mode[1]));
      modes.appendChild(label);
    });
    var row = element(doc, "div", { "class": "vx-row" });
    var plotBox = element(doc, "div", { "class": "vx-plot" });
    var dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
    var scatter = element(doc, "canvas", {
      "class": "vx-scatter", width: Math.round(SIZE * dpr), height: Math.round(SIZE * dpr), tabindex: "0",
      role: "img", "aria-label": "Latent means of the test digits, coloured by digit; the pointer picks the code to decode"
    });
    var plotRow = element(doc, "div", { "class": "vx-plotrow" });
    plotRow.appendChild(scatter);
    plotBox.appendChild(plotRow);
    var legend = element(doc, "ul", { "class": "vx-legend", "aria-label": "colours" });
    var titleIsDigit = /^[0-9]+$/.test(payload.classes[0]);
    legend.appendChild(element(doc, "li", {}, titleIsDigit ? "digit" : "class"));
    payload.classes.forEach(function (name, c) {
      var item = element(doc, "li");
      item.appendChild(element(doc, "span", { "class": "vx-swatch", style: "background:" + payload.colors[c] }));
      item.appendChild(doc.createTextNode(name));
      legend.appendChild(item);
    });
    plotRow.appendChild(legend);
    var shown = payload.n_points === payload.n_points_total ? payload.n_points.toLocaleString("en") + " test codes" :
      payload.n_points.toLocaleString("en") + " of " + payload.n_points_total.toLocaleString("en") + " test codes (a random sample)";
    // A conditional decoder is told the class, so the codes of every class share one cloud: their centroids
    // coincide, and names written there would pile up under the pointer. They are left out.
    var namesAtCentroids = decoder.nCondition === 0;
    plotBox.appendChild(element(doc, "p", { "class": "vx-note" }, "Points: " + shown + (namesAtCentroids ?
      "; names at the class centroids." : "; the decoder is told the class, so all classes share one cloud.")));
    var side = element(doc, "div", { "class": "vx-side" });
    var labelSelect = null;
    if (decoder.nCondition > 0) {  // the class the conditional decoder draws
      var labelRow = element(doc, "p", { "class": "vx-label" });
      labelSelect = element(doc, "select", { "aria-label": "the class to draw" });
      payload.condition.classes.forEach(function (name, c) {
        labelSelect.appendChild(element(doc, "option", { value: String(c) }, name));
      });
      labelSelect.value = String(payload.condition.initial || 0);
      labelRow.appendChild(doc.createTextNode(titleIsDigit ? "Draw the digit " : "Draw the class "));
      labelRow.appendChild(labelSelect);
      side.appendChild(labelRow);
    }
    var digit = element(doc, "canvas", {
      "class": "vx-digit", width: DIGIT_SIZE, height: DIGIT_SIZE, role: "img", "aria-label": "the decoded image"
    });
    side.appendChild(digit);
    var zText = element(doc, "p", { "class": "vx-z", "aria-live": "polite" });
    side.appendChild(zText);
    var walk = element(doc, "div", { "class": "vx-interp" });
    walk.hidden = true;
    function classSelect(initial) {
      var select = element(doc, "select");
      payload.classes.forEach(function (name, c) {
        var option = element(doc, "option", { value: String(c) }, "centroid of " + name);
        select.appendChild(option);
      });
      select.appendChild(element(doc, "option", { value: "picked" }, "point picked on the plot"));
      select.value = String(initial);
      return select;
    }
    var nClasses = payload.classes.length;
    var startClass = 0, endClass = nClasses > 7 ? 7 : nClasses - 1;
    var fromSelect = classSelect(startClass), toSelect = classSelect(endClass);
    var slider = element(doc, "input", { type: "range", min: "0", max: "100", step: "1", value: "0",
      "aria-label": "position t along the walk" });
    var tText = element(doc, "span", {}, "t = 0.00");
    var p1 = element(doc, "p"); p1.appendChild(doc.createTextNode("From ")); p1.appendChild(fromSelect);
    var p2 = element(doc, "p"); p2.appendChild(doc.createTextNode("to ")); p2.appendChild(toSelect);
    var p3 = element(doc, "p"); p3.appendChild(slider);
    var p4 = element(doc, "p", { "class": "vx-note" });
    p4.appendChild(tText);
    p4.appendChild(doc.createTextNode(": z = (1 \u2212 t)\u00b7start + t\u00b7end. Click the plot to pick the start, " +
      "then the end, anywhere."));
    [p1, p2, p3, p4].forEach(function (p) { walk.appendChild(p); });
    side.appendChild(walk);
    row.appendChild(plotBox);
    row.appendChild(side);
    var noscript = container.querySelector("noscript");
    Array.prototype.slice.call(container.childNodes).forEach(function (node) {
      if (node !== source && node !== noscript) { container.removeChild(node); }
    });
    [help, modes, row].forEach(function (node) { container.appendChild(node); });

    // ---- coordinates: z in [-extent, extent]^2, square plot area
    var plotSize = SIZE - LEFT - RIGHT;
    function toCanvas(z1, z2) {  // CSS pixels from the canvas's top left corner
      return { x: LEFT + (z1 + extent) / (2 * extent) * plotSize, y: TOP + (extent - z2) / (2 * extent) * plotSize };
    }
    function fromCanvas(x, y) {
      return [(x - LEFT) / plotSize * 2 * extent - extent, extent - (y - TOP) / plotSize * 2 * extent];
    }
    function clamp(v) { return Math.max(-extent, Math.min(extent, v)); }

    // ---- the static part of the scatter, drawn once
    var background = doc.createElement("canvas");
    background.width = scatter.width; background.height = scatter.height;
    (function drawBackground() {
      var ctx = background.getContext("2d");
      ctx.scale(dpr, dpr);
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, SIZE, SIZE);
      var step = niceStep(extent);
      ctx.strokeStyle = "rgba(0,0,0,0.12)"; ctx.lineWidth = 1;
      ctx.fillStyle = "#222"; ctx.font = "11px sans-serif";
      for (var v = Math.ceil(-extent / step) * step; v <= extent + 1e-9; v += step) {
        var p = toCanvas(v, v);
        ctx.beginPath(); ctx.moveTo(p.x, TOP); ctx.lineTo(p.x, TOP + plotSize); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(LEFT, p.y); ctx.lineTo(LEFT + plotSize, p.y); ctx.stroke();
        var label = formatNumber(v).replace(/\.?0+$/, "");
        ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.fillText(label, p.x, TOP + plotSize + 4);
        ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.fillText(label, LEFT - 4, p.y);
      }
      ctx.strokeStyle = "#444"; ctx.strokeRect(LEFT, TOP, plotSize, plotSize);
      ctx.font = "italic 14px serif"; ctx.textAlign = "center"; ctx.textBaseline = "alphabetic";
      ctx.fillText("z\u2081", LEFT + plotSize / 2, SIZE - 10);
      ctx.save(); ctx.translate(14, TOP + plotSize / 2); ctx.rotate(-Math.PI / 2);
      ctx.fillText("z\u2082", 0, 0); ctx.restore();
      ctx.save();
      ctx.beginPath(); ctx.rect(LEFT, TOP, plotSize, plotSize); ctx.clip();
      ctx.globalAlpha = 0.7;
      for (var c = 0; c < nClasses; c++) {  // class by class, as the static figure draws them
        ctx.fillStyle = payload.colors[c];
        for (var i = 0; i < labels.length; i++) {
          if (labels[i] !== c) { continue; }
          var q = toCanvas(points[2 * i], points[2 * i + 1]);
          ctx.beginPath(); ctx.arc(q.x, q.y, 1.8, 0, 2 * Math.PI); ctx.fill();
        }
      }
      ctx.globalAlpha = 1;
      ctx.font = "bold 14px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.fillStyle = "#000";
      payload.centroids.forEach(function (centroid, c) {
        if (centroid === null || !namesAtCentroids) { return; }
        var r = toCanvas(centroid[0], centroid[1]);
        ctx.strokeText(payload.classes[c], r.x, r.y); ctx.fillText(payload.classes[c], r.x, r.y);
      });
      ctx.restore();
    }());

    // ---- state
    function centroidOf(c) { var v = payload.centroids[c]; return v ? [v[0], v[1]] : [0, 0]; }
    var state = {
      mode: "explore", z: [0, 0], start: centroidOf(startClass), end: centroidOf(endClass), t: 0, nextPick: "start",
      label: labelSelect ? Number(labelSelect.value) : null
    };
    var small = doc.createElement("canvas");
    small.width = width; small.height = height;
    var smallCtx = small.getContext("2d");
    var frame = smallCtx.createImageData(width, height);
    var pending = false, renders = 0;

    function currentZ() {
      if (state.mode === "walk") {
        return [(1 - state.t) * state.start[0] + state.t * state.end[0], (1 - state.t) * state.start[1] + state.t * state.end[1]];
      }
      return state.z;
    }

    function marker(ctx, p, radius) {
      ctx.lineWidth = 4; ctx.strokeStyle = "#fff";
      ctx.beginPath(); ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI); ctx.stroke();
      ctx.lineWidth = 2; ctx.strokeStyle = "#000";
      ctx.beginPath(); ctx.arc(p.x, p.y, radius, 0, 2 * Math.PI); ctx.stroke();
    }

    function render() {
      pending = false;
      var z = currentZ().map(Math.fround);  // the exact float32 code that is decoded and reported
      var probabilities = decode(decoder, z, state.label);
      for (var i = 0; i < probabilities.length; i++) {
        var grey = probabilities[i] * 255;  // white digit on black, as MNIST is stored
        frame.data[4 * i] = grey; frame.data[4 * i + 1] = grey; frame.data[4 * i + 2] = grey;  // rounds to 0..255
        frame.data[4 * i + 3] = 255;
      }
      smallCtx.putImageData(frame, 0, 0);
      var dctx = digit.getContext("2d");
      dctx.imageSmoothingEnabled = false;  // sharp pixels, and the drawn values are the decoded ones
      dctx.drawImage(small, 0, 0, DIGIT_SIZE, DIGIT_SIZE);

      var ctx = scatter.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(background, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.save();
      ctx.beginPath(); ctx.rect(LEFT, TOP, plotSize, plotSize); ctx.clip();
      if (state.mode === "walk") {
        var a = toCanvas(state.start[0], state.start[1]), b = toCanvas(state.end[0], state.end[1]);
        ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
        var angle = Math.atan2(b.y - a.y, b.x - a.x);
        ctx.fillStyle = "#000"; ctx.beginPath(); ctx.moveTo(b.x, b.y);
        ctx.lineTo(b.x - 11 * Math.cos(angle - 0.4), b.y - 11 * Math.sin(angle - 0.4));
        ctx.lineTo(b.x - 11 * Math.cos(angle + 0.4), b.y - 11 * Math.sin(angle + 0.4));
        ctx.closePath(); ctx.fill();
        ctx.beginPath(); ctx.arc(a.x, a.y, 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      marker(ctx, toCanvas(z[0], z[1]), 6);
      ctx.restore();

      zText.textContent = "z = (" + formatNumber(z[0]) + ", " + formatNumber(z[1]) + ")";
      tText.textContent = "t = " + state.t.toFixed(2);
      renders += 1;
      container.setAttribute("data-z", z[0] + " " + z[1]);
      container.setAttribute("data-mode", state.mode);
      container.setAttribute("data-renders", String(renders));
      if (state.label !== null) { container.setAttribute("data-label", String(state.label)); }
    }

    function update() {
      if (pending) { return; }
      pending = true;
      if (typeof requestAnimationFrame === "function") { requestAnimationFrame(render); } else { setTimeout(render, 0); }
    }

    function pointerZ(event) {
      var rect = scatter.getBoundingClientRect();
      var x = (event.clientX - rect.left) * SIZE / rect.width, y = (event.clientY - rect.top) * SIZE / rect.height;
      var z = fromCanvas(x, y);
      return [clamp(z[0]), clamp(z[1])];
    }

    scatter.addEventListener("pointermove", function (event) {
      if (state.mode === "explore") { state.z = pointerZ(event); update(); }
    });
    scatter.addEventListener("pointerdown", function (event) {
      var z = pointerZ(event);
      if (state.mode === "explore") { state.z = z; } else if (state.nextPick === "start") {
        state.start = z; fromSelect.value = "picked"; state.nextPick = "end";
      } else {
        state.end = z; toSelect.value = "picked"; state.nextPick = "start";
      }
      update();
    });
    scatter.addEventListener("keydown", function (event) {
      var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
      var move = moves[event.key];
      if (!move) { return; }
      event.preventDefault();
      var step = extent / (event.shiftKey ? 10 : 50);
      if (state.mode === "explore") {
        state.z = [clamp(state.z[0] + move[0] * step), clamp(state.z[1] + move[1] * step)];
      } else {
        slider.value = String(Math.max(0, Math.min(100, Number(slider.value) + (move[0] + move[1]) * (event.shiftKey ? 10 : 1))));
        state.t = Number(slider.value) / 100;
      }
      update();
    });
    Array.prototype.forEach.call(modes.querySelectorAll("input"), function (input) {
      input.addEventListener("change", function () {
        if (!input.checked) { return; }
        state.mode = input.value;
        walk.hidden = state.mode !== "walk";
        update();
      });
    });
    function onSelect(select, key) {
      select.addEventListener("change", function () {
        if (select.value !== "picked") { state[key] = centroidOf(Number(select.value)); update(); }
      });
    }
    onSelect(fromSelect, "start");
    onSelect(toSelect, "end");
    slider.addEventListener("input", function () { state.t = Number(slider.value) / 100; update(); });
    if (labelSelect) {
      labelSelect.addEventListener("change", function () { state.label = Number(labelSelect.value); update(); });
    }

    var api = {
      decoder: decoder,
      state: state,
      /** CSS pixel position of latent point (z1, z2) relative to the scatter canvas's top left corner. */
      toCanvas: function (z1, z2) {
        var rect = scatter.getBoundingClientRect(), p = toCanvas(z1, z2);
        return { x: p.x * rect.width / SIZE, y: p.y * rect.height / SIZE };
      }
    };
    container.vaeExplorer = api;
    render();
    return api;
  }

  return { FORMAT: FORMAT, loadDecoder: loadDecoder, decode: decode, mount: mount, ACTIVATIONS: ACTIVATIONS };
}));
