"""Attribute targets on every family: the outputs after the class logits, the CCC and MSE
losses, soft labels' cross-entropy, and the category's path left exactly as it was."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from ser.errors import ConfigError
from ser.models import build_model, family_of, plan_inputs
from ser.models.batch import Batch
from ser.models.config import FeatureInfo
from ser.models.losses import cross_entropy
from ser.models.targets import Targets, attribute_loss, ccc_loss, split
from tests.registries import registered_families, tiny_model

from .conftest import _dialog_batch, _utterance_batch

AUDIO_FRAMES = FeatureInfo("hubert", "audio", "frame", 8)
TEXT_TOKENS = FeatureInfo("mpnet", "text", "token", 12)
AUDIO_VECTOR = FeatureInfo("is13", "audio", "utterance", 8)
TEXT_VECTOR = FeatureInfo("mpnet", "text", "utterance", 12)
# What each registered family's small model (`Family.tiny`) is built on: the first of
# these its plan takes (tests/registries.py).
INPUTS = (
    (AUDIO_FRAMES, TEXT_TOKENS),
    (AUDIO_VECTOR, TEXT_VECTOR),
    (AUDIO_FRAMES,),
    (AUDIO_VECTOR,),
    (TEXT_TOKENS,),
)


def reference_ccc(gold: np.ndarray, pred: np.ndarray) -> float:
    """Lin's CCC by its textbook formula (population moments), for comparison."""
    cov = np.mean((gold - gold.mean()) * (pred - pred.mean()))
    return float(2 * cov / (gold.var() + pred.var() + (gold.mean() - pred.mean()) ** 2))


def with_targets(batch: Batch, n_attributes: int, seed: int = 0) -> Batch:
    """`batch` with attribute targets following its labels (NaN where padded), scale 1-5."""
    g = torch.Generator().manual_seed(seed)
    labels = batch.labels.float()
    gold = labels.unsqueeze(-1) + 0.3 * torch.randn(*labels.shape, n_attributes, generator=g)
    gold = torch.where(batch.labels.unsqueeze(-1) >= 0, gold + 2, torch.nan)
    mean, std = torch.full((n_attributes,), 3.0), torch.full((n_attributes,), 1.5)
    return replace(batch, targets=gold, target_mean=mean, target_std=std)


def family(name: str, targets: Targets, n_classes: int = 4, seed: int = 0) -> Any:
    infos, config = tiny_model(name, INPUTS)
    unit, specs = plan_inputs(config, infos)
    return unit, specs, build_model(config, specs, n_classes, seed, targets)


def test_ccc_loss_against_the_textbook_formula() -> None:
    rng = np.random.default_rng(0)
    gold = rng.normal(3, 1, size=(50, 2))
    pred = 0.6 * gold + rng.normal(0.5, 0.7, size=(50, 2))
    gold[[3, 7], 1] = np.nan  # an item without a value is left out of that attribute only
    kept = np.delete(gold[:, 1], [3, 7]), np.delete(pred[:, 1], [3, 7])
    want = [reference_ccc(gold[:, 0], pred[:, 0]), reference_ccc(*kept)]
    got = ccc_loss(torch.tensor(pred, dtype=torch.float64), torch.tensor(gold))
    assert got.item() == pytest.approx(1 - np.mean(want), abs=1e-7)
    mse = attribute_loss(torch.tensor(pred), torch.tensor(gold), "mse")
    assert mse.item() == pytest.approx(np.nanmean((pred - gold) ** 2), rel=1e-6)


def test_soft_labels_equal_cross_entropy_when_the_votes_agree() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(7, 4, generator=g), torch.tensor([0, 1, 2, 3, -100, 1, 0])
    one_hot = torch.nn.functional.one_hot(labels.clamp_min(0), 4).float()
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5])
    for w in (None, weight):
        assert (
            cross_entropy(logits, labels, w, one_hot).item()
            == cross_entropy(logits, labels, w).item()
        )
    split_votes = one_hot.clone()
    split_votes[0] = torch.tensor([0.5, 0.5, 0, 0])
    assert cross_entropy(logits, labels, soft=split_votes) != cross_entropy(logits, labels)


@pytest.mark.parametrize("name", registered_families())
@pytest.mark.parametrize("target", ["attributes", "emotion+attributes", "valence"])
def test_every_family_predicts_attributes_after_its_classes(name: str, target: str) -> None:
    targets = Targets.parse(target)
    n = len(targets.attributes)
    unit, specs, model = family(name, targets)
    batch = _dialog_batch(specs) if unit == "dialog" else _utterance_batch(specs)
    batch = with_targets(batch, n)
    out = model(batch)
    assert out.logits.shape[-1] == targets.outputs(4) == (4 if targets.emotion else 0) + n
    loss = model.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    head_grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert head_grads and all(torch.isfinite(g).all() for g in head_grads)


@pytest.mark.parametrize("name", registered_families())
def test_the_category_alone_is_the_model_it_was(name: str) -> None:
    """Targets() builds, draws and scores exactly what the family's own constructor does
    with C classes (what `build_model` made before it took targets)."""
    unit, specs, model = family(name, Targets())
    _, config = tiny_model(name, INPUTS)
    torch.manual_seed(0)
    plain = family_of(config).model(config, list(specs), 4)
    batch = _dialog_batch(specs) if unit == "dialog" else _utterance_batch(specs)
    model.eval(), plain.eval()
    assert torch.equal(model(batch).logits, plain(batch).logits)
    assert torch.equal(model.loss(model(batch), batch), plain.loss(plain(batch), batch))


def test_the_weight_scales_the_attribute_term() -> None:
    _, specs, one = family("unimodal", Targets.parse("emotion+attributes", weight=1.0))
    _, _, three = family("unimodal", Targets.parse("emotion+attributes", weight=3.0))
    batch = with_targets(_utterance_batch(specs), 3)
    one.eval(), three.eval()
    out = one(batch)
    classes, attributes = split(out.logits, 3)
    gold = (batch.targets - batch.target_mean) / batch.target_std  # type: ignore[operator]
    ce, att = cross_entropy(classes, batch.labels), attribute_loss(attributes, gold)
    assert one.loss(out, batch).item() == pytest.approx((ce + att).item(), rel=1e-6)
    assert three.loss(three(batch), batch).item() == pytest.approx((ce + 3 * att).item(), rel=1e-6)


def test_targets_refused_where_they_make_no_sense() -> None:
    with pytest.raises(ConfigError, match="--target"):
        Targets.parse("pleasure")
    with pytest.raises(ConfigError, match="soft"):
        Targets.parse("attributes", labels="soft")
    with pytest.raises(ConfigError, match="above 0"):
        Targets.parse("emotion+attributes", weight=0.0)
    assert Targets.parse("attributes").outputs(4) == 3
