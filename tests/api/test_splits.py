"""`ser.folds`: a protocol's folds as utterance ids, the very folds `ser train` cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ser
from ser.errors import ConfigError
from ser.train.option_table import train_config
from ser.train.plan import open_stores, resolve_in
from ser.train.prepare import load, open_inputs, run_folds
from tests.api.conftest import FEATURES
from tests.stores import labelled_store

IS13 = ("is13", "audio", "utterance", 7, "float32")


def trainers_folds(**options: str) -> list[tuple[str, tuple[str, ...], ...]]:
    """Each fold's name and sides as `ser train` cuts them for these options."""
    config = train_config({"fusion": "none", **options})
    stores = open_stores([config])
    inputs = open_inputs(config, resolve_in(config, stores), stores)
    data = load(inputs, {})
    ids = data.utt_ids
    return [
        (f.name, *(tuple(ids[rows].tolist()) for rows in (f.train, f.val, f.test)))
        for f in run_folds(inputs, data)
    ]


@pytest.mark.parametrize(
    ("protocol", "classes", "val", "seed"),
    [("loso", "4", "next-group", 0), ("session5", "6", "random10", 3), (None, None, "none", 0)],
)
def test_the_folds_are_ser_trains(labelled_stores, protocol, classes, val, seed) -> None:  # type: ignore[no-untyped-def]
    path = labelled_stores({"is13": IS13})
    made = ser.folds(path, protocol=protocol, classes=classes, val=val, seed=seed)
    options = {"protocol": protocol, "classes": classes, "val": val, "seed": str(seed)}
    given = {k: v for k, v in options.items() if v is not None}
    expected = trainers_folds(store=str(path), features="is13", **given)
    assert [(f.name, f.train, f.val, f.test) for f in made] == expected
    assert all(f.description.startswith(f.name + ": train ") for f in made)


def test_utterances_without_rows_in_a_set_are_left_out_as_ser_train_does(
    tmp_path: Path,
) -> None:
    store = labelled_store(tmp_path / "f.zarr", {"is13": IS13})
    lost = {0: "audio file missing", 7: "empty transcript"}
    store.begin_feature_set("gappy", {"extractor": "bert", "modality": "text", "level": "token",
                                      "dim": 3, "dtype": "float32"})  # fmt: skip
    rows = {i: np.ones((2, 3)) for i in range(len(store.manifest)) if i not in lost}
    store.shard_writer("gappy").write(0, rows, lost)
    store.consolidate("gappy", 1)
    made = ser.folds(tmp_path / "f.zarr", protocol="loso", features="gappy")
    assert [(f.name, f.train, f.val, f.test) for f in made] == trainers_folds(
        store=str(tmp_path / "f.zarr"), features="gappy", protocol="loso"
    )
    gone = {str(store.manifest.utt_ids[i]) for i in lost}
    every = ser.folds(tmp_path / "f.zarr", protocol="loso")
    assert gone <= set(every[0].train + every[0].val + every[0].test)
    assert not gone & set(made[0].train + made[0].val + made[0].test)


def test_val_keeps_its_old_spelling(labelled_stores) -> None:  # type: ignore[no-untyped-def]
    path = labelled_stores({"is13": IS13})
    assert ser.folds(path, val="session") == ser.folds(path, val="next-group")


def test_a_protocol_class_set_or_mode_the_store_cannot_give_is_refused(labelled_stores) -> None:  # type: ignore[no-untyped-def]
    path = labelled_stores({"is13": IS13})
    with pytest.raises(ConfigError, match="protocol"):
        ser.folds(path, protocol="nonsense")
    with pytest.raises(ConfigError):
        ser.folds(path, classes="99")
    with pytest.raises(ConfigError, match="unknown validation mode 'half'"):
        ser.folds(path, val="half")


def test_folds_with_features_read_the_row_index_never_the_rows(
    labelled_stores, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from ser.cache import FeatureStore

    path = labelled_stores(
        {"is13": IS13, "hubert-tiny": ("hubert", "audio", "frame", 6, "float16")}
    )
    expected = trainers_folds(store=str(path), features="hubert-tiny", protocol="loso")

    def refused(*_: object) -> None:
        raise AssertionError("rows were read")

    monkeypatch.setattr(FeatureStore, "read", refused)
    monkeypatch.setattr(FeatureStore, "read_rows", refused)
    made = ser.folds(path, protocol="loso", features="hubert-tiny")
    assert [(f.name, f.train, f.val, f.test) for f in made] == expected


def test_a_class_set_given_as_a_number_is_its_name(labelled_stores) -> None:  # type: ignore[no-untyped-def]
    """`classes=4` is `--classes 4`: before, "no class set 4: choose one of 4, 5, 6, all"."""
    path = labelled_stores({"is13": IS13})
    assert ser.folds(path, classes=6) == ser.folds(path, classes="6") != ser.folds(path)


def test_a_fold_and_a_dataset_print_short(demo_store: Path) -> None:
    fold = ser.folds(demo_store, features=FEATURES)[0]
    said = repr(fold)
    assert said.startswith(f"Fold({fold.name!r}, train={len(fold.train)}, ") and len(said) < 120
    data = ser.FeatureDataset(demo_store, FEATURES, ids=fold.test)
    assert (
        repr(data)
        == f"FeatureDataset({len(fold.test)} utterances, sets=['logmel80', 'tiny-mpnet'])"
    )
