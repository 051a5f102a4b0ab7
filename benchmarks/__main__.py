"""``python -m benchmarks [--quick]``: run the benchmarks and end with two machine-readable lines.

Modules: ``training`` and ``quality`` run by default; ``ablation`` (one idea at a time) with
``--only ablation``; ``build`` (a cold and a warm book build, several minutes) with ``--only build``.
``gpu`` (each chapter's full profile on a Colab T4, estimated on the CPU): ``--only gpu``.
A new benchmark module gets a ``run`` function and a branch in :func:`run` below.
Whenever the training benchmark runs, the last two lines are

    throughput ratio vs reference (batch 100): R
    fraction of matmul peak (batch 100): F

for ``vl.train`` at batch 100 with the process's default thread count (what ``vl.train`` uses when
nobody sets one): R is the median of per-round throughput ratios against the reference loop, F its
best-of-rounds GFLOP/s over the best-of-rounds matmul peak.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import torch

from . import ablation, build, gpu_estimate, machine, quality, training

HEADLINE_BATCH = 100
# At batch 100, speed-up over the reference: vl.train's default (the autograd loop the book shows) and the
# opt-in backward="manual"; share of the matmul peak for the default.
TARGET_RATIO, TARGET_RATIO_MANUAL, TARGET_FRACTION = 1.25, 1.6, 0.60


@dataclass
class Config:
    """What to run and how big. ``Config.full()`` takes a few minutes on 2 cores, ``Config.quick()`` well under one."""

    batch_sizes: tuple = (HEADLINE_BATCH, 1000)
    threads: tuple = ()  # empty: 1, the default and the usable cores
    rounds: int = 10
    examples_per_round: int = 2000  # short rounds, many of them: drift on a shared machine cancels better
    quality_epochs: int = 10
    quality_seeds: tuple = (0, 1, 2, 3, 4)
    n_train: int = 4000
    n_test: int = 1000
    n_latent: int = 20
    n_hidden: int = 500
    only: tuple = ("training", "quality")
    fast_build: bool = False  # the build benchmark in fast mode (VAE_LESSON_FAST=1): checks the measurement only
    data: tuple | None = field(default=None, repr=False)  # (x_train, x_test) flat in [0, 1]; None: MNIST

    @classmethod
    def full(cls, **changes) -> "Config":
        return cls(**changes)

    @classmethod
    def quick(cls, **changes) -> "Config":
        settings = dict(batch_sizes=(HEADLINE_BATCH, 500), rounds=4, examples_per_round=1000, quality_epochs=1,
                        quality_seeds=(0, 1), n_train=1000, n_test=500, fast_build=True)
        settings.update(changes)
        return cls(**settings)


def default_threads() -> tuple:
    return tuple(sorted({1, torch.get_num_threads(), machine.usable_cores()}))


def _load(config: Config):
    if config.data is not None:
        x_train, x_test = config.data
    else:
        import vae_lesson as vl

        mnist = vl.load_mnist()
        x_train, x_test = mnist.x_train_flat, mnist.x_test_flat
        print(f"data: {mnist.source}")
    return x_train[:config.n_train].contiguous(), x_test[:config.n_test].contiguous()


def run(config: Config) -> dict:
    """Run the selected benchmarks, printing as they go; the last two printed lines are the headline."""
    started = time.perf_counter()
    headline_threads = torch.get_num_threads()
    threads = tuple(config.threads) or default_threads()
    if headline_threads not in threads:
        threads = tuple(sorted({*threads, headline_threads}))
    for line in machine.header_lines():
        print(line)
    results = {}
    if "build" in config.only:
        results["build"] = build.run(fast=config.fast_build)
        if set(config.only) == {"build"}:
            print(f"\nwall time: {time.perf_counter() - started:.0f} s")
            return results
    if "gpu" in config.only:  # no data needed: one or two steps of each model on random inputs
        results["gpu"] = gpu_estimate.run()
        if not set(config.only) - {"build", "gpu"}:
            print(f"\nwall time: {time.perf_counter() - started:.0f} s")
            return results
    x_train, x_test = _load(config)
    if "training" in config.only:
        results["training"] = training.run(
            x_train, batch_sizes=config.batch_sizes, threads=threads,
            rounds=config.rounds, examples=config.examples_per_round, n_latent=config.n_latent, n_hidden=config.n_hidden)
    if "ablation" in config.only:
        n = config.examples_per_round // HEADLINE_BATCH * HEADLINE_BATCH
        results["ablation"] = ablation.run(x_train.repeat(-(-n // len(x_train)), 1)[:n], batch_size=HEADLINE_BATCH,
                                           rounds=config.rounds, n_latent=config.n_latent, n_hidden=config.n_hidden)
    if "quality" in config.only:
        results["quality"] = quality.run(x_train, x_test, epochs=config.quality_epochs, seeds=config.quality_seeds,
                                         batch_size=HEADLINE_BATCH, n_latent=config.n_latent, n_hidden=config.n_hidden)
    print(f"\nwall time: {time.perf_counter() - started:.0f} s")
    if "training" in results and HEADLINE_BATCH in results["training"]:
        head = results["training"][HEADLINE_BATCH]
        ratio, fraction = head.ratio_vs_reference(headline_threads), head.fraction_of_peak("vl.train", headline_threads)
        manual = head.ratio_vs_reference(headline_threads, "vl.train manual")
        verdict = {True: "met", False: "not met"}
        print(f"targets: default ratio >= {TARGET_RATIO} {verdict[ratio >= TARGET_RATIO]}, opt-in ratio >= "
              f"{TARGET_RATIO_MANUAL} {verdict[manual >= TARGET_RATIO_MANUAL]}, fraction >= {TARGET_FRACTION} "
              f"{verdict[fraction >= TARGET_FRACTION]}")
        print(f"opt-in backward='manual': throughput ratio vs reference (batch {HEADLINE_BATCH}): {manual:.3f}")
        print(f"headline: vl.train's default (the autograd loop) at batch {HEADLINE_BATCH} with {headline_threads} "
              "thread(s) (this process's default)")
        print(f"throughput ratio vs reference (batch {HEADLINE_BATCH}): {ratio:.3f}")
        print(f"fraction of matmul peak (batch {HEADLINE_BATCH}): {fraction:.3f}")
    return results


def parse_args(argv=None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (well under a minute of measuring)")
    parser.add_argument("--threads", type=lambda s: tuple(int(t) for t in s.split(",")), default=(),
                        help="comma-separated thread counts to compare (default: 1, the default and the cores)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per batch size")
    parser.add_argument("--only", type=lambda s: tuple(s.split(",")), help="comma-separated: training,quality,ablation,build "
                        "(default: training,quality; the ablation and the book build run only when named)"
                        "; gpu: the full profile's time on a T4, estimated")
    args = parser.parse_args(argv)
    changes = {"threads": args.threads}
    if args.rounds is not None:
        changes["rounds"] = args.rounds
    if args.only is not None:
        changes["only"] = args.only
    return Config.quick(**changes) if args.quick else Config.full(**changes)


def main(argv=None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
