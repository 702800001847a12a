"""Which utterances each batch of an epoch holds: plans of positions, made on the host.

Utterances go in length-bucketed batches; dialogs whole, their utterances in `order`, a
training side dealt in a new uniform shuffle each epoch as the fusion study's code does
(length buckets would put long dialogs together and, with its summed loss, weigh those
batches more). A dialog holds only its side's utterances, so no test utterance is seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepPlan:
    """One batch as positions: utterance unit [B]; dialog unit [B, U] (-1 = padding)."""

    positions: np.ndarray
    lengths: dict[str, int]  # sequence views: the batch's padded length
    # The optimiser steps after this batch; False: a first part whose gradient adds to
    # the next part's (`dialog_plans`).
    steps: bool = True


def bucket_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Batches of indices into `lengths`, sorted by length (with `rng`, for training:
    jittered by ±10 % and the batch order shuffled, so batches change each epoch).

    >>> [b.tolist() for b in bucket_batches(np.array([5, 1, 3, 2]), 2, None)]
    [[1, 3], [2, 0]]
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        key = lengths * rng.uniform(0.9, 1.1, size=n)
        order = np.lexsort((rng.random(n), key))
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def utterance_plans(
    positions: np.ndarray,
    seq_len: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator | None,
) -> list[StepPlan]:
    """An epoch of utterance batches, bucketed by the summed lengths of the sequence views
    (`seq_len`: name -> [n] lengths of `positions`)."""
    total = sum(seq_len.values(), np.zeros(len(positions), dtype=np.int64))
    return [
        StepPlan(positions[local], {name: int(lens[local].max()) for name, lens in seq_len.items()})
        for local in bucket_batches(total, batch_size, rng)
    ]


def dialog_groups(
    dialogs: np.ndarray, orders: np.ndarray, positions: np.ndarray
) -> list[np.ndarray]:
    """`positions` grouped by dialog, each group sorted by `order` (dialogs sorted by name)."""
    if len(positions) == 0:
        return []
    pos = positions[np.lexsort((orders[positions], dialogs[positions]))]
    cuts = np.flatnonzero(dialogs[pos][1:] != dialogs[pos][:-1]) + 1
    return np.split(pos, cuts)


def dialog_plans(
    groups: list[np.ndarray], batch_size: int, rng: np.random.Generator | None
) -> list[StepPlan]:
    """An epoch of dialog batches: by length for evaluation; for training a uniform shuffle
    (the fusion study's), each batch run as its shorter and its longer half with one
    optimiser step: the summed loss's gradient is the batch's, and halves pad less (the
    step took 0.65x the time)."""
    sizes = np.array([len(g) for g in groups])
    if rng is None:
        plan = bucket_batches(sizes, batch_size, None)
        return [StepPlan(_padded([groups[i] for i in batch]), {}) for batch in plan]
    order = rng.permutation(len(sizes))
    plans = []
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        by_length = batch[np.argsort(sizes[batch], kind="stable")]
        cut = len(by_length) // 2
        plans.append(StepPlan(_padded([groups[i] for i in by_length[:cut]]), {}, steps=False))
        plans.append(StepPlan(_padded([groups[i] for i in by_length[cut:]]), {}))
    return plans


def _padded(dialogs: list[np.ndarray]) -> np.ndarray:
    width = max((len(d) for d in dialogs), default=1)  # no dialog: an empty part [0, 1]
    out = np.full((len(dialogs), width), -1, dtype=np.int64)
    for i, d in enumerate(dialogs):
        out[i, : len(d)] = d
    return out
