"""Class sets of different corpora paired by emotion name (ser.corpus.emotions)."""

from __future__ import annotations

import pytest

from ser.corpus.emotions import EMOTIONS, class_emotions, emotion, match_classes
from ser.corpus.kinds.crema_d import LABEL_SETS as CREMA_D
from ser.corpus.kinds.meld import LABEL_SETS as MELD
from ser.corpus.kinds.msp_podcast import LABEL_SETS as MSP_PODCAST
from ser.corpus.kinds.ravdess import LABEL_SETS as RAVDESS
from ser.corpus.labels import LABEL_SETS as IEMOCAP
from ser.corpus.labels import LabelSet
from ser.errors import ConfigError


def emobox_set(*names: str) -> LabelSet:
    """A class set as an EmoBox store's may write it: names, not codes."""
    return LabelSet("all", names, {n: n for n in names})


@pytest.mark.parametrize(
    ("name", "expected"),
    [("neu", "neutral"), ("Neutral", "neutral"), ("joy", "happy"), ("Happy", "happy"),
     ("exc", "excited"), ("ang", "angry"), ("Anger", "angry"), ("Fearful", "fear"),
     ("Surprised", "surprise"), ("cal", "calm"), ("con", "contempt"), ("Sarcastic", "sarcastic"),
     ("xxx", None), ("No-agreement", None)],
)  # fmt: skip
def test_codes_and_names_read_as_one_vocabulary(name: str, expected: str | None) -> None:
    assert emotion(name) == expected


def test_every_kind_s_classes_have_canonical_names() -> None:
    for sets in (IEMOCAP, CREMA_D, RAVDESS, MSP_PODCAST, MELD):
        for label_set in sets.values():
            named = class_emotions(label_set)
            known = [n for c, n in named.items() if n is not None and c != "oth"]
            assert all(n in EMOTIONS or n.endswith("sentiment") for n in known), named


def test_iemocap_four_against_emobox_names() -> None:
    match = match_classes(IEMOCAP["4"], emobox_set("Neutral", "Happy", "Angry", "Sad", "Fear"))
    assert match.shared == ("neu", "hap", "sad", "ang")  # the training set's codes and order
    assert match.test_only == ("Fear",) and match.train_only == ()
    assert match.test_set().class_of("Happy") == "hap" and match.test_set().class_of("Fear") is None
    assert match.train_set().class_of("exc") == "hap"  # IEMOCAP's own merge kept


def test_meld_codes_map_by_their_emotion_and_classes_dropped_either_side() -> None:
    match = match_classes(MELD["7"], RAVDESS["8"])
    assert set(match.shared) == {"neu", "hap", "sad", "ang", "sur", "fea", "dis"}
    assert match.test_only == ("cal",)  # RAVDESS's calm has no MELD class
    test = match_classes(RAVDESS["8"], MELD["7"]).test_set()
    assert test.class_of("hap.pos") == "hap" and test.class_of("sur.neg") == "sur"
    assert match_classes(RAVDESS["8"], MELD["7"]).train_only == ("cal",)


def test_sentiment_is_no_emotion() -> None:
    with pytest.raises(ConfigError, match="share 0 emotion"):
        match_classes(MELD["sentiment"], IEMOCAP["4"])


def test_too_few_shared_or_one_emotion_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="share 1 emotion"):
        match_classes(IEMOCAP["4"], emobox_set("Neutral", "Calm", "Boredom"))
    twice = LabelSet("odd", ("hap", "joy"), {"hap": "hap", "joy": "joy"})
    with pytest.raises(ConfigError, match="both read as happy"):
        match_classes(twice, IEMOCAP["4"])
