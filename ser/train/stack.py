"""Stacking the members' batches: K `Batch`es of their own shapes -> one [K, ...] batch.

Member k's tensors fill the front of each axis; the rest is padding: zeros, masks False,
labels -100 (ignored by every loss and metric), index -1. A member without a batch this
step (`None`: its epoch has ended, or it stopped early) is all padding. `sizes` records
each member's own extent of every padded axis, which is what its random streams draw at
(`ser.train.nn.noise`), so a member's masks never depend on the other members.

>>> import torch
>>> a = Batch({"x": torch.ones(2, 3, 1)}, {"x": torch.ones(2, 3, dtype=torch.bool)},
...           torch.tensor([0, 1]), torch.tensor([5, 6]))
>>> b = Batch({"x": torch.ones(1, 4, 1)}, {"x": torch.ones(1, 4, dtype=torch.bool)},
...           torch.tensor([2]), torch.tensor([7]))
>>> s = stack_batches([a, b, None])
>>> s.x["x"].shape, s.labels.tolist(), s.sizes
(torch.Size([3, 2, 4, 1]), [[0, 1], [2, -100], [-100, -100]], {'batch': [2, 1, 0], 'x': [3, 4, 0]})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from ser.train.batch import Batch
from ser.train.data import Batches, StepPlan
from ser.train.nn.noise import own_extents


def stack_batches(batches: Sequence[Batch | None]) -> Batch:
    """One batch of the members' batches (module docstring); at least one is not None."""
    present = [b for b in batches if b is not None]
    if not present:
        raise ValueError("no member has a batch to stack")
    first = present[0]
    x = {name: _stack([None if b is None else b.x[name] for b in batches], 0.0) for name in first.x}
    mask = {name: _stack([None if b is None else b.mask[name] for b in batches], False)
            for name in first.mask}  # fmt: skip
    labels = _stack([None if b is None else b.labels for b in batches], -100)
    index = _stack([None if b is None else b.index for b in batches], -1)
    utt_mask = None
    if first.utt_mask is not None:
        utt_mask = _stack([None if b is None else b.utt_mask for b in batches], False)
    return Batch(
        x=x, mask=mask, labels=labels, index=index, utt_mask=utt_mask, sizes=_sizes(batches)
    )


def _sizes(batches: Sequence[Batch | None]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"batch": [0 if b is None else b.size for b in batches]}
    first = next(b for b in batches if b is not None)
    for name in first.mask:  # sequence views: [B, T, D]
        out[name] = [0 if b is None else int(b.x[name].shape[1]) for b in batches]
    if first.utt_mask is not None:
        out["utt"] = [0 if b is None else int(b.labels.shape[1]) for b in batches]
    return out


def _stack(tensors: Sequence[torch.Tensor | None], pad: float | bool | int) -> torch.Tensor:
    """[K, *max shape] with tensor k in front of slot k, `pad` elsewhere."""
    real = [t for t in tensors if t is not None]
    if len(real) == len(tensors) and len({tuple(t.shape) for t in real}) == 1:
        return torch.stack(real)  # the common case of equal shapes: one copy
    shape = [max(t.shape[i] for t in real) for i in range(real[0].dim())]
    out = real[0].new_full((len(tensors), *shape), pad)
    for k, t in enumerate(tensors):
        if t is not None:
            out[(k, *(slice(0, n) for n in t.shape))] = t  # type: ignore[index]
    return out


def static_length(n: int) -> int:
    """`n` rounded up to the next of a few static lengths: 4, 5, 6, 7, 8, 10, 12, 14, 16,
    20, ... (four a doubling, so a padded axis grows by at most 25 %, 12 % on average).

    A step replayed from a CUDA graph needs the shapes it was captured at; rounded, a
    corpus's lengths (HuBERT's 50 to 1700 frames) take ~20 values instead of ~1000.

    >>> [static_length(n) for n in (0, 3, 9, 17, 224, 1700)]
    [4, 4, 10, 20, 224, 1792]
    """
    if n <= 4:
        return 4
    shift = max(n.bit_length() - 3, 0)  # keep the top three bits: 4..7 a doubling
    return -(-n >> shift) << shift


class StackedSides:
    """The members' sides (all train, all val or all test) of one stacked run, gathered
    into stacked batches directly: a few device operations per step whatever K is,
    instead of K batches built and then stacked. Member k's slot of each batch is
    exactly the batch its own `Batches` builds (same positions, padded further).

    With `static`, every padded axis takes one of a few sizes (`static_length`; the batch
    axis the sides' batch size), so steps repeat shapes as a CUDA graph needs; a
    member's outputs do not depend on its padding.

    All sides must come from one `TrainData` with the same inputs and unit (one run).
    """

    def __init__(self, sides: Sequence[Batches], static: bool = False) -> None:
        first = sides[0]
        self.static = static
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

    def epoch(self, active: Sequence[bool]) -> Iterator[tuple[list[bool], Batch]]:
        """One epoch of the active members: (which members have a batch, the batch).

        The epoch's positions go to the device in one copy (a copy per step would make
        the host wait for the device at every step)."""
        plans = [side.plans() if a else [] for side, a in zip(self.sides, active, strict=True)]
        steps = [
            [p[step] if step < len(p) else None for p in plans]
            for step in range(max((len(p) for p in plans), default=0))
        ]
        arrays = [
            self._static(_pad_positions([None if p is None else p.positions for p in now]))
            for now in steps
        ]
        if not arrays:
            return
        # Each step's per-member extents ride along (random draws need them on the device).
        sizes = [self.sizes(now) for now in steps]
        extents = [
            np.asarray([own_extents(axis, n) for axis, n in s.items()], dtype=np.int64)
            for s in sizes
        ]  # [axes, K] each
        flat = torch.from_numpy(
            np.concatenate([a.ravel() for pair in zip(arrays, extents, strict=True) for a in pair])
        ).to(self.device)
        start = 0
        for now, array, size, ext in zip(steps, arrays, sizes, extents, strict=True):
            pos = flat[start : start + array.size].view(array.shape)  # [K, B] or [K, B, U]
            start += array.size
            on_device = flat[start : start + ext.size].view(ext.shape)  # [axes, K]
            start += ext.size
            batch = self.gather(now, pos, size)
            batch.extents = dict(zip(size, on_device, strict=True))
            yield [plan is not None for plan in now], batch

    def _static(self, positions: np.ndarray) -> np.ndarray:
        """`positions` [K, B] or [K, B, U] padded (-1) to the static shape (`static`)."""
        if not self.static:
            return positions
        rows = max(side.rows for side in self.sides)  # a side scored whole: its size
        shape = (positions.shape[0], max(rows, positions.shape[1]),
                 *(static_length(n) for n in positions.shape[2:]))  # fmt: skip
        out = np.full(shape, -1, dtype=np.int64)
        out[tuple(slice(0, n) for n in positions.shape)] = positions
        return out

    def sizes(self, plans: Sequence[StepPlan | None]) -> dict[str, list[int]]:
        """Each member's own extent of every named axis this step (`Batch.sizes`)."""
        out = {"batch": [0 if p is None else len(p.positions) for p in plans]}
        for spec in self.specs:
            if spec.view == "sequence":
                out[spec.name] = [0 if p is None else p.lengths[spec.name] for p in plans]
        if self.unit == "dialog":
            out["utt"] = [0 if p is None else int(p.positions.shape[1]) for p in plans]
        return out

    def gather(
        self,
        plans: Sequence[StepPlan | None],
        pos: torch.Tensor,
        sizes: dict[str, list[int]] | None = None,
    ) -> Batch:
        """The stacked batch of the members' plans for one step (None: no batch), their
        positions `pos` already on the device; `sizes`: `self.sizes(plans)` if known."""
        valid = pos >= 0
        safe = pos.clamp_min(0)
        x = {name: self._vector(name, safe, valid) for name in self.vector_names}
        mask: dict[str, torch.Tensor] = {}
        sizes = sizes or self.sizes(plans)
        for spec in self.specs:
            if spec.view == "sequence":
                t_max = max(sizes[spec.name])
                t_max = static_length(t_max) if self.static else t_max
                x[spec.name], mask[spec.name] = self._sequence(spec.name, safe, valid, t_max)
        data = self.data
        return Batch(
            x=x,
            mask=mask,
            labels=torch.where(valid, data.labels_t[safe], -100),
            index=torch.where(valid, data.manifest_rows_t[safe], -1),
            utt_mask=valid if self.unit == "dialog" else None,
            sizes=sizes,
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


class IterSides:
    """Any iterables of one-member batches, stacked step by step (`stack_batches`): the
    general path, for sides that are not `Batches` of one run."""

    def __init__(self, sides: Sequence[Iterable[Batch]]) -> None:
        self.sides = list(sides)

    def epoch(self, active: Sequence[bool]) -> Iterator[tuple[list[bool], Batch]]:
        iters = [iter(s) if a else None for s, a in zip(self.sides, active, strict=True)]
        while True:
            batches = [None if it is None else next(it, None) for it in iters]
            if all(b is None for b in batches):
                return
            yield [b is not None for b in batches], stack_batches(batches)


Sides = StackedSides | IterSides


def sides_of(sides: Sequence[Iterable[Batch]], static: bool = False) -> Sides:
    """The members' sides, gathered directly where they are `Batches` of one run (with
    `static`, at static shapes: `StackedSides`; other sides cannot be)."""
    if all(isinstance(s, Batches) for s in sides):
        first = sides[0]
        if all(s.data is first.data and s.specs == first.specs for s in sides):  # type: ignore[attr-defined]
            return StackedSides(sides, static)  # type: ignore[arg-type]
    if static:
        raise ValueError("static shapes need the sides of one run (`Batches` of one data)")
    return IterSides(sides)


def padded_sizes(batch: Batch) -> dict[str, int]:
    """The stacked batch's padded size of every named axis (`Batch.sizes`' axes; an empty
    sequence counts 1, as in `own_extents`: models pad it to one position)."""
    out = {"batch": int(batch.labels.shape[1])}
    out.update({name: max(1, int(mask.shape[2])) for name, mask in batch.mask.items()})
    if batch.utt_mask is not None:
        out["utt"] = int(batch.labels.shape[2])
    return out
