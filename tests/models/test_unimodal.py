"""The unimodal MLP baseline on any single feature set, alone and under `Ensemble`."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from ser.models import FeatureInfo, ModelConfig, build_model, plan_inputs
from ser.models.batch import Batch
from ser.models.unimodal import UnimodalMLP
from ser.train.engine.ensemble import Ensemble

IS13 = FeatureInfo("is13", "audio", "utterance", 40)


def build(feature: FeatureInfo = IS13, seed: int = 0, **kw: Any) -> UnimodalMLP:
    config = ModelConfig(fusion="none", **{"d_model": 16, **kw})
    _, specs = plan_inputs(config, [feature])
    torch.manual_seed(seed)
    return UnimodalMLP(config, specs, n_classes=4)


@pytest.mark.parametrize(
    "feature",
    [
        IS13,
        FeatureInfo("hubert.L12", "audio", "frame", 12),
        FeatureInfo("mpnet", "text", "token", 12),
    ],
)
def test_any_single_set_trains(feature: FeatureInfo, utterance_batch, train_steps) -> None:
    config = ModelConfig(fusion="none", d_model=16, dropout=0.0)
    unit, specs = plan_inputs(config, [feature])
    assert unit == "utterance" and specs[0].view == "vector"
    model = build(feature, dropout=0.0)
    batch = utterance_batch(specs)
    out = model(batch)
    assert out.logits.shape == (6, 4) and out.aux == {}
    first, last = train_steps(model, batch, steps=30)
    assert last < 0.5 * first


def test_defaults() -> None:
    config = ModelConfig(fusion="none")
    _, specs = plan_inputs(config, [IS13])
    model = build_model(config, specs, n_classes=4, seed=0)
    assert isinstance(model, UnimodalMLP)
    shapes = sorted(tuple(p.shape) for p in model.parameters())
    assert shapes == sorted([(256, 40), (256,), (4, 256), (4,)])  # Linear(40, 256), Linear(256, 4)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.2]
    assert model.stages() == [] and model.eval_mask is None


def test_is_linear_relu_dropout_linear() -> None:
    model = build().eval()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    x = torch.randn(5, 40)
    with torch.no_grad():
        expected = linears[1](torch.relu(linears[0](x)))
        got = model(Batch({"is13": x}, {}, torch.zeros(5, dtype=torch.long), torch.arange(5)))
    torch.testing.assert_close(got.logits, expected)


def test_a_padded_batch_slot_changes_nothing_else(utterance_batch) -> None:
    """The loop pads a member's batch with rows labelled -100: the others' logits and the
    loss stay as they were."""
    model = build().eval()
    batch = utterance_batch(list(model.inputs))
    padded = Batch(
        {"is13": torch.cat([batch.x["is13"], torch.zeros(2, 40)])},
        {},
        torch.cat([batch.labels, torch.full((2,), -100)]),
        torch.cat([batch.index, torch.full((2,), -1)]),
    )
    with torch.no_grad():
        out, out_padded = model(batch), model(padded)
    torch.testing.assert_close(out_padded.logits[:6], out.logits)
    torch.testing.assert_close(model.loss(out_padded, padded), model.loss(out, batch))


# --- under the ensemble (torch.func.vmap over members) ---------------------------------


def forward(module: Any, x: Any, labels: Any, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
    batch = Batch(x, {}, labels, index)
    out = module(batch)
    return out.logits, module.loss(out, batch)


def member_batches(model: UnimodalMLP, utterance_batch, seeds: tuple[int, ...]) -> list[Batch]:
    return [utterance_batch(list(model.inputs), seed=s) for s in seeds]


def stacked(batches: list[Batch]) -> tuple[Any, ...]:
    return (
        {"is13": torch.stack([b.x["is13"] for b in batches])},
        torch.stack([b.labels for b in batches]),
        torch.stack([b.index for b in batches]),
    )


def test_ensemble_eval_gives_each_member_what_it_gives_alone(utterance_batch) -> None:
    members = [build(seed=s).eval() for s in (0, 1)]
    batches = member_batches(members[0], utterance_batch, (1, 2))
    ensemble = Ensemble(members)
    ensemble.eval()
    with torch.no_grad():
        logits, loss = ensemble.call(forward, *stacked(batches))
        for k, (member, b) in enumerate(zip(members, batches, strict=True)):
            alone_logits, alone_loss = forward(member, b.x, b.labels, b.index)
            torch.testing.assert_close(logits[k], alone_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(loss[k], alone_loss, atol=1e-5, rtol=1e-5)


def test_ensemble_members_draw_their_own_dropout(utterance_batch) -> None:
    member = build(dropout=0.5)
    ensemble = Ensemble([member, copy.deepcopy(member)])  # equal weights
    batch = member_batches(member, utterance_batch, (1,))[0]
    ensemble.train()
    torch.manual_seed(0)
    with torch.no_grad():
        logits, _ = ensemble.call(forward, *stacked([batch, batch]))
    assert not torch.allclose(logits[0], logits[1])
    ensemble.eval()
    with torch.no_grad():
        logits, _ = ensemble.call(forward, *stacked([batch, batch]))
    torch.testing.assert_close(logits[0], logits[1])


def test_ensemble_gradients_reach_every_parameter(utterance_batch) -> None:
    members = [build(seed=s) for s in (0, 1)]
    ensemble = Ensemble(members)
    ensemble.train()
    _, losses = ensemble.call(
        forward, *stacked(member_batches(members[0], utterance_batch, (1, 2)))
    )
    losses.sum().backward()
    assert set(ensemble.params) == {n for n, _ in members[0].named_parameters()}
    for name, p in ensemble.params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert all(p.grad[k].abs().sum() > 0 for k in range(2)), name
