"""`ser.open_store`: a store's sets, utterances and one utterance's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ser
from ser.cache import FeatureStore
from ser.cache.manifest import COLUMNS, Manifest
from ser.errors import StoreError
from tests.stores import fill

IS13 = ("is13", "audio", "utterance", 7, "float32")


def test_sets_utterances_and_reads_are_the_stores(demo_store: Path) -> None:
    store = ser.open_store(demo_store)
    own = FeatureStore.open(demo_store)
    assert list(store.sets) == ["logmel80", "tiny-mpnet"]
    logmel = store.sets["logmel80"]
    assert (logmel.level, logmel.dim, logmel.modality) == ("frame", 80, "audio")
    assert logmel.complete
    assert logmel.rows == own.info("logmel80").rows
    assert logmel.provenance["extractor"] == "logmel"
    assert store.sets["tiny-mpnet"].level == "token"
    assert store.utterances == tuple(own.manifest.utt_ids.tolist())
    assert store.corpus == "iemocap"
    utt = store.utterances[3]
    rows = store.read("logmel80", utt)
    assert rows.ndim == 2 and rows.shape[1] == 80
    np.testing.assert_array_equal(rows, own.read("logmel80").utterance(3))


def test_an_utterance_level_set_reads_as_one_vector(labelled_stores) -> None:  # type: ignore[no-untyped-def]
    store = ser.open_store(labelled_stores({"is13": IS13}))
    assert store.read("is13", store.utterances[0]).shape == (7,)


def test_what_the_store_lacks_is_a_store_error(demo_store: Path, tmp_path: Path) -> None:
    store = ser.open_store(demo_store)
    said = r"no feature set 'hubert' \(it has: logmel80, tiny-mpnet\)"
    with pytest.raises(StoreError, match=said):
        store.read("hubert", store.utterances[0])
    with pytest.raises(StoreError, match="no utterance 'nobody'"):
        store.read("logmel80", "nobody")
    with pytest.raises(StoreError, match="no feature store here"):
        ser.open_store(tmp_path / "none.zarr")


def test_an_utterance_whose_extraction_failed_is_named_with_why(tmp_path: Path) -> None:
    ids = [f"u{i}" for i in range(6)]
    manifest = Manifest.from_columns({c: [0] * 6 for c in COLUMNS} | {"utt_id": ids})
    fill(FeatureStore.create(tmp_path / "f.zarr", manifest))  # u2 and u5 failed
    store = ser.open_store(tmp_path / "f.zarr")
    assert store.read("hubert.L3", "u1").shape[1] == 6
    said = r"hubert\.L3 has no features of u2 \(audio file missing\)"
    with pytest.raises(StoreError, match=said):
        store.read("hubert.L3", "u2")


def test_an_utterances_rows_are_read_alone_and_are_its_own(
    labelled_stores, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    path = labelled_stores({"hubert-tiny": ("hubert", "audio", "frame", 6, "float16")})
    own = FeatureStore.open(path)
    whole = own.read("hubert-tiny")
    read: list[tuple[int, int]] = []
    rows_of = FeatureStore.read_rows

    def counted(self: FeatureStore, name: str, start: int, stop: int) -> np.ndarray:
        read.append((start, stop))
        return rows_of(self, name, start, stop)

    def refused(*_: object) -> None:
        raise AssertionError("the whole set was read")

    monkeypatch.setattr(FeatureStore, "read", refused)
    monkeypatch.setattr(FeatureStore, "read_rows", counted)
    store = ser.open_store(path)
    rows = store.read("hubert-tiny", store.utterances[4])
    assert read == [(int(whole.offsets[4]), int(whole.offsets[5]))]  # its rows alone
    np.testing.assert_array_equal(rows, whole.utterance(4))
    rows[0, 0] = 123  # a caller's change is its own copy's
    again = store.read("hubert-tiny", store.utterances[4])
    np.testing.assert_array_equal(again, whole.utterance(4))


def test_the_manifest_is_a_table_of_the_utterances(demo_store: Path) -> None:
    store = ser.open_store(demo_store)
    table = store.manifest
    assert len(table) == len(store.utterances) and table["utt_id"].tolist() == list(
        store.utterances
    )
    for column in ("utt_id", "label", "speaker", "session", "transcript", "wav"):
        assert column in table.columns and len(table[column]) == len(table)
    own = FeatureStore.open(demo_store).manifest
    assert table["label"].tolist() == own.column("label").tolist()
    # each wav a file under the corpus root the store recorded, not a path relative to it
    assert store.corpus_root is not None and store.corpus_root.is_dir()
    assert all(Path(wav).is_file() for wav in table["wav"])
    row = table.row(store.utterances[1])
    assert row["utt_id"] == store.utterances[1] and isinstance(row["session"], int)
    assert row["transcript"] == own.column("transcript")[1]
    with pytest.raises(ValueError, match="read-only"):
        table["label"][0] = "ang"
    with pytest.raises(KeyError, match="no column 'emotion'; the table has: utt_id"):
        table["emotion"]
    with pytest.raises(KeyError, match="no utterance 'nope'"):
        table.row("nope")


def test_the_manifest_as_a_dataframe(demo_store: Path) -> None:
    pytest.importorskip("pandas")
    table = ser.open_store(demo_store).manifest
    frame = table.to_pandas()
    assert len(frame) == len(table) and list(frame.columns) == list(table.columns)
    utt = table["utt_id"][2]
    assert frame.loc[utt, "wav"] == table["wav"][2] and frame.loc[utt, "label"] == table["label"][2]
