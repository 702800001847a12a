"""`ser train --class-weights balanced`: each (seed, fold)'s cross-entropy weighted by
n / (C n_c) of its own training side, in every loss its family trains on, recorded per
fold; a stacked member is still the member trained alone; unweighted runs unchanged."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.cache.manifest import Manifest
from ser.cache.store import FeatureStore
from ser.models import ModelConfig
from ser.models.losses import balanced_weights
from ser.report.runs import settings_label
from ser.runs.fold_entry import FoldEntry
from ser.synth.manifest import example_columns
from ser.train.recipe import TrainConfig, train
from tests.registries import registered_families
from tests.stores import add_labelled_set
from tests.train.engine.test_ensemble import config, run

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
CLASSES = ("neu", "hap", "sad", "ang")


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 sessions x 2 dialogs x 10 utterances, ~55 % neutral (MELD's skew), each session
    drawn apart: every fold's training side has counts, and weights, of its own."""
    path = tmp_path_factory.mktemp("skewed") / "features.zarr"
    ids = [
        f"Ses0{s}{g}_impro0{d}_{'FM'[u % 2]}{u:03d}"
        for s in range(1, 6)
        for d, g in enumerate("FM")
        for u in range(10)
    ]
    columns = example_columns(ids)
    rng = np.random.default_rng(0)
    columns["label"] = [str(rng.choice(CLASSES, p=[0.55, 0.25, 0.12, 0.08])) for _ in ids]
    columns["order"] = [i % 10 for i in range(len(ids))]
    store = FeatureStore.create(path, Manifest.from_columns(columns))
    for name, spec in SETS.items():
        add_labelled_set(store, name, spec)
    return path


def _expected(store: Path, entry: FoldEntry) -> list[float]:
    """n / (C n_c) over the fold's training side: the sessions it neither tests nor
    validates on (every utterance of this store is in the 4 classes)."""
    manifest = FeatureStore.open(store).manifest
    sessions = np.asarray(manifest.column("session"))
    labels = np.array([CLASSES.index(str(c)) for c in manifest.column("label")])
    held = {*entry.test_groups, *entry.val_groups}
    train_side = ~np.isin(sessions, list(held))
    assert train_side.sum() == entry.sizes.train
    return balanced_weights(labels[train_side], len(CLASSES)).tolist()


def test_a_skewed_store_trains_with_balanced_weights_and_records_them(
    skewed: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        store=str(skewed),
        features=("is13",),
        model=ModelConfig(fusion="none", d_model=8),
        classes="4",
        protocol="loso",
        epochs=2,
        seeds=1,
        device="cpu",
        out=str(tmp_path),
        class_weights="balanced",
        final=True,
    )
    record = train(cfg)
    assert record.name == "is13_none_loso_c4_d-model8_class-weights-balanced"
    assert record.config["class_weights"] == "balanced"
    seen = set()
    for entry in record.folds:
        weights = entry.class_weights
        assert list(weights) == list(CLASSES)
        np.testing.assert_allclose(list(weights.values()), _expected(skewed, entry))
        assert weights["neu"] < 1 < weights["ang"]
        seen.add(tuple(weights.values()))
    assert len(seen) == len(record.folds)  # each fold's own
    assert set(record.final.class_weights) == set(CLASSES)
    assert "class_weights=balanced" in settings_label(record)


@pytest.mark.slow
def test_unweighted_runs_record_and_train_as_before(skewed: Path, tmp_path: Path) -> None:
    """The config's key off (null), none in the folds (records written before resume
    alike), no setting in the report, the default name; `none` asked for is the default
    run."""
    base = config(skewed, tmp_path, "unimodal", features=("is13",), seeds=1, members_at_once=1,
                  name=None)  # fmt: skip
    default, _, _ = run(base)
    asked, _, _ = run(replace(base, out=str(tmp_path / "asked"), class_weights="none"))
    assert default.name == asked.name == "is13_none_loso_c4_d-model8_dropout0.0"
    assert "class_weights" in default.config and default.config["class_weights"] is None
    assert all("class_weights" not in e.to_json() for e in default.folds)
    assert "class_weights" not in settings_label(default)
    for a, b in zip(default.folds, asked.folds, strict=True):
        assert a.curves == b.curves and a.metrics == b.metrics


@pytest.mark.slow
@pytest.mark.parametrize("family", registered_families())
def test_a_stacked_weighted_member_equals_it_trained_alone(
    family: str, skewed: Path, tmp_path: Path
) -> None:
    """Members of different folds in one stack, each weighted by its own fold's
    weights, for every registered family's small model: the dialog model's perspective
    loss (summed, its batches in parts), late_prob's branches alone and its whole model,
    the unimodal MLP, MSMSER's MIT."""
    weighted = {"class_weights": "balanced"}
    stacked, stacked_predictions, _ = run(config(skewed, tmp_path / "s", family, **weighted))
    alone, alone_predictions, _ = run(
        config(skewed, tmp_path / "a", family, members_at_once=1, **weighted)
    )
    assert max(e.stacked for e in stacked.folds) > 2  # folds stacked, not only seeds
    assert len({tuple(e.class_weights.values()) for e in stacked.folds}) == 5
    unweighted, _, _ = run(config(skewed, tmp_path / "u", family, members_at_once=1))
    for a, b, u in zip(stacked.folds, alone.folds, unweighted.folds, strict=True):
        assert a.class_weights == b.class_weights
        np.testing.assert_allclose(list(a.class_weights.values()), _expected(skewed, a))
        for curve in ("train_loss", "val_loss", "val_ua"):
            np.testing.assert_allclose(a.curves[curve], b.curves[curve], rtol=1e-4, atol=1e-5)
        assert a.best_epoch == b.best_epoch
        for name, stage in a.stages.items():
            np.testing.assert_allclose(
                stage.curves["train_loss"], b.stages[name].curves["train_loss"], rtol=1e-4
            )
        # The weights reach every loss: other training losses than the unweighted run's.
        assert not np.isclose(a.curves["train_loss"][0], u.curves["train_loss"][0])
        for name, stage in a.stages.items():
            first = u.stages[name].curves["train_loss"][0]
            assert not np.isclose(stage.curves["train_loss"][0], first)
    assert stacked_predictions == alone_predictions
