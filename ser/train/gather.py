"""The tensors of one planned batch, gathered on the device from the run's tables
(`gather`): a member's batch, or leading with K, a stack's (`ser.train.batches`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import overload

import torch

from ser.models.batch import Batch, InputSpec, Unit
from ser.train.data import TrainData, ZScore


def gather(
    data: TrainData,
    specs: Sequence[InputSpec],
    unit: Unit,
    pos: torch.Tensor,
    lengths: Mapping[str, int],
    zscores: Mapping[str, ZScore],
    views: torch.Tensor | None = None,
) -> Batch:
    """The batch of positions `pos` (on the device; [B], [B, U] or, stacked, [K, B] or
    [K, B, U]; -1: padding). `lengths`: each sequence view's padded length; `zscores`: of
    the z-scored sets (leading with K when stacked); `views`: the view each position reads
    (`--views`, shaped as `pos`; None: the clean sets). Padding is zeros, masks False,
    labels -100, index -1. A layered input's tensors have [L, D] where others have [D]."""
    valid = pos >= 0
    safe = pos.clamp_min(0)
    x: dict[str, torch.Tensor] = {}
    mask: dict[str, torch.Tensor] = {}
    for spec in specs:
        table, norm = data.features[spec.name], zscores.get(spec.name)
        # A table without views (a text input) reads its clean rows whatever was drawn.
        where, at = None, safe
        if views is not None and table.views is not None:  # slots of its [V, n] views
            where, at = table.views, views * len(table.lengths_np) + safe
        if spec.gathered == "vector":
            if table.row_vectors:  # a streamed utterance-level set: a row an utterance
                first = table.starts[at] if where is None else where.starts.view(-1)[at]
                rows = table.rows(first).float()  # [..., D] or [..., L, D]
            else:
                vectors = table.vectors if where is None else table.view_vectors.flatten(0, 1)
                rows = vectors.index_select(0, at.flatten()).view(*at.shape, *vectors.shape[1:])
            x[spec.name] = _normed(rows, norm).masked_fill_(~spread(valid, rows), 0.0)
            continue
        if where is None:
            first, count = table.starts[safe], table.lengths[safe]
        else:
            first, count = where.starts.view(-1)[at], where.lengths.view(-1)[at]
        steps = torch.arange(lengths[spec.name], device=pos.device)  # [T]
        seq_mask = steps < torch.where(valid, count, 0).unsqueeze(-1)  # [.., T]
        rows = torch.where(seq_mask, first.unsqueeze(-1) + steps, 0)  # [.., T]
        seq = _normed(table.rows(rows).float(), norm)  # [..., T, D] or [..., T, L, D]
        x[spec.name], mask[spec.name] = seq * spread(seq_mask, seq), seq_mask
    return Batch(
        x=x,
        mask=mask,
        labels=torch.where(valid, data.labels_t[safe], -100),
        index=torch.where(valid, data.manifest_rows_t[safe], -1),
        utt_mask=valid if unit == "dialog" else None,
        targets=_rows(data.targets_t, safe, valid, math.nan),  # [..., A]
        soft=_rows(data.soft_t, safe, valid, 0.0),  # [..., C]
        gold={n: _rows(g, safe, valid, math.nan) for n, g in data.gold_t.items()},  # [..., G]
    )


@overload
def _rows(
    table: torch.Tensor, safe: torch.Tensor, valid: torch.Tensor, pad: float
) -> torch.Tensor: ...
@overload
def _rows(table: None, safe: torch.Tensor, valid: torch.Tensor, pad: float) -> None: ...
def _rows(
    table: torch.Tensor | None, safe: torch.Tensor, valid: torch.Tensor, pad: float
) -> torch.Tensor | None:
    """`table` [n, W]'s rows at positions `safe` [...] -> [..., W], `pad` where not `valid`."""
    return None if table is None else torch.where(valid.unsqueeze(-1), table[safe], pad)


def spread(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`mask` [...] with a trailing 1 for each further dimension of `x` ([..., D], [..., L, D])."""
    return mask.view(*mask.shape, *[1] * (x.dim() - mask.dim()))


def _normed(x: torch.Tensor, norm: ZScore | None) -> torch.Tensor:
    """`x` [..., D] z-scored (member k's statistics in slot k of a stack)."""
    if norm is None:
        return x
    mean, std = norm.mean, norm.std
    shape = (*mean.shape[:-1], *[1] * (x.dim() - mean.dim()), mean.shape[-1])
    return (x - mean.view(shape)) / std.view(shape)
