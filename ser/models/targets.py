"""A run's targets (`ser.heads.targets.Targets`) and the attribute losses, which live with
the heads, under the names the models have always read them by; `split` of a model's
logits into the category's and the attributes'."""

from __future__ import annotations

import torch

from ser.heads.attributes import ATTRIBUTE_LOSSES, EPS, attribute_loss, ccc_loss
from ser.heads.targets import LABELS, TARGETS, Targets

__all__ = [
    "ATTRIBUTE_LOSSES",
    "EPS",
    "LABELS",
    "TARGETS",
    "Targets",
    "attribute_loss",
    "ccc_loss",
    "split",
]


def split(logits: torch.Tensor, n_attributes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., C + A] -> class logits [..., C], attribute predictions [..., A]."""
    c = logits.shape[-1] - n_attributes
    return logits[..., :c], logits[..., c:]
