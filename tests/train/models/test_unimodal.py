"""The unimodal MLP baseline on any single feature set."""

from __future__ import annotations

import pytest
import torch

from ser.train.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.train.models.unimodal import UnimodalMLP


@pytest.mark.parametrize(
    "feature",
    [
        FeatureInfo("is13", "audio", "utterance", 40),
        FeatureInfo("hubert.L12", "audio", "frame", 12),
        FeatureInfo("mpnet", "text", "token", 12),
    ],
)
def test_any_single_set_trains(feature: FeatureInfo, utterance_batch, train_steps) -> None:
    config = ModelConfig(fusion="none", d_model=16, dropout=0.0)
    unit, specs = plan_inputs(config, [feature])
    assert unit == "utterance" and specs[0].view == "vector"
    torch.manual_seed(0)
    model = build_model(config, specs, n_classes=4)
    assert isinstance(model, UnimodalMLP)
    batch = utterance_batch(specs)
    out = model(batch)
    assert out.logits.shape == (6, 4) and out.aux == {}
    first, last = train_steps(model, batch, steps=30)
    assert last < 0.5 * first


def test_defaults() -> None:
    config = ModelConfig(fusion="none")
    _, specs = plan_inputs(config, [FeatureInfo("is13", "audio", "utterance", 40)])
    model = build_model(config, specs, n_classes=4)
    assert isinstance(model, UnimodalMLP)
    assert model.mlp.hidden.weight.shape == (1, 40, 256) and model.dropout_p == [0.2]
