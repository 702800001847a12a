"""`ser.FeatureDataset`: cached sets and labels as a torch Dataset, batched by `collate`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import ser
from ser.errors import ConfigError
from tests.api.conftest import FEATURES

IS13 = ("is13", "audio", "utterance", 7, "float32")
HUBERT = ("hubert", "audio", "frame", 6, "float16")


def test_a_folds_side_batches_padded_with_masks_and_labels(demo_store: Path) -> None:
    store = ser.open_store(demo_store)
    fold = ser.folds(store, protocol="loso", features=FEATURES)[0]
    data = ser.FeatureDataset(store, FEATURES, ids=fold.train)
    assert len(data) == len(fold.train) and data.sets == ("logmel80", "tiny-mpnet")
    assert data.classes == ("neu", "hap", "sad", "ang") and data.dims["tiny-mpnet"] == 32
    batch = next(iter(DataLoader(data, batch_size=4, collate_fn=data.collate)))
    assert batch.utt_ids == list(fold.train[:4])
    codes = ser.open_store(demo_store).feature_store.manifest.column("label")
    index = {u: i for i, u in enumerate(store.utterances)}
    gold = [data.classes.index(str(codes[index[u]])) for u in batch.utt_ids]
    assert batch.labels.tolist() == gold
    for name in data.sets:
        x, mask = batch.x[name], batch.mask[name]
        assert x.dtype == torch.float32 and x.shape[:2] == mask.shape
        for b, utt in enumerate(batch.utt_ids):
            rows = store.read(name, utt).astype(np.float32)
            assert int(mask[b].sum()) == len(rows)
            np.testing.assert_array_equal(x[b, : len(rows)].numpy(), rows)
            assert not x[b, len(rows) :].any()


def test_an_item_is_one_utterances_rows_and_label(demo_store: Path) -> None:
    data = ser.FeatureDataset(demo_store, "logmel80+mpnet")  # named as --features names them
    store = ser.open_store(demo_store)
    item = data[2]
    assert item.utt_id == store.utterances[2]
    assert item.features["logmel80"].shape == store.read("logmel80", item.utt_id).shape
    assert 0 <= item.label < len(data.classes) and len(data) == len(store.utterances)


def test_utterance_level_sets_come_as_vectors(labelled_stores) -> None:  # type: ignore[no-untyped-def]
    path = labelled_stores({"is13": IS13, "hubert-tiny": HUBERT})
    data = ser.FeatureDataset(path, "is13+hubert-tiny", classes="4")
    batch = data.collate([data[0], data[1], data[2]])
    assert batch.x["is13"].shape == (3, 7) and "is13" not in batch.mask
    assert batch.x["hubert-tiny"].shape[::2] == (3, 6)
    assert batch.to("cpu").labels.tolist() == [data[i].label for i in range(3)]


def test_an_id_ser_train_would_not_keep_is_refused(labelled_stores) -> None:  # type: ignore[no-untyped-def]
    path = labelled_stores({"is13": IS13})
    store = ser.open_store(path)
    codes = store.feature_store.manifest.column("label").tolist()
    outside = store.utterances[codes.index("fru")]  # not one of the 4 classes
    with pytest.raises(ConfigError, match=f"1 of the ids .*first: {outside}"):
        ser.FeatureDataset(path, "is13", ids=[store.utterances[0], outside], classes="4")
    with pytest.raises(TypeError, match="ids takes a list"):  # one id: a wrong type
        ser.FeatureDataset(path, "is13", ids=store.utterances[0])


def test_folds_and_datasets_of_one_store_read_its_row_index_once(
    demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ser.api.splits

    reads: list[int] = []
    load_data = ser.api.splits.load_data

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(1)
        return load_data(*args, **kwargs)

    monkeypatch.setattr(ser.api.splits, "load_data", counted)
    store = ser.open_store(demo_store)
    folds = ser.folds(store, protocol="loso", classes=4, features=FEATURES)
    train, test = (
        ser.FeatureDataset(store, FEATURES, ids=s) for s in (folds[0].train, folds[0].test)
    )
    assert len(reads) == 1  # the class set's default "4" and 4 are one key
    alone = ser.FeatureDataset(ser.open_store(demo_store), FEATURES, ids=folds[0].test)
    assert len(reads) == 2  # another store object reads its own
    for a, b in zip(test, alone, strict=True):
        assert a.utt_id == b.utt_id and a.label == b.label
        for name in a.features:
            torch.testing.assert_close(a.features[name], b.features[name])
    assert len(train) == len(folds[0].train)


def test_a_refusal_names_the_argument_not_the_flag(demo_store: Path) -> None:
    twice = "logmel80+logmel80"
    said = rf"^features '{re.escape(twice)}' names a feature set twice"
    with pytest.raises(ConfigError, match=said):
        ser.FeatureDataset(demo_store, twice)
    with pytest.raises(ConfigError, match=said):
        ser.folds(demo_store, features=twice)


def test_a_text_models_last_layer_is_asked_for_by_its_layer_too(demo_store: Path) -> None:
    store = ser.open_store(demo_store)
    assert store.sets["tiny-mpnet"].provenance["layer"] == 2  # stored under its bare name
    ids = store.utterances[:3]
    by_layer = ser.FeatureDataset(store, "tiny-mpnet.L2", ids=ids)
    assert by_layer.sets == ("tiny-mpnet",)
    by_name = ser.FeatureDataset(store, "tiny-mpnet", ids=ids)
    torch.testing.assert_close(
        by_layer[0].features["tiny-mpnet"], by_name[0].features["tiny-mpnet"]
    )
