"""The cross protocol (ser.corpus.protocols.cross): one fold, all of one corpus trains."""

from __future__ import annotations

import numpy as np
import pytest

from ser.corpus.protocols.cross import GROUP, TEST, TRAIN, CrossCorpus
from ser.corpus.protocols.folds import FoldData, LeakageError


def data(n_train: int = 40, n_test: int = 12, speakers: tuple[str, str] = ("a", "b")) -> FoldData:
    labels = np.arange(n_train + n_test) % 4
    side = np.array([TRAIN] * n_train + [TEST] * n_test)
    names = np.where(side == TRAIN, speakers[0], speakers[1])
    return FoldData(labels, names, {GROUP: side})


def test_trains_on_one_corpus_and_tests_on_the_other() -> None:
    (fold,) = CrossCorpus("cross", "IEMOCAP", "MELD").folds(data(), "next-group", seed=0)
    assert set(fold.test.tolist()) == set(range(40, 52))
    assert len(fold.val) == 4 and set(fold.train.tolist()) | set(fold.val.tolist()) == set(
        range(40)
    )
    assert fold.speaker_independent and fold.test_groups == ("MELD",)


def test_val_none_trains_on_all_of_it() -> None:
    (fold,) = CrossCorpus("cross").folds(data(), "none", seed=0)
    assert len(fold.train) == 40 and len(fold.val) == 0 and not fold.validated
    assert "none" in CrossCorpus("cross").validation("none")


def test_a_speaker_on_both_sides_is_leakage() -> None:
    with pytest.raises(LeakageError, match="test speaker"):
        CrossCorpus("cross").folds(data(speakers=("a", "a")), "next-group", seed=0)
