"""How long each chapter takes in the ``full`` profile on a Colab T4-class GPU, estimated on a CPU.

Run with ``python -m benchmarks --only gpu`` (under a minute and a half on 2 cores). No GPU is
needed or used: every number comes from running one or two steps of each model on the CPU and from
the stated assumptions about a T4 below.

What is **measured** here, for every model a chapter trains in ``full`` (the table :data:`RUNS`,
read from the notebooks' code cells; :func:`full_settings` re-reads the settings so that
:func:`table_mismatches` notices when a notebook changes and the table does not):

- FLOPs of one training step at the run's batch size (forward, backward; the step is
  :func:`vae_lesson.core.training.train_epoch` on one minibatch, the loop ``vl.train`` runs) and of
  one evaluation batch (``vl.evaluate``), counted by ``torch.utils.flop_counter.FlopCounterMode``.
  It counts matrix products and convolutions, not elementwise work.
- The operations of one step, from ``torch.profiler`` on the CPU (forward, backward, Adam step with
  ``fused=True`` as ``vl.train`` uses it (built here with the public ``torch.optim.Adam``, with
  the default as the fallback where fused is not supported, as ``vl.train`` does), or torch's
  default Adam where the chapter builds its own).
  The rule "one GPU kernel per leaf ``aten::`` op" is printed as ``leaf``, but on a CPU the leaves
  are mostly helpers that launch nothing (``as_strided``, ``resolve_conj``, ``empty``), while the
  matrix products themselves are not leaves (their helpers are). The model therefore counts
  **kernels**: every lowest ``aten::`` op that computes (views, allocations and detaches count
  zero), with matrix products, convolutions (2 kernels forward, 3 backward) and the optimizer's
  fused or ``_foreach_`` ops counted as units, whatever their CPU implementation calls inside.
- Host syncs per step: every ``aten::_local_scalar_dense`` (``.item()``, ``float(t)``, ``bool(t)``)
  outside the optimizer's step, plus ops that sync on CUDA (``bincount`` 2, ``nonzero`` 1). Reading
  ``train_epoch`` gives one ``.item()`` per loss term and one for the finiteness check (printed as
  ``read``); the argument checks inside the models' losses add the rest.
- The host's floor: the CPU wall time of one step (and of one evaluation batch) of the same model
  made 2 units (or channels) wide, at batch 2: every operation is still there but its arithmetic
  is negligible, so what remains is Python, the argument checks, the dispatcher and autograd, the
  work the host does per step on any device (``floor``).
- Host work that stays on the CPU (the models come back to the CPU after ``vl.train``) and grows
  with the full data: judges (``train_judge`` on up to 60,000 images), IWAE estimates in
  ``record_result``, chapter 06's aggregate posterior and mixture fits, nearest-neighbour
  distances, PCA, chapter 09's SGD runs, chapter 10's classifiers, the checkpoint written after
  every epoch by ``load_or_train``. Each is timed here on a small unit (a few steps, 20 images, one
  chunk) and scaled by its count; data downloads use an assumed bandwidth. Host work and floors
  are timed with one thread (Colab's 2 vCPUs are one physical core) and the best of a few repeats
  (other programs on a shared machine only add time); each floor is the best of FLOOR_PASSES
  passes over all setups (:func:`refine_floors`). Where a notebook names the setting that sizes
  an entry (``N_DRAWS``, ``N_JUDGE``), :func:`host_mismatches` checks the entry against it.

What is **assumed** (module constants, printed first):

- T4 float32 peak 8.1 TFLOPS at efficiency 0.35 for these small layers (pessimistic: 0.2).
- 10 us of host time per kernel (eager PyTorch's per-op overhead on Colab's slow host CPU;
  pessimistic 20 us) and 20 us per host sync.
- Colab's 2 vCPUs run the host work as fast as one core here (pessimistic: 1.5x slower).
- Downloads at 30 MB/s (pessimistic 10 MB/s), archives read at 150 MB/s (pessimistic 75 MB/s).
- Each chapter starts in a fresh runtime: its data is downloaded and its models trained, unless a
  scenario line says otherwise (06 and 07 load chapter 05's models when 05 ran before in the same
  runtime).

Step time = max(FLOPs / (peak x efficiency), kernels x launch, floor x host factor) + syncs x sync;
an epoch adds its evaluation batches (forward only, same formula) and, for ``load_or_train``, one
checkpoint (timed here). A chapter's time is its runs plus its host work.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# --- assumptions ---------------------------------------------------------------------------------

T4_PEAK_FLOPS = 8.1e12  # float32, FMA = 2 FLOPs


@dataclass(frozen=True)
class Assumptions:
    """One column of the estimate."""

    name: str
    efficiency: float  # share of the T4's float32 peak these small layers reach
    launch_s: float  # host seconds per kernel (dispatcher, autograd, cudaLaunchKernel)
    sync_s: float  # seconds per host sync (.item(), a device-to-host copy that waits)
    host_factor: float  # Colab's CPU time for the host work / this machine's with one thread
    download_mb_s: float  # network bandwidth for data downloads
    unpack_mb_s: float  # reading a compressed archive


TYPICAL = Assumptions("typical", 0.35, 10e-6, 20e-6, 1.0, 30.0, 150.0)
PESSIMISTIC = Assumptions("pessimistic", 0.20, 20e-6, 20e-6, 1.5, 10.0, 75.0)
LIMIT_S = 600.0  # every chapter in full: at most 10 minutes
# Host work and the per-step floor are timed with one thread: Colab's 2 vCPUs are one physical
# core, and one thread is not stalled by other programs on a shared machine as two are.
HOST_THREADS = 1
FLOOR_PASSES = 3  # passes over all setups in which each host floor is timed; the best counts
HOST_TARGET_S = 120.0  # suggestions: what a chapter's host work would be cut to, where it must

# --- the runs of the full profile ----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One model a chapter trains in the full profile (``count`` identical ones)."""

    chapter: str
    name: str  # checkpoint name, or what the cell calls it
    model: str  # constructor call, evaluated with the names of :func:`_namespace`
    input_shape: tuple  # one example, as the chapter passes it
    n_train: int
    n_eval: int  # examples evaluated after every epoch (x_test given to vl.train); 0: none
    batch_size: int
    epochs: int
    loss_kwargs: dict = field(default_factory=dict)
    data: str = "unit"  # "unit": values in [0, 1]; "rows": pixels then a one-hot label (CVAE)
    optimizer: str = "fused"  # "fused": vl.train's Adam; "foreach": torch.optim.Adam's CUDA default
    checkpoint: bool = True  # load_or_train: a checkpoint after every epoch
    eval_batch: int = 1000  # vl.evaluate's default
    count: int = 1
    shared: str = ""  # the chapter whose checkpoint this run loads when it ran first
    settings: tuple = ()  # (field, the notebook's setting): what sizes it there (see _sized)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    @property
    def steps(self) -> int:
        return self.count * self.epochs * self.steps_per_epoch

    @property
    def eval_batches(self) -> int:
        return math.ceil(self.n_eval / self.eval_batch) if self.n_eval else 0


MNIST = dict(n_train=60_000, n_eval=10_000)  # full MNIST and Fashion-MNIST
FLAT, IMAGE = (784,), (1, 28, 28)
VAE_05 = dict(batch_size=50, loss_kwargs={"C": 1.0, "k": 1})


def _sized(**fields) -> tuple:
    """The notebook's settings that size a run, as (field of :class:`Run`, setting name) pairs:
    ``_sized(epochs="EPOCHS", batch_size="BATCH_SIZE")``."""
    return tuple(fields.items())


SIZED_08 = _sized(epochs="EPOCHS", batch_size="BATCH_SIZE", n_train="N_TRAIN", n_eval="N_TEST")
SIZED_11 = _sized(epochs="EPOCHS", batch_size="BATCH_SIZE", n_train="N_TRAIN", n_eval="N_MONITOR")


def _augment_epochs(n: int, steps: int = 500, batch: int = 50) -> int:
    """augment.train_subset_vae's epochs: the whole number closest to ``steps`` gradient steps."""
    return max(1, round(steps / math.ceil(n / min(batch, n))))


RUNS = [
    # 01: cell a1e0c4d7 (NUM_EPOCHS = scaled(..., full=50); the hand-written loop runs
    # scaled(3, fast=1) epochs, its own Adam, and the test loss of all 10,000 images in one batch);
    # cells fc5b8a22 and c31117c5 (vl.load_or_train, vl.train's default batch 100).
    Run("01", "hand-written loop", "AutoEncoder(784, 20, 500)", FLAT, **MNIST, batch_size=100,
        epochs=3, optimizer="foreach", checkpoint=False, eval_batch=10_000),
    Run("01", "ae_mnist_20d", "AutoEncoder(784, 20, 500)", FLAT, **MNIST, batch_size=100,
        epochs=50, settings=_sized(epochs="NUM_EPOCHS")),
    Run("01", "ae_mnist_2d", "AutoEncoder(784, 2, 500)", FLAT, **MNIST, batch_size=100,
        epochs=50, settings=_sized(epochs="NUM_EPOCHS")),
    # 02 (not changed by the profile): cell b55fdf51 (NUM_EPOCHS = scaled(200, fast=3), 3,000
    # training and 1,000 test points, batch 100) and cell exercise-numbers (the fixed-variance
    # PointVAE, vl.train without a test set).
    Run("02", "pointvae_swiss_roll", "PointVAE(3, 2, 64, learn_variance=True)", (3,),
        n_train=3000, n_eval=1000, batch_size=100, epochs=200,
        settings=_sized(epochs="NUM_EPOCHS", n_train="N_TRAIN")),
    Run("02", "fixed-variance PointVAE",
        "PointVAE(n_hidden=64, learn_variance=False, init_ln_var=2 * math.log(0.02))", (3,),
        n_train=3000, n_eval=1000, batch_size=100, epochs=200, checkpoint=False,
        settings=_sized(epochs="NUM_EPOCHS")),
    # 03, 04: nothing is trained with vl.train (04's estimator trials are CPU work, unchanged).
    # 05: cell b1d43407 (BATCH_SIZE = 50; EPOCHS_20D, EPOCHS_2D = scaled(..., full=100)); cells
    # 5253c981 and 2f542385 (vl.load_or_train with loss_kwargs {"C": 1.0, "k": 1}).
    Run("05", "vae_mnist_20d", "VAE(784, 20, 500)", FLAT, **MNIST, **VAE_05, epochs=100,
        settings=_sized(epochs="EPOCHS_20D", batch_size="BATCH_SIZE")),
    Run("05", "vae_mnist_2d", "VAE(784, 2, 500)", FLAT, **MNIST, **VAE_05, epochs=100,
        settings=_sized(epochs="EPOCHS_2D", batch_size="BATCH_SIZE")),
    # 06: cell ba9da089 (05's two models, loaded if 05 ran first; EPOCHS_SWEEP = scaled(...,
    # full=8)); cell b6d64806 (the C sweep, with its own C = 1 model in full); cell 5764a507
    # (free bits with C = 16 via load_or_train; warm-up via train_with_warmup: torch's own Adam,
    # no test set, no checkpoint).
    Run("06", "vae_mnist_20d", "VAE(784, 20, 500)", FLAT, **MNIST, **VAE_05, epochs=100,
        shared="05", settings=_sized(epochs="EPOCHS_20D", batch_size="BATCH_SIZE")),
    Run("06", "vae_mnist_2d", "VAE(784, 2, 500)", FLAT, **MNIST, **VAE_05, epochs=100,
        shared="05", settings=_sized(epochs="EPOCHS_2D", batch_size="BATCH_SIZE")),
    *[Run("06", f"kl_sweep_C{C:g}", "VAE(784, 20, 500)", FLAT, **MNIST, batch_size=50,
          loss_kwargs={"C": C, "k": 1}, epochs=8,
          settings=_sized(epochs="EPOCHS_SWEEP", batch_size="BATCH_SIZE"))
      for C in (1.0, 0.5, 2.0, 4.0, 16.0)],
    Run("06", "kl_free_bits_C16", "RemedyVAE(784, 20, 500)", FLAT, **MNIST, batch_size=50,
        loss_kwargs={"C": 16.0, "free_bits": 0.5}, epochs=8,
        settings=_sized(epochs="EPOCHS_SWEEP", batch_size="BATCH_SIZE")),
    Run("06", "warm-up (train_with_warmup)", "VAE(784, 20, 500)", FLAT, n_train=60_000, n_eval=0,
        batch_size=50, loss_kwargs={"C": 16.0}, epochs=8, optimizer="foreach",
        checkpoint=False, settings=_sized(epochs="EPOCHS_SWEEP", batch_size="BATCH_SIZE")),
    # 07: cell cvae009 (BATCH_SIZE = 50; EPOCHS_8D = scaled(..., full=50); EPOCHS_2D = scaled(...,
    # full=100), kept for 05's checkpoint); cell cvae010 (train_pair: a CVAE on rows of 784 pixels
    # + 10 label columns, and 05's VAE; the 2-D VAE is 05's vae_mnist_2d).
    Run("07", "cvae_mnist_8d", "CVAE(784, 10, 8, 500)", (794,), **MNIST, **VAE_05, epochs=50,
        data="rows", settings=_sized(epochs="EPOCHS_8D", batch_size="BATCH_SIZE")),
    Run("07", "vae_mnist_8d", "VAE(784, 8, 500)", FLAT, **MNIST, **VAE_05, epochs=50,
        settings=_sized(epochs="EPOCHS_8D", batch_size="BATCH_SIZE")),
    Run("07", "cvae_mnist_2d", "CVAE(784, 10, 2, 500)", (794,), **MNIST, **VAE_05, epochs=100,
        data="rows", settings=_sized(epochs="EPOCHS_2D", batch_size="BATCH_SIZE")),
    Run("07", "vae_mnist_2d", "VAE(784, 2, 500)", FLAT, **MNIST, **VAE_05, epochs=100,
        shared="05", settings=_sized(epochs="EPOCHS_2D", batch_size="BATCH_SIZE")),
    # 08: cell 8229bba3 (N_TRAIN = scaled(..., full=60_000), N_TEST full=10_000, EPOCHS full=30,
    # N_LATENT = 8, WIDTH = 16, BATCH_SIZE = scaled(32, ..., full=128)); cell 4c5849fa (MNIST,
    # Fashion-MNIST); cells 6294876b and 48404247 (CIFAR-10: 50,000 of 3x32x32; STL-10 at 48x48
    # via load_stl10(image_size=48): 5,000 training and 8,000 test images); cell 313d7c15
    # (ConvAutoEncoder); cell 3eba966e (05's MLP VAE with an 8-D code).
    *[Run("08", f"conv_vae_{name}_60000", "ConvVAE(1, 28, 8, 16)", IMAGE, **MNIST,
          batch_size=128, epochs=30, settings=SIZED_08)
      for name in ("mnist", "fashion-mnist")],
    Run("08", "conv_vae_cifar-10_60000", "ConvVAE(3, 32, 8, 16)", (3, 32, 32), n_train=50_000,
        n_eval=10_000, batch_size=128, epochs=30,
        settings=_sized(epochs="EPOCHS", batch_size="BATCH_SIZE", n_eval="N_TEST")),
    Run("08", "conv_vae_stl-10_60000", "ConvVAE(3, 48, 8, 16)", (3, 48, 48), n_train=5_000,
        n_eval=8_000, batch_size=128, epochs=30,
        settings=_sized(epochs="EPOCHS", batch_size="BATCH_SIZE")),
    Run("08", "conv_ae_mnist_60000", "ConvAutoEncoder(1, 28, 8, 16)", IMAGE, **MNIST,
        batch_size=128, epochs=30, settings=SIZED_08),
    Run("08", "mlp_vae_mnist_60000_8", "VAE(784, 8, 500)", FLAT, **MNIST, batch_size=128,
        epochs=30, settings=SIZED_08),
    # 09: cell 0cf4b20f (N_LATENT, N_HIDDEN, ACT = 20, 128, torch.relu; BATCH_SIZE = 50;
    # AE_EPOCHS = scaled(..., full=20)); cell 26da264a (six ReconstructionAE); cell 557e4092
    # (VAE_EPOCHS = scaled(..., full=30): two VAEs and a ReductionVAE). Cell 27904357's seven
    # 240-step train_steps runs stay on the CPU (HOST_WORK).
    *[Run("09", f"loss_choice_ae_{kind}_{reduction}",
          f"ReconstructionAE(784, 20, 128, torch.relu, kind={kind!r}, reduction={reduction!r})",
          FLAT, **MNIST, batch_size=50, epochs=20,
          settings=_sized(epochs="AE_EPOCHS", batch_size="BATCH_SIZE"))
      for kind in ("mse", "bce") for reduction in ("pixel_mean", "sample_sum", "batch_sum")],
    *[Run("09", f"loss_choice_vae_C{C:g}", "VAE(784, 20, 128, torch.relu)", FLAT, **MNIST,
          batch_size=50, loss_kwargs={"C": C, "k": 1}, epochs=30,
          settings=_sized(epochs="VAE_EPOCHS", batch_size="BATCH_SIZE")) for C in (1.0, 10.0)],
    Run("09", "loss_choice_vae_pixel_mean",
        "ReductionVAE(784, 20, 128, torch.relu, reduction='pixel_mean')", FLAT, **MNIST,
        batch_size=50, epochs=30, settings=_sized(epochs="VAE_EPOCHS", batch_size="BATCH_SIZE")),
    # 10 (not changed by the profile): cell 461c6f2a (SETTINGS: 4 sizes x 3 seeds, vae_latent 8,
    # vae_hidden 128, vae_steps 500 at batch 50; vae_small: vl.train for vae_steps // 2 epochs of
    # 2 steps); cell c38ed104 (run_augmentation_experiment: a VAE and a CVAE per size and seed,
    # trained with vl.train without a test set; the classifiers stay on the CPU: HOST_WORK).
    Run("10", "vae_small", "VAE(784, 8, 128)", FLAT, n_train=100, n_eval=0, batch_size=50,
        epochs=250, checkpoint=False),
    *[Run("10", f"experiment {kind}, n = {n}", model, shape, n_train=n, n_eval=0,
          batch_size=50, epochs=_augment_epochs(n), data=data, checkpoint=False, count=3)
      for n in (100, 200, 400, 800)
      for kind, model, shape, data in (("VAE", "VAE(784, 8, 128)", FLAT, "unit"),
                                       ("CVAE", "CVAE(784, 10, 8, 128)", (794,), "rows"))],
    # 11: cell 733e0dee (N_TRAIN = scaled(..., full=60_000), N_MONITOR = scaled(2_000, ...)
    # evaluated every epoch, EPOCHS full=20, BATCH_SIZE = 100); cells 1ed169b5 (VQ-VAE, 64 codes),
    # d904a76f (the MLP VAE), 154ff4d8 and cifar10-train (CIFAR-10: N_TRAIN_C full=50_000,
    # EPOCHS_C full=30, HIDDEN_C = 32, 1,000 monitored), exercise-code-counts (3 more VQ-VAEs).
    Run("11", "vqvae_fashion_k64", "VQVAE(1, 64, 16, 16, 0.25)", (28, 28), n_train=60_000,
        n_eval=2000, batch_size=100, epochs=20, settings=SIZED_11),
    Run("11", "vae_fashion_20d_10k", "VAE(784, 20, 500)", FLAT, n_train=60_000, n_eval=2000,
        batch_size=100, epochs=20, settings=SIZED_11),
    Run("11", "vqvae_cifar10_k64_h32_50000", "VQVAE(3, 64, 16, 32, 0.25, image_size=32)",
        (3, 32, 32), n_train=50_000, n_eval=1000, batch_size=100, epochs=30,
        settings=_sized(epochs="EPOCHS_C", batch_size="BATCH_SIZE", n_train="N_TRAIN_C")),
    *[Run("11", f"vqvae_fashion_k{codes}_beta{beta}", f"VQVAE(1, {codes}, 16, 16, {beta})",
          (28, 28), n_train=60_000, n_eval=2000, batch_size=100, epochs=20,
          settings=SIZED_11)
      for codes, beta in ((16, 0.25), (256, 0.25), (64, 1.0))],
    # 12 (not changed by the profile): cell 9bb0a1ad (VAE(64, 8, 64) on scikit-learn's digits,
    # 1,437 training / 360 test, scaled(40, fast=2) epochs at vl.train's default batch 100).
    Run("12", "digits VAE", "VAE(64, 8, 64)", (64,), n_train=1437, n_eval=360, batch_size=100,
        epochs=40, checkpoint=False),
    # 13 (not changed by the profile): cell times-step-b (one epoch of 2,000 images at batch 100,
    # four times with autograd; the four backward="manual" epochs run on the CPU: HOST_WORK).
    Run("13", "timed epochs (autograd)", "VAE(784, 20, 500)", FLAT, n_train=2000, n_eval=0,
        batch_size=100, epochs=1, count=4, checkpoint=False),
]
CHAPTERS = tuple(f"{i:02d}" for i in range(1, 14))
UNCHANGED = ("02", "03", "04", "10", "12", "13")  # the profile changes none of their settings

# --- host work: what stays on the CPU ------------------------------------------------------------


@dataclass(frozen=True)
class HostWork:
    """Work a chapter does on the CPU that grows with the full data, timed on a unit here."""

    chapter: str
    what: str
    kind: str  # see _host_seconds
    args: tuple
    settings: tuple = ()  # (the value args assume, the notebook's setting): see host_mismatches


MB = {"MNIST": 11.6, "Fashion-MNIST": 30.1, "CIFAR-10": 170.5, "STL-10": 2640.0}
VAE20 = "VAE(784, 20, 500)"
CONV28 = "ConvVAE(1, 28, 8, 16)"
SURGERY_SIZES = (10, 30, 100, 300, 1000, 3000)
N_DRAWS_06 = 2  # 06's N_DRAWS = scaled(10, fast=2, full=2): codes per test image in the surgery
N_SURGERY_06 = 10_000  # 06's n_surgery = min(len(mean_train), 10_000): training codes, 1 draw
N_IWAE_06 = 1000  # 06's N_IWAE = min(len(x_test), 1000): test images of the two priors' bounds
N_JUDGE_08 = 10_000  # 08's N_JUDGE = min(N_TRAIN, 10_000): the images each judge learns from
N_IWAE_08 = 1000  # 08's record_result(..., x_test=x_test_set[:1000]): IWAE images per data set
N_IWAE_10 = 1000  # 10's augment.N_IWAE_TEST: IWAE images per augmenter (a unit test ties the two)

HOST_WORK = [
    # 01: cell judge-random-codes (N_JUDGE = scaled(4000, ...)); cell ae1aa48f (7 x cdist of 1,000
    # images against the 60,000 training images).
    HostWork("01", "judge on 4,000 images, accuracy on 10,000", "judge", (4000, 10_000)),
    HostWork("01", "7 x nearest training digit (1,000 x 60,000)", "cdist", (1000, 60_000, 7)),
    HostWork("01", "download MNIST", "download", (MB["MNIST"], False)),
    # 02: cell 12cdd15b (500 test digits against 60,000); exercise-numbers (PCA of 60,000 digits);
    # record-reference-02 (IWAE, K = 100, 1,000 points). Cells 27 and later use one thread.
    HostWork("02", "IWAE K=100 on 1,000 points", "iwae",
             ("PointVAE(3, 2, 64, learn_variance=True)", (3,), "unit", 100, 1000)),
    HostWork("02", "nearest training digit (510 x 60,000)", "cdist", (510, 60_000, 1)),
    HostWork("02", "PCA of 60,000 digits", "pca", (60_000,)),
    HostWork("02", "download MNIST", "download", (MB["MNIST"], False)),
    # 05: cell record-reference-05 (IWAE, K = 100, on all 10,000 test images, both models).
    HostWork("05", "IWAE K=100 on 10,000 images, 2 models", "iwae",
             (VAE20, FLAT, "unit", 100, 20_000)),
    HostWork("05", "download MNIST", "download", (MB["MNIST"], False)),
    # 06 (one thread, cell 8e5198df): cell 38ec8476 (judge on N_JUDGE = min(n_train, 10,000));
    # cells 8981d51f
    # (log q(z) on a 161 x 161 grid and 2,000 prior codes, 2-D), 6c7988c2 (ELBO surgery on 10,000
    # test images, N_DRAWS draws each), ced19f50 (surgery on 10 ... 3,000 images, N_DRAWS draws),
    # 117bdd72 (surgery of the first n_surgery = 10,000 training codes, 1 draw); f84f2e8e
    # (mixture of 10 fitted to 120,000 20-D codes; IWAE bounds, K = 100, on the first
    # N_IWAE = 1,000 test images under two priors).
    HostWork("06", "judge on 10,000 images, accuracy on 10,000", "judge", (10_000, 10_000)),
    HostWork("06", f"aggregate posterior: grid, prior codes, test surgery x{N_DRAWS_06}",
             "aggregate",
             ((161 * 161, 10_000, 2), (2000, 10_000, 2), (N_DRAWS_06 * 10_000, 10_000, 2),
              (N_DRAWS_06 * 10_000, 10_000, 20),
              *[(N_DRAWS_06 * n, n, d) for n in SURGERY_SIZES for d in (2, 20)]),
             settings=((N_DRAWS_06, "N_DRAWS"),)),
    HostWork("06", f"aggregate posterior: surgery of {N_SURGERY_06:,} training codes",
             "aggregate", ((N_SURGERY_06, N_SURGERY_06, 20),)),
    HostWork("06", "mixture prior fitted to 120,000 20-D codes", "gmm", (120_000, 20, 1)),
    HostWork("06", f"IWAE K=100 on {N_IWAE_06:,} images, two priors", "prior_bounds",
             (100, N_IWAE_06)),
    HostWork("06", "download MNIST", "download", (MB["MNIST"], False)),
    # 07: cell cvae015 (judge on N_JUDGE = min(n_train, 10,000)); cell cvae011-iwae (IWAE, K = 100,
    # on the first N_IWAE = 1,000 test images: two CVAEs and two VAEs, of 8 and 2 latents) and
    # record-reference-07 (the 8-D VAE's again): five estimates, timed on the 8-D VAE.
    HostWork("07", "judge on 10,000 images, accuracy on 10,000", "judge", (10_000, 10_000)),
    HostWork("07", "IWAE K=100 on 1,000 images, 5 estimates", "iwae",
             ("VAE(784, 8, 500)", FLAT, "unit", 100, 5_000)),
    HostWork("07", "download MNIST", "download", (MB["MNIST"], False)),
    # 08: cells 3eba966e and fashion-judge (two judges on N_JUDGE = 10,000 images; two mixtures
    # fitted to 120,000 8-D codes of the 60,000 training images); record-reference-06 (IWAE,
    # K = 50, on the first 1,000 test images of each of the four data sets).
    HostWork("08", f"2 judges on {N_JUDGE_08:,} images, accuracy on 10,000", "judge",
             (N_JUDGE_08, 10_000, 2), settings=((N_JUDGE_08, "N_JUDGE"),)),
    HostWork("08", "2 mixture priors fitted to 120,000 8-D codes", "gmm", (120_000, 8, 2)),
    HostWork("08", f"IWAE K=50 on {N_IWAE_08:,} images, MNIST and Fashion", "iwae",
             (CONV28, IMAGE, "unit", 50, 2 * N_IWAE_08)),
    HostWork("08", f"IWAE K=50 on {N_IWAE_08:,} CIFAR-10 images", "iwae",
             ("ConvVAE(3, 32, 8, 16)", (3, 32, 32), "unit", 50, N_IWAE_08)),
    HostWork("08", f"IWAE K=50 on {N_IWAE_08:,} STL-10 images", "iwae",
             ("ConvVAE(3, 48, 8, 16)", (3, 48, 48), "unit", 50, N_IWAE_08)),
    HostWork("08", "download MNIST, Fashion-MNIST, CIFAR-10", "download",
             (MB["MNIST"] + MB["Fashion-MNIST"] + MB["CIFAR-10"], False)),
    HostWork("08", "download and read STL-10 (2.6 GB)", "download", (MB["STL-10"], True)),
    # 09: cell 27904357 (7 runs of 240 steps with train_steps, on the CPU: 4 SGD, 3 Adam);
    # record-reference-07-vae (IWAE, K = 50, on 2,000 test images, three VAEs).
    HostWork("09", "7 x 240 train_steps on the CPU", "cpu_steps",
             ("ReconstructionAE(784, 20, 128, torch.relu, kind='bce', reduction='sample_sum')",
              50, ((4 * 240, "sgd"), (3 * 240, "adam")))),
    HostWork("09", "IWAE K=50 on 2,000 images, 3 VAEs", "iwae",
             ("VAE(784, 20, 128, torch.relu)", FLAT, "unit", 50, 6000)),
    HostWork("09", "download MNIST", "download", (MB["MNIST"], False)),
    # 10: cell c38ed104 (72 classifiers of 125 steps at batch 32, each scored on 10,000 test
    # images; 24 IWAE estimates, K = 50, on N_IWAE_10 test images: 12 VAEs and 12 CVAEs of one
    # size).
    HostWork("10", "72 classifiers x 125 steps, accuracy on 10,000", "classifiers",
             (72, 125, 32, 10_000)),
    HostWork("10", f"IWAE K=50 on {N_IWAE_10:,} images, 12 VAEs and 12 CVAEs", "iwae",
             ("VAE(784, 8, 128)", FLAT, "unit", 50, 24 * N_IWAE_10)),
    HostWork("10", "download MNIST", "download", (MB["MNIST"], False)),
    # 11: cell record-reference-09 (IWAE, K = 50, 2,000 test images).
    HostWork("11", "IWAE K=50 on 2,000 images", "iwae", (VAE20, FLAT, "unit", 50, 2000)),
    HostWork("11", "download Fashion-MNIST, CIFAR-10", "download",
             (MB["Fashion-MNIST"] + MB["CIFAR-10"], False)),
    # 13: cell times-step-b (four backward="manual" epochs of 20 steps on the CPU; timed here as
    # autograd steps, which are slower).
    HostWork("13", "4 x 20 steps on the CPU", "cpu_steps", (VAE20, 100, ((80, "fused"),))),
    HostWork("13", "download MNIST", "download", (MB["MNIST"], False)),
]

# --- reading the notebooks -----------------------------------------------------------------------


def notebook_path(chapter: str) -> Path:
    (path,) = sorted(NOTEBOOKS.glob(f"{chapter}_*.ipynb"))
    return path


class _Unknown(Exception):
    pass


def _value(node, known: dict, profile: str):
    """The value of a settings expression in ``profile``, or _Unknown."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(_value(e, known, profile) for e in node.elts)
    if isinstance(node, ast.List):
        return [_value(e, known, profile) for e in node.elts]
    if isinstance(node, ast.Name):
        if node.id in known:
            return known[node.id]
        raise _Unknown(node.id)
    if isinstance(node, ast.Attribute) and node.attr == "is_full":
        return profile == "full"  # the full profile runs where the data is downloaded
    if isinstance(node, ast.IfExp):
        chosen = node.body if _value(node.test, known, profile) else node.orelse
        return _value(chosen, known, profile)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _value(node.operand, known, profile)
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b}
        if type(node.op) in ops:
            return ops[type(node.op)](_value(node.left, known, profile),
                                      _value(node.right, known, profile))
    if (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("min", "max")
            and node.args and not node.keywords):
        values = [_value(a, known, profile) for a in node.args]
        return (min if node.func.id == "min" else max)(*values)
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "scaled":
        keywords = {k.arg: k.value for k in node.keywords}
        default = node.args[0] if node.args else keywords.get("default")
        chosen = keywords.get(profile) if profile in ("fast", "full") else None
        return _value(chosen if chosen is not None else default, known, profile)
    raise _Unknown(ast.dump(node)[:40])


def _statements(body):
    """The statements of a cell in order, with those inside if, try and with blocks."""
    for statement in body:
        yield statement
        for name in ("body", "orelse", "finalbody"):
            if isinstance(statement, (ast.If, ast.Try, ast.With)):
                yield from _statements(getattr(statement, name, []))


def full_settings(path, profile: str = "full") -> dict:
    """The module-level settings of a notebook's code cells (``NAME = scaled(...)``, constants,
    ``A, B = 1, 2``) as the given profile sees them; settings that depend on data are left out."""
    known = {}
    for cell in json.loads(Path(path).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in source.splitlines())
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for statement in _statements(tree.body):
            if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
                continue
            target = statement.targets[0]
            try:
                value = _value(statement.value, known, profile)
            except (_Unknown, TypeError, ValueError, KeyError):
                continue
            if isinstance(target, ast.Name):
                known[target.id] = value
            elif isinstance(target, ast.Tuple) and isinstance(value, tuple) and all(
                    isinstance(e, ast.Name) for e in target.elts) and len(value) == len(
                    target.elts):
                known.update({e.id: v for e, v in zip(target.elts, value)})
    return known


def table_mismatches(runs=RUNS) -> list:
    """Lines naming every run whose epochs or batch size differ from its notebook's settings."""
    problems, cache = [], {}
    for run in runs:
        if not run.settings:
            continue
        chapter = run.chapter
        if chapter not in cache:
            cache[chapter] = full_settings(notebook_path(chapter))
        settings = cache[chapter]
        for attribute, name in run.settings:
            value = getattr(run, attribute)
            if settings.get(name) != value:
                problems.append(f"{run.chapter} {run.name}: the table's {attribute} is {value}, "
                                f"notebooks/{notebook_path(chapter).name} sets {name} = "
                                f"{settings.get(name, 'nothing readable')}")
    return problems


def host_mismatches(host_work=HOST_WORK) -> list:
    """Lines naming every host-work entry whose assumed setting differs from its notebook's."""
    problems, cache = [], {}
    for item in host_work:
        for value, name in item.settings:
            if item.chapter not in cache:
                cache[item.chapter] = full_settings(notebook_path(item.chapter))
            found = cache[item.chapter].get(name, "nothing readable")
            if found != value:
                problems.append(f"{item.chapter} {item.what}: the host work assumes {name} = "
                                f"{value}, notebooks/{notebook_path(item.chapter).name} sets "
                                f"{found}")
    return problems


# --- measuring on the CPU ------------------------------------------------------------------------

NO_KERNEL = {
    "aten::as_strided", "aten::as_strided_", "aten::view", "aten::_unsafe_view",
    "aten::_reshape_alias", "aten::t", "aten::transpose", "aten::permute", "aten::expand",
    "aten::squeeze", "aten::unsqueeze", "aten::select", "aten::slice", "aten::narrow",
    "aten::split", "aten::split_with_sizes", "aten::chunk", "aten::unbind", "aten::detach",
    "aten::detach_", "aten::alias", "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg",
    "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::resize_", "aten::set_",
    "aten::view_as", "aten::scalar_tensor", "aten::result_type", "aten::unflatten",
    "aten::_local_scalar_dense", "aten::diagonal", "aten::numpy_T",
}
# ops whose own work is what their children do (none when they return their input)
PASS_THROUGH = {
    "aten::reshape", "aten::flatten", "aten::contiguous", "aten::to", "aten::type_as",
    "aten::expand_as", "aten::item", "aten::is_nonzero", "aten::linear", "aten::matmul",
    "aten::conv2d", "aten::conv_transpose2d", "aten::dropout",
}
# counted as units: what the CPU calls inside them is not what the GPU launches
UNITS = {
    "aten::addmm": 1, "aten::mm": 1, "aten::bmm": 1, "aten::baddbmm": 1, "aten::addmv": 1,
    "aten::mv": 1, "aten::dot": 1, "aten::convolution": 2, "aten::convolution_backward": 3,
    "aten::_fused_adam_": 1, "aten::_fused_adamw_": 1,
}
CUDA_SYNCS = {"aten::bincount": 2, "aten::nonzero": 1, "aten::_unique2": 1, "aten::unique_dim": 1,
              "aten::masked_select": 1}


def _is_aten(event) -> bool:
    return event.name.startswith("aten::")


def _unit(event) -> bool:
    return event.name in UNITS or event.name.startswith("aten::_foreach_")


def _kernels(event) -> int:
    """The GPU kernels one profiled op stands for (see the module docstring)."""
    if _unit(event):
        return UNITS.get(event.name, 1)
    if event.name in NO_KERNEL:
        return 0
    inner = sum(_kernels(c) for c in _aten_children(event))
    if inner or event.name in PASS_THROUGH:
        return inner
    return 1


def _aten_children(event):
    """The nearest aten ops under ``event`` (through non-aten records)."""
    for child in event.cpu_children:
        if _is_aten(child):
            yield child
        else:
            yield from _aten_children(child)


def _ancestors(event):
    parent = event.cpu_parent
    while parent is not None:
        yield parent
        parent = parent.cpu_parent


def _has_aten_below(event) -> bool:
    return any(True for _ in _aten_children(event))


@dataclass
class OpCount:
    """What one profiled step or evaluation batch does."""

    kernels: int
    syncs: int
    leaf_ops: int  # aten ops with no aten op below them


def count_ops(events) -> OpCount:
    """Kernels, host syncs and leaf ops of a profile's events (one step, or one batch)."""
    events = list(events)
    kernels = syncs = leaves = 0
    for e in events:
        if not _is_aten(e):
            continue
        above = list(_ancestors(e))
        if not _has_aten_below(e):
            leaves += 1
        if not any(_is_aten(a) for a in above):
            kernels += _kernels(e)
        in_optimizer = any(a.name.startswith("Optimizer.step") or _unit(a) for a in above)
        if in_optimizer:
            continue
        if e.name == "aten::_local_scalar_dense":
            syncs += 1
        elif e.name in CUDA_SYNCS and not any(
                d.name == "aten::_local_scalar_dense" for d in _descendants(e)):
            syncs += CUDA_SYNCS[e.name]
    return OpCount(kernels, syncs, leaves)


def _descendants(event):
    for child in event.cpu_children:
        yield child
        yield from _descendants(child)


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's C++ start and stop notices go to file descriptor 2: hide them."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_ops(fn) -> OpCount:
    """Run ``fn`` once under the CPU profiler and count what it did."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return count_ops(prof.events())


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@contextlib.contextmanager
def _threads(n: int):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _namespace() -> dict:
    import vae_lesson as vl
    from vae_lesson.chapters import augment, conv, cvae, kl_term, reconstruction, swiss_roll, vqvae

    return {"torch": torch, "math": math, "VAE": vl.VAE, "AutoEncoder": vl.AutoEncoder,
            "PointVAE": swiss_roll.PointVAE, "RemedyVAE": kl_term.RemedyVAE, "CVAE": cvae.CVAE,
            "ConvVAE": conv.ConvVAE, "ConvAutoEncoder": conv.ConvAutoEncoder,
            "ReconstructionAE": reconstruction.ReconstructionAE,
            "ReductionVAE": reconstruction.ReductionVAE, "VQVAE": vqvae.VQVAE,
            "SmallCNN": augment.SmallCNN}


# the constructor argument that sets each model's width: a width of 2 keeps every operation of a
# step and makes its arithmetic negligible (the host's floor)
WIDTH_ARGUMENT = {"VAE": "n_hidden", "AutoEncoder": "n_hidden", "PointVAE": "n_hidden",
                  "RemedyVAE": "n_hidden", "CVAE": "n_hidden", "ReconstructionAE": "n_hidden",
                  "ReductionVAE": "n_hidden", "ConvVAE": "width", "ConvAutoEncoder": "width",
                  "VQVAE": "hidden"}


def build(model: str, narrow: bool = False) -> torch.nn.Module:
    """The model of a constructor call of this module's tables; ``narrow``: the same layers, each
    2 units or channels wide."""
    namespace = _namespace()
    call = ast.parse(model, mode="eval").body
    cls = namespace[call.func.id]

    def value(node):
        return eval(compile(ast.Expression(node), "<model>", "eval"), namespace)

    args = [value(a) for a in call.args]
    kwargs = {k.arg: value(k.value) for k in call.keywords}
    if narrow:
        bound = inspect.signature(cls).bind(*args, **kwargs)
        bound.arguments[WIDTH_ARGUMENT[call.func.id]] = 2
        args, kwargs = list(bound.args), bound.kwargs
    torch.manual_seed(0)
    return cls(*args, **kwargs)


def examples(shape: tuple, n: int, data: str = "unit", seed: int = 0) -> torch.Tensor:
    """``n`` valid inputs of one example's ``shape``: uniform in [0, 1], or CVAE rows."""
    g = torch.Generator().manual_seed(seed)
    if data == "rows":
        labels = torch.randint(0, 10, (n,), generator=g)
        pixels = torch.rand(n, shape[0] - 10, generator=g)
        return torch.cat([pixels, torch.nn.functional.one_hot(labels, 10).float()], 1)
    return torch.rand(n, *shape, generator=g)


def _optimizer(model, kind: str, lr: float = 1e-3):
    params = list(model.parameters())
    if kind == "fused":  # what vl.train builds: the fused kernel where torch supports it
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch: fused only for CUDA
            return torch.optim.Adam(params, lr=lr)
    if kind == "foreach":  # torch.optim.Adam's default for CUDA parameters
        return torch.optim.Adam(params, lr=lr, foreach=True)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)  # "adam": the default for CPU parameters


@dataclass
class StepCost:
    """Measured costs of one training step and of one evaluation batch of a run."""

    flops_per_example: float  # training, forward + backward
    step: OpCount
    read_syncs: int  # train_epoch's own .item() calls: one per loss term, one for the check
    eval_flops_per_example: float
    eval_batch: OpCount
    floor_s: float  # CPU wall time of one step at batch 2 of the narrow model (the host's share)
    eval_floor_s: float  # the same for one evaluation batch
    checkpoint_s: float  # writing the model and Adam's state, with fsync


def _train_once(model, optimizer, x, run):
    """One step of vl.train's loop: ``x`` is one minibatch. (The epoch's ``randperm`` it also
    profiles stands for the copy of each step's CPU index to the GPU there.)"""
    from vae_lesson import train_epoch

    generator = torch.Generator().manual_seed(0)
    train_epoch(model, optimizer, x, len(x), generator, **run.loss_kwargs)


def _best_time(fn, repeats: int = 3) -> float:
    """The shortest of ``repeats`` timings of ``fn()``: other work on a shared machine only adds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _floor(fn, warm_up: int = 10, repeats: int = 30) -> float:
    """The host's own time of ``fn`` (a step of a model too narrow to cost anything else)."""
    for _ in range(warm_up):
        fn()
    return _best_time(fn, repeats)


def _checkpoint_seconds(model, optimizer) -> float:
    payload = {"state_dict": model.state_dict(), "optimizer": optimizer.state_dict()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.pt"

        def save():
            with open(path, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())

        return _best_time(save, 3)


def measure(run: Run, cache: dict, floors: dict | None = None) -> StepCost:
    """The costs of ``run``'s step and evaluation batch, measured once per distinct setup.

    ``floors``, when given, receives the two functions its floors were timed on (see
    :func:`refine_floors`).
    """
    from vae_lesson import evaluate

    key = (run.model, run.input_shape, run.data, run.batch_size, run.optimizer,
           tuple(sorted(run.loss_kwargs.items())))
    if key in cache:
        return cache[key]
    model = build(run.model)
    optimizer = _optimizer(model, run.optimizer)
    x = examples(run.input_shape, run.batch_size, run.data)
    _train_once(model, optimizer, x, run)  # optimizer state and one-time work out of the way
    flops = count_flops(lambda: _train_once(model, optimizer, x, run))
    ops = profile_ops(lambda: _train_once(model, optimizer, x, run))
    n_terms = len(model.loss(x, **run.loss_kwargs))
    rows = min(run.eval_batch, 100)  # operations per batch do not depend on its rows
    x_eval = examples(run.input_shape, rows, run.data, seed=2)
    evaluate(model, x_eval, **run.loss_kwargs)
    eval_flops = count_flops(lambda: evaluate(model, x_eval, **run.loss_kwargs))
    eval_ops = profile_ops(lambda: evaluate(model, x_eval, **run.loss_kwargs))
    narrow, small = build(run.model, narrow=True), examples(run.input_shape, 2, run.data, seed=1)
    narrow_optimizer = _optimizer(narrow, run.optimizer)

    def train_step():
        _train_once(narrow, narrow_optimizer, small, run)

    def eval_batch():
        evaluate(narrow, small, **run.loss_kwargs)

    with _threads(HOST_THREADS):
        floor, eval_floor = _floor(train_step), _floor(eval_batch)
    if floors is not None:
        floors[key] = (train_step, eval_batch)
    cost = StepCost(flops / run.batch_size, ops, n_terms + 1, eval_flops / rows, eval_ops, floor,
                    eval_floor, _checkpoint_seconds(model, optimizer))
    cache[key] = cost
    return cost


def refine_floors(cache: dict, floors: dict, passes: int = FLOOR_PASSES - 1) -> None:
    """Time every setup's floors again in ``passes`` more passes over all of them, and keep each
    floor's best.

    This machine has slow spells of a second or more, in which the same step takes up to 1.7x as
    long; one burst of timings can fall inside one, and it moved a chapter's estimate by a minute
    between runs. Passes spread over the whole measurement rarely all do.
    """
    with _threads(HOST_THREADS):
        for _ in range(passes):
            for key, (train_step, eval_batch) in floors.items():
                cost = cache[key]
                cache[key] = dataclasses.replace(
                    cost, floor_s=min(cost.floor_s, _floor(train_step, warm_up=3, repeats=10)),
                    eval_floor_s=min(cost.eval_floor_s, _floor(eval_batch, warm_up=3,
                                                               repeats=10)))


# --- the model of a T4 ---------------------------------------------------------------------------


def op_seconds(flops: float, ops: OpCount, a: Assumptions, floor_s: float = 0.0) -> float:
    """max(compute, host) + syncs: the time of one step or batch under assumptions ``a``.

    The host's time is kernels x launch, or the measured CPU floor (scaled to Colab's CPU) where
    that is longer: Python, the argument checks and autograd run on the host whatever the device.
    """
    compute = flops / (T4_PEAK_FLOPS * a.efficiency)
    host = max(ops.kernels * a.launch_s, floor_s * a.host_factor)
    return max(compute, host) + ops.syncs * a.sync_s


@dataclass
class RunEstimate:
    run: Run
    cost: StepCost
    gpu_s: dict  # assumptions' name -> seconds of training and evaluation on the GPU
    checkpoint_s: float  # measured here, over all epochs (host time)

    def total(self, a: Assumptions) -> float:
        return self.gpu_s[a.name] + self.checkpoint_s * a.host_factor


def estimate_run(run: Run, cost: StepCost, columns=(TYPICAL, PESSIMISTIC)) -> RunEstimate:
    gpu = {}
    for a in columns:
        step = op_seconds(cost.flops_per_example * run.batch_size, cost.step, a, cost.floor_s)
        batch = op_seconds(cost.eval_flops_per_example * min(run.eval_batch, run.n_eval),
                           cost.eval_batch, a, cost.eval_floor_s) if run.n_eval else 0.0
        per_epoch = run.steps_per_epoch * step + run.eval_batches * batch
        gpu[a.name] = run.count * run.epochs * per_epoch
    checkpoints = run.count * run.epochs * cost.checkpoint_s if run.checkpoint else 0.0
    return RunEstimate(run, cost, gpu, checkpoints)


# --- measuring the host work ---------------------------------------------------------------------


def _judge_step_seconds(batch: int) -> float:
    from vae_lesson.chapters.augment import SmallCNN, train_classifier

    x, y = examples((28, 28), 5 * batch), torch.randint(0, 10, (5 * batch,))
    torch.manual_seed(0)
    model = SmallCNN(10)
    train_classifier(model, x, y, num_steps=2, batch_size=batch)
    return _best_time(lambda: train_classifier(model, x, y, num_steps=5, batch_size=batch)) / 5


def _classify_seconds_per_image() -> float:
    from vae_lesson.chapters.augment import SmallCNN, accuracy

    torch.manual_seed(0)
    model, x, y = SmallCNN(10), examples((28, 28), 1000), torch.randint(0, 10, (1000,))
    accuracy(model, x, y)
    return _best_time(lambda: accuracy(model, x, y), 3) / 1000


def _iwae_seconds_per_image(model: str, shape, data: str, K: int) -> float:
    from vae_lesson.chapters.iwae import iwae_bound

    m, x = build(model), examples(shape, 20, data)
    iwae_bound(m, x[:2], K=K)
    return _best_time(lambda: iwae_bound(m, x, K=K), 2) / 20


def _prior_bounds_seconds_per_image(K: int) -> float:
    """kl_term.bounds_under_prior under N(0, I) and under a mixture of 10 full Gaussians."""
    from torch import distributions as D

    from vae_lesson.chapters.kl_term import bounds_under_prior

    m, x = build(VAE20), examples(FLAT, 20)
    standard = D.Independent(D.Normal(torch.zeros(20), torch.ones(20)), 1)
    mixture = D.MixtureSameFamily(D.Categorical(torch.full((10,), 0.1)),
                                  D.MultivariateNormal(torch.randn(10, 20), torch.eye(20)))
    return _best_time(lambda: [bounds_under_prior(m, x, prior.log_prob, K=K)
                               for prior in (standard, mixture)], 2) / 20


def _aggregate_coefficients() -> tuple:
    """(seconds per code x image x dimension, seconds per code x image) of log q(z)."""
    from vae_lesson.chapters.kl_term import log_aggregate_posterior

    n, s, times = 10_000, 256, {}
    for d in (2, 20):
        z, mean, ln_var = torch.randn(s, d), torch.randn(n, d), torch.randn(n, d) * 0.1
        log_aggregate_posterior(z[:8], mean, ln_var)
        times[d] = _best_time(lambda: log_aggregate_posterior(z, mean, ln_var), 3)
    per_element = max(0.0, (times[20] - times[2]) / (s * n * 18))
    per_pair = max(0.0, times[2] / (s * n) - 2 * per_element)
    return per_element, per_pair


def _gmm_seconds_per_code(d: int) -> float:
    from vae_lesson.chapters.kl_term import fit_mixture_prior

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, d, generator=g) * 3
    codes = centres[torch.randint(0, 10, (12_000,), generator=g)] + torch.randn(12_000, d,
                                                                              generator=g)
    started = time.perf_counter()
    fit_mixture_prior(codes, 10)
    return (time.perf_counter() - started) / 12_000


def _cdist_seconds_per_pair() -> float:
    a, b = torch.rand(1000, 784), torch.rand(6000, 784)
    return _best_time(lambda: torch.cdist(a, b).min(dim=1), 3) / (1000 * 6000)


def _pca_seconds_per_row() -> float:
    from sklearn.decomposition import PCA

    x = torch.rand(6000, 784).numpy()
    started = time.perf_counter()
    PCA().fit(x)
    return (time.perf_counter() - started) / 6000


def _cpu_step_seconds(model: str, batch: int, optimizer: str) -> float:
    m = build(model)
    opt = _optimizer(m, optimizer)
    x = examples(FLAT, batch)

    def step():
        terms = m.loss(x)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()

    step()
    return _best_time(step, 5)


def _host_seconds(item: HostWork, cache: dict, a: Assumptions) -> float:
    """Seconds of ``item`` on Colab's CPU (or network) under assumptions ``a``."""
    if item.kind == "download":
        megabytes, archive = item.args
        return megabytes / a.download_mb_s + (megabytes / a.unpack_mb_s if archive else 0.0)

    def unit(key, fn):
        if key not in cache:
            with _threads(HOST_THREADS):
                cache[key] = fn()
        return cache[key]

    if item.kind == "judge":
        n_train, n_test, *count = item.args
        steps = 8 * math.ceil(n_train / 64)  # train_judge: 8 epochs at batch 64
        seconds = steps * unit(("judge", 64), lambda: _judge_step_seconds(64))
        seconds += n_test * unit(("classify",), _classify_seconds_per_image)
        seconds *= count[0] if count else 1
    elif item.kind == "classifiers":
        count, steps, batch, n_test = item.args
        seconds = count * (steps * unit(("judge", batch), lambda: _judge_step_seconds(batch))
                           + n_test * unit(("classify",), _classify_seconds_per_image))
    elif item.kind == "iwae":
        model, shape, data, K, images = item.args
        seconds = images * unit(("iwae", model, shape, K),
                                lambda: _iwae_seconds_per_image(model, shape, data, K))
    elif item.kind == "prior_bounds":
        K, images = item.args
        seconds = images * unit(("prior", K), lambda: _prior_bounds_seconds_per_image(K))
    elif item.kind == "aggregate":
        per_element, per_pair = unit(("aggregate",), _aggregate_coefficients)
        seconds = sum(s * n * (d * per_element + per_pair) for s, n, d in item.args)
    elif item.kind == "gmm":
        codes, d, count = item.args
        seconds = count * codes * unit(("gmm", d), lambda: _gmm_seconds_per_code(d))
    elif item.kind == "cdist":
        rows, others, count = item.args
        seconds = count * rows * others * unit(("cdist",), _cdist_seconds_per_pair)
    elif item.kind == "pca":
        seconds = item.args[0] * unit(("pca",), _pca_seconds_per_row)
    elif item.kind == "cpu_steps":
        model, batch, parts = item.args
        seconds = sum(steps * unit(("cpu", model, batch, opt),
                                   lambda opt=opt: _cpu_step_seconds(model, batch, opt))
                      for steps, opt in parts)
    else:
        raise ValueError(f"unknown host work {item.kind!r}")
    return seconds * a.host_factor


# --- the report ----------------------------------------------------------------------------------


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:6.1f}"


def _verdict(typical: float, pessimistic: float) -> str:
    if pessimistic <= LIMIT_S:
        return "yes"
    return "typical only" if typical <= LIMIT_S else "no"


def chapter_totals(estimates, host: dict, chapter: str, skip_shared: bool = False) -> dict:
    """GPU, host and total seconds of a chapter, per column."""
    out = {}
    for a in (TYPICAL, PESSIMISTIC):
        gpu = sum(e.gpu_s[a.name] for e in estimates
                  if e.run.chapter == chapter and not (skip_shared and e.run.shared))
        checkpoints = sum(e.checkpoint_s * a.host_factor for e in estimates
                          if e.run.chapter == chapter and not (skip_shared and e.run.shared))
        out[a.name] = (gpu, checkpoints + host.get((chapter, a.name), 0.0))
    return out


def print_assumptions() -> None:
    print("== full profile on a Colab T4: estimated from CPU measurements ==")
    print(f"T4 float32 peak {T4_PEAK_FLOPS / 1e12:.1f} TFLOPS; step = max(FLOPs / (peak x eff), "
          "kernels x launch, CPU floor x host factor) + syncs x sync")
    for a in (TYPICAL, PESSIMISTIC):
        print(f"  {a.name:11s}: efficiency {a.efficiency:.2f}, launch {a.launch_s * 1e6:.0f} us "
              f"per kernel, sync {a.sync_s * 1e6:.0f} us, host CPU x{a.host_factor:g} of this "
              f"machine, downloads {a.download_mb_s:g} MB/s, archives read at "
              f"{a.unpack_mb_s:g} MB/s")
    print(f"each chapter in a fresh runtime (data downloaded, models trained); limit "
          f"{LIMIT_S / 60:.0f} min per chapter; host work and floors timed with {HOST_THREADS} "
          f"thread(s); torch {torch.__version__}")


def run(runs=RUNS, host_work=HOST_WORK) -> dict:
    """Measure, estimate and print; returns {chapter: {column: (gpu_s, host_s)}}."""
    started = time.perf_counter()
    print_assumptions()
    problems = table_mismatches(runs) + host_mismatches(host_work)
    print("tables vs the notebooks' full settings: "
          + ("agree" if not problems else "DIFFER:\n  " + "\n  ".join(problems)))
    cache, floors, estimates = {}, {}, []
    for r in runs:
        measure(r, cache, floors)
    refine_floors(cache, floors)
    print(f"\n{'ch':2s} {'run':34s} {'batch':>5s} {'ep':>4s} {'steps':>8s} {'GFLOP':>7s} "
          f"{'kern':>5s} {'leaf':>5s} {'sync':>4s} {'read':>4s} {'floor':>6s} {'ms/step':>8s} "
          f"{'min':>6s} {'pess':>6s}")
    for r in runs:
        cost = measure(r, cache)
        e = estimate_run(r, cost)
        estimates.append(e)
        step_ms = op_seconds(cost.flops_per_example * r.batch_size, cost.step, TYPICAL,
                             cost.floor_s) * 1e3
        name = r.name if r.count == 1 else f"{r.name} (x{r.count})"
        print(f"{r.chapter:2s} {name[:34]:34s} {r.batch_size:5d} {r.epochs:4d} {r.steps:8,d} "
              f"{cost.flops_per_example * r.batch_size / 1e9:7.3f} {cost.step.kernels:5d} "
              f"{cost.step.leaf_ops:5d} {cost.step.syncs:4d} {cost.read_syncs:4d} "
              f"{cost.floor_s * 1e3:6.2f} {step_ms:8.3f} {_minutes(e.total(TYPICAL))} "
              f"{_minutes(e.total(PESSIMISTIC))}")
    print("  GFLOP: one training step; kern: kernels per step (the model's count); leaf: leaf "
          "aten ops; sync: syncs per step (measured); read: train_epoch's own .item() calls; "
          "floor: CPU ms per step of the narrow model at batch 2; ms/step: typical; min, pess: "
          "minutes incl. evaluation and checkpoints")
    host, host_cache, host_items = {}, {}, []
    print(f"\n{'ch':2s} {'host work (CPU, network)':56s} {'min':>6s} {'pess':>6s}")
    for item in host_work:
        typical = _host_seconds(item, host_cache, TYPICAL)
        pessimistic = _host_seconds(item, host_cache, PESSIMISTIC)
        host_items.append((item, typical))
        for a, seconds in ((TYPICAL, typical), (PESSIMISTIC, pessimistic)):
            host[item.chapter, a.name] = host.get((item.chapter, a.name), 0.0) + seconds
        print(f"{item.chapter:2s} {item.what[:56]:56s} {_minutes(typical)} "
              f"{_minutes(pessimistic)}")
    totals = {}
    print(f"\n{'chapter':22s} {'runs':>4s} {'steps':>9s} {'GPU min':>8s} {'pess':>6s} "
          f"{'host min':>8s} {'pess':>6s} {'total':>6s} {'pess':>6s}  <= 10 min")
    rows = [(c, False) for c in CHAPTERS] + [("06", True), ("07", True)]
    for chapter, skip_shared in rows:
        chosen = [e for e in estimates if e.run.chapter == chapter
                  and not (skip_shared and e.run.shared)]
        t = chapter_totals(estimates, host, chapter, skip_shared)
        typical, pessimistic = sum(t["typical"]), sum(t["pessimistic"])
        label = chapter + (" after 05 (loaded)" if skip_shared else
                           " (profile: no change)" if chapter in UNCHANGED else "")
        n_runs = sum(e.run.count for e in chosen)
        steps = sum(e.run.steps for e in chosen)
        print(f"{label:22s} {n_runs:4d} {steps:9,d} {_minutes(t['typical'][0]):>8s} "
              f"{_minutes(t['pessimistic'][0])} {_minutes(t['typical'][1]):>8s} "
              f"{_minutes(t['pessimistic'][1])} {_minutes(typical)} {_minutes(pessimistic)}  "
              f"{_verdict(typical, pessimistic)}")
        if not skip_shared:
            totals[chapter] = t
    _print_suggestions(estimates, host_items, totals)
    print(f"\nwall time of this benchmark: {time.perf_counter() - started:.0f} s")
    return totals


def _print_suggestions(estimates, host_items, totals) -> None:
    over = [c for c, t in totals.items() if sum(t["typical"]) > LIMIT_S]
    if not over:
        print("\nevery chapter's typical estimate is within 10 minutes")
        return
    print("\nover 10 minutes (typical), and what would bring each chapter under:")
    for chapter in over:
        total = sum(totals[chapter]["typical"])
        scaled_runs = [e for e in estimates if e.run.chapter == chapter
                       and "epochs" in dict(e.run.settings) and not e.run.shared]
        training = sum(e.total(TYPICAL) for e in scaled_runs)
        host = sum(seconds for item, seconds in host_items if item.chapter == chapter)
        other = total - training - host  # other chapters' models, runs no setting sizes
        names = sorted({dict(e.run.settings)["epochs"] for e in scaled_runs})
        print(f"  {chapter}: {total / 60:.1f} min = {training / 60:.1f} training sized by "
              f"{', '.join(names)} + {other / 60:.1f} other training + {host / 60:.1f} host work")
        big = [f"{item.what} {seconds / 60:.1f} min" for item, seconds in host_items
               if item.chapter == chapter and seconds >= 60]
        if big:
            print("      host work over a minute: " + "; ".join(big))
        if other + host < LIMIT_S:
            factor, condition = (LIMIT_S - other - host) / training, "epochs"
        else:
            print("      the host work has to shrink (fewer images) or run on the GPU first")
            factor = max(0.0, LIMIT_S - other - HOST_TARGET_S) / training
            condition = f"with the host work cut to {HOST_TARGET_S / 60:.0f} minutes, epochs"
        full = full_settings(notebook_path(chapter))
        parts = [f"{n} full={full[n]} -> {math.floor(full[n] * factor)}" for n in names
                 if isinstance(full.get(n), int)]
        if factor >= 1.0:
            print(f"      {condition}: as they are")
        else:
            print(f"      {condition} x{factor:.2f}: " + ", ".join(parts))
