"""vae_lesson: the code of an open book on variational autoencoders, kept for later chapters.

The package has three folders:

- ``vae_lesson.core``: the teaching core, the code the chapters define on the page (the
  Chainer-named losses, the autoencoder, the VAE, the training loop). ``import vae_lesson``
  exposes it.
- ``vae_lesson.chapters``: one module per later chapter (its models and experiments).
- ``vae_lesson.infra``: data, checkpoints, argument checks, plots, GIFs, settings, the in-page
  explorer.

Chainer's vocabulary, PyTorch's mechanics: ``gaussian_kl_divergence``, ``bernoulli_nll`` and
``gaussian`` keep the names, argument order and reductions of ``chainer.functions``.
"""

from .core.autoencoder import AELoss, AutoEncoder
from .core.initializers import xavier_bound, xavier_init_
from .core.losses import bernoulli_nll, gaussian_kl_divergence
from .core.reparameterize import gaussian
from .core.training import (
    GPUMemoryError,
    History,
    NonFiniteLossError,
    evaluate,
    load_or_train,
    set_seed,
    train,
    train_epoch,
)
from .core.vae import VAE, VAELoss
from .infra.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_dir,
    load_checkpoint,
    save_checkpoint,
)
from .infra.data import (
    ChecksumError,
    DataUnavailableError,
    IdxFormatError,
    ImageDataset,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_stl10,
)
from .infra.device import describe_device, pick_device
from .infra.published import use_published_weights

__version__ = "0.1.0"

__all__ = [
    "AELoss",
    "AutoEncoder",
    "Checkpoint",
    "CheckpointError",
    "ChecksumError",
    "GPUMemoryError",
    "DataUnavailableError",
    "History",
    "IdxFormatError",
    "ImageDataset",
    "NonFiniteLossError",
    "VAE",
    "VAELoss",
    "bernoulli_nll",
    "describe_device",
    "checkpoint_dir",
    "evaluate",
    "gaussian",
    "gaussian_kl_divergence",
    "load_checkpoint",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_stl10",
    "load_or_train",
    "pick_device",
    "save_checkpoint",
    "set_seed",
    "train",
    "train_epoch",
    "use_published_weights",
    "xavier_bound",
    "xavier_init_",
]
