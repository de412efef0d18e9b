"""Training data kept on the device as one tensor, and batches drawn from it by seeded index permutations.

No DataLoader: the data sets of the book are small (MNIST is 9,000 x 784 floats), so they live on the
device and a batch is one ``index_select``. The order comes from a CPU ``torch.Generator``, so it is
reproducible from the seed and resumable from the generator state.
"""

from __future__ import annotations

import functools

import torch

from ddim_book.training.configs import TrainConfig
from ddim_book.training.rng import derive_seed

__all__ = ["EpochBatches", "load_training_data"]


@functools.lru_cache(maxsize=1)
def _mnist_train() -> torch.Tensor:
    from ddim_book.data import mnist_dataset

    return mnist_dataset("train")[0]


def load_training_data(config: TrainConfig) -> torch.Tensor:
    """The training set as one float32 CPU tensor, not to be modified in place: MNIST's training part
    (9000, 1, 28, 28) in [-1, 1], or ``dataset_size`` points (N, 2) of a 2-D toy set drawn with a
    generator seeded by ``config.seed``."""
    if config.dataset == "mnist":
        return _mnist_train()
    from ddim_book.data import toy_2d

    generator = torch.Generator().manual_seed(derive_seed(config.seed, "toy-data"))
    return toy_2d(config.dataset, config.dataset_size, generator)


class EpochBatches:
    """Global batches of ``batch_size`` examples as consecutive slices of a random permutation of the data
    (a new permutation each epoch; the incomplete last slice is skipped). Process ``rank`` of
    ``world_size`` gets the ``rank``-th of ``world_size`` equal, disjoint shards of every global batch.

    Args:
        data: (N, ...) tensor on the training device.
        batch_size: global batch size, 1..N, divisible by ``world_size``.
        seed: seeds the permutations (the same on every rank, so the shards partition each batch).
    """

    def __init__(self, data: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if not 1 <= batch_size <= data.shape[0]:
            raise ValueError(f"batch_size must be in 1..{data.shape[0]} (the number of examples), got {batch_size}")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size={batch_size} must be divisible by the number of processes ({world_size}) "
                "so that every rank gets an equal shard"
            )
        self.data, self.batch_size, self.rank, self.world_size = data, batch_size, rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None  # int64 (N,) on the CPU
        self.cursor = 0
        self._perm_on_device: torch.Tensor | None = None

    def next(self) -> torch.Tensor:
        """This rank's shard of the next global batch: (batch_size / world_size, ...) on the data's device."""
        n = self.data.shape[0]
        if self.perm is None or self.cursor + self.batch_size > n:
            self.perm, self.cursor, self._perm_on_device = torch.randperm(n, generator=self.generator), 0, None
        if self._perm_on_device is None:
            self._perm_on_device = self.perm.to(self.data.device)
        local = self.batch_size // self.world_size
        start = self.cursor + self.rank * local
        self.cursor += self.batch_size
        return self.data.index_select(0, self._perm_on_device[start : start + local])

    def state_dict(self) -> dict:
        """{"generator": ByteTensor, "perm": int64 tensor or None, "cursor": int}."""
        return {"generator": self.generator.get_state(), "perm": self.perm, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.cursor, self._perm_on_device = state["perm"], int(state["cursor"]), None
