"""The model families of the three papers behind one API.

    config = ModelConfig(fusion="mit")                      # MSMSER, the paper's settings
    unit, specs = plan_inputs(config, [FeatureInfo(...), ...])  # views the data side builds
    model = build_model(config, specs, n_classes=4, seed=0) # a SerModel: one plain module
    model.set_epoch(epoch, total_epochs)                    # before each training epoch
    out = model(batch)                                      # ModelOutput(logits, aux)
    loss = model.loss(out, batch)
    defaults = train_defaults(config)                       # epochs, batch, lr, ... of the paper

Families (`family_of`, full table in `ser.train.models.config`):
- fusion "mit" -> MSMSER (`msmser.py`); "concat" without fusion_at -> MSMSER w/o MIT;
  one feature set -> the paper's Text / Audio ablation.
- fusion add|concat|attention with fusion_at early|middle|late|logits -> Wu et al.'s
  fusion study (`dialog.py`); fusion "none" with context=True -> its unimodal framework.
- fusion "late-prob" -> Zhou et al. (`late_prob.py`).
- fusion "none" -> a mean-pooled MLP on one feature set (`unimodal.py`).
Impossible combinations raise `ser.errors.ConfigError` naming features, levels, fusion.

>>> import torch
>>> from ser.train.batch import Batch
>>> config = ModelConfig(fusion="mit", d_model=16, heads=2, layers=1, decoder_layers=1, queries=4)
>>> unit, specs = plan_inputs(config, [FeatureInfo("hubert", "audio", "frame", 8),
...                                    FeatureInfo("mpnet", "text", "token", 12)])
>>> model = build_model(config, specs, n_classes=4, seed=0).eval()
>>> batch = Batch(x={"hubert": torch.randn(2, 5, 8), "mpnet": torch.randn(2, 3, 12)},
...               mask={"hubert": torch.ones(2, 5, dtype=torch.bool),
...                     "mpnet": torch.ones(2, 3, dtype=torch.bool)},
...               labels=torch.tensor([0, 3]), index=torch.tensor([0, 1]))
>>> model(batch).logits.shape  # [B, C]
torch.Size([2, 4])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ser.errors import ConfigError
from ser.train.batch import InputSpec
from ser.train.models.base import ModelOutput, SerModel
from ser.train.models.config import (
    FeatureInfo,
    ModelConfig,
    TrainDefaults,
    check_inputs,
    family_of,
    plan_inputs,
    resolve,
    train_defaults,
)
from ser.train.models.dialog import DialogModel
from ser.train.models.late_prob import LateProbFusion
from ser.train.models.msmser import MSMSER
from ser.train.models.unimodal import UnimodalMLP

# family name (`family_of`) -> its model class: adding a family is one file and one line.
FAMILIES: dict[str, Callable[[ModelConfig, list[InputSpec], int], SerModel]] = {
    "msmser": MSMSER,
    "dialog": DialogModel,
    "late_prob": LateProbFusion,
    "unimodal": UnimodalMLP,
}
__all__ = [
    "FAMILIES",
    "FeatureInfo",
    "ModelConfig",
    "ModelOutput",
    "SerModel",
    "TrainDefaults",
    "build_model",
    "family_of",
    "plan_inputs",
    "resolve",
    "train_defaults",
]


def build_model(
    config: ModelConfig, inputs: list[InputSpec], n_classes: int, seed: int | None = None
) -> SerModel:
    """The family's model for these inputs (as `plan_inputs` returned them), initialised
    from `seed` (None: from torch's global generator, so `torch.manual_seed` fixes it)
    without touching the global generator's state."""
    if n_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {n_classes}")
    resolved = resolve(config)
    family = family_of(resolved)
    check_inputs(resolved, family, list(inputs))
    if seed is None:
        return FAMILIES[family](resolved, list(inputs), n_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FAMILIES[family](resolved, list(inputs), n_classes)
