"""The API's arguments are checked where they enter, as Python's own calls check theirs:
a wrong type is a `TypeError` and a wrong value a `ConfigError`, each naming the
argument; the forms whose meaning is plain are taken (a list of sets, a whole float, a
generator of ids read once), never a traceback from inside nor a silent truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

import ser
from ser.errors import ConfigError
from tests.api.conftest import FEATURES


def test_features_as_a_list_are_the_sets_joined(demo_store: Path) -> None:
    joined = ser.folds(demo_store, classes=4, features=FEATURES)
    listed = ser.folds(demo_store, classes=4, features=FEATURES.split("+"))
    assert [f.test for f in listed] == [f.test for f in joined]
    with pytest.raises(TypeError, match="features takes feature set names"):
        ser.folds(demo_store, features=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seed", "error", "said"),
    [("abc", TypeError, "seed takes an integer, got 'abc'"), (1.5, ConfigError, "got 1.5")],
)
def test_a_seed_that_is_no_integer_is_refused_naming_it(
    demo_store: Path, seed: object, error: type[Exception], said: str
) -> None:
    with pytest.raises(error, match=said):
        ser.folds(demo_store, seed=seed)  # type: ignore[arg-type]


def test_ids_are_read_once_in_their_order_a_set_sorted(demo_store: Path) -> None:
    first = ser.folds(demo_store, classes=4, features=FEATURES)[0]
    wanted = list(first.test[:5])
    made = ser.FeatureDataset(demo_store, FEATURES, ids=(u for u in wanted), classes=4)
    assert [made[i].utt_id for i in range(len(made))] == wanted  # a generator: all of it
    unordered = ser.FeatureDataset(demo_store, FEATURES, ids=set(wanted), classes="4")
    assert [unordered[i].utt_id for i in range(len(unordered))] == sorted(wanted)
    with pytest.raises(ValueError, match="at least one item"):
        made.collate([])
    with pytest.raises(TypeError, match="ids takes utterance ids"):
        ser.FeatureDataset(demo_store, FEATURES, ids=[1, 2], classes="4")  # type: ignore[list-item]


def test_a_model_takes_its_arguments_as_python_does(demo_run: Path) -> None:
    with pytest.raises(TypeError, match="batch_size takes an integer, got '4'"):
        ser.load(demo_run, device="cpu", batch_size="4")  # type: ignore[arg-type]
    assert list(ser.load(demo_run, device="cpu").predict([])) == []  # none asked, none made
