"""Training throughput: ``vl.train`` against a tutorial-style loop and a float32 matmul peak, interleaved.

For each batch size and thread count three contenders process the same number of examples per round:

* ``vl.train``: one epoch of ``vae_lesson``'s default loop per round (the autograd loop of chapter 01,
  ``train_epoch``; its validation and setup included);
* ``vl.train manual``: the same with the opt-in ``backward="manual"`` (the hand-derived gradients);
* ``reference``: one epoch of :class:`benchmarks.reference.ReferenceLoop` (DataLoader, default Adam, .item());
* ``matmul peak``: only the matrix products of those training steps, timed with ``torch.addmm``/``torch.mm``
  on tensors of exactly the layers' shapes and layouts: the speed the loop would reach if the layers'
  matrix products were all it did.

FLOPs are counted from the shapes of the linear layers seen during one real loss call (see
:func:`step_products`): forward 2·m·k·n per layer, backward 2·m·k·n for the weight gradient plus
2·m·k·n for the input gradient when the layer's input needs one (every layer except the first encoder
layer, whose input is the data). Bias additions, activations, the loss and Adam are not counted: they
are the overhead the fraction of peak measures. Because the peak is timed on the same products, the
fraction of peak equals (matmul time of a step) / (time of a step), whatever the counting convention.

``vl.train manual`` computes this model's gradients by hand (:mod:`vae_lesson.chapters.manual_backward`): the
same products, except that the two encoder heads (500 -> 20 each) are one 500 -> 40 product. The peak times
them separately, as autograd runs them; they are under 2 % of a step's FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import vae_lesson as vl

from ._timing import Rounds, interleave
from .reference import ReferenceLoop

# vl.train: its default, the autograd loop of chapter 01; vl.train manual: the opt-in backward="manual"
CONTENDERS = ("vl.train", "vl.train manual", "reference", "matmul peak")


@dataclass(frozen=True)
class Product:
    """One matrix product (m, k) @ (k, n) of a training step."""

    layer: str
    kind: str  # "forward", "grad_input" or "grad_weight"
    m: int
    k: int
    n: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n  # one multiply and one add per term


def step_products(model: nn.Module, x_batch: torch.Tensor, loss_kwargs: dict | None = None) -> list:
    """The matrix products of one training step of ``model`` on ``x_batch``, read from its ``nn.Linear`` layers.

    A forward hook records, for each linear layer call during one ``model.loss(x_batch)``, the input
    (m rows, after flattening leading dimensions such as the k samples of z) and the weight (n, k).
    Forward: (m, k) @ (k, n). Backward: the weight gradient (k, m) @ (m, n) if the weight is trained,
    and the input gradient (m, n) @ (n, k) if the input requires a gradient. The caller's random state
    is left untouched.
    """
    calls = []

    def record(name):
        def hook(module, inputs, output):
            x = inputs[0]
            calls.append((name, x.numel() // x.shape[-1], module.in_features, module.out_features,
                          x.requires_grad, module.weight.requires_grad))
        return hook

    handles = [module.register_forward_hook(record(name))
               for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            model.loss(x_batch, **(loss_kwargs or {}))
    finally:
        for handle in handles:
            handle.remove()
    products = []
    for name, m, k, n, input_grad, weight_grad in calls:
        products.append(Product(name, "forward", m, k, n))
        if weight_grad:
            products.append(Product(name, "grad_weight", k, m, n))
        if input_grad:
            products.append(Product(name, "grad_input", m, n, k))
    return products


def step_flops(products) -> int:
    """Total FLOPs of the matrix products of one training step."""
    return sum(p.flops for p in products)


def matmul_workload(products, seed: int = 0):
    """A function that performs every product once, with the layouts autograd uses for ``nn.Linear``.

    forward: ``addmm(bias, x, W.t())``; grad_weight: ``x.t() @ grad``; grad_input: ``grad @ W``
    (x: (m, k) activations, W: (n, k) weight, grad: (m, n) output gradient).
    """
    g = torch.Generator().manual_seed(seed)
    ops = []
    for p in products:
        if p.kind == "forward":
            bias, x, w = torch.randn(p.n, generator=g), torch.randn(p.m, p.k, generator=g), torch.randn(p.n, p.k, generator=g)
            ops.append(lambda bias=bias, x=x, w=w: torch.addmm(bias, x, w.t()))
        elif p.kind == "grad_weight":  # (in, rows) @ (rows, out): x.t() is a transposed view, as in autograd
            x, grad = torch.randn(p.k, p.m, generator=g), torch.randn(p.k, p.n, generator=g)
            ops.append(lambda x=x, grad=grad: x.t().mm(grad))
        else:  # grad_input: (rows, out) @ (out, in) with the weight stored (out, in)
            grad, w = torch.randn(p.m, p.k, generator=g), torch.randn(p.k, p.n, generator=g)
            ops.append(lambda grad=grad, w=w: grad.mm(w))

    def run():
        for op in ops:
            op()
    return run


@dataclass
class BatchResult:
    """Interleaved rates (examples per second) at one batch size, keyed by (contender, threads)."""

    batch_size: int
    threads: tuple
    flops_per_step: int
    rounds: Rounds

    def key(self, contender: str, threads: int) -> str:
        return f"{contender} @{threads}"

    def rate(self, contender: str, threads: int, stat: str = "median") -> float:
        return getattr(self.rounds, stat)(self.key(contender, threads))

    def gflops(self, contender: str, threads: int, stat: str = "best") -> float:
        return self.rate(contender, threads, stat) * self.flops_per_step / self.batch_size / 1e9

    def ratio_vs_reference(self, threads: int, contender: str = "vl.train") -> float:
        """Median over rounds of ``contender``'s rate / the reference's rate in the same round."""
        return self.rounds.median_ratio(self.key(contender, threads), self.key("reference", threads))

    def fraction_of_peak(self, contender: str, threads: int) -> float:
        """Best-of-rounds GFLOP/s of ``contender`` over the best-of-rounds matmul peak (same threads)."""
        return self.gflops(contender, threads) / self.gflops("matmul peak", threads)


def _with_threads(n: int, fn):
    def run():
        torch.set_num_threads(n)
        return fn()
    return run


def measure_batch(x: torch.Tensor, batch_size: int, threads, *, rounds: int, n_latent: int = 20, n_hidden: int = 500,
                  seed: int = 0) -> BatchResult:
    """Interleave vl.train, the reference loop and the matmul peak on ``x`` (one epoch of it per round)."""
    if len(x) % batch_size:
        raise ValueError(f"the examples per round ({len(x)}) must be a multiple of batch_size ({batch_size})")
    n_in = x.shape[1]
    vl.set_seed(seed)
    ours = vl.VAE(n_in, n_latent, n_hidden)
    vl.set_seed(seed)
    ours_manual = vl.VAE(n_in, n_latent, n_hidden)
    vl.set_seed(seed)
    theirs = vl.VAE(n_in, n_latent, n_hidden)
    reference = ReferenceLoop(theirs, x, batch_size=batch_size, seed=seed)
    products = step_products(ours, x[:batch_size])
    steps = len(x) // batch_size
    matmuls = matmul_workload(products, seed)
    calls = {"n": 0}

    def run_ours():
        calls["n"] += 1  # a new shuffling seed each round, as successive epochs would have
        vl.train(ours, x, num_epochs=1, batch_size=batch_size, seed=seed + calls["n"], quiet=True)
        return len(x)

    def run_manual():
        calls["n"] += 1
        vl.train(ours_manual, x, num_epochs=1, batch_size=batch_size, seed=seed + calls["n"], quiet=True,
                 backward="manual")
        return len(x)

    def run_peak():
        for _ in range(steps):
            matmuls()
        return len(x)

    saved = torch.get_num_threads()
    try:
        contenders = {}
        for n in threads:
            contenders[f"vl.train @{n}"] = _with_threads(n, run_ours)
            contenders[f"vl.train manual @{n}"] = _with_threads(n, run_manual)
            contenders[f"reference @{n}"] = _with_threads(n, reference.run_epochs)
            contenders[f"matmul peak @{n}"] = _with_threads(n, run_peak)
        result = interleave(contenders, rounds)
    finally:
        torch.set_num_threads(saved)
    return BatchResult(batch_size, tuple(threads), step_flops(products), result)


def describe_products(products) -> str:
    layers = {}
    for p in products:
        layers.setdefault(p.layer, []).append(p)
    parts = []
    for name, ps in layers.items():
        f = ps[0]
        kinds = "+".join({"forward": "fwd", "grad_weight": "dW", "grad_input": "dX"}[p.kind] for p in ps)
        parts.append(f"{name} {f.m}x{f.k}x{f.n} ({kinds})")
    return ", ".join(parts)


def print_batch(res: BatchResult, examples: int, rounds: int) -> None:
    flops = res.flops_per_step
    print(f"\nbatch {res.batch_size}: {examples:,} examples per contender per round, {rounds} rounds, "
          f"order alternating; {flops / 1e9:.4f} GFLOP per step ({flops / res.batch_size / 1e6:.3f} MFLOP per example)")
    print(f"  {'threads':>7}  {'contender':<16} {'examples/s median':>18} {'best':>8} {'GFLOP/s best':>13} "
          f"{'vs reference':>13} {'of matmul peak':>15}")
    for n in res.threads:
        for c in CONTENDERS:
            ratio = res.rounds.median_ratio(res.key(c, n), res.key("reference", n))
            frac = res.fraction_of_peak(c, n)
            print(f"  {n:>7}  {c:<16} {res.rate(c, n):>18,.0f} {res.rate(c, n, 'best'):>8,.0f} "
                  f"{res.gflops(c, n):>13.1f} {ratio:>12.2f}x {frac:>14.0%}")
    if len(res.threads) > 1:
        lo, hi = res.threads[0], res.threads[-1]
        speedups = ", ".join(f"{c} {res.rounds.median_ratio(res.key(c, hi), res.key(c, lo)):.2f}x" for c in CONTENDERS)
        print(f"  {hi} threads vs {lo} (median of per-round ratios): {speedups}")


def run(x_train: torch.Tensor, *, batch_sizes, threads, rounds: int, examples: int,
        n_latent: int = 20, n_hidden: int = 500) -> dict:
    """Measure every batch size; print a table per batch size; return {batch_size: BatchResult}."""
    print(f"\n== training throughput: VAE({x_train.shape[1]}, {n_latent}, {n_hidden}) ==")
    vl.set_seed(0)
    probe = vl.VAE(x_train.shape[1], n_latent, n_hidden)
    print("matrix products per step (m x k x n): " + describe_products(step_products(probe, x_train[:100])))
    print("FLOPs = 2*m*k*n per product: forward, weight gradient, and input gradient except for the first layer "
          "(its input is the data); biases, activations, loss and Adam not counted")
    results = {}
    for batch_size in batch_sizes:
        n = max(examples, 4 * batch_size) // batch_size * batch_size  # at least four steps per round
        x = x_train.repeat(math.ceil(n / len(x_train)), 1)[:n]  # repeated if more examples are needed
        results[batch_size] = measure_batch(x, batch_size, threads, rounds=rounds, n_latent=n_latent, n_hidden=n_hidden)
        print_batch(results[batch_size], n, rounds)
    return results
