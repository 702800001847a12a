"""A dataset's epochs in `ser train`'s order for a streamed side (`BlockBatches`): the
trainer's seeded block shuffle (`ser.train.batches.windowed_plans`), its utterances
grouped by the block they start in (the set's chunks as first written), the blocks in a
seeded random order a few at a time, each window's utterances bucketed by length; so
that a batch reads a few chunks and an epoch reads each chunk about once. A torch
`Sampler` of batches (a DataLoader's ``batch_sampler``), run in the loading process: its
workers each read the batches it deals them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from torch.utils.data import Sampler

from ser.train.batches import windowed_plans


class BlockBatches(Sampler[list[int]]):
    """Batches of `batch_size` item indices, each epoch (each iteration) a new order drawn
    from one generator seeded with `seed` (None: store order, the same every epoch).
    `blocks` [n]: each item's block; `lengths`: each sequence set's rows an item,
    [n], which a window's batches are bucketed by.

    >>> sampler = BlockBatches(np.array([0, 0, 1, 1, 9]), {}, 2, seed=None)
    >>> list(sampler), len(sampler)
    ([[0, 1], [2, 3], [4]], 3)
    """

    def __init__(
        self,
        blocks: np.ndarray,
        lengths: Mapping[str, np.ndarray],
        batch_size: int,
        seed: int | None = None,
    ) -> None:
        self.blocks, self.lengths = np.asarray(blocks, dtype=np.int64), dict(lengths)
        self.batch_size = batch_size
        self.rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.blocks) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the epoch is drawn at its first batch, not when the iterator is
        # made (a DataLoader with workers makes one it never reads before the epoch's).
        items = np.arange(len(self.blocks), dtype=np.int64)
        plans = windowed_plans(items, self.lengths, self.batch_size, self.rng, self.blocks)
        for plan in plans:
            yield plan.positions.tolist()
