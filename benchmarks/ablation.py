"""Which ideas make ``vl.train`` faster than the tutorial loop: one change at a time, interleaved.

A ladder of loops, each differing from the previous one in one idea, all training the same VAE on the
same examples at one batch size (one epoch per round). Rung by rung:

1. ``reference``: DataLoader over a TensorDataset, default Adam, ``.item()`` every step;
2. ``sliced``: batches sliced from the preloaded tensor with a permutation instead of the DataLoader;
3. ``no .item()``: the loss summed on the tensor side, read once per epoch;
4. ``fused Adam``: ``torch.optim.Adam(..., fused=True)``;
5. ``+ finite check``: ``torch.isfinite(loss)`` read every step (like vl.train's guard against NaN);
6. ``manual backward``: the hand-derived gradients of :mod:`vae_lesson.chapters.manual_backward` instead of
   autograd (buffers allocated once, both encoder heads in one product, tanh through a sigmoid where
   that is faster: ``manual_backward.tanh_form``);
7. ``+ direct Adam``: the fused Adam kernel called on the optimizer's state without ``optimizer.step()``'s
   per-call bookkeeping (what ``vl.train(..., backward="manual")`` does);

and side variants of rung 4: ``foreach Adam`` instead of fused, ``zero_grad(set_to_none=False)``
instead of True, ``no update (bound)`` (rung 4 without ``optimizer.step()``: what any optimizer could at
best reach); plus ``vl.train`` itself, with its default (``backward="autograd"``) and with the opt-in
``backward="manual"``. A second
table times ``vl.evaluate``'s ``inference_mode`` against ``no_grad`` and plain grad mode. Run with
``python -m benchmarks --only ablation``.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, TensorDataset

import vae_lesson as vl
from vae_lesson.chapters.manual_backward import ManualStep
from vae_lesson.chapters.manual_backward import _AdamStep

from ._timing import interleave

LADDER = ("reference", "sliced", "no .item()", "fused Adam", "+ finite check", "manual backward", "+ direct Adam")
SIDE = ("foreach Adam", "set_to_none=False", "no update (bound)", "vl.train", "vl.train manual")


def make_loop(model, x, *, batch_size: int, loader: bool, item: bool, adam: str, set_to_none: bool = True,
              finite_check: bool = False, update: bool = True, manual: bool = False, direct_adam: bool = False,
              seed: int = 0):
    """One epoch of a training loop with the given ideas switched on or off; returns a callable."""
    kwargs = {"fused": True} if adam == "fused" else {"foreach": True} if adam == "foreach" else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **kwargs)
    step = ManualStep(model) if manual else None
    update_weights = _AdamStep(optimizer) if direct_adam else optimizer.step
    generator = torch.Generator().manual_seed(seed)
    data = DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True, generator=generator) if loader else None

    def manual_epoch():
        model.train()
        for index in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = step(x, index).total  # a Python float: the manual step reads its loss terms itself
            if finite_check and not math.isfinite(loss):
                raise FloatingPointError("non-finite loss")
            update_weights()
        return len(x)

    def batches():
        if loader:
            for (xb,) in data:
                yield xb
        else:
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                yield x[order[start:start + batch_size]]

    def epoch():
        model.train()
        running, total = 0.0, None
        for xb in batches():
            loss = model.loss(xb).total
            if finite_check and not torch.isfinite(loss):
                raise FloatingPointError("non-finite loss")
            optimizer.zero_grad(set_to_none=set_to_none)
            loss.backward()
            if update:
                optimizer.step()
            if item:
                running += loss.item()
            else:
                total = loss.detach() if total is None else total + loss.detach()
        if total is not None:
            running = float(total)
        return len(x)
    return manual_epoch if manual else epoch


def run(x: torch.Tensor, *, batch_size: int = 100, rounds: int = 5, n_latent: int = 20, n_hidden: int = 500,
        threads: int | None = None) -> dict:
    """Interleave every variant; print examples per second and the median per-round ratio to the reference."""
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        def model():
            vl.set_seed(0)
            return vl.VAE(x.shape[1], n_latent, n_hidden)

        base = dict(batch_size=batch_size, loader=False, item=False, adam="fused")
        loops = {
            "reference": make_loop(model(), x, batch_size=batch_size, loader=True, item=True, adam="default"),
            "sliced": make_loop(model(), x, batch_size=batch_size, loader=False, item=True, adam="default"),
            "no .item()": make_loop(model(), x, batch_size=batch_size, loader=False, item=False, adam="default"),
            "fused Adam": make_loop(model(), x, **base),
            "+ finite check": make_loop(model(), x, **base, finite_check=True),
            "foreach Adam": make_loop(model(), x, **{**base, "adam": "foreach"}),
            "set_to_none=False": make_loop(model(), x, **base, set_to_none=False),
            "no update (bound)": make_loop(model(), x, **base, update=False),
            "manual backward": make_loop(model(), x, **base, finite_check=True, manual=True),
            "+ direct Adam": make_loop(model(), x, **base, finite_check=True, manual=True, direct_adam=True),
        }

        def run_vl_train(backward):
            ours, calls = model(), {"n": 0}

            def run():
                calls["n"] += 1
                vl.train(ours, x, num_epochs=1, batch_size=batch_size, seed=calls["n"], quiet=True, backward=backward)
                return len(x)
            return run, ours
        loops["vl.train"], _ = run_vl_train("autograd")  # the default
        loops["vl.train manual"], ours = run_vl_train("manual")  # the opt-in
        result = interleave(loops, rounds)

        print(f"\n== ablation: VAE({x.shape[1]}, {n_latent}, {n_hidden}), batch {batch_size}, {torch.get_num_threads()} "
              f"thread(s), {len(x):,} examples per round, {rounds} rounds interleaved ==")
        print(f"  {'variant':<18} {'examples/s median':>18} {'vs reference':>13} {'vs previous rung':>17}")
        previous = None
        for name in (*LADDER, *SIDE):
            vs_prev = ""
            if name in LADDER and previous is not None:
                vs_prev = f"{result.median_ratio(name, previous):.3f}x"
            elif name in SIDE[:3]:
                vs_prev = f"{result.median_ratio(name, 'fused Adam'):.3f}x vs fused Adam"
            print(f"  {name:<18} {result.median(name):>18,.0f} {result.median_ratio(name, 'reference'):>12.3f}x "
                  f"{vs_prev:>17}")
            if name in LADDER:
                previous = name

        evaluation = _evaluation_modes(ours, x[:1000], rounds)
        return {"training": result, "evaluation": evaluation}
    finally:
        torch.set_num_threads(saved)


def _evaluation_modes(model, x, rounds):
    """vl.evaluate's inference_mode against no_grad and grad mode, on the same examples."""
    model.eval()

    def under(context):
        def run():
            with context():
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    model.loss(x).total.detach()
            return len(x)
        return run

    result = interleave({"inference_mode": under(torch.inference_mode), "no_grad": under(torch.no_grad),
                         "grad enabled": under(torch.enable_grad)}, rounds * 4)
    print(f"  evaluation of {len(x):,} examples in one batch (examples/s median, ratio to grad enabled): " + ", ".join(
        f"{name} {result.median(name):,.0f} ({result.median_ratio(name, 'grad enabled'):.2f}x)"
        for name in ("inference_mode", "no_grad", "grad enabled")))
    return result
