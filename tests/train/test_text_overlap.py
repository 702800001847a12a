"""Test text seen in training (ser.train.text_overlap): the check, its line, its record and
its report column, and IEMOCAP's script-free protocols that avoid it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.cache.manifest import Manifest
from ser.corpus.protocols.folds import Fold
from ser.report.runs import load_run, report_table
from ser.runs.data import FoldSeen
from ser.synth.manifest import example_columns
from ser.train.recipe import train
from ser.train.text_overlap import MIN_WORDS, fold_overlap, normalise
from tests.stores import add_labelled_set

from .conftest import SETS, small_config
from .test_recipe import Recorder

PER_DIALOG = 4
LABELS = ["neu", "hap", "sad", "ang"]


def scripted_store(path: Path) -> FeatureStore:
    """5 sessions, each a scripted dialog (the same 4 lines in every session) and an
    improvised one (lines of its own)."""
    ids = [
        f"Ses0{s}{g}_{dialog}_{g}{u:03d}"
        for s in range(1, 6)
        for g, dialog in (("F", "script01_1"), ("M", "impro01"))
        for u in range(PER_DIALOG)
    ]
    cols = example_columns(ids)
    cols["label"] = [LABELS[i % 4] for i in range(len(ids))]
    cols["order"] = [i % PER_DIALOG for i in range(len(ids))]
    cols["transcript"] = [
        f"Line {u[-1]} of the script!" if "script" in u else f"session {u[4]} says {u[-1]} now"
        for u in ids
    ]
    store = FeatureStore.create(path, Manifest.from_columns(cols))
    for name in ("is13", "bert-tiny"):
        add_labelled_set(store, name, SETS[name])
    return store


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scripted") / "features.zarr"
    scripted_store(path)
    return path


def test_normalised_text_compares_without_case_or_punctuation() -> None:
    assert normalise("  Oh, I DON'T -- know...") == "oh i dont know"


def test_the_training_side_holds_validation_too_and_short_lines_never_count() -> None:
    texts = ["one two three", "yes no", "four five six", "One, two three.", "yes no", "x"]
    fold = Fold("f", np.array([0, 1]), np.array([2]), np.array([3, 4, 5]), True)
    seen = fold_overlap(texts, fold)
    assert (seen.seen, seen.tested) == (1, 3)  # "yes no" is below MIN_WORDS
    assert MIN_WORDS == 3
    only_val = Fold("g", np.array([1]), np.array([0]), np.array([3]), True)
    assert fold_overlap(texts, only_val).seen == 1


def test_a_text_run_says_records_and_reports_the_test_text_seen(
    scripted: Path, tmp_path: Path
) -> None:
    progress = Recorder()
    config = small_config(scripted, tmp_path, features=("bert-tiny",), protocol="session5",
                          epochs=1)  # fmt: skip
    record = train(config, progress)
    seen = record.data.text_seen
    # Session 5's 4 scripted lines were performed in sessions 1-4; its improvised were not.
    assert (seen.seen, seen.tested) == (PER_DIALOG, 2 * PER_DIALOG)
    assert seen.folds == {"session5": FoldSeen(seen=PER_DIALOG, tested=2 * PER_DIALOG)}
    assert seen.source == "gold transcripts"
    line = [m for m in progress.messages if m.startswith("text seen in training")]
    assert line and "4 of 8 test utterances (50.0 %)" in line[0]
    table = report_table([load_run(Path(tmp_path) / record.name)])
    assert "test text seen in training" in table and "4/8 (50.0 %)" in table


def test_a_run_without_text_makes_no_check(scripted: Path, tmp_path: Path) -> None:
    record = train(small_config(scripted, tmp_path, protocol="session5", epochs=1))
    assert record.data is not None and record.data.text_seen is None
    assert "text seen" not in report_table([record])


@pytest.mark.parametrize(("protocol", "folds"), [("session5-script", 1), ("loso-script", 5)])
def test_script_free_protocols_leave_no_test_line_in_training(
    scripted: Path, tmp_path: Path, protocol: str, folds: int
) -> None:
    progress = Recorder()
    config = small_config(scripted, tmp_path, features=("bert-tiny",), protocol=protocol,
                          epochs=1)  # fmt: skip
    record = train(config, progress)
    assert record.data.text_seen.seen == 0
    assert len(record.data.text_seen.folds) == folds
    # The 4 other sessions' performances of script01_1 left the training side, and it says so.
    said = [m for m in progress.messages if "scripted utterance(s)" in m]
    assert len(said) == folds
    assert all(f"{4 * PER_DIALOG} scripted utterance(s)" in m and "script01_1" in m for m in said)
