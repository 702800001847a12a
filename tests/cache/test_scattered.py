"""Rows written straight to their place in a set's chunks (`ser.cache.scattered`), in
either format: a part kept and read back, an utterance off its predicted count kept
aside, the set sealed, compacted in place or laid out anew, and an array of the layout
written before checksums left to staged shards."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest, scattered
from ser.cache import backend as backend_module
from ser.cache import store as store_module
from ser.cache.manifest import COLUMNS
from ser.errors import StoreError

ATTRS = {"extractor": "logmel", "modality": "audio", "level": "frame", "dim": 2, "dtype": "float32"}


@pytest.fixture(params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def suffix(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_store(path: Path, n: int = 4) -> FeatureStore:
    columns = {c: [0] * n for c in COLUMNS} | {"utt_id": list("abcdefgh"[:n])}
    store = FeatureStore.create(path, Manifest.from_columns(columns))
    store.begin_feature_set("x", ATTRS)
    return store


def rows(n: int, value: float) -> np.ndarray:
    return np.full((n, 2), value, np.float32)


def test_rows_in_place_are_sealed_as_consolidate_lays_them_out(tmp_path: Path, suffix: str) -> None:
    store = new_store(tmp_path / f"f{suffix}")
    writer = store.scattered_writer("x", np.array([3, 0, 2, 1]))
    assert writer is not None and pickle.loads(pickle.dumps(writer)) == writer
    writer.write(1, {3: rows(1, 4.0), 0: rows(3, 1.0)})  # shards in any order
    writer.write(0, {2: rows(2, 3.0)}, {1: "no wav file"})
    assert store.done_shards("x") == {0, 1}
    assert (store.info("x").rows, store.info("x").failures) == (6, 1)
    store.consolidate("x", 2)
    data = store.read("x")
    assert data.offsets.tolist() == [0, 3, 3, 5, 6]
    assert data.data[:, 0].tolist() == [1, 1, 1, 3, 3, 4]
    assert store.failures("x") == [("b", "no wav file")]
    assert store.verify() == [] and not (tmp_path / f"f{suffix}.staging").exists()


def test_a_part_is_read_back_and_an_utterance_off_its_count_is_laid_out(
    tmp_path: Path, suffix: str
) -> None:
    store = new_store(tmp_path / f"f{suffix}")
    writer = store.scattered_writer("x", np.array([3, 0, 2, 1]))
    assert writer is not None
    writer.write_part(0, {0: rows(3, 1.0), 2: rows(4, 3.0)}, {1: "no wav file"})  # 4, not 2
    assert writer.part_indices(0) == {0, 1, 2}
    held, failed = writer.read_part(0)
    assert [held[0][0, 0], len(held[2]), failed] == [1.0, 4, {1: "no wav file"}]
    writer.write(0, {**held, 3: rows(1, 4.0)}, failed)
    assert writer.part_indices(0) == set()
    store.consolidate("x", 1)
    data = store.read("x")
    assert data.offsets.tolist() == [0, 3, 3, 7, 8]
    assert data.data[:, 0].tolist() == [1, 1, 1, 3, 3, 3, 3, 4]
    assert store.verify() == []


def test_a_killed_writer_s_records_are_kept_when_it_begins_again(
    tmp_path: Path, suffix: str
) -> None:
    store = new_store(tmp_path / f"f{suffix}")
    first = store.scattered_writer("x", np.array([3, 0, 2, 1]))
    assert first is not None
    first.write(0, {0: rows(3, 1.0)}, {1: "no wav file"})
    again = store.scattered_writer("x", np.array([3, 0, 2, 1]))  # the same counts: resumed
    assert again is not None and again.done() == {0}
    other = store.scattered_writer("x", np.array([3, 0, 2, 2]))  # other counts: anew
    assert other is not None and other.done() == set()


def test_an_array_of_the_layout_before_checksums_stages_its_shards(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend_module, "CHUNK_CHECKSUMS", False)
    store = new_store(tmp_path / f"f{suffix}")
    if suffix == ".h5":  # HDF5's layout then is one contiguous array: no chunks to place
        assert store.scattered_writer("x", np.array([3, 0, 2, 1])) is None
    else:  # Zarr's chunk files hold raw rows without a checksum
        writer = store.scattered_writer("x", np.array([3, 0, 2, 1]))
        assert writer is not None and not writer.chunks.crc  # type: ignore[attr-defined]


def test_counts_must_cover_the_manifest(tmp_path: Path) -> None:
    store = new_store(tmp_path / "f.zarr")
    with pytest.raises(ValueError, match="one row count per manifest utterance"):
        store.scattered_writer("x", np.array([3, 0]))


def test_a_set_laid_out_anew_and_stopped_is_never_read_as_placed(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One utterance a row over its count, another failed: as many rows as predicted, so
    the new array has the placed one's shape; stopped before the set is complete, the
    next run refuses rather than read the new rows as if they were still placed."""
    store = new_store(tmp_path / f"f{suffix}")
    writer = store.scattered_writer("x", np.array([3, 0, 2, 1]))
    assert writer is not None
    writer.write(0, {0: rows(3, 1.0), 2: rows(3, 3.0)}, {1: "no wav file", 3: "NaN output"})

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(FeatureStore, "_complete_set", stopped)
        with pytest.raises(KeyboardInterrupt):
            store.consolidate("x", 1)
    with pytest.raises(StoreError, match="--overwrite"):
        store.consolidate("x", 1)


def raw_chunks(path: Path) -> list[bytes]:
    """Set x's chunks as stored on disk, their checksums with them."""
    if path.is_dir():
        chunks = sorted((path / "x" / "data" / "c").glob("*/0"), key=lambda p: int(p.parent.name))
        return [p.read_bytes() for p in chunks]
    import h5py

    with h5py.File(path, "r") as f:
        data = f["x/data"]
        starts = range(0, data.shape[0], data.chunks[0])
        return [bytes(data.id.read_direct_chunk((start, 0))[1]) for start in starts]


def test_placed_chunks_hold_the_bytes_staged_shards_give(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 4 rows, the last padded: each chunk's bytes and checksum, the offsets,
    failures and recorded checksum are the staged-then-laid-out set's."""
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 32)
    counts = np.array([3, 0, 2, 2])
    shards = [({3: rows(2, 4.0), 0: rows(3, 1.0)}, {}), ({2: rows(2, 3.0)}, {1: "no wav file"})]
    stores = []
    for way in ("placed", "staged"):
        store = new_store(tmp_path / way / f"f{suffix}")
        writer = store.scattered_writer("x", counts) if way == "placed" else None
        assert (writer is None) == (way == "staged")
        for shard_id, (held, failed) in enumerate(shards):
            (writer or store.shard_writer("x")).write(shard_id, held, failed)
        store.consolidate("x", len(shards))
        assert store.chunk_rows("x") == 4 and store.verify() == []
        stores.append(store)
    placed, staged = stores
    assert raw_chunks(placed.path) == raw_chunks(staged.path)
    assert len(raw_chunks(placed.path)) == 2
    assert placed.info("x").attrs == staged.info("x").attrs
    assert placed.offsets("x").tolist() == staged.offsets("x").tolist() == [0, 3, 3, 5, 7]
    assert placed.failures("x") == staged.failures("x")


# 22 rows in chunks of 4 (`CHUNK_BYTES` 32); the 17 kept are chunked so too.
COUNTS = np.array([3, 2, 4, 1, 3, 2, 5, 2])


def with_failures(path: Path) -> FeatureStore:
    """The first utterance failed, one mid-set, one spilled with a row of its two."""
    store = new_store(path, len(COUNTS))
    writer = store.scattered_writer("x", COUNTS)
    assert writer is not None
    held = {
        i: np.arange(2 * n, dtype=np.float32).reshape(n, 2) + 100 * i for i, n in enumerate(COUNTS)
    }
    held[5] = held[5][:1]
    writer.write(1, {i: held[i] for i in (4, 5, 6, 7)})
    writer.write(0, {1: held[1], 2: held[2]}, {0: "no wav file", 3: "NaN output"})
    return store


def laid_out_anew(path: Path) -> FeatureStore:
    """Today's other path: the set written anew beside its placed rows."""
    store = with_failures(path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scattered, "compactable", lambda *a: False)
        store.consolidate("x", 2)
    return store


def same_sets(a: FeatureStore, b: FeatureStore) -> None:
    assert raw_chunks(a.path) == raw_chunks(b.path)
    assert a.info("x").attrs == b.info("x").attrs
    assert a.offsets("x").tolist() == b.offsets("x").tolist() == [0, 0, 2, 6, 6, 9, 10, 15, 17]
    assert a.failures("x") == b.failures("x") == [("a", "no wav file"), ("d", "NaN output")]
    assert np.array_equal(a.read("x").data, b.read("x").data)
    assert a.verify() == [] and not Path(f"{a.path}.staging").exists()


def test_failures_are_compacted_in_place_with_the_bytes_laid_out_anew(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 32)
    anew = laid_out_anew(tmp_path / "anew" / f"f{suffix}")
    store = with_failures(tmp_path / f"f{suffix}")
    beside: list[list[int]] = []  # the journals' sizes as each chunk is overwritten
    overwrite = scattered._overwrite

    def watched(writer, chunk, data, journal, kept):  # type: ignore[no-untyped-def]
        beside.append([p.stat().st_size for p in writer.directory.glob("*.journal")])
        overwrite(writer, chunk, data, journal, kept)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the set was written anew beside its rows")

    monkeypatch.setattr(scattered, "_overwrite", watched)
    monkeypatch.setattr(type(store._backend), "rechunk_data", never)
    store.consolidate("x", 2)
    # every chunk moved (the first failed); a journal, one at a time, for the first two
    # only: the others' rows all come from after them (a gap of a chunk before them)
    assert beside == [[4 * 2 * 4]] * 2 + [[]] * 3
    same_sets(store, anew)


@pytest.mark.parametrize("stop", ["in chunk 0's write", "in chunk 3's write", "before completing"])
def test_a_compaction_killed_goes_on_to_the_same_bytes(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 32)
    anew = laid_out_anew(tmp_path / "anew" / f"f{suffix}")
    store = with_failures(tmp_path / f"f{suffix}")
    kind = type(store.scattered_writer("x", COUNTS).chunks)  # type: ignore[union-attr]
    write = kind.write

    def killed(self, chunk: int, at: int, piece: memoryview) -> None:  # type: ignore[no-untyped-def]
        if f"chunk {chunk}'" in stop:  # all but 4 bytes written, then killed: chunk 0's
            write(self, chunk, at, piece[:-4])  # over its own sources (its last row's)
            raise KeyboardInterrupt
        write(self, chunk, at, piece)

    def stopped(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        if "write" in stop:
            patch.setattr(kind, "write", killed)
        else:
            patch.setattr(FeatureStore, "_complete_set", stopped)
        with pytest.raises(KeyboardInterrupt):
            store.consolidate("x", 2)
    journals = [p.name for p in Path(f"{store.path}.staging").rglob("*.journal")]
    assert journals == (["compact-0.journal"] if "chunk 0" in stop else [])
    store.consolidate("x", 2)
    same_sets(store, anew)
