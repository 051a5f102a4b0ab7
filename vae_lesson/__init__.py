"""vae_lesson: the helpers behind an open book on variational autoencoders.

Chainer's vocabulary, PyTorch's mechanics: ``gaussian_kl_divergence``, ``bernoulli_nll`` and
``gaussian`` keep the names, argument order and reductions of ``chainer.functions``.
"""

from .autoencoder import AELoss, AutoEncoder
from .checkpoint import Checkpoint, CheckpointError, checkpoint_dir, load_checkpoint, save_checkpoint
from .data import (ChecksumError, DataUnavailableError, IdxFormatError, ImageDataset, load_cifar10, load_digits,
                   load_fashion_mnist, load_mnist, load_stl10)
from .initializers import xavier_bound, xavier_init_
from .losses import bernoulli_nll, gaussian_kl_divergence
from .reparameterize import gaussian
from .training import History, NonFiniteLossError, evaluate, load_or_train, set_seed, train
from .vae import VAE, VAELoss

__version__ = "0.1.0"

__all__ = [
    "AELoss", "AutoEncoder", "Checkpoint", "CheckpointError", "ChecksumError", "DataUnavailableError",
    "History", "IdxFormatError", "ImageDataset", "NonFiniteLossError", "VAE", "VAELoss",
    "bernoulli_nll", "checkpoint_dir", "evaluate", "gaussian", "gaussian_kl_divergence", "load_checkpoint",
    "load_cifar10", "load_digits", "load_fashion_mnist", "load_mnist", "load_stl10", "load_or_train", "save_checkpoint", "set_seed",
    "train", "xavier_bound", "xavier_init_",
]
