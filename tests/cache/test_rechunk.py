"""`FeatureStore.rechunk` on Zarr and HDF5 alike: the same rows, offsets, failures,
attributes and fingerprint in chunks of another size; a set that cannot be rechunked is
refused and left as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest, zarr_backend
from ser.cache.zarr_nodes import open_node
from ser.errors import StoreError
from tests.stores import EXAMPLE_ATTRS as ATTRS
from tests.stores import add_incomplete_set, damage_chunk, expected_data, fill

ROW_BYTES = ATTRS["dim"] * 2  # float16


def snapshot(store: FeatureStore, name: str) -> tuple:
    data = store.read(name)
    return data.data.tobytes(), data.offsets.tolist(), data.attrs, store.failures(name)


def test_rechunk_keeps_rows_offsets_attrs_and_fingerprint(
    store_path: Path, manifest: Manifest
) -> None:
    store = FeatureStore.create(store_path, manifest)
    rows = fill(store)
    before = snapshot(store, "hubert.L3")
    assert store.chunk_rows("hubert.L3") == store.info("hubert.L3").rows  # one chunk

    assert store.rechunk("hubert.L3", 5 * ROW_BYTES + 3) == (store.info("hubert.L3").rows, 5)

    reopened = FeatureStore.open(store_path)
    assert reopened.chunk_rows("hubert.L3") == 5
    assert snapshot(reopened, "hubert.L3") == before
    want = expected_data(rows, len(manifest), "float16")
    assert np.array_equal(reopened.read_rows("hubert.L3", 3, 17), want[3:17])
    assert reopened.verify() == []
    # The same settings resume on it: nothing is begun again.
    FeatureStore.open(store_path, mode="a").begin_feature_set("hubert.L3", ATTRS)
    assert FeatureStore.open(store_path).info("hubert.L3").complete


def test_a_reader_open_before_a_rechunk_reads_the_new_chunks(
    store_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore.create(store_path, manifest)
    rows = fill(store)
    want = expected_data(rows, len(manifest), "float16")
    reader = FeatureStore.open(store_path)
    assert np.array_equal(reader.read_rows("hubert.L3", 0, 17), want[:17])
    if store_path.suffix == ".zarr":  # a reader opens a set's data once, not once a read
        opened = []
        monkeypatch.setattr(
            zarr_backend, "open_node", lambda *a, **k: opened.append(a) or open_node(*a, **k)
        )
        for start in range(0, 15, 5):
            reader.read_rows("hubert.L3", start, start + 5)
        assert opened == []
        monkeypatch.undo()

    store.rechunk("hubert.L3", 5 * ROW_BYTES)

    assert reader.chunk_rows("hubert.L3") == 5
    assert np.array_equal(reader.read_rows("hubert.L3", 5, 17), want[5:17])


def test_rechunk_back_to_larger_chunks(store_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(store_path, manifest)
    fill(store)
    before = snapshot(store, "hubert.L3")
    store.rechunk("hubert.L3", ROW_BYTES)
    rows = store.info("hubert.L3").rows
    assert store.rechunk("hubert.L3", 2**20) == (1, rows)
    assert store.rechunk("hubert.L3", 2**20) == (rows, rows)  # already so: nothing written
    assert snapshot(store, "hubert.L3") == before
    assert store.verify() == []


def test_rechunk_refuses_what_it_cannot_do(store_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(store_path, manifest)
    fill(store)
    add_incomplete_set(store, "logmel80")
    with pytest.raises(StoreError, match="no feature set 'nope'"):
        store.rechunk("nope", 2**20)
    with pytest.raises(StoreError, match="under one row"):
        store.rechunk("hubert.L3", ROW_BYTES - 1)
    with pytest.raises(StoreError, match="'logmel80' is incomplete"):
        store.rechunk("logmel80", 2**20)
    with pytest.raises(StoreError, match="read-only"):
        FeatureStore.open(store_path).rechunk("hubert.L3", 2**20)
    assert store.chunk_rows("hubert.L3") == store.info("hubert.L3").rows


def test_rechunk_of_damaged_rows_is_refused_and_changes_nothing(
    store_path: Path, manifest: Manifest
) -> None:
    store = FeatureStore.create(store_path, manifest)
    fill(store)
    store.rechunk("hubert.L3", 4 * ROW_BYTES)
    damage_chunk(store, "hubert.L3/data", chunk=1)
    with pytest.raises(StoreError, match="fail their checksum"):
        store.rechunk("hubert.L3", 2**20)
    assert store.chunk_rows("hubert.L3") == 4
    assert any("hubert.L3" in problem for problem in store.verify())


def test_rechunk_of_rows_unlike_their_recorded_checksum_changes_nothing(
    store_path: Path, manifest: Manifest
) -> None:
    store = FeatureStore.create(store_path, manifest)
    fill(store)
    attrs = store.info("hubert.L3").attrs
    store._backend.set_group_attrs("hubert.L3", {**attrs, "data_sha256": "0" * 64})
    before = store.read("hubert.L3").data.tobytes()
    with pytest.raises(StoreError, match="differ from their recorded checksum"):
        store.rechunk("hubert.L3", ROW_BYTES)
    assert store.chunk_rows("hubert.L3") == store.info("hubert.L3").rows
    assert store.read("hubert.L3").data.tobytes() == before
