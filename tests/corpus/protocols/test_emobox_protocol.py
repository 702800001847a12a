"""Protocol `emobox`: EmoBox's folds exactly (its fold_<k> groups), the valid file where
there is one, else ser's random10 carving, and speaker-independence as the folds are."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import ser.corpus.protocols.emobox
from ser.corpus.protocols.emobox import EmoBoxFolds
from ser.corpus.protocols.folds import FoldData
from ser.corpus.registry import KINDS
from ser.errors import ConfigError

LABELS = np.tile(np.arange(4), 10)  # 40 rows, 4 classes
SPEAKERS = np.repeat(np.array(list("abcde")), 8)  # 8 rows each


def _data(**folds: list[str]) -> FoldData:
    return FoldData(LABELS, SPEAKERS, {k: np.array(v) for k, v in folds.items()})


def _by_speaker(test: str, valid: str = "") -> list[str]:
    return [{test: "test", valid: "valid"}.get(str(s), "train") for s in SPEAKERS]


def test_folds_are_the_groups_sides_in_fold_order() -> None:
    data = _data(fold_2=_by_speaker("b"), fold_1=_by_speaker("a"), fold_10=_by_speaker("e"))
    folds = EmoBoxFolds("emobox").folds(data, "next-group", 0)
    assert [f.name for f in folds] == ["fold_1", "fold_2", "fold_10"]
    first = folds[0]
    assert set(SPEAKERS[first.test]) == {"a"} and len(first.test) == 8
    assert len(first.train) + len(first.val) == 32 and len(first.val) == 4  # 10 %, carved
    assert first.speaker_independent and first.val_groups == () and first.validated
    assert EmoBoxFolds("emobox").fold_count({"speaker": SPEAKERS, "fold_1": [], "fold_2": []}) == 2


def test_the_valid_file_validates_where_there_is_one() -> None:
    data = _data(fold_1=_by_speaker("e", valid="d"))
    (fold,) = EmoBoxFolds("emobox").folds(data, "random10", 0)
    assert set(SPEAKERS[fold.val]) == {"d"} and fold.val_groups == ("valid",)
    assert set(SPEAKERS[fold.train]) == {"a", "b", "c"}
    assert "val 8 (valid)" in fold.describe()
    (none,) = EmoBoxFolds("emobox").folds(data, "none", 0)
    assert len(none.val) == 0 and set(SPEAKERS[none.train]) == {"a", "b", "c", "d"}


def test_rows_on_no_side_are_left_out_and_shared_speakers_named() -> None:
    sides = ["test" if i % 8 < 2 else ("" if i % 8 == 2 else "train") for i in range(40)]
    (fold,) = EmoBoxFolds("emobox").folds(_data(fold_1=sides), "none", 0)
    assert len(fold.test) == 10 and len(fold.train) == 25
    assert not fold.speaker_independent and fold.shared_speakers == tuple("abcde")
    assert "speaker-dependent (speakers in test and training: a, b, c, d, e)" in fold.describe()


def test_one_fold_by_number_and_refusals() -> None:
    data = _data(fold_1=_by_speaker("a"), fold_2=_by_speaker("b"))
    (fold,) = EmoBoxFolds.parse("emobox:2", "2").folds(data, "next-group", 0)
    assert fold.name == "fold_2"
    with pytest.raises(ConfigError, match=r"no fold 3; the corpus has fold_1, fold_2"):
        EmoBoxFolds.parse("emobox:3", "3").folds(data, "next-group", 0)
    with pytest.raises(ConfigError, match=r"write emobox\[:K\]"):
        EmoBoxFolds.parse("emobox:x", "x")
    with pytest.raises(ConfigError, match="no EmoBox folds"):
        EmoBoxFolds("emobox").folds(_data(), "next-group", 0)
    with pytest.raises(ConfigError, match="fold_1: its test file lists none"):
        EmoBoxFolds("emobox").folds(_data(fold_1=["train"] * 40), "next-group", 0)


def test_the_kind_defaults_to_it_and_the_record_says_how_it_validated() -> None:
    kind = KINDS["emobox"]
    assert kind.protocol == "emobox" and kind.classes == "all"
    protocol = kind.parse_protocol("emobox")
    assert "valid file where the corpus has one" in protocol.validation("next-group")
    assert protocol.validation("none").startswith("none: the train and valid files")
    assert [p.name for p in kind.protocols][:2] == ["emobox", "speaker-kfold"]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.corpus.protocols.emobox).failed == 0
