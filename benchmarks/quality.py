"""Quality at equal budget: test -ELBO of ``vl.train`` and the reference loop after the same epochs.

For each seed both loops start from identical weights (the same ``vl.set_seed`` before building the
model), train on the same examples with the same batch size, learning rate and seed, and are scored by
the same ``vl.evaluate`` on the same test examples (C = 1: the total is the negative ELBO in nats per
image, one sample of z per image with a fixed evaluation seed). The loops shuffle with different
generators, so their runs differ like two seeds do; the seed-to-seed spread is the noise the
difference is judged against.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import torch

import vae_lesson as vl

from .reference import reference_train


@dataclass
class QualityRow:
    seed: int
    ours: float  # test -ELBO after vl.train, nats per image
    reference: float  # test -ELBO after the reference loop
    same_start: bool  # both models had identical weights before training


@dataclass
class QualityResult:
    epochs: int
    n_train: int
    n_test: int
    rows: list = field(default_factory=list)

    def differences(self) -> list:
        return [r.ours - r.reference for r in self.rows]

    def mean_difference(self) -> float:
        return statistics.fmean(self.differences())

    def standard_error(self) -> float:
        """Standard error of the mean paired difference (nan with one seed: no noise estimate)."""
        d = self.differences()
        return statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan")

    def verdict(self) -> str:
        diff, se = self.mean_difference(), self.standard_error()
        if math.isnan(se):
            return "one seed only: no noise estimate"
        if diff <= 2 * se:
            return "no worse than the reference within noise (difference <= 2 standard errors)"
        return "WORSE than the reference beyond noise (difference > 2 standard errors)"


def _build(seed: int, n_in: int, n_latent: int, n_hidden: int) -> vl.VAE:
    vl.set_seed(seed)
    return vl.VAE(n_in, n_latent, n_hidden)


def run(x_train: torch.Tensor, x_test: torch.Tensor, *, epochs: int, seeds, batch_size: int = 100, lr: float = 1e-3,
        n_latent: int = 20, n_hidden: int = 500, verbose: bool = True) -> QualityResult:
    """Train both loops for ``epochs`` epochs per seed and compare their test -ELBO."""
    result = QualityResult(epochs, len(x_train), len(x_test))
    if verbose:
        print(f"\n== quality at equal budget: VAE({x_train.shape[1]}, {n_latent}, {n_hidden}), {epochs} epochs, batch "
              f"{batch_size}, lr {lr}, {len(x_train):,} training / {len(x_test):,} test examples, "
              f"{torch.get_num_threads()} thread(s) ==")
        print("test -ELBO in nats per image (C = 1, one z sample per image, fixed evaluation seed); lower is better")
        print(f"  {'seed':>4}  {'vl.train':>9}  {'reference':>9}  {'difference':>10}")
    for seed in seeds:
        ours, theirs = _build(seed, x_train.shape[1], n_latent, n_hidden), _build(seed, x_train.shape[1], n_latent, n_hidden)
        same = all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
        vl.train(ours, x_train, num_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, quiet=True)
        reference_train(theirs, x_train, num_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        row = QualityRow(seed, vl.evaluate(ours, x_test)["total"], vl.evaluate(theirs, x_test)["total"], same)
        result.rows.append(row)
        if verbose:
            print(f"  {seed:>4}  {row.ours:>9.2f}  {row.reference:>9.2f}  {row.ours - row.reference:>+10.2f}"
                  + ("" if same else "  (different initial weights!)"))
    if verbose:
        ours = [r.ours for r in result.rows]
        ref = [r.reference for r in result.rows]
        spread = (f"; seed-to-seed sd: vl.train {statistics.stdev(ours):.2f}, reference {statistics.stdev(ref):.2f}"
                  if len(ours) > 1 else "")
        print(f"  mean: vl.train {statistics.fmean(ours):.2f}, reference {statistics.fmean(ref):.2f}; "
              f"difference {result.mean_difference():+.2f} +- {result.standard_error():.2f} (standard error over "
              f"{len(ours)} seed(s)){spread}")
        print(f"  verdict: {result.verdict()}")
    return result
