"""Every registered model family (plugins' included: tests/registries.py) trains its
small model (`Family.tiny`) through the library call `ser train` makes: a member
stacked with another is the member trained alone, and a run saves a checkpoint per
(seed, fold) that loads back to its test predictions and resumes from them. A family
registered anywhere is in these tests' parameters; none names one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.corpus.labels import get_label_set
from ser.models import FAMILIES
from ser.predict.ensemble import probabilities
from ser.train.checkpoint import checkpoint_dir, checkpoint_keys, load_checkpoint
from ser.train.data import load_data
from ser.train.features import resolve_features
from ser.train.recipe import TrainConfig, train
from tests.registries import registered_families, tiny_features
from tests.train.spies import Groups

KEYS = ["seed0_session5", "seed1_session5"]


def config(store: Path, out: Path, family: str, **changes: Any) -> TrainConfig:
    """Two seeds of one fold, two epochs: the smallest run with members to stack."""
    base = TrainConfig(
        store=str(store), features=tiny_features(family), model=FAMILIES[family].tiny_config(),
        classes="4", protocol="session5", epochs=2, batch_size=8, lr=1e-2, seeds=2,
        device="cpu", out=str(out), name=family, members_at_once=1,
    )  # fmt: skip
    return replace(base, **changes)


def test_predictions(run_dir: Path) -> dict[str, list[int]]:
    """Each checkpoint's test predictions, as the run recorded them."""
    return {key: list(load_checkpoint(run_dir, key).meta["test"]["pred"]) for key in KEYS}


test_predictions.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def reloaded_predictions(run_dir: Path, store: Path, key: str) -> list[int]:
    """The loaded checkpoint's predictions on its fold's test rows."""
    ckpt = load_checkpoint(run_dir, key)
    opened = FeatureStore.open(store)
    data = load_data(opened, resolve_features(opened, list(ckpt.features)), get_label_set("4"))
    position = {int(r): i for i, r in enumerate(data.manifest_rows)}
    rows = np.array([position[int(r)] for r in ckpt.meta["test"]["rows"]])
    return [int(p) for p in probabilities(ckpt, data, rows).argmax(axis=1)]


@pytest.mark.parametrize("family", registered_families())
def test_a_stacked_member_is_the_member_alone(
    family: str, store_path: Path, tmp_path: Path
) -> None:
    groups = Groups()
    stacked = train(config(store_path, tmp_path / "stacked", family, members_at_once=64), groups)
    alone = train(config(store_path, tmp_path / "alone", family))
    assert len(groups.started) == 1  # both seeds in one stack
    for a, b in zip(stacked.folds, alone.folds, strict=True):
        assert (a.seed, a.fold, a.best_epoch) == (b.seed, b.fold, b.best_epoch)
        for curve in ("train_loss", "val_loss", "val_ua"):
            np.testing.assert_allclose(a.curves[curve], b.curves[curve], rtol=1e-4, atol=1e-5)
        for name, stage in a.stages.items():
            np.testing.assert_allclose(
                stage.curves["train_loss"], b.stages[name].curves["train_loss"], rtol=1e-4
            )
    assert test_predictions(tmp_path / "stacked" / family) == test_predictions(
        tmp_path / "alone" / family
    )


@pytest.mark.parametrize("family", registered_families())
def test_a_run_saves_loads_and_resumes(family: str, store_path: Path, tmp_path: Path) -> None:
    record = train(config(store_path, tmp_path, family))
    run_dir = tmp_path / family
    assert checkpoint_keys(run_dir) == KEYS
    recorded = test_predictions(run_dir)
    for key in KEYS:
        assert reloaded_predictions(run_dir, store_path, key) == recorded[key]
    (checkpoint_dir(run_dir) / f"{KEYS[1]}.json").unlink()  # lost: that entry trains again
    groups = Groups()
    resumed = train(config(store_path, tmp_path, family), groups)
    assert len(groups.started) == 1 and checkpoint_keys(run_dir) == KEYS
    assert resumed.folds[0] == record.folds[0]
    assert [(f.seed, f.fold) for f in resumed.folds] == [(0, "session5"), (1, "session5")]
