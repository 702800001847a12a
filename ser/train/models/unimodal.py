"""A unimodal baseline for any single feature set: the utterance vector -> 2-layer MLP.

Frame- and token-level sets arrive mean-pooled (the "vector" view), utterance-level sets
as they are, so every set is comparable under one small model:

    x [B, D] -> Linear(D, d) -> ReLU -> Dropout -> Linear(d, C) -> logits [B, C]

Defaults (ours): d 256, dropout 0.2. For sequence models of one modality use MSMSER with
one feature set (the paper's Text / Audio rows), for the fusion study's unimodal
framework (Bi-GRU + self-attention over the dialog) `fusion="none", context=True`.
"""

from __future__ import annotations

from ser.train.batch import Batch, InputSpec
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import ModelConfig, need
from ser.train.nn.layers import MLP


class UnimodalMLP(SerModel):
    """Mean-pooled features of one set -> MLP."""

    def __init__(self, config: ModelConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs, n_classes, unit="utterance")
        self.name = inputs[0].name
        self.mlp = MLP(inputs[0].dim, need(config.d_model), n_classes, need(config.dropout))

    def forward(self, batch: Batch) -> ModelOutput:
        return ModelOutput(self.mlp(batch.x[self.name]))  # [B, D] -> [B, C]
