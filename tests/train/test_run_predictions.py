"""The trainer writes each run's per-utterance test predictions (predictions.csv)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.heads.metrics import compute_metrics
from ser.models import ModelConfig
from ser.runs.predictions import (
    PREDICTIONS,
    PredictionTable,
    missing_folds,
    predictions_csv,
    read_predictions,
)
from ser.runs.record import RunRecord, write
from ser.train.recipe import TrainConfig, train

from .conftest import small_config


def check_rows_score_as_the_record(record: RunRecord, table: PredictionTable) -> None:
    """Every fold entry's metrics are exactly those of its rows."""
    assert table.runs() == [(e.seed, e.fold) for e in record.folds]
    for entry in record.folds:
        rows = table.take((table.seed == entry.seed) & (table.fold == entry.fold))
        assert len(rows) == entry.sizes.test
        assert list(rows.row) == sorted(rows.row)  # manifest order
        scored = compute_metrics(rows.gold, rows.pred, record.classes).to_json()
        assert entry.metrics is not None and entry.metrics.to_json() == scored


def test_a_run_writes_every_fold_s_test_predictions(store_path: Path, tmp_path: Path) -> None:
    record = train(small_config(store_path, tmp_path, protocol="loso"))
    table = read_predictions(tmp_path / record.name / PREDICTIONS)
    check_rows_score_as_the_record(record, table)
    assert table.classes == tuple(record.classes)
    assert np.allclose(table.probs.sum(axis=1), 1.0, atol=1e-5)
    assert (table.probs.argmax(axis=1) == table.pred).all()
    manifest = FeatureStore.open(store_path).manifest
    assert list(table.utt_id) == [manifest.utt_ids[r] for r in table.row]
    speakers = np.asarray(manifest.column("speaker")).astype(str)
    assert (table.speaker == speakers[table.row]).all()
    assert missing_folds(record, table) == []
    pooled = compute_metrics(table.gold, table.pred, record.classes)
    assert record.pooled.wf1 == pooled.wf1 and {"wf1", "wf1_std"} <= set(record.summary)


def test_stacked_members_write_their_own_rows(store_path: Path, tmp_path: Path) -> None:
    cfg = small_config(store_path, tmp_path, protocol="session5", seeds=3, members_at_once=3)
    record = train(cfg)
    assert {e.stacked for e in record.folds} == {3}
    table = read_predictions(tmp_path / record.name / PREDICTIONS)
    check_rows_score_as_the_record(record, table)
    assert sorted(set(table.seed.tolist())) == [0, 1, 2]


def test_a_dialog_model_s_rows_are_its_utterances(store_path: Path, tmp_path: Path) -> None:
    model = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    cfg = small_config(
        store_path, tmp_path, features=("is13", "bert"), model=model, protocol=None, epochs=2
    )
    record = train(replace(cfg, batch_size=None, lr=None))
    table = read_predictions(tmp_path / record.name / PREDICTIONS)
    check_rows_score_as_the_record(record, table)


def killed_after_two_folds(store_path: Path, tmp_path: Path) -> tuple[TrainConfig, Path, str]:
    """A LOSO run trained whole, its record then cut to its first two folds as if killed
    after them: its config, its folder and the predictions.csv the whole run wrote."""
    cfg = small_config(store_path, tmp_path, members_at_once=1)  # each fold as alone
    full = train(cfg)
    run_dir = tmp_path / full.name
    write(run_dir / "run.json", replace(full, folds=full.folds[:2]))
    return cfg, run_dir, (run_dir / PREDICTIONS).read_text()


@pytest.mark.slow
def test_a_resumed_run_keeps_the_rows_of_its_finished_folds(
    store_path: Path, tmp_path: Path
) -> None:
    cfg, run_dir, before = killed_after_two_folds(store_path, tmp_path)
    table = read_predictions(run_dir / PREDICTIONS)
    (run_dir / PREDICTIONS).write_text(predictions_csv(table.take(table.fold != "fold5")))
    train(cfg)
    assert (run_dir / PREDICTIONS).read_text() == before


@pytest.mark.slow
def test_a_resumed_run_trains_again_the_fold_whose_rows_were_lost(
    store_path: Path, tmp_path: Path
) -> None:
    cfg, run_dir, before = killed_after_two_folds(store_path, tmp_path)
    lines = before.splitlines(keepends=True)
    (run_dir / PREDICTIONS).write_text("".join(lines[:3] + lines[6:]))  # 3 rows of fold 1 lost
    record = train(cfg)
    check_rows_score_as_the_record(record, read_predictions(run_dir / PREDICTIONS))
    after = (run_dir / PREDICTIONS).read_text().splitlines()
    assert sorted(after) == sorted(before.splitlines())  # fold 1 trained again, after fold 2


def test_a_run_resumed_from_before_predictions_names_its_missing_folds(
    store_path: Path, tmp_path: Path
) -> None:
    cfg = small_config(store_path, tmp_path, protocol="session5", seeds=2)
    full = train(cfg)
    run_dir = tmp_path / full.name
    write(run_dir / "run.json", replace(full, folds=full.folds[:1]))
    (run_dir / PREDICTIONS).unlink()  # trained by a version that kept none
    record = train(cfg)
    table = read_predictions(run_dir / PREDICTIONS)
    assert missing_folds(record, table) == [(0, "session5")]
    assert table.runs() == [(1, "session5")]
