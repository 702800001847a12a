"""Stacking the members' batches: K sides of their own shapes -> one [K, ...] batch a step.

Member k's tensors fill the front of each axis; the rest is padding: zeros, masks False,
labels -100 (ignored by every loss and metric), index -1. A member without a batch at
this step (an evaluation side shorter than another member's) is all padding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ser.train.batch import Batch
from ser.train.data import Batches, StepPlan


class StackedSides:
    """The members' sides (all train, all val or all test) of one stacked run, gathered
    into stacked batches directly: a few device operations per step whatever K is,
    instead of K batches built and then stacked. Member k's slot of each batch is
    exactly the batch its own `Batches` builds (same positions, padded further).

    All sides must come from one `TrainData` with the same inputs and unit (one run).
    """

    def __init__(self, sides: Sequence[Batches]) -> None:
        first = sides[0]
        if any(s.data is not first.data or s.specs != first.specs for s in sides):
            raise ValueError("stacked sides must come from one run's data and inputs")
        self.sides, self.data = list(sides), first.data
        self.specs, self.unit = first.specs, first.unit
        self.device = first.data.device
        # Vector views: one table for all members and sides (the data's pooled vectors),
        # each member's z-score applied after the gather: the same numbers as a table
        # normalised per member, without K copies of it (a 6373-d set at 20 members: 17
        # GB of copies, one per side and member, then stacked).
        self.vector_names = [s.name for s in first.specs if s.view == "vector"]
        self.zscores = {
            spec.name: (
                torch.stack([side.zscore[spec.name].mean for side in sides]),
                torch.stack([side.zscore[spec.name].std for side in sides]),
            )  # [K, D] each
            for spec in first.specs
            if spec.name in first.zscore
        }

    def __len__(self) -> int:
        """Optimiser steps in an epoch: the longest side's."""
        return max((len(side) for side in self.sides), default=0)

    def epoch(self) -> Iterator[tuple[list[bool], Batch, bool]]:
        """One epoch: (which members have a batch, the stacked batch, whether the
        optimiser steps after it) per batch. The epoch's positions go to the device in
        one copy (a copy per step would make the host wait for the device at every step)."""
        plans = [side.plans() for side in self.sides]
        steps = [
            [p[step] if step < len(p) else None for p in plans]
            for step in range(max((len(p) for p in plans), default=0))
        ]
        arrays = [
            _pad_positions([None if p is None else p.positions for p in now]) for now in steps
        ]
        if not arrays:
            return
        flat = torch.from_numpy(np.concatenate([a.ravel() for a in arrays])).to(self.device)
        start = 0
        for now, array in zip(steps, arrays, strict=True):
            pos = flat[start : start + array.size].view(array.shape)  # [K, B] or [K, B, U]
            start += array.size
            closes = any(plan.steps for plan in now if plan is not None)
            yield [plan is not None for plan in now], self.gather(now, pos), closes

    def gather(self, plans: Sequence[StepPlan | None], pos: torch.Tensor) -> Batch:
        """The stacked batch of the members' plans for one step (None: no batch), their
        positions `pos` already on the device."""
        valid = pos >= 0
        safe = pos.clamp_min(0)
        x = {name: self._vector(name, safe, valid) for name in self.vector_names}
        mask: dict[str, torch.Tensor] = {}
        for spec in self.specs:
            if spec.view == "sequence":
                t_max = max(0 if p is None else p.lengths[spec.name] for p in plans)
                x[spec.name], mask[spec.name] = self._sequence(spec.name, safe, valid, t_max)
        data = self.data
        return Batch(
            x=x,
            mask=mask,
            labels=torch.where(valid, data.labels_t[safe], -100),
            index=torch.where(valid, data.manifest_rows_t[safe], -1),
            utt_mask=valid if self.unit == "dialog" else None,
        )

    def _sequence(
        self, name: str, safe: torch.Tensor, valid: torch.Tensor, t_max: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        table = self.data.features[name]
        steps = torch.arange(t_max, device=self.device)  # [T]
        lengths = torch.where(valid, table.lengths[safe], 0)  # [K, B]
        mask = steps < lengths.unsqueeze(-1)  # [K, B, T]
        rows = torch.where(mask, table.starts[safe].unsqueeze(-1) + steps, 0)  # [K, B, T]
        seq = table.flat[rows].float()  # [K, B, T, D]
        if name in self.zscores:
            mean, std = self._member_view(name, 2)
            seq = (seq - mean) / std
        return seq * mask.unsqueeze(-1), mask

    def _vector(self, name: str, safe: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The vectors at positions `safe` [K, B] or [K, B, U], normalised per member,
        zero where not `valid`."""
        table = self.data.features[name].vectors()  # [n, D]
        x = table.index_select(0, safe.flatten()).view(*safe.shape, -1)  # [K, ..., D]
        if name in self.zscores:
            mean, std = self._member_view(name, safe.dim() - 1)
            x.sub_(mean).div_(std)  # as `ZScore`: (x - mean) / std
        return x.masked_fill_(~valid.unsqueeze(-1), 0.0)

    def _member_view(self, name: str, axes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's z-score mean and std, [K, 1 (x axes), D]."""
        mean, std = self.zscores[name]
        shape = (mean.shape[0], *[1] * axes, mean.shape[1])
        return mean.view(shape), std.view(shape)


def _pad_positions(positions: Sequence[np.ndarray | None]) -> np.ndarray:
    """[K, *max shape] int64 positions, -1 where a member has none."""
    real = [p for p in positions if p is not None]
    shape = [max(p.shape[i] for p in real) for i in range(real[0].ndim)]
    out = np.full((len(positions), *shape), -1, dtype=np.int64)
    for k, p in enumerate(positions):
        if p is not None:
            out[(k, *(slice(0, n) for n in p.shape))] = p  # type: ignore[index]
    return out
