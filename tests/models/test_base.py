"""What every family gets from `SerModel`: an input of several stored layers summed by
the model's own `LayerMix` before the family's forward sees it, under `Ensemble` too."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import torch

from ser.models import FeatureInfo, ModelConfig, SerModel, build_model, plan_inputs
from ser.models.batch import Batch, InputSpec
from ser.models.nn.layer_mix import LayerMix
from ser.train.engine.ensemble import Ensemble

L = 3  # layers of each layered input
SMALL = {"d_model": 8, "dropout": 0.0}
FAMILIES: dict[str, tuple[dict[str, Any], tuple[FeatureInfo, ...]]] = {
    "unimodal": ({"fusion": "none", **SMALL}, (FeatureInfo("w.L0-2", "audio", "frame", 6),)),
    "msmser": (
        dict(fusion="mit", heads=2, queries=3, layers=1, decoder_layers=1, rmm=False, **SMALL),
        (FeatureInfo("w.L0-2", "audio", "frame", 6), FeatureInfo("r.L0-2", "text", "token", 5)),
    ),
    "dialog": (
        {"fusion": "add", "fusion_at": "logits", "loss": "perspective", "heads": 2, **SMALL},
        (FeatureInfo("w.L0-2", "audio", "frame", 6), FeatureInfo("r.L0-2", "text", "token", 5)),
    ),
    "late_prob": (
        {"fusion": "late-prob", "cnn_channels": (2, 3), **SMALL},
        (FeatureInfo("w.L0-2", "audio", "frame", 6), FeatureInfo("r.L0-2", "text", "token", 5)),
    ),
}


def models(family: str, seed: int = 0) -> tuple[SerModel, SerModel, str]:
    """(the family on layered inputs, the same on plain ones, its unit): one seed."""
    options, infos = FAMILIES[family]
    config = ModelConfig(**options)
    unit, plain = plan_inputs(config, infos)
    _, layered = plan_inputs(config, [replace(f, layers=L) for f in infos])
    assert [s.layers for s in layered] == [L] * len(infos) and plain[0].layers == 1
    made = [build_model(config, specs, 4, seed=seed).eval() for specs in (layered, plain)]
    return made[0], made[1], unit


def layered_batch(specs: tuple[InputSpec, ...], unit: str, seed: int = 0) -> Batch:
    """Random [B, T, L, D] / [B, L, D] ([B, U, L, D] for dialogs) inputs."""
    g = torch.Generator().manual_seed(seed)
    b, t = 4, 6
    lead = (b, 5) if unit == "dialog" else (b,)
    x, mask = {}, {}
    for spec in specs:
        shape = (*lead, t, L, spec.dim) if spec.view == "sequence" else (*lead, L, spec.dim)
        x[spec.name] = torch.randn(shape, generator=g) * torch.arange(1, L + 1)[:, None]
        if spec.view == "sequence":
            mask[spec.name] = torch.arange(t)[None] < torch.tensor([6, 5, 3, 1])[:, None]
    labels = torch.arange(b * (5 if unit == "dialog" else 1)).view(lead) % 4
    utt_mask = torch.ones(lead, dtype=torch.bool) if unit == "dialog" else None
    return Batch(x=x, mask=mask, labels=labels, index=labels, utt_mask=utt_mask)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_reads_a_layered_input_as_its_mixed_view(family: str) -> None:
    layered, plain, unit = models(family)
    batch = layered_batch(layered.inputs, unit)
    # The family's own weights are drawn as without layers: a zero-initialised mix draws
    # nothing, so the two models differ by the mix alone.
    own = {k: v for k, v in layered.state_dict().items() if not k.startswith("layer_mix.")}
    assert own.keys() == plain.state_dict().keys()
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in own.items())
    mixed = {name: LayerMix(L)(x) for name, x in batch.x.items()}  # uniform: the start
    expected = plain(replace(batch, x=mixed))
    torch.testing.assert_close(layered(batch).logits, expected.logits)
    assert layered.layer_weights() == {s.name: [pytest.approx(1 / L)] * L for s in layered.inputs}


def test_a_model_without_layered_inputs_holds_no_mix() -> None:
    _, plain, _ = models("msmser")
    assert plain.mixes() is None and plain.layer_weights() == {}
    assert not any("layer_mix" in k for k in plain.state_dict())


def test_the_mix_learns_and_a_late_prob_stage_trains_the_models_own() -> None:
    layered, _, unit = models("late_prob")
    stage = dict(layered.stages())["audio"]
    assert stage.mixes().mixes["w_L0-2"] is layered.mixes().mixes["w_L0-2"]  # type: ignore[union-attr]
    assert "r_L0-2" not in stage.mixes().mixes  # type: ignore[union-attr]
    batch = layered_batch(layered.inputs, unit)
    stage.train()
    optimizer = torch.optim.Adam(stage.parameters(), lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        stage.loss(stage(batch), batch).backward()
        optimizer.step()
    weights = layered.layer_weights()
    assert weights["w.L0-2"] != pytest.approx([1 / L] * L)  # trained through the stage
    assert weights["r.L0-2"] == pytest.approx([1 / L] * L)  # the text branch's: untouched


@pytest.mark.parametrize("family", ["msmser", "dialog"])
def test_stacked_members_each_mix_with_their_own_weights(family: str) -> None:
    members = [models(family, seed=s)[0] for s in (0, 1)]
    with torch.no_grad():
        for k, member in enumerate(members):
            for mix in member.mixes().mixes.values():  # type: ignore[union-attr]
                mix.weights.copy_(torch.tensor([2.0, 0.0, -2.0]) * (1 - 2 * k))
    unit = models(family)[2]
    batches = [layered_batch(members[0].inputs, unit, seed=k) for k in (0, 1)]
    stacked = Batch(
        x={n: torch.stack([b.x[n] for b in batches]) for n in batches[0].x},
        mask={n: torch.stack([b.mask[n] for b in batches]) for n in batches[0].mask},
        labels=torch.stack([b.labels for b in batches]),
        index=torch.stack([b.index for b in batches]),
        utt_mask=None if unit != "dialog" else torch.stack([b.utt_mask for b in batches]),  # type: ignore[misc]
    )
    ensemble = Ensemble(members)
    ensemble.eval()

    def logits(module: Any, x: Any, mask: Any, labels: Any, utt_mask: Any) -> torch.Tensor:
        return module(Batch(x=x, mask=mask, labels=labels, index=labels, utt_mask=utt_mask)).logits

    out = ensemble.call(logits, stacked.x, stacked.mask, stacked.labels, stacked.utt_mask)
    for k in (0, 1):
        torch.testing.assert_close(out[k], members[k](batches[k]).logits, rtol=1e-5, atol=1e-6)
