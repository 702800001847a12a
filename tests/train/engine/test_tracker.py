"""A member whose weights became NaN is an error naming it, not a chance-level score."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ser.errors import TrainingDiverged
from ser.train.engine.steps import Steps
from ser.train.engine.tracker import diverged
from ser.train.recipe import train
from tests.train.conftest import small_config


def test_a_run_whose_weights_become_nan_names_its_members_and_what_to_try(
    store_path: Path, tmp_path: Path
) -> None:
    # An enormous learning rate: before, the run finished and reported UA 25.00 (chance).
    cfg = small_config(store_path, tmp_path, protocol="session5", seeds=2, lr=1e30)
    with pytest.raises(TrainingDiverged) as err:
        train(cfg)
    said = str(err.value)
    assert said.startswith("training diverged at epoch 1: the weights of seed 0 session5 (")
    assert said.endswith("train again with a lower --lr, or with --precision fp32")
    assert not list(tmp_path.rglob("*.safetensors"))  # no checkpoint of a NaN model


def test_only_a_non_finite_loss_with_non_finite_weights_is_divergence() -> None:
    # An fp16 loss that overflowed once leaves the weights finite (the scaler skips it).
    modules = [nn.Linear(3, 2), nn.Linear(3, 2)]
    ensemble = Steps().ensemble(modules)
    assert diverged(ensemble, [0.5, math.inf]) == []
    with torch.no_grad():
        ensemble.state()["weight"][1, 0, 0] = math.nan
    assert diverged(ensemble, [0.5, math.nan]) == [1]
    assert diverged(ensemble, [0.5, 0.7]) == []  # weights are read only after such a loss
