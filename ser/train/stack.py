"""Stacking the members' batches: K sides of their own shapes -> one [K, ...] batch a step.

Member k's tensors fill the front of each axis; the rest is padding: zeros, masks False,
labels -100 (ignored by every loss and metric), index -1. A member without a batch at
this step (an evaluation side shorter than another member's) is all padding.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ser.models.batch import Batch
from ser.train.batching import StepPlan
from ser.train.data import Batches, ZScore, gather
from ser.train.steps import StepShapes


class StackedSides:
    """The members' sides (all train, all val or all test; one run's data and inputs),
    gathered into stacked batches directly: a few device operations per step whatever K
    is. Member k's slot holds the batch its own `Batches` builds, padded further."""

    def __init__(self, sides: Sequence[Batches], static: bool = False) -> None:
        """`static`: batches padded to few shapes (`ser.train.steps.StepShapes`), as a
        compiled step needs."""
        first = sides[0]
        if any(s.data is not first.data or s.specs != first.specs for s in sides):
            raise ValueError("stacked sides must come from one run's data and inputs")
        self.sides, self.data = list(sides), first.data
        self.specs, self.unit = first.specs, first.unit
        self.shapes = _shapes(sides) if static else None
        # One table per vector view for all members and sides, each member's z-score
        # applied after the gather: a copy per member of a 6373-d set at 20 members
        # would take 17 GB.
        self.zscores = {
            spec.name: ZScore(
                torch.stack([side.zscore[spec.name].mean for side in sides]),  # [K, D]
                torch.stack([side.zscore[spec.name].std for side in sides]),
            )
            for spec in first.specs
            if spec.name in first.zscore
        }
        # Each member's class weights in its slot [K, C] (training sides with weights).
        weights = [side.class_weights for side in sides]
        if any(w is None for w in weights) and any(w is not None for w in weights):
            raise ValueError("stacked sides must all have class weights or none")
        self.class_weights = None if weights[0] is None else torch.stack(weights)  # type: ignore[arg-type]
        # Each member's attribute scale in its slot [K, A] (runs with attribute targets).
        scales = [side.target_scale for side in sides]
        self.target_scale = None
        if all(scale is not None for scale in scales):
            means, stds = zip(*(scale[:2] for scale in scales), strict=True)
            self.target_scale = ZScore(torch.stack(means), torch.stack(stds))

    def __len__(self) -> int:
        """Optimiser steps in an epoch: the longest side's."""
        return max((len(side) for side in self.sides), default=0)

    def epoch(self) -> Iterator[tuple[list[bool], Batch, bool]]:
        """(which members have a batch, the stacked batch, whether the optimiser steps
        after it) per step; the epoch's positions go to the device in one copy."""
        # A member without a batch at a step (a shorter side) is None there.
        steps = list(itertools.zip_longest(*(side.plans() for side in self.sides)))
        rows = self.shapes.rows if self.shapes is not None else 0
        arrays = [_pad_positions(now, rows) for now in steps]
        if not arrays:
            return
        flat = torch.from_numpy(np.concatenate([a.ravel() for a in arrays])).to(self.data.device)
        parts = flat.split([array.size for array in arrays])
        for now, array, part in zip(steps, arrays, parts, strict=True):
            pos = part.view(array.shape)  # [K, B] or [K, B, U]
            closes = any(plan.steps for plan in now if plan is not None)
            yield [plan is not None for plan in now], self.gather(now, pos), closes

    def gather(self, plans: Sequence[StepPlan | None], pos: torch.Tensor) -> Batch:
        """The stacked batch of the members' plans for one step (None: no batch), their
        positions `pos` already on the device."""
        lengths = {
            spec.name: max(0 if p is None else p.lengths[spec.name] for p in plans)
            for spec in self.specs
            if spec.view == "sequence"
        }
        if self.shapes is not None:
            lengths = {name: self.shapes.length(name, n) for name, n in lengths.items()}
        batch = gather(self.data, self.specs, self.unit, pos, lengths, self.zscores)
        batch.class_weights = self.class_weights
        if self.target_scale is not None:
            batch.target_mean, batch.target_std = self.target_scale
        return batch


def _shapes(sides: Sequence[Batches]) -> StepShapes:
    """The static shapes of the sides' batches: their batch size, and each sequence
    view's longest utterance in the run's data."""
    data = sides[0].data
    longest = {
        spec.name: int(data.features[spec.name].lengths_np.max(initial=0))
        for spec in sides[0].specs
        if spec.view == "sequence"
    }
    return StepShapes(max(side.batch_size for side in sides), longest)


def _pad_positions(plans: Sequence[StepPlan | None], rows: int = 0) -> np.ndarray:
    """[K, *max shape] int64 positions (at least `rows` on the batch axis), -1 where a
    member has none."""
    real = [p.positions for p in plans if p is not None]
    shape = [max(p.shape[i] for p in real) for i in range(real[0].ndim)]
    shape[0] = max(shape[0], rows)
    out = np.full((len(plans), *shape), -1, dtype=np.int64)
    for k, plan in enumerate(plans):
        if plan is not None:
            out[(k, *(slice(0, n) for n in plan.positions.shape))] = plan.positions  # type: ignore[index]
    return out
