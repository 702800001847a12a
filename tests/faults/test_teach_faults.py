"""Data that cannot teach is said at the start of training, with what to do: a feature
set whose every row is the same (silent audio, one transcript for every utterance), over
every utterance or over a fold's training side, and a validation side that holds one
class alone or lacks one. Before, such a run trained to chance on
every fold without a word."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from click.testing import Result

from ser.cache import FeatureStore
from ser.corpus.protocols.folds import Fold
from ser.train.batches import unvalidated_lines
from tests.refused import ser
from tests.stores import labelled_store


def trained(tmp_path: Path, silent: Callable[[str], bool]) -> Result:
    """`ser train` on a store whose is13 rows are one row over and over (silent audio) for
    the utterances of the sessions `silent` names, random for the others."""
    path = tmp_path / "features.zarr"
    store: FeatureStore = labelled_store(path, {})
    attrs = {"extractor": "is13", "modality": "audio", "level": "utterance", "dim": 4,
             "dtype": "float32"}  # fmt: skip
    store.begin_feature_set("is13", attrs)
    sessions = [str(s) for s in store.manifest.column("session")]
    rng = np.random.default_rng(0)
    rows = {
        i: np.full((1, 4), 0.25) if silent(s) else rng.normal(size=(1, 4))
        for i, s in enumerate(sessions)
    }
    store.shard_writer("is13").write(0, rows, {})
    store.consolidate("is13", 1)
    done = ser("train", "--store", path, "--features", "is13", "--fusion", "none",
               "--protocol", "session5", "--epochs", "1", "--device", "cpu",
               "--out", tmp_path / "runs")  # fmt: skip
    assert done.exit_code == 0, done.output
    return done


def test_a_set_the_same_for_every_utterance_is_named_with_what_to_do(tmp_path: Path) -> None:
    done = trained(tmp_path, lambda session: True)
    said = [line for line in done.stderr.splitlines() if "is13: every utterance" in line]
    assert len(said) == 1 and "cannot teach" in said[0] and "extract it again" in said[0]


def test_a_validation_side_of_one_class_is_said() -> None:
    labels = np.array([0, 1, 2, 3, 0, 0, 1, 2])
    one = Fold("fold1", np.arange(4), np.array([4, 5]), np.array([6, 7]), True)
    mixed = Fold("fold2", np.arange(4), np.array([5, 6]), np.array([4, 7]), True)
    lines = unvalidated_lines([one, mixed], labels, ["neu", "hap", "ang", "sad"])
    assert lines[0].startswith("fold1: its validation side holds only neu")
    assert lines[1].startswith("fold2: its validation side holds no ang, sad")  # another line
    assert "--val random10" in lines[0]


def test_a_set_the_same_over_a_training_side_alone_is_named(tmp_path: Path) -> None:
    done = trained(tmp_path, lambda session: session != "5")  # session5's test side varies
    said = [line for line in done.stderr.splitlines() if line.startswith("is13: ")]
    assert len(said) == 1 and "training side's rows are all the same" in said[0], done.stderr
    assert "every utterance's rows are the same" not in done.stderr  # not the whole set


def test_a_validation_side_without_a_class_is_said() -> None:
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    lacking = Fold("fold1", np.arange(4), np.array([4, 5, 6]), np.array([7]), True)
    whole = Fold("fold2", np.arange(4), np.array([4, 5, 6, 7]), np.array([0]), True)
    lines = unvalidated_lines([lacking, whole], labels, ["neu", "hap", "ang", "sad"])
    assert len(lines) == 1 and lines[0].startswith("fold1: its validation side holds no sad")
    assert "chosen by the 3 classes it holds" in lines[0] and "--val none" in lines[0]
