"""The model families of the three papers behind one API, one registry line each.

Families: MSMSER (`msmser.py`: --fusion mit, or concat without --fusion-at), Wu et al.'s
fusion study (`dialog.py`: add|concat|attention at --fusion-at, none with --context),
Zhou et al. (`late_prob.py`: late-prob) and a mean-pooled MLP (`unimodal.py`: none); each
family's paper training settings: `family_of(config).train`.

>>> from importlib import import_module

from importlib import import_module

import torch
>>> from ser.models.batch import Batch
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

from importlib import import_module

import torch

from ser.errors import ConfigError
from ser.models.base import ModelOutput, SerModel
from ser.models.batch import InputSpec, Unit
from ser.models.config import FamilyConfig, FeatureInfo, TrainDefaults, plan_inputs
from ser.models.probe import check_plugin_model, is_plugin
from ser.models.registry import FAMILIES, Family, ModelConfig, family_of, register
from ser.models.targets import Targets

# The families, a module each ending in its `FAMILY`: a new family is its file and its
# name here (docs/dev/add-family.md). The order is `ser train --help`'s.
FAMILY_MODULES = ("msmser", "dialog", "late_prob", "unimodal")
for _name in FAMILY_MODULES:
    register(import_module(f"ser.models.{_name}").FAMILY)

__all__ = [
    "FAMILIES",
    "Family",
    "FamilyConfig",
    "FeatureInfo",
    "ModelConfig",
    "ModelOutput",
    "SerModel",
    "TrainDefaults",
    "build_model",
    "family_of",
    "plan_inputs",
    "register",
]


def build_model(
    config: FamilyConfig,
    inputs: list[InputSpec],
    n_classes: int,
    seed: int | None = None,
    targets: Targets | None = None,
) -> SerModel:
    """The family's model for these inputs (as `plan_inputs` returned them), initialised
    from `seed` (None: from torch's global generator, so `torch.manual_seed` fixes it)
    without touching the global generator's state; its last layer as wide as `targets`
    want (None: the category alone)."""
    targets = targets or Targets()
    if targets.category is not None and n_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {n_classes}")
    unit = _check_views(config, inputs)
    family, width = family_of(config), targets.outputs(n_classes)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = family.model(config, list(inputs), width)
    model.targets, model.n_classes = targets, n_classes
    if is_plugin(family.model):  # ser's own are the suite's to test
        check_plugin_model(family.name, model, inputs, unit, width)
    return model


def _check_views(config: FamilyConfig, inputs: list[InputSpec]) -> Unit:
    """The views `plan_inputs` gives these sets (a sequence view read as frame level);
    the unit it plans."""
    levels = {"sequence": "frame", "vector": "utterance"}
    infos = [FeatureInfo(s.name, s.modality, levels[s.view], s.dim, s.layers) for s in inputs]
    unit, planned = plan_inputs(config, infos)
    for want, spec in zip(planned, inputs, strict=True):
        if want.view != spec.view:
            raise ConfigError(
                f"{config.where} takes a {want.view} view of {spec.name}, got {spec.view}"
            )
    return unit
