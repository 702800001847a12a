"""IEMOCAP's session protocols and the random split: sizes, validation side, and no test
utterance or speaker leaking."""

from __future__ import annotations

import dataclasses
import doctest
from dataclasses import replace

import numpy as np
import pytest

import ser.corpus.kinds.iemocap_sessions
import ser.corpus.kinds.official
import ser.corpus.protocols.carve
import ser.corpus.protocols.folds
import ser.corpus.protocols.random_split
from ser.corpus.protocols.folds import Fold, FoldData, LeakageError, check_no_leakage
from ser.corpus.registry import KINDS
from ser.errors import ConfigError, SerError

PROTOCOLS = ("loso", "session5", "random")
# 4-class counts per session (neu, hap, sad, ang) from docs/corpora.md, "Class sets".
COUNTS = {1: (384, 278, 194, 229), 2: (362, 327, 197, 137), 3: (320, 286, 305, 240),
          4: (258, 303, 143, 327), 5: (384, 442, 245, 170)}  # fmt: skip


@dataclasses.dataclass
class Rows:
    sessions: np.ndarray
    speakers: np.ndarray
    labels: np.ndarray
    dialogs: np.ndarray


@pytest.fixture(scope="module")
def rows() -> Rows:
    """IEMOCAP-sized rows: two speakers and 6 dialogs per session, shuffled labels."""
    rng = np.random.default_rng(0)
    sessions, labels = [], []
    for s, counts in COUNTS.items():
        session_labels = np.repeat(np.arange(4), counts)
        labels.append(rng.permutation(session_labels))
        sessions.append(np.full(len(session_labels), s))
    sess, lab = np.concatenate(sessions), np.concatenate(labels)
    gender = rng.choice(["F", "M"], size=len(sess))
    speakers = np.array([f"Ses0{s}{g}" for s, g in zip(sess, gender, strict=True)])
    dialogs = np.array(
        [f"Ses0{s}_d{d}" for s, d in zip(sess, rng.integers(0, 6, len(sess)), strict=True)]
    )
    return Rows(sess, speakers, lab, dialogs)


def make_folds(
    spec: str, sessions: np.ndarray, speakers: np.ndarray, labels: np.ndarray,
    dialogs: np.ndarray | None = None, val: str = "next-group", seed: int = 0,
) -> list[Fold]:  # fmt: skip
    data = FoldData(labels, speakers, {"session": sessions}, dialogs)
    return KINDS["iemocap"].parse_protocol(spec).folds(data, val, seed)


def _folds(
    rows: Rows, spec: str, val: str = "next-group", seed: int = 0, with_dialogs: bool = False
) -> list[Fold]:
    dialogs = rows.dialogs if with_dialogs else None
    return make_folds(spec, rows.sessions, rows.speakers, rows.labels, dialogs, val, seed)


def _assert_disjoint_sorted(fold: Fold) -> None:
    for part in (fold.train, fold.val, fold.test):
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)  # sorted, no repeats
    assert not set(fold.train) & set(fold.test)
    assert not set(fold.val) & set(fold.test)
    assert not set(fold.train) & set(fold.val)


def test_loso_test_sets_partition_all_utterances(rows: Rows) -> None:
    folds = _folds(rows, "loso")
    assert [f.name for f in folds] == ["fold1", "fold2", "fold3", "fold4", "fold5"]
    tests = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(rows.sessions)))
    for s, fold in enumerate(folds, start=1):
        _assert_disjoint_sorted(fold)
        assert fold.test_groups == (s,) and fold.speaker_independent
        assert np.array_equal(fold.test, np.flatnonzero(rows.sessions == s))
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(rows.sessions)


def test_loso_validates_on_the_next_session_cyclically(rows: Rows) -> None:
    for fold in _folds(rows, "loso"):
        (test_session,) = fold.test_groups
        val_session = test_session % 5 + 1  # 1->2, ..., 5->1
        assert fold.val_groups == (val_session,)
        assert np.array_equal(fold.val, np.flatnonzero(rows.sessions == val_session))
        # The validation session is held out from training entirely.
        assert set(rows.sessions[fold.train]) == set(range(1, 6)) - {test_session, val_session}
        test_speakers = set(rows.speakers[fold.test])
        assert not test_speakers & set(rows.speakers[fold.train])
        assert not test_speakers & set(rows.speakers[fold.val])


def test_session5_trains_on_sessions_1_to_4(rows: Rows) -> None:
    (fold,) = _folds(rows, "session5")
    _assert_disjoint_sorted(fold)
    assert fold.name == "session5" and fold.test_groups == (5,) and fold.val_groups == (1,)
    assert np.array_equal(fold.test, np.flatnonzero(rows.sessions == 5))
    assert set(rows.sessions[fold.val]) == {1}
    assert set(rows.sessions[fold.train]) == {2, 3, 4}
    assert len(fold.test) == sum(COUNTS[5])


def test_random10_validation_comes_from_training_sessions(rows: Rows) -> None:
    for fold in _folds(rows, "loso", val="random10", seed=3):
        _assert_disjoint_sorted(fold)
        (test_session,) = fold.test_groups
        assert fold.val_groups == ()
        assert test_session not in set(rows.sessions[fold.val])
        assert not set(rows.speakers[fold.test]) & set(rows.speakers[fold.val])
        side = np.concatenate([fold.train, fold.val])
        assert set(rows.sessions[side]) == set(range(1, 6)) - {test_session}
        per_class = np.bincount(rows.labels[side], minlength=4)
        got = np.bincount(rows.labels[fold.val], minlength=4)
        assert np.all(np.abs(got - 0.1 * per_class) <= 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_is_stratified_70_20_10_within_one_per_class(rows: Rows, seed: int) -> None:
    (fold,) = _folds(rows, "random", seed=seed)
    _assert_disjoint_sorted(fold)
    assert fold.name == "random" and not fold.speaker_independent
    assert fold.test_groups == () and fold.val_groups == ()
    every = np.concatenate([fold.train, fold.val, fold.test])
    assert np.array_equal(np.sort(every), np.arange(len(rows.sessions)))
    per_class = np.bincount(rows.labels, minlength=4)
    for part, share in ((fold.train, 0.7), (fold.val, 0.2), (fold.test, 0.1)):
        got = np.bincount(rows.labels[part], minlength=4)
        assert np.all(np.abs(got - share * per_class) <= 1), (share, got, share * per_class)


def test_random_depends_on_the_seed_only(rows: Rows) -> None:
    (a,) = _folds(rows, "random", seed=5)
    (b,) = _folds(rows, "random", seed=5)
    (c,) = _folds(rows, "random", seed=6)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.val, b.val)
    assert not np.array_equal(a.test, c.test)


def test_random_with_dialogs_keeps_each_dialog_on_one_side(rows: Rows) -> None:
    (fold,) = _folds(rows, "random", seed=1, with_dialogs=True)
    _assert_disjoint_sorted(fold)
    sides = [set(rows.dialogs[p]) for p in (fold.train, fold.val, fold.test)]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    n = len(rows.sessions)
    assert len(fold.train) + len(fold.val) + len(fold.test) == n
    assert abs(len(fold.test) / n - 0.1) < 0.05 and abs(len(fold.val) / n - 0.2) < 0.07


def test_random10_with_dialogs_moves_whole_dialogs(rows: Rows) -> None:
    for fold in _folds(rows, "loso", val="random10", with_dialogs=True):
        assert not set(rows.dialogs[fold.val]) & set(rows.dialogs[fold.train])


def test_random_with_too_few_dialogs_is_a_config_error(rows: Rows) -> None:
    few = np.array([f"d{s}" for s in rows.sessions])  # 5 dialogs cannot make 10 parts
    with pytest.raises(ConfigError, match="needs 10 dialogs, the data has 5"):
        make_folds("random", rows.sessions, rows.speakers, rows.labels, few)


def _fold1(rows: Rows) -> Fold:
    return _folds(rows, "loso")[0]


def test_leakage_check_accepts_the_protocols_folds(rows: Rows) -> None:
    for name in PROTOCOLS:
        for fold in _folds(rows, name):
            check_no_leakage(fold, rows.speakers)


def test_leakage_check_rejects_a_test_utterance_in_train(rows: Rows) -> None:
    fold = _fold1(rows)
    bad = dataclasses.replace(fold, train=np.sort(np.append(fold.train, fold.test[0])))
    with pytest.raises(LeakageError, match=r"fold1: 1 test utterance\(s\) also in train"):
        check_no_leakage(bad, rows.speakers)


def test_leakage_check_rejects_a_test_utterance_in_val(rows: Rows) -> None:
    fold = _fold1(rows)
    bad = dataclasses.replace(fold, val=np.sort(np.append(fold.val, fold.test[:3])))
    with pytest.raises(LeakageError, match=r"3 test utterance\(s\) also in val"):
        check_no_leakage(bad, rows.speakers)


def test_leakage_check_rejects_a_test_speaker_in_train(rows: Rows) -> None:
    fold = _fold1(rows)
    moved = fold.test[0]  # a session 1 utterance moves to train: disjoint indices, shared speaker
    bad = dataclasses.replace(fold, test=fold.test[1:], train=np.sort(np.append(fold.train, moved)))
    with pytest.raises(
        LeakageError, match=f"test speaker\\(s\\) {rows.speakers[moved]}.* in train"
    ):
        check_no_leakage(bad, rows.speakers)
    # The same split is legal when the fold does not claim speaker independence.
    check_no_leakage(dataclasses.replace(bad, speaker_independent=False), rows.speakers)


def test_leakage_check_rejects_empty_and_out_of_range_sets(rows: Rows) -> None:
    fold = _fold1(rows)
    with pytest.raises(LeakageError, match="val set is empty"):
        check_no_leakage(dataclasses.replace(fold, val=np.array([], dtype=np.int64)), rows.speakers)
    beyond = np.append(fold.test, len(rows.speakers))
    with pytest.raises(LeakageError, match="outside the data"):
        check_no_leakage(dataclasses.replace(fold, test=beyond), rows.speakers)
    assert issubclass(LeakageError, SerError)


def test_unknown_protocol_or_validation_mode_is_a_config_error(rows: Rows) -> None:
    with pytest.raises(ConfigError, match="IEMOCAP has no protocol 'kfold': choose loso, session5"):
        KINDS["iemocap"].parse_protocol("kfold")
    with pytest.raises(ConfigError, match="loso takes no options"):
        KINDS["iemocap"].parse_protocol("loso:3")
    with pytest.raises(ConfigError, match="unknown validation mode"):
        _folds(rows, "loso", val="test")
    with pytest.raises(ConfigError, match="CREMA-D has no protocol 'loso'"):
        KINDS["crema-d"].parse_protocol("loso")


def test_protocols_need_their_sessions(rows: Rows) -> None:
    first4 = rows.sessions < 5
    with pytest.raises(ConfigError, match="needs session 5"):
        make_folds("session5", rows.sessions[first4], rows.speakers[first4], rows.labels[first4])
    two = rows.sessions <= 2
    with pytest.raises(ConfigError, match="3 sessions"):
        make_folds("loso", rows.sessions[two], rows.speakers[two], rows.labels[two])
    # With a random validation slice two sessions are enough.
    folds = make_folds(
        "loso", rows.sessions[two], rows.speakers[two], rows.labels[two], val="random10"
    )
    assert [f.name for f in folds] == ["fold1", "fold2"]


def test_describe_names_sizes_and_sessions(rows: Rows) -> None:
    text = _fold1(rows).describe()
    assert text.startswith("fold1: train ")
    assert f"val {sum(COUNTS[2])} (session 2)" in text
    assert f"test {sum(COUNTS[1])} (session 1)" in text and "speaker-independent" in text


def test_docstring_examples_run() -> None:
    for module in (
        ser.corpus.protocols.carve,
        ser.corpus.protocols.folds,
        ser.corpus.protocols.random_split,
        ser.corpus.kinds.iemocap_sessions,
        ser.corpus.kinds.official,
    ):
        assert doctest.testmod(module).failed == 0


def test_val_none_trains_on_every_session_but_the_test_one() -> None:
    sessions = np.repeat([1, 2, 3, 4, 5], 4)
    speakers = np.array([f"Ses0{s}{g}" for s in range(1, 6) for g in "FFMM"])
    labels = np.tile([0, 1, 0, 1], 5)
    for fold in make_folds("loso", sessions, speakers, labels, val="none"):
        assert len(fold.val) == 0 and fold.val_groups == () and not fold.validated
        assert set(sessions[fold.train]) == set(range(1, 6)) - set(fold.test_groups)
        assert "no validation" in fold.describe()
    # An empty validation side is still refused where validation was asked for.
    fold = make_folds("session5", sessions, speakers, labels)[0]
    emptied = replace(fold, val=fold.val[:0])
    with pytest.raises(LeakageError, match="the val set is empty"):
        check_no_leakage(emptied, speakers)


def test_each_protocol_says_how_its_runs_select_the_epoch() -> None:
    """A protocol's wording of each --val mode is its own, falling back to the shared one:
    CMU-MOSEI's standard folds validate on their own valid fold, not MELD's dev partition."""
    from ser.corpus.kinds.cmu_mosei import Standard
    from ser.corpus.kinds.official import Official
    from ser.corpus.protocols.cross import CrossCorpus
    from ser.corpus.protocols.folds import VALIDATION
    from ser.corpus.protocols.random_split import RandomSplit

    assert Standard("standard").validation("next-group").startswith("the standard valid fold")
    assert Official("official").validation("next-group").startswith("the official dev")
    assert Official("official").validation("random10") == VALIDATION["random10"]
    cross = CrossCorpus("cross")
    assert cross.validation("random10") == cross.validation("next-group")
    assert cross.validation("none") == (
        "none: all of the training corpus, fixed epochs, last epoch tested"
    )
    assert {RandomSplit("random").validation(v)[:4] for v in ("none", "random10")} == {"20 %"}
