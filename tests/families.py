"""A model family of the tests' own, kept outside ser as a user's would be (the family of
docs/dev/add-family.md, "A family of your own"): a config dataclass, a plain model class
and a `Family`. The tests register it, or a variant of it (`replace(FAMILY, ...)`), with
its one line through the `new_family` fixture (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ser.models import Family, FamilyConfig, FeatureInfo, ModelOutput, SerModel, TrainDefaults
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import option, specs
from ser.models.nn.blocks import MLP


@dataclass(frozen=True)
class MeanLogitsConfig(FamilyConfig):
    """An MLP per feature set, their logits averaged: --fusion mean-logits."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {"mean-logits": ()}
    hidden: int = option(8, "Hidden width of each set's MLP.", least=1)
    dropout: float = option(0.1, "Dropout.", least=0.0, below=1.0)

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        return "utterance", specs(features, "vector")  # any sets, mean-pooled


class MeanLogits(SerModel):
    """x[set] [B, D_set] -> MLP -> [B, C], averaged over the sets."""

    def __init__(self, config: MeanLogitsConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        self.mlps = nn.ModuleList(
            MLP(s.dim, config.hidden, n_classes, config.dropout) for s in inputs
        )

    def forward(self, batch: Batch) -> ModelOutput:
        logits = [mlp(batch.x[s.name]) for mlp, s in zip(self.mlps, self.inputs, strict=True)]
        return ModelOutput(torch.stack(logits).mean(dim=0))  # [B, C]


#: Stating no cost (`FamilyCost()`) and no `tiny`: the tests that need them replace them.
FAMILY = Family("mean_logits", MeanLogitsConfig, MeanLogits, TrainDefaults(3, 8, 1e-2, 0.0))
