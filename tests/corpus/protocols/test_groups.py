"""The corpus protocols: speaker k-fold (fixed by its seed, whatever --seed), leave one
group out over a column, the official partitions; each fold checked for leakage."""

from __future__ import annotations

import numpy as np
import pytest

from ser.corpus.protocols.folds import FoldData, LeakageError
from ser.corpus.registry import KINDS
from ser.errors import ConfigError

SPEAKERS = np.repeat([f"s{i}" for i in range(6)], 4)
LABELS = np.tile([0, 1, 2, 3], 6)


def _folds(
    name: str, val: str = "next-group", seed: int = 0, speakers: np.ndarray = SPEAKERS,
    dialogs: np.ndarray | None = None, **columns: np.ndarray,
) -> list:  # fmt: skip
    protocol = KINDS["manifest"].parse_protocol(name)  # the kind that offers every one
    return protocol.folds(FoldData(LABELS, speakers, columns, dialogs), val, seed)


def test_speaker_kfold_is_speaker_disjoint_and_fixed_by_its_own_seed() -> None:
    folds = _folds("speaker-kfold:3")
    assert [f.name for f in folds] == ["fold1", "fold2", "fold3"]
    tested = [g for f in folds for g in f.test_groups]
    assert sorted(tested) == sorted(set(SPEAKERS))  # every speaker tested once
    for fold in folds:
        assert fold.speaker_independent and fold.val_groups
        assert not set(SPEAKERS[fold.test]) & set(SPEAKERS[np.concatenate([fold.train, fold.val])])
    again = _folds("speaker-kfold:3", seed=7)  # --seed leaves the folds alone
    assert [f.test_groups for f in again] == [f.test_groups for f in folds]
    other = _folds("speaker-kfold:3:1")
    assert [f.test_groups for f in other] != [f.test_groups for f in folds]
    assert "test 8 (" in folds[0].describe()
    none = _folds("speaker-kfold", val="none")
    assert len(none) == 5 and all(len(f.val) == 0 for f in none)


def test_logo_and_official() -> None:
    gender = np.array(["F" if s in ("s0", "s2", "s4") else "M" for s in SPEAKERS])
    folds = _folds("logo:gender", val="none", gender=gender)
    assert [f.name for f in folds] == ["gender=F", "gender=M"] and folds[0].speaker_independent
    by_label = _folds("logo:label", label=LABELS.astype(str))  # speakers on both sides
    assert len(by_label) == 4 and not by_label[0].speaker_independent
    split = np.array(["train"] * 16 + ["dev"] * 4 + ["test"] * 4)
    (fold,) = _folds("official", split=split)
    assert (len(fold.train), len(fold.val), len(fold.test)) == (16, 4, 4)
    assert fold.speaker_independent and fold.val_groups == ("dev",)
    (merged,) = _folds("official", val="none", split=split)
    assert (len(merged.train), len(merged.val)) == (20, 0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("speaker-kfold:1", "K >= 2"),
        ("speaker-kfold:7", "needs 7 speakers"),
        ("speaker-kfold:2", "needs K >= 3"),
        ("logo", "needs a group"),
        ("logo:split", "no group 'split' in this corpus: it has speaker"),
        ("official", "no group 'split'"),
        ("leave-one-out", "a manifest has no protocol 'leave-one-out': choose speaker-kfold"),
    ],
)
def test_refusals(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _folds(name)


def test_official_tests_a_named_partition_and_names_what_it_leaves_out() -> None:
    split = np.array(["train"] * 12 + ["dev"] * 4 + ["test"] * 4 + ["test2"] * 4)
    (fold,) = _folds("official", split=split)
    assert fold.left_out == ("test2",) and "left out: test2" in fold.describe()
    (other,) = _folds("official:test2", split=split)
    assert other.test.tolist() == list(range(20, 24)) and other.left_out == ("test",)
    shared = SPEAKERS.astype("U8")
    shared[[0, 16]] = "Unknown"  # one speaker name on both sides
    (dependent,) = _folds("official", speakers=shared, split=split)
    assert not dependent.speaker_independent and dependent.shared_speakers == ("Unknown",)
    assert "speakers in test and training: Unknown" in dependent.describe()
    with pytest.raises(ConfigError, match=r"official\[:PARTITION\]"):
        _folds("official:train", split=split)


def test_official_dev_tests_the_dev_partition_validated_on_a_slice_of_train() -> None:
    """Where a challenge's test labels are not released (MSP-Podcast's Test3), its
    Development partition is the test side; nothing of it trains or validates."""
    split = np.array(["train"] * 80 + ["dev"] * 8 + ["test"] * 4 + ["test2"] * 4)
    data = FoldData(np.tile([0, 1, 2, 3], 24), np.repeat([f"s{i}" for i in range(24)], 4),
                    {"split": split})  # fmt: skip
    protocol = KINDS["manifest"].parse_protocol("official:dev")
    with pytest.raises(ConfigError, match="--val random10"):
        protocol.folds(data, "next-group", 0)
    (fold,) = protocol.folds(data, "random10", 0)
    assert fold.test.tolist() == list(range(80, 88)) and fold.left_out == ("test", "test2")
    assert set(np.concatenate([fold.train, fold.val]).tolist()) == set(range(80))
    assert len(fold.val) and fold.speaker_independent
    (merged,) = protocol.folds(data, "none", 0)
    assert merged.train.tolist() == list(range(80)) and len(merged.val) == 0
    assert merged.val_groups == () and merged.test_groups == ("dev",)  # nothing held out


def test_a_dialog_on_both_sides_is_leakage_for_a_dialog_model() -> None:
    dialogs = np.tile(["d0", "d1", "d2"], 8)  # every dialog spans every speaker
    with pytest.raises(LeakageError, match=r"test dialog\(s\) d0, d1, d2 also in train"):
        _folds("speaker-kfold:3", dialogs=dialogs)
    assert len(_folds("speaker-kfold:3")) == 3  # utterance models: fine


def test_fold_counts_come_from_the_protocol() -> None:
    columns = {"speaker": SPEAKERS, "split": np.array(["train"] * 20 + ["test"] * 4)}
    kind = KINDS["manifest"]
    counts = {
        s: kind.parse_protocol(s).fold_count(columns)
        for s in ("speaker-kfold", "speaker-kfold:3", "logo:speaker", "official", "random")
    }
    assert counts == {"speaker-kfold": 5, "speaker-kfold:3": 3, "logo:speaker": 6,
                      "official": 1, "random": 1}  # fmt: skip
    with pytest.raises(ConfigError, match="no group 'season'"):
        kind.parse_protocol("logo:season").fold_count(columns)
