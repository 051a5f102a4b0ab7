"""The reference: a training loop as most PyTorch tutorials write it, for comparison with ``vl.train``.

A ``DataLoader`` over a ``TensorDataset`` (shuffled, per-example indexing and collation), the default
``torch.optim.Adam``, ``optimizer.zero_grad()``, and the loss read with ``.item()`` after every step
to print a running mean. Same model and loss as ``vl.train`` (``model.loss(x).total``).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset


class ReferenceLoop:
    """A tutorial-style loop with its own loader and optimizer; ``run_epochs(n)`` continues training.

    Seeding mirrors ``vl.train``: ``seed`` fixes the shuffling (the loader's generator) and the model's
    sampling (torch's global generator).
    """

    def __init__(self, model: torch.nn.Module, x_train: torch.Tensor, *, batch_size: int = 100, lr: float = 1e-3,
                 seed: int = 0, loss_kwargs: dict | None = None):
        self.model = model
        self.loss_kwargs = dict(loss_kwargs or {})
        self.loader = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True,
                                 generator=torch.Generator().manual_seed(seed))
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        torch.manual_seed(seed)
        self.epoch_losses = []

    def run_epochs(self, num_epochs: int = 1) -> int:
        """Train ``num_epochs`` passes; returns the number of examples processed."""
        self.model.train()
        seen = 0
        for _ in range(num_epochs):
            running, steps = 0.0, 0
            for (xb,) in self.loader:
                loss = self.model.loss(xb, **self.loss_kwargs).total
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                running += loss.item()  # the usual running mean for a progress print: one read per step
                steps += 1
                seen += len(xb)
            self.epoch_losses.append(running / steps)
        self.model.eval()
        return seen


def reference_train(model: torch.nn.Module, x_train: torch.Tensor, *, num_epochs: int, batch_size: int = 100,
                    lr: float = 1e-3, seed: int = 0, loss_kwargs: dict | None = None) -> list:
    """Train ``model`` with the reference loop; returns the mean training loss of each epoch."""
    loop = ReferenceLoop(model, x_train, batch_size=batch_size, lr=lr, seed=seed, loss_kwargs=loss_kwargs)
    loop.run_epochs(num_epochs)
    return loop.epoch_losses
