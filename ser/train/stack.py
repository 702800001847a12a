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

from collections.abc import Sequence

import torch

from ser.train.batch import Batch


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
            out[(k, *(slice(0, n) for n in t.shape))] = t
    return out
