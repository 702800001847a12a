"""Label sets: which codes count and what they map to."""

from __future__ import annotations

import pytest

from ser.corpus.labels import LABEL_CODES, LABEL_SETS, get_label_set
from ser.errors import ConfigError


def test_four_class_merges_excited_into_happy_and_drops_the_rest() -> None:
    four = get_label_set("4")
    assert four.classes == ("neu", "hap", "sad", "ang")
    assert four.class_of("exc") == "hap"
    assert four.index_of("exc") == four.index_of("hap") == 1
    assert [c for c in LABEL_CODES if four.class_of(c) is not None] == [
        "neu", "hap", "exc", "sad", "ang",
    ]  # fmt: skip


def test_five_class_adds_frustration() -> None:
    assert get_label_set("5").classes == ("neu", "hap", "sad", "ang", "fru")
    assert get_label_set("5").class_of("exc") == "hap"


def test_six_class_keeps_happy_and_excited_apart() -> None:
    six = get_label_set("6")
    assert six.class_of("exc") == "exc"
    assert six.class_of("xxx") is None
    assert len(six.classes) == 6


def test_all_keeps_every_code() -> None:
    assert all(LABEL_SETS["all"].class_of(c) == c for c in LABEL_CODES)


def test_unknown_set_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown class set '7'"):
        get_label_set("7")
