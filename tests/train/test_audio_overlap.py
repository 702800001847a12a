"""Test audio seen in training (ser.train.audio_overlap): the count within a store and
across corpora, its line and record, the cross-corpus refusal and --allow-overlap, and
stores made before audio prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.cache.manifest import AUDIO_PRINT
from ser.corpus.protocols.folds import Fold
from ser.errors import ConfigError
from ser.report.runs import load_run, report_table
from ser.runs.data import FoldSeen
from ser.runs.record import RunRecord
from ser.train.audio_overlap import fold_seen
from ser.train.recipe import train
from tests.stores import corpus_store, labelled_store

from .conftest import SETS, small_config
from .test_recipe import Recorder

CROSS = ["neu", "hap", "sad", "ang"] * 10
EMOBOX = ["Neutral", "Happy", "Sad", "Angry"] * 10


def printed(path: Path, prints: list[str]) -> Path:
    FeatureStore.open(path, "a").add_derived_column(AUDIO_PRINT, prints)
    return path


def unique(n: int, start: int = 0) -> list[str]:
    return [f"{i:032x}" for i in range(start, start + n)]


def test_the_training_side_holds_validation_too_and_unprinted_audio_is_not_compared() -> None:
    prints = ["a", "b", "c", "a", "c", "", "z"]
    fold = Fold("f", np.array([0]), np.array([2]), np.array([3, 4, 5, 6]), True)
    seen = fold_seen(prints, fold)
    assert (seen.seen, seen.tested) == (2, 3)


@pytest.fixture(scope="module")
def twice_heard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled store (60 utterances, session 5 its last 12) whose first two session-5
    recordings are session 1's first two, two more are one recording twice within
    session 5, and one has no print (unreadable at extraction)."""
    path = labelled_store(tmp_path_factory.mktemp("heard") / "f.zarr", SETS).path
    prints = unique(60)
    prints[48:53] = [prints[0], prints[1], prints[50], prints[50], ""]
    return printed(path, prints)


def test_a_run_says_records_and_reports_test_audio_heard_in_training(
    twice_heard: Path, tmp_path: Path
) -> None:
    said = Recorder()
    record = train(small_config(twice_heard, tmp_path, protocol="session5", epochs=1), said)
    seen = record.data.audio_seen
    # session 5's 10 utterances of the 4 classes (fru left out), 9 with a print
    assert (seen.seen, seen.tested, seen.unprinted) == (2, 9, 1)
    assert seen.folds == {"session5": FoldSeen(seen=2, tested=9)}
    line = [m for m in said.messages if m.startswith("test audio seen in training")]
    assert len(line) == 1 and "2 of 9 test utterances (22.2 %)" in line[0]
    assert "1 without a print" in line[0]
    table = report_table([load_run(tmp_path / record.name)])
    assert "test audio seen in training" in table and "2/9 (22.2 %)" in table


def test_a_store_made_before_prints_says_the_count_is_not_known_once(tmp_path: Path) -> None:
    store = labelled_store(tmp_path / "old.zarr", {"is13": SETS["is13"]})
    said = Recorder()
    record = train(small_config(store.path, tmp_path, protocol="session5", epochs=1), said)
    seen = record.data.audio_seen
    assert seen.seen is None and seen.tested == 10
    assert "predates audio fingerprints" in seen.unknown
    line = [m for m in said.messages if "test audio seen in training" in m]
    assert len(line) == 1 and line[0].startswith("test audio seen in training: not known: ")
    assert "test audio seen" not in report_table([record])  # nothing found: no column


@pytest.fixture(scope="module")
def same_audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An IEMOCAP store, a store of EmoBox's IEMOCAP folder holding its recordings, and a
    CREMA-D store of recordings of its own."""
    root = tmp_path_factory.mktemp("same")
    stores = {
        "iemocap": corpus_store(root / "iemocap.zarr", "iemocap", CROSS).path,
        "emobox": corpus_store(root / "emobox.zarr", "emobox", EMOBOX, dataset="iemocap").path,
        "crema-d": corpus_store(root / "crema-d.zarr", "crema-d", CROSS).path,
    }
    printed(stores["iemocap"], unique(40))
    printed(stores["emobox"], unique(36) + unique(4, start=100))
    printed(stores["crema-d"], unique(40, start=1000))
    return stores


def cross(
    stores: dict[str, Path], test: str, out: Path, **changes: Any
) -> tuple[RunRecord, Recorder]:
    config = small_config(stores["iemocap"], out, test_store=str(stores[test]), protocol=None,
                          epochs=1, **changes)  # fmt: skip
    said = Recorder()
    return train(config, said), said


def test_a_cross_corpus_run_on_its_own_audio_is_refused(
    same_audio: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as refused:
        cross(same_audio, "emobox", tmp_path)
    said = str(refused.value)
    assert f"--test-store {same_audio['emobox']}: 36 of its 40 test utterances (90.0 %)" in said
    assert f"--store {same_audio['iemocap']}" in said and "--allow-overlap" in said
    assert not any(tmp_path.iterdir())  # refused before its folder is made


def test_allow_overlap_runs_it_and_the_record_and_report_say_the_share(
    same_audio: dict[str, Path], tmp_path: Path
) -> None:
    record, said = cross(same_audio, "emobox", tmp_path, allow_overlap=True)
    seen = record.data.audio_seen
    assert (seen.seen, seen.tested, seen.share) == (36, 40, 0.9) and seen.allowed
    assert any(m.endswith("run anyway: --allow-overlap") for m in said.messages)
    table = report_table([load_run(tmp_path / record.name)])
    assert "36/40 (90.0 %) allowed" in table


def test_a_cross_corpus_run_on_other_audio_runs_and_says_none_was_heard(
    same_audio: dict[str, Path], tmp_path: Path
) -> None:
    record, said = cross(same_audio, "crema-d", tmp_path)
    assert record.data.audio_seen.seen == 0
    assert any(m.startswith("test audio seen in training: 0 of 40") for m in said.messages)
