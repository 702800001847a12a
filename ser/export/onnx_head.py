"""The model head as one ONNX graph: the members' average from the stored features.

Its inputs are each model input's features as `ser extract` stores them, in float32
(`<input>`: [batch, rows, D], a layered input [batch, rows, L, D]; rows 1 for an
utterance-level set) and each utterance's row count (`<input>.lengths`: [batch] int64);
batch and rows are dynamic. Inside: the rounding to the set's stored dtype (float16 sets
are read back as float16 is), padding masked, each member's z-score, its forward pass,
softmax and the attributes on the corpus's scale, then the members' mean: the
`probabilities` [batch, C] and `attributes` [batch, A] `ser predict` averages, in float32.

A family exports when its forward is a graph of tensors: the dialog-context model
(a run's conversations, its Bi-GRU stepping over turns in Python) does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ser.errors import ConfigError
from ser.models.batch import Batch, InputSpec
from ser.models.registry import family_of
from ser.train.checkpoint import Checkpoint

#: torch's dtype of a stored set's dtype (what `memory_data` casts extracted rows to).
STORED = {"float16": torch.float16, "bfloat16": torch.bfloat16}
#: The graph's output of each head it holds.
OUTPUTS = {"emotion": "probabilities", "attributes": "attributes"}
#: Example shapes the graph is traced with (never 0 or 1: those would be fixed).
EXAMPLE_BATCH, EXAMPLE_ROWS = 2, 3


def head_names(ckpt: Checkpoint) -> tuple[list[str], list[str]]:
    """The graph's input and output names."""
    inputs = [n for s in ckpt.specs for n in (s.name, f"{s.name}.lengths")]
    return inputs, [OUTPUTS[h.name] for h in ckpt.targets.heads if h.name in OUTPUTS]


def refusal(ckpt: Checkpoint) -> str | None:
    """Why this model cannot export to ONNX (None: it can)."""
    family = family_of(ckpt.model).name
    if further := [h.name for h in ckpt.targets.heads if h.name not in OUTPUTS]:
        return (
            f"the graph holds the category and the attributes: a run with the further "
            f"head(s) {', '.join(further)} does not export to ONNX (ser predict --model "
            "runs its export with torch)"
        )
    if ckpt.unit == "dialog":
        return (
            f"the dialog-context model ({family}, unit dialog) does not export to ONNX: its "
            "Bi-GRU steps over a conversation's turns in Python, which the exporter unrolls "
            "to the one dialog length it traces"
        )
    return None


class Head(nn.Module):
    """The members' mean (module docstring); `forward(*tensors)` in `head_names` order."""

    def __init__(self, ckpts: Sequence[Checkpoint]) -> None:
        super().__init__()
        first = ckpts[0]
        self.specs: tuple[InputSpec, ...] = first.specs
        self.dtypes = [_stored_dtype(first, s) for s in first.specs]
        self.n_classes, self.n_attributes = len(first.classes), len(first.targets.attributes)
        self.members = nn.ModuleList(_member(c) for c in ckpts)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        xs, lengths = tensors[0::2], tensors[1::2]
        masks = [_mask(x, n) for x, n in zip(xs, lengths, strict=True)]  # [B, T] each
        rounded = [
            x.to(d).float() if d is not None else x for x, d in zip(xs, self.dtypes, strict=True)
        ]
        made = [m(rounded, masks) for m in self.members]
        out = []
        if self.n_classes:
            out.append(torch.stack([p for p, _ in made]).mean(dim=0))  # [B, C]
        if self.n_attributes:
            out.append(torch.stack([a for _, a in made]).mean(dim=0))  # [B, A]
        return tuple(out)


class _Member(nn.Module):
    """One checkpoint: z-score, forward, softmax and attribute scale."""

    def __init__(self, ckpt: Checkpoint) -> None:
        super().__init__()
        model: Any = ckpt.build("cpu")  # Any: a family's model, given an attribute here
        model.eval_mask = ckpt.model.eval_mask  # as `ser predict` tests it (Table 3's masks)
        self.model = model
        self.specs = ckpt.specs
        self.n_attributes = len(ckpt.targets.attributes)
        self.targets, self.n_classes = ckpt.targets, len(ckpt.classes)
        self.temperature = ckpt.temperature  # 1.0: no division in the graph
        for i, spec in enumerate(self.specs):
            z = ckpt.zscore.get(spec.name)
            self.register_buffer(f"mean{i}", None if z is None else z.mean.float())
            self.register_buffer(f"std{i}", None if z is None else z.std.float())
        scale = ckpt.target_scale
        for name in ("mean", "std", "low", "high"):
            self.register_buffer(
                f"target_{name}", None if scale is None else getattr(scale, name).float()
            )

    def forward(
        self, xs: list[torch.Tensor], masks: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = {}, {}
        for i, (spec, rows, keep) in enumerate(zip(self.specs, xs, masks, strict=True)):
            mean, std = getattr(self, f"mean{i}"), getattr(self, f"std{i}")
            spread = keep.view(*keep.shape, *[1] * (rows.dim() - 2))  # [B, T, 1(, 1)]
            if spec.view == "vector":  # the mean of the raw rows, then the z-score
                total = (rows * spread).sum(dim=1)  # [B, (L,) D]
                vec = total / spread.sum(dim=1).clamp_min(1)
                x[spec.name] = vec if mean is None else (vec - mean) / std
                continue
            seq = rows if mean is None else (rows - mean) / std
            x[spec.name], mask[spec.name] = seq * spread, keep
        batch = xs[0].shape[0]
        index = torch.zeros(batch, dtype=torch.long)
        logits = self.model(Batch(x=x, mask=mask, labels=index, index=index)).logits.float()
        classes, values = self.targets.category_attributes(logits, self.n_classes)
        if self.temperature != 1.0:  # --calibrate temperature's, fitted on validation
            classes = classes / self.temperature
        probs = torch.softmax(classes, dim=-1)
        if self.n_attributes:
            scale = [getattr(self, f"target_{n}") for n in ("mean", "std", "low", "high")]
            mean, std, low, high = scale  # [A] each, on the corpus's scale
            values = torch.clamp(values * std + mean, low, high)
        return probs, values


def _member(ckpt: Checkpoint) -> _Member:
    return _Member(ckpt).eval()


def _mask(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T] True where a row is real."""
    return torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)


def _stored_dtype(ckpt: Checkpoint, spec: InputSpec) -> torch.dtype | None:
    dtype = str(ckpt.features[ckpt.stored(spec)[0]]["attrs"].get("dtype", "float32"))
    return STORED.get(dtype)


def example_inputs(ckpt: Checkpoint) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with: `EXAMPLE_BATCH` utterances of `EXAMPLE_ROWS` rows each."""
    tensors: list[torch.Tensor] = []
    for spec in ckpt.specs:
        shape = (EXAMPLE_BATCH, EXAMPLE_ROWS, *([spec.layers] if spec.layers > 1 else []), spec.dim)
        tensors += [torch.randn(*shape), torch.tensor([EXAMPLE_ROWS, EXAMPLE_ROWS - 1])]
    return tuple(tensors)


def export_head(ckpts: Sequence[Checkpoint], path: Path) -> dict[str, Any]:
    """Write the head graph to `path`; what config.json says of it."""
    why = refusal(ckpts[0])
    if why is not None:
        raise ConfigError(f"--onnx: {why}")
    from ser.export.onnx_io import save_onnx

    head = Head(ckpts).eval()
    batch = torch.export.Dim("batch")
    shapes: list[dict[int, Any]] = []
    for _spec in ckpts[0].specs:
        rows = torch.export.Dim(f"rows_{len(shapes) // 2}")
        shapes += [{0: batch, 1: rows}, {0: batch}]
    inputs, outputs = head_names(ckpts[0])
    save_onnx(head, example_inputs(ckpts[0]), (tuple(shapes),), inputs, outputs, path)
    return {
        "file": path.name,
        "inputs": {n: _input_note(n, ckpts[0]) for n in inputs},
        "outputs": outputs,
        "members": [c.key for c in ckpts],
        "precision": "fp32",
    }


def _input_note(name: str, ckpt: Checkpoint) -> str:
    if name.endswith(".lengths"):
        return "[batch] int64: each utterance's rows"
    spec = next(s for s in ckpt.specs if s.name == name)
    layers = f"{spec.layers}, " if spec.layers > 1 else ""
    return f"[batch, rows, {layers}{spec.dim}] float32: the set's rows as stored (zero padding)"
