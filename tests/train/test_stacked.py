"""Stacked runs equal separate runs: every family, early stopping and RMM on.

`ser train` trains its (seed, fold) runs as the members of one stacked model; with
`members_at_once=1` it trains them one after another. Each member must get the same
per-epoch losses, the same selected epoch and the same test predictions either way, and
must never see another member's validation or test utterances.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ser.train.group as group_module
from ser.cache.testing import labelled_store
from ser.train import stack
from ser.train.models import ModelConfig
from ser.train.run import Progress, TrainConfig, train, train_many

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}

FAMILIES = {
    "msmser": (
        ("hubert-tiny.L2", "bert-tiny"),
        ModelConfig(fusion="mit", d_model=8, heads=2, queries=3, layers=1, decoder_layers=1),
    ),
    "msmser-concat": (
        ("hubert-tiny.L2", "bert-tiny"),
        ModelConfig(fusion="concat", d_model=8, heads=2, layers=1, eval_mask="text"),
    ),
    "dialog": (
        ("is13", "bert-tiny"),
        ModelConfig(fusion="attention", fusion_at="middle", loss="perspective", d_model=8, heads=2),
    ),
    "late_prob": (
        ("hubert-tiny.L2", "bert-tiny"),
        ModelConfig(fusion="late-prob", d_model=8, cnn_channels=(2, 3)),
    ),
    "unimodal": (("is13",), ModelConfig(fusion="none", d_model=8)),
}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "features.zarr"
    labelled_store(path, SETS, per_dialog=8)
    return path


def run(store: Path, out: Path, family: str, **changes: Any) -> tuple[dict, dict]:
    """(record, {(seed, fold): (manifest rows, predicted class) of its test side})."""
    features, model = FAMILIES[family]
    config = TrainConfig(
        store=str(store), features=features, model=model, classes="4", protocol="loso",
        epochs=4, batch_size=4, lr=1e-2, seeds=2, patience=2, device="cpu", out=str(out),
        name=family,
    )  # fmt: skip
    predictions: dict[tuple[int, str], tuple[list[int], list[int]]] = {}
    original = group_module.fit

    def spy(model, members, classes, on_epoch=None, on_step=None):  # type: ignore[no-untyped-def]
        results = original(model, members, classes, on_epoch, on_step)
        for member, result in zip(members, results, strict=True):
            key = (member.seed // 1000, member.seed % 1000)
            predictions[key] = (result.test.index.tolist(), result.test.y_pred.tolist())
        return results

    group_module.fit = spy  # type: ignore[assignment]
    try:
        record = train(replace(config, **changes))
    finally:
        group_module.fit = original  # type: ignore[assignment]
    return record, predictions


@pytest.mark.parametrize("family", list(FAMILIES))
def test_stacked_members_equal_separate_runs(family: str, store_path: Path, tmp_path: Path) -> None:
    stacked, stacked_predictions = run(store_path, tmp_path / "stacked", family)
    alone, alone_predictions = run(store_path, tmp_path / "alone", family, members_at_once=1)
    assert len(stacked["folds"]) == len(alone["folds"]) == 10  # 5 folds x 2 seeds
    for a, b in zip(stacked["folds"], alone["folds"], strict=True):
        assert (a["seed"], a["fold"]) == (b["seed"], b["fold"])
        for curve in ("train_loss", "val_loss", "val_ua"):
            np.testing.assert_allclose(a["curves"][curve], b["curves"][curve], rtol=1e-4, atol=1e-5)
        assert a["best_epoch"] == b["best_epoch"]
        assert a["metrics"] == b["metrics"]
        for name, stage in a.get("stages", {}).items():
            np.testing.assert_allclose(
                stage["curves"]["train_loss"], b["stages"][name]["curves"]["train_loss"], rtol=1e-4
            )
    assert stacked_predictions == alone_predictions
    # MSMSER's members stop early at different epochs here (patience 2 of 4): a stacked
    # step with members masked out must still give each the same run. (The other
    # families' validation keeps improving over these 4 epochs.)
    if family == "msmser":
        assert len({len(f["curves"]["epoch"]) for f in stacked["folds"]}) > 1


def test_members_never_see_another_members_validation_or_test(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stacked training batch: member k's slot holds only member k's training
    utterances (its fold's training side), never another fold's validation or test."""
    from ser.cache import FeatureStore

    manifest = FeatureStore.open(store_path).manifest
    sessions = np.asarray(manifest.column("session"))
    seen: list[Any] = []
    original = stack.StackedSides.gather

    def spy(self, plans, pos, *rest):  # type: ignore[no-untyped-def]
        out = original(self, plans, pos, *rest)
        if torch.is_grad_enabled():  # a training step (evaluation runs without gradients)
            seen.append(out.index.clone())
        return out

    monkeypatch.setattr(stack.StackedSides, "gather", spy)
    record, _ = run(store_path, tmp_path, "msmser", patience=None, epochs=2)
    order = [(f["seed"], f["fold"]) for f in record["folds"]]
    held_out = {(s, f["fold"]): set(f["test_sessions"]) | set(f["val_sessions"])
                for s, f in ((f["seed"], f) for f in record["folds"])}  # fmt: skip
    assert seen
    for index in seen:  # [K, B] manifest rows, -1 = padding
        for k, key in enumerate(order):
            rows = index[k][index[k] >= 0].numpy()
            assert not set(sessions[rows].tolist()) & held_out[key]


def test_runs_that_share_shapes_train_as_one_stacked_model(
    store_path: Path, tmp_path: Path
) -> None:
    """`train_many`: runs differing only in member options (RMM, eval mask, lr) form one
    group, and each gets the record it gets trained alone."""
    features, model = FAMILIES["msmser"]
    base = TrainConfig(
        store=str(store_path), features=features, model=model, classes="4", protocol="loso",
        epochs=3, batch_size=4, lr=1e-2, seeds=1, device="cpu", out=str(tmp_path / "many"),
    )  # fmt: skip
    configs = [
        replace(base, name="full"),
        replace(base, name="no_rmm", model=replace(model, rmm=False)),
        replace(base, name="text_only", model=replace(model, eval_mask="audio"), lr=5e-3),
    ]
    groups: list[int] = []

    class Count(Progress):
        def fold_start(self, seed: int, fold: str, epochs: int) -> None:
            groups.append(seed)

    together = train_many(configs, Count())
    assert len(groups) == 1  # 3 runs x 5 folds, one stacked model
    for config, record in zip(configs, together, strict=True):
        alone = train(replace(config, out=str(tmp_path / "alone")))
        assert [f["metrics"] for f in record["folds"]] == [f["metrics"] for f in alone["folds"]]
        assert record["name"] == config.name and record["complete"]


@pytest.mark.parametrize("family", ["msmser", "dialog"])
def test_each_steps_extents_reach_the_device_as_the_sizes_say(
    family: str, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random draws read members' extents from the device copy made with the epoch's
    positions; it must say what the host-side sizes say, axis by axis."""
    from ser.train.nn.noise import Noise, Streams

    checked: list[str] = []
    original = stack.StackedSides.epoch

    def spy(self, active):  # type: ignore[no-untyped-def]
        for present, batch in original(self, active):
            assert batch.extents is not None and batch.sizes is not None
            assert list(batch.extents) == list(batch.sizes)
            fresh = Noise(Streams([]), batch.sizes)  # extents made from the sizes
            for axis, on_device in batch.extents.items():
                assert torch.equal(on_device, fresh.extent(axis, on_device.device)), axis
                checked.append(axis)
            yield present, batch

    monkeypatch.setattr(stack.StackedSides, "epoch", spy)
    run(store_path, tmp_path, family, patience=None, epochs=1)
    assert "batch" in checked and ({"utt"} if family == "dialog" else {"hubert-tiny.L2"}) <= set(
        checked
    )


@pytest.mark.parametrize("family", ["msmser", "dialog"])
@pytest.mark.parametrize("way", ["one_launch", "ahead"])
def test_draws_placed_in_one_launch_train_exactly_as_copies_per_member(
    family: str, way: str, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off the CPU the members' random draws are placed with one scatter a site, and made
    for the whole step before it (`ser.train.nn.ahead`); forced here on the CPU, a
    stacked run must train exactly as with the CPU's copy per member and site (every
    step after the first made ahead here; sites that leave the plan: tests/train/nn/
    test_ahead.py)."""
    from ser.train import loop
    from ser.train.nn.ahead import Ahead
    from ser.train.nn.noise import Noise

    copies, _ = run(store_path, tmp_path / "copies", family, patience=None, epochs=2)
    served = []
    original = Ahead.serve
    monkeypatch.setattr(Ahead, "serve", lambda self, d: served.append(d) or original(self, d))
    monkeypatch.setattr(loop, "Noise", lambda *a, **kw: Noise(*a, **{**kw, way: True}))
    scattered, _ = run(store_path, tmp_path / "scatter", family, patience=None, epochs=2)
    assert bool(served) == (way == "ahead")  # draws made ahead were served (only then)
    assert [f["curves"] for f in scattered["folds"]] == [f["curves"] for f in copies["folds"]]
    assert [f["metrics"] for f in scattered["folds"]] == [f["metrics"] for f in copies["folds"]]


def test_draws_made_ahead_train_exactly_when_rmm_stops_drawing(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RMM's schedule reaching 0 after the first epoch takes its draw site out of the
    step: the plan made ahead meets a site it did not plan and rewinds, and the run still
    trains exactly as site by site."""
    from ser.train import loop
    from ser.train.nn import ahead
    from ser.train.nn.noise import Noise

    model = replace(FAMILIES["msmser"][1], rmm_end=0.3)  # p = 0 from epoch 1 of 3
    by_site, _ = run(store_path, tmp_path / "by_site", "msmser", model=model, epochs=3,
                     patience=None)  # fmt: skip
    rewinds = []
    original = ahead.Ahead.rewind

    def spy(self: ahead.Ahead) -> None:
        rewinds.append(self.served)
        original(self)

    monkeypatch.setattr(ahead.Ahead, "rewind", spy)
    monkeypatch.setattr(loop, "Noise", lambda *a, **kw: Noise(*a, **{**kw, "ahead": True}))
    made_ahead, _ = run(store_path, tmp_path / "ahead", "msmser", model=model, epochs=3,
                        patience=None)  # fmt: skip
    assert rewinds  # the vanished RMM draw was met
    assert [f["curves"] for f in made_ahead["folds"]] == [f["curves"] for f in by_site["folds"]]
    assert [f["metrics"] for f in made_ahead["folds"]] == [f["metrics"] for f in by_site["folds"]]
