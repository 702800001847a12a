"""`--members`: which checkpoints an export holds, ranked by validation, never by test."""

from __future__ import annotations

import pytest

from ser.errors import ConfigError
from ser.export.members import choose_members
from ser.heads.metrics import Metrics
from ser.runs.fold_entry import FoldEntry
from ser.runs.record import RunRecord

KEYS = ["final", "seed0_session5", "seed1_session5", "seed2_session5"]


def _record(validation: list[float | None], test: list[float]) -> RunRecord:
    folds = [
        FoldEntry(
            seed, "session5", Metrics.from_json({"ua": ua}), best_epoch=2,
            curves={} if val is None else {"epoch": [1, 2], "val_ua": [0.0, val]},
        )
        for seed, (val, ua) in enumerate(zip(validation, test, strict=True))
    ]  # fmt: skip
    return RunRecord("mit", {}, "session5", ["neu"], folds=folds)


def test_best_and_k_rank_by_validation_not_test() -> None:
    record = _record([50.0, 70.0, 60.0], test=[90.0, 10.0, 20.0])
    assert choose_members(record, KEYS, "best") == ["seed1_session5"]
    assert choose_members(record, KEYS, "2") == ["seed1_session5", "seed2_session5"]
    assert choose_members(record, KEYS, "all") == KEYS[1:]
    assert choose_members(record, KEYS, "final") == ["final"]


def test_what_cannot_be_chosen_is_said() -> None:
    record = _record([50.0, None, 60.0], test=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="seed1_session5 have no validation score"):
        choose_members(record, KEYS, "best")
    with pytest.raises(ConfigError, match="has 3"):
        choose_members(_record([1.0, 2.0, 3.0], [0, 0, 0]), KEYS, "4")
    for bad in ("0", "some"):
        with pytest.raises(ConfigError, match="--members"):
            choose_members(record, KEYS, bad)
    with pytest.raises(ConfigError, match="no final model"):
        choose_members(record, KEYS[1:], "final")
