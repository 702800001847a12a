"""A unimodal baseline for any single feature set: the utterance vector -> 2-layer MLP.

Frame- and token-level sets arrive mean-pooled (the "vector" view), utterance-level sets
as they are, so every set is comparable under one small model:

    x [B, D] -> Linear(D, d) -> ReLU -> Dropout -> Linear(d, C) -> logits [B, C]

Defaults (ours): d 256, dropout 0.2. For sequence models of one modality use MSMSER with
one feature set (the paper's Text / Audio rows), for the fusion study's unimodal
framework (Bi-GRU + self-attention over the dialog) `fusion="none", context=True`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ser.models.base import ModelOutput, SerModel
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import FamilyConfig, FeatureInfo, TrainDefaults, option, specs
from ser.models.nn.blocks import MLP
from ser.models.registry import Family
from ser.runtime.cost import FamilyCost


@dataclass(frozen=True)
class UnimodalConfig(FamilyConfig):
    """Our baseline, an MLP on one mean-pooled feature set: --fusion none."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {"none": ()}
    d_model: int = option(256, "Hidden width of the MLP (ours).", least=1)
    dropout: float = option(0.2, "Dropout (ours).", least=0.0, below=1.0)

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        """Exactly one set, as utterance vectors (frame- and token-level sets mean-pooled)."""
        self.check_sets(features, "one")
        return "utterance", specs(features, "vector")


class UnimodalMLP(SerModel):
    """Mean-pooled features of one set -> MLP."""

    def __init__(self, config: UnimodalConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        self.mlp = MLP(inputs[0].dim, config.d_model, n_classes, config.dropout)

    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(self.mlp(batch.x[self.inputs[0].name]))  # [B, D] -> [B, C]


# What it costs to train on the 2-core CPU (benchmarks/README.md, "How should a run's
# members share the CPU?"; `ser.runtime.execution` reads it).
COST = FamilyCost(
    # Members stacked in one model (one batched matmul) gained at 768 input dims, broke
    # even at 1024 (36.0 s against 36.7 one after another, 10 members) and lost from 2048
    # (90.3 against 49.4 s): wider, the matrix products dominate and a stack only adds
    # copies.
    stack_width=1024,
    # An utterance-epoch's seconds in one process: 1.25e-5 at 768 dims, 9.6e-5 at 6373.
    rate=(1e-6, 1.5e-8),
    # A process's start-up (~4 s) is paid for from ~50 s of training at its gain from
    # processes.
    min_seconds=50.0,
    # A second thread is worth ~1.7x on 6373 dims (3 members: 2 processes 51.4 s against
    # one process 46.9 s; 20: 266.6 against 319.8). Sweep cells one per process: unmeasured.
    thread_gain=1.7,
)
# The suite's small MLP (`Family.tiny`): dropout off.
TINY = {"fusion": "none", "d_model": 8, "dropout": 0.0}
FAMILY = Family(
    "unimodal", UnimodalConfig, UnimodalMLP, TrainDefaults(50, 32, 1e-3, 1e-5), COST, tiny=TINY
)
