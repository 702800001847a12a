"""`SerModel`, the base of every model family, and `ModelOutput`.

Every model is stacked: it holds K members (`configs`, one `ModelConfig` each), K
independent models of the same shapes whose weights lead with the member dimension
(`ser.train.nn`). K = 1 is one model. Members may differ in every option that leaves
shapes alone (dropout, RMM and its schedule, eval masking); `shape_key` says which
configs can share a model.

A model declares its inputs (`InputSpec`s with views) and its unit ("utterance" or
"dialog"); `forward(batch)` returns `ModelOutput(logits, aux)`, `loss(output, batch)`
each member's training loss [K], `set_epoch(epoch, total)` advances schedules (RMM) and
`eval_mask` drops one modality at evaluation time, per member (only where the family
supports it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ser.errors import ConfigError
from ser.train.batch import Batch, InputSpec
from ser.train.losses import member_cross_entropy, member_perspective_loss
from ser.train.nn.noise import Dropper, Noise, Streams
from ser.train.stack import stack_batches

if TYPE_CHECKING:
    from ser.train.models.config import ModelConfig

# Options that change no shape and no code path: members of one stacked model may differ.
MEMBER_OPTIONS = frozenset({"dropout", "rmm", "rmm_p0", "rmm_end", "rmm_text", "eval_mask"})


def shape_key(config: ModelConfig) -> tuple[object, ...]:
    """Configs with equal keys can be members of one stacked model."""
    return tuple(
        (f.name, getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name not in MEMBER_OPTIONS
    )


@dataclass
class ModelOutput:
    """logits: [K, B, C] (utterance unit) or [K, B, U, C] (dialog unit).

    aux: modality ("audio" / "text") -> the logits of that modality's own head, same
    shape as `logits`; used by the perspective loss and for per-modality metrics. Empty
    for families without per-modality heads.
    """

    logits: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


def call_unstacked(module: nn.Module, batch: Batch, dropout: list[float]) -> ModelOutput:
    """A one-member module on that member's own (unstacked) batch: stacked, run, unstacked;
    dropout drawn from torch's global generator (so `torch.manual_seed` fixes it)."""
    stacked = stack_batches([batch])
    if module.training:
        seed = int(torch.randint(0, 2**62, ()))
        streams = Streams([torch.Generator().manual_seed(seed)])
        stacked.noise = Noise(streams, stacked.sizes or {})
    out = nn.Module.__call__(module, stacked)
    return ModelOutput(out.logits[0], {m: v[0] for m, v in out.aux.items()})


def unstacked_loss(module: nn.Module, out: ModelOutput, batch: Batch) -> torch.Tensor:
    """`module.loss` of one member's own batch and output: a scalar."""
    one = ModelOutput(out.logits[None], {m: v[None] for m, v in out.aux.items()})
    return module.loss(one, stack_batches([batch]))[0]  # type: ignore[operator]


class SerModel(nn.Module):
    """Base class: members, bookkeeping, the loss, and the eval-mask switch."""

    #: `loss` gives each member's mean over its labelled items; True: the loop trains on
    #: that mean times their number (the sum), as a paper whose loss is a sum does.
    summed_loss: bool = False

    def __init__(
        self, configs: Sequence[ModelConfig], inputs: list[InputSpec], n_classes: int, unit: str
    ) -> None:
        super().__init__()
        if not configs:
            raise ValueError("a model needs at least one member config")
        keys = {shape_key(c) for c in configs}
        if len(keys) > 1:
            raise ConfigError("members of one stacked model must share every shape option")
        self.configs: tuple[ModelConfig, ...] = tuple(configs)
        self.config = configs[0]  # the shape options every member shares
        self.members = len(configs)
        self.inputs: tuple[InputSpec, ...] = tuple(inputs)
        self.n_classes = n_classes
        self.unit = unit
        self.maskable: frozenset[str] = frozenset()  # modalities eval_mask may name
        self._eval_mask: tuple[str | None, ...] = (None,) * self.members

    @property
    def dropout_p(self) -> list[float]:
        return [float(c.dropout or 0.0) for c in self.configs]

    def drop(self, batch: Batch) -> Dropper:
        """This forward's dropout: each member's p, masks from the batch's noise."""
        return Dropper(batch.noise if self.training else None, self.dropout_p)

    @property
    def eval_mask(self) -> tuple[str | None, ...]:
        """Per member, a modality dropped from every sample in eval mode (MSMSER's
        Table 3), or None."""
        return self._eval_mask

    @eval_mask.setter
    def eval_mask(self, value: str | Sequence[str | None] | None) -> None:
        values = (
            (value,) * self.members if value is None or isinstance(value, str) else tuple(value)
        )
        if len(values) != self.members:
            raise ValueError(f"{len(values)} eval masks for {self.members} members")
        for v in values:
            if v is not None and v not in self.maskable:
                allowed = ", ".join(sorted(self.maskable)) or "none"
                raise ConfigError(
                    f"eval mask {v!r} is not possible for this model "
                    f"(fusion {self.config.fusion!r}, inputs "
                    f"{', '.join(s.name for s in self.inputs)}); maskable modalities: {allowed}"
                )
        self._eval_mask = values

    def spec(self, modality: str) -> InputSpec:
        """The input of one modality (families taking one set per modality)."""
        for spec in self.inputs:
            if spec.modality == modality:
                return spec
        raise KeyError(modality)

    def __call__(self, batch: Batch) -> ModelOutput:
        """The stacked batch's outputs; a one-member model also takes that member's own
        (unstacked) batch and returns unstacked outputs, its dropout drawn from torch's
        global generator (so `torch.manual_seed` fixes it)."""
        if batch.sizes is not None:
            return super().__call__(batch)
        if self.members != 1:
            raise ValueError(f"a model of {self.members} members takes stacked batches")
        return call_unstacked(self, batch, self.dropout_p)

    def forward(self, batch: Batch) -> ModelOutput:
        raise NotImplementedError

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        """Each member's loss [K]: cross-entropy (ignore_index -100), or the perspective
        loss when configured. An unstacked batch and output (one member): a scalar."""
        if batch.sizes is None:
            return unstacked_loss(self, out, batch)
        if self.config.loss == "perspective":
            return member_perspective_loss(
                out.logits, out.aux["audio"], out.aux["text"], batch.labels
            )
        return member_cross_entropy(out.logits, batch.labels)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called by the loop before each training epoch (0-based); no-op by default."""
        return None

    def step_signature(self) -> tuple[Hashable, ...]:
        """The model's own state that decides which operators a training step runs
        (beyond its batch's shapes): a step replayed from a CUDA graph is captured per
        signature (`ser.train.capture`). None by default."""
        return ()

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Training stages run, in order, before the whole model is trained: (name, module
        the loop trains with model selection). None by default."""
        return []
