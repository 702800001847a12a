"""`SerModel`, the base of every model family, and `ModelOutput`.

A model is one plain PyTorch module, one member, knowing nothing of stacking: many members
train at once through `ser.train.ensemble`, so a forward pass must run under
`torch.func.vmap` unchanged (what that asks of it: `ser.models.nn`, docs/CONTRACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ser.cache.fingerprint import MODALITIES
from ser.models.batch import Batch, InputSpec
from ser.models.config import FamilyConfig
from ser.models.losses import cross_entropy, perspective_loss


@dataclass
class ModelOutput:
    """logits: [B, C] (utterance unit) or [B, U, C] (dialog unit); aux: modality -> the
    logits of its own head, shaped alike, for the perspective loss (else empty)."""

    logits: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


class SerModel(nn.Module):
    """Base class: inputs, the loss, the eval-mask switch, schedules and stages."""

    #: `loss` gives the mean over the labelled items; True: the loop trains on that mean
    #: times their number (the sum), as a paper whose loss is a sum does.
    summed_loss: bool = False

    def __init__(self, config: FamilyConfig, inputs: list[InputSpec]) -> None:
        super().__init__()
        self.config = config
        self.inputs: tuple[InputSpec, ...] = tuple(inputs)
        self.modalities = [m for m in MODALITIES if any(s.modality == m for s in inputs)]
        # A modality dropped from every sample in eval mode (MSMSER's Table 3), or None; the
        # loop sets it around a test. Its config and `plan_inputs` have checked the value.
        self.eval_mask: str | None = config.eval_mask

    def spec(self, modality: str) -> InputSpec:
        """The input of one modality (families taking one set per modality)."""
        for spec in self.inputs:
            if spec.modality == modality:
                return spec
        raise KeyError(modality)

    def forward(self, batch: Batch) -> ModelOutput:
        raise NotImplementedError

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        """Cross-entropy (ignore_index -100), or the perspective loss when configured."""
        if self.config.loss == "perspective":
            return perspective_loss(out.logits, out.aux["audio"], out.aux["text"], batch.labels)
        return cross_entropy(out.logits, batch.labels)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Called by the loop before each training epoch (0-based); no-op by default."""

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Training stages run, in order, before the whole model is trained: (name, module
        whose parameters are some of this model's, with `forward`, `loss`, `set_epoch`
        and `eval_mask` as here). None by default."""
        return []
