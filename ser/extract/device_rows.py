"""A batch's hidden states made ready for the store on the device that computed them:
each set's rows cast to its stored dtype, the pooled views, the finite checks; then one
copy of it all to the host, into pinned memory and without waiting for the GPU, that the
writer resolves (`Pending.result`) while the GPU computes the next batch.

A GPU that hands each utterance's rows to the host one at a time, in float32 and from
pageable memory, waits for every copy; pooling and checks in numpy then hold the thread
that should be launching the next batch. Here the host sees a batch once, padded rows
and all, and slices it.

>>> import torch
>>> from ser.extract.base import FeatureSetSpec
>>> specs = [FeatureSetSpec("m.L1", {"layer": 1, "dtype": "float16"}),
...          FeatureSetSpec("m.L1.mean", {"layer": 1, "dtype": "float16", "pool": "mean"})]
>>> states = torch.ones(2, 1, 3, 4)  # [B, L, T, D]
>>> out = finish_states(specs, (1,), states, [3, 2]).result()
>>> out.rows[1]["m.L1"].shape, out.rows[1]["m.L1.mean"].tolist(), out.problems[1]
((2, 4), [[1.0, 1.0, 1.0, 1.0]], {})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ser.extract.base import FeatureSetSpec, Outputs, Pending

if TYPE_CHECKING:
    import torch

NOT_FINITE = "the model produced NaN or infinite values"
NO_ROWS = "no feature rows: input too short?"


def beyond(dtype: str) -> str:
    """Why rows finite in float32 cannot be stored in `dtype`."""
    return f"values beyond the {dtype} range"


@dataclass(frozen=True)
class Hidden:
    """A batch's chosen hidden states, padded: `states` [B, L, T, D] and each input's
    real rows (`lengths`, T_i <= T)."""

    states: torch.Tensor
    lengths: list[int]


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """`array` on `device`; to a GPU through pinned memory without waiting for it (a copy
    from pageable memory waits for every kernel queued before it)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def pad_states(states: Sequence[torch.Tensor]) -> torch.Tensor:
    """B x [L, T_i, D] -> [B, L, T, D], zeros after each input's rows."""
    from torch.nn.utils.rnn import pad_sequence

    return pad_sequence([s.transpose(0, 1) for s in states], batch_first=True).transpose(1, 2)


def row_mask(lengths: Sequence[int], rows: int, device: torch.device) -> torch.Tensor:
    """[B, T] True at each input's first lengths[b] rows."""
    import torch

    counts = to_device(np.asarray(lengths, dtype=np.int64), device)
    return torch.arange(rows, device=device)[None] < counts[:, None]


def finish_states(
    specs: Sequence[FeatureSetSpec],
    layers: Sequence[int],
    states: torch.Tensor,
    lengths: Sequence[int],
) -> Pending:
    """The sets of `specs` (each a layer's rows, or a pooled view of them) from `states`
    [B, L, T, D] (`layers[l]` the hidden state in slot l), checked and cast on their
    device, on their way to the host."""
    import torch

    dtype = _one_dtype(specs)
    slot = {int(layer): i for i, layer in enumerate(layers)}
    valid = row_mask(lengths, states.shape[2], states.device)  # [B, T]
    frames = [spec for spec in specs if not spec.attrs.get("pool")]
    pools = [spec for spec in specs if spec.attrs.get("pool")]
    raw = _layers(states, [slot[int(s.attrs["layer"])] for s in frames])  # [B, R, T, D]
    rows = raw.to(getattr(torch, dtype))
    inside = valid[:, None, :, None]  # [B, 1, T, 1]
    bad = [_nonfinite(raw, inside), _nonfinite(rows, inside)]  # [B, R] each
    views = []
    for spec in pools:
        view = _pooled(states[:, slot[int(spec.attrs["layer"])]], valid, str(spec.attrs["pool"]))
        views.append(view)  # [B, W] float32
        bad = [
            torch.cat([bad[0], ~torch.isfinite(view).all(-1, keepdim=True)], dim=1),
            torch.cat([bad[1], ~torch.isfinite(view.to(rows.dtype)).all(-1, keepdim=True)], 1),
        ]
    widths = [int(view.shape[-1]) for view in views]
    flat = torch.cat(views, dim=-1).to(rows.dtype) if views else rows.new_zeros(len(lengths), 0)
    codes = (bad[0] | bad[1]).to(torch.uint8) + bad[0].to(torch.uint8)  # 0 ok, 1 cast, 2 model
    host = [_to_host(t) for t in (rows, flat, codes)]
    event = _recorded(states.device)
    names = [s.name for s in frames] + [s.name for s in pools]

    def finish() -> Outputs:
        if event is not None:
            event.synchronize()
        return _outputs(names, len(frames), widths, host, list(lengths), dtype)

    return Pending(finish)


def _layers(states: torch.Tensor, slots: list[int]) -> torch.Tensor:
    """states [B, L, T, D] at `slots` on axis 1: a view when they run in order, else a
    gather whose index reaches a GPU without waiting (a list index would wait)."""
    first = slots[0] if slots else 0
    if slots == list(range(first, first + len(slots))):
        return states[:, first : first + len(slots)]
    return states.index_select(1, to_device(np.asarray(slots, dtype=np.int64), states.device))


def _one_dtype(specs: Sequence[FeatureSetSpec]) -> str:
    dtypes = {str(spec.attrs.get("dtype", "float32")) for spec in specs}
    if len(dtypes) != 1:
        raise ValueError(f"sets of one batch must share a stored dtype, got {sorted(dtypes)}")
    return dtypes.pop()


def _nonfinite(values: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """[B, R, T, D] -> [B, R]: any non-finite value among each input's real rows."""
    import torch

    return (~torch.isfinite(values) & inside).flatten(2).any(-1)


def _pooled(x: torch.Tensor, valid: torch.Tensor, pool: str) -> torch.Tensor:
    """x [B, T, D] over each input's real rows: mean [B, D], or mean then population std
    [B, 2D], in float32 (as `layer_sets.pooled`)."""
    import torch

    outside = ~valid.unsqueeze(-1)  # [B, T, 1]; masked, not multiplied: NaN x 0 is NaN
    count = valid.sum(dim=1, keepdim=True).float()  # [B, 1]
    values = x.float().masked_fill(outside, 0.0)
    mean = values.sum(dim=1) / count  # [B, D]
    if pool == "mean":
        return mean
    var = (values - mean[:, None]).masked_fill(outside, 0.0).square().sum(dim=1) / count
    return torch.cat([mean, var.sqrt()], dim=-1)


def _to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A host copy of a GPU tensor (pinned, queued behind the kernels that make it); a
    host tensor as it is."""
    import torch

    if tensor.device.type != "cuda":
        return tensor.contiguous()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    return host.copy_(tensor, non_blocking=True)


def _recorded(device: torch.device) -> torch.cuda.Event | None:
    """An event after every copy queued so far on `device`'s stream (None off a GPU)."""
    import torch

    if device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event


def _outputs(
    names: list[str],
    n_frames: int,
    widths: list[int],
    host: list[torch.Tensor],
    lengths: list[int],
    dtype: str,
) -> Outputs:
    """Each input's rows by set (views of the host batch) and why a set failed."""
    rows_h, flat_h, codes_h = (t.numpy() for t in host)
    starts = np.cumsum([0, *widths])
    reasons: dict[int, str] = {1: beyond(dtype), 2: NOT_FINITE}
    rows: list[dict[str, np.ndarray]] = []
    problems: list[dict[str, str]] = []
    for i, n in enumerate(lengths):
        mine: dict[str, np.ndarray] = {}
        for r in range(n_frames):
            mine[names[r]] = rows_h[i, r, :n]
        for p, width in enumerate(widths):
            mine[names[n_frames + p]] = flat_h[i, starts[p] : starts[p] + width].reshape(1, -1)
        failed = {name: reasons[int(c)] for name, c in zip(names, codes_h[i], strict=True) if c}
        if n == 0:
            failed = dict.fromkeys(names, NO_ROWS)
        rows.append({name: v for name, v in mine.items() if name not in failed})
        problems.append(failed)
    return Outputs(rows, problems)
