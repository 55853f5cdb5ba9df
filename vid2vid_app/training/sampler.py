"""Data order that can be resumed exactly: epoch-seeded shuffling, rank split, per-sample seeds.

:class:`EpochSampler` yields ``(epoch, index)`` keys. Its order is a function of ``(seed, epoch)``
alone and it can start part-way into an epoch, so a resumed run sees the same samples in the same
order as one that never stopped. Under DDP it splits each epoch as
``torch.utils.data.DistributedSampler`` does (pad by repeating the head, then every
``world_size``-th index from ``rank``), so the ranks together see the same global batches a single
process with ``world_size`` times the batch size would see.

:class:`SeededDataset` seeds Python's ``random``, NumPy's global RNG and torch's CPU RNG from
``(seed, epoch, index)`` around each ``__getitem__`` (restoring them afterwards), so random
augmentation (crops, flips, unpaired partners) depends on the sample alone, not on worker
processes, ranks or where a run was resumed.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` for this rank's share of epoch ``epoch``, from position ``start``."""

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        if n <= 0:
            raise ValueError("the dataset is empty")
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    @property
    def per_rank(self) -> int:
        """Samples each rank sees per epoch (the epoch is padded to a multiple of ``world_size``)."""
        return -(-self.n // self.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch ``epoch``'s order and skip this rank's first ``start`` samples of it."""
        self.epoch = epoch
        self.start = start

    def order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``, in order."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            indices = torch.randperm(self.n, generator=g).tolist()
        else:
            indices = list(range(self.n))
        total = self.per_rank * self.world_size
        while len(indices) < total:
            indices += indices[: total - len(indices)]
        return indices[self.rank : total : self.world_size]

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order(self.epoch)[self.start :]:
            yield self.epoch, index


class SeededDataset(Dataset):
    """Wraps ``dataset``; item ``(epoch, index)`` is ``dataset[index]`` under RNGs seeded from
    ``(seed, epoch, index)``."""

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        with seeded_rngs(sample_seed(self.seed, epoch, index)):
            return self.dataset[index]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 32-bit seed for one sample of one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed random / numpy / torch (CPU) inside the block; restore their previous states after."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
