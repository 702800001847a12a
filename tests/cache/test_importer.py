"""`import_npz`: linear in the number of utterances, each row written once straight into
the store, memory a chunk, a receipt beside the store (the command's output:
tests/commands/test_store_cli.py; an import killed part-way: tests/faults/test_import_faults.py)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import ser.cache.store as store_module
from ser.cache import FeatureStore, Manifest, backend
from ser.cache.backend import folder_bytes
from ser.cache.importer import ImportConfig, import_npz
from ser.cache.receipt_file import read_receipt, receipt_sets
from ser.cache.receipts import write_receipt
from ser.cache.shards import ShardWriter
from ser.synth.manifest import example_columns
from tests.growth import assert_linear

CONFIG = ImportConfig("emb", "audio", "utterance")


def ids(n: int) -> list[str]:
    return [f"Ses01F_impro01_F{i:06d}" for i in range(n)]


def made(folder: Path, arrays: dict[str, np.ndarray], n: int, suffix: str = ".zarr") -> tuple:
    """A store of `n` utterances and an .npz of `arrays` (utterance id -> array)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = FeatureStore.create(
        folder / f"f{suffix}", Manifest.from_columns(example_columns(ids(n)))
    )
    np.savez(folder / "emb.npz", **arrays)
    return store, folder / "emb.npz"


def vectors(n: int, dim: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {u: rng.standard_normal(dim).astype(np.float32) for u in ids(n)}


def fresh(folder: Path) -> Callable[[int], tuple[FeatureStore, Path]]:
    """A new store of n utterances each call, and an .npz of n vectors made once per n."""
    files: dict[int, Path] = {}

    def make(n: int) -> tuple[FeatureStore, Path]:
        where = folder / str(len(list(folder.iterdir())))
        if n not in files:
            files[n] = made(where, vectors(n), n)[1]
            return FeatureStore.open(where / "f.zarr", mode="a"), files[n]
        where.mkdir()
        columns = example_columns(ids(n))
        return FeatureStore.create(where / "f.zarr", Manifest.from_columns(columns)), files[n]

    return make


def test_import_cpu_time_grows_linearly(tmp_path: Path) -> None:
    make = fresh(tmp_path)

    def prepare(n: int) -> Callable[[], object]:
        store, npz = make(n)
        return lambda: import_npz(store, npz, CONFIG)

    assert_linear(prepare, 1000, "ser store import")


def test_verify_cpu_time_grows_linearly(tmp_path: Path) -> None:
    make = fresh(tmp_path)

    def prepare(n: int) -> Callable[[], object]:
        store, npz = make(n)
        import_npz(store, npz, CONFIG)
        return lambda: store.verify_report()

    assert_linear(prepare, 1000, "ser store verify")


def test_the_file_is_opened_once_for_its_headers_and_once_for_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each opening reads the zip's whole directory (an entry per utterance): opened once
    per 512 utterances, the import grew with the square of their number."""
    store, npz = made(tmp_path, vectors(3000), 3000)
    opened = []
    real = zipfile.ZipFile.__init__

    def counted(self: zipfile.ZipFile, *args: object, **kwargs: object) -> None:
        opened.append(args[0])
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zipfile.ZipFile, "__init__", counted)
    import_npz(store, npz, CONFIG)
    assert len(opened) == 2


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_each_row_is_written_once_straight_into_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """No shard is staged: the rows go into the set's data in blocks of one chunk (the
    memory an import holds, whatever the set's size), each row once."""
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 7 * 3 * 2)  # 7 rows of 3 float16 a chunk
    rng = np.random.default_rng(0)
    arrays = {
        u: rng.standard_normal((1 + i % 5, 3)).astype(np.float16) for i, u in enumerate(ids(30))
    }
    del arrays[ids(30)[4]]
    store, npz = made(tmp_path, arrays, 30, suffix)
    blocks: list[tuple[int, int]] = []
    write = type(store._backend).write_blocks

    def spied(self: object, name: str, given: list) -> None:
        given = list(given)
        blocks.extend((start, len(rows)) for start, rows in given)
        write(self, name, given)  # type: ignore[arg-type]

    monkeypatch.setattr(type(store._backend), "write_blocks", spied)
    monkeypatch.setattr(ShardWriter, "write", lambda *a, **k: pytest.fail("a shard staged"))
    disk = []
    place = store_module.FeatureStore.place

    def watched(self: FeatureStore, *args: object) -> object:
        placed = place(self, *args)  # type: ignore[arg-type]
        add = placed.add

        def adding(index: int, values: np.ndarray) -> None:
            add(index, values)
            disk.append(folder_bytes(self.path.with_name(self.path.name + ".staging")))

        placed.add = adding  # type: ignore[method-assign]
        return placed

    monkeypatch.setattr(store_module.FeatureStore, "place", watched)
    import_npz(store, npz, ImportConfig("emb", "audio", "frame"))
    rows = sum(len(a) for a in arrays.values())
    assert sorted(blocks) == [(start, min(7, rows - start)) for start in range(0, rows, 7)]
    assert max(disk) < 1024  # beside the store: the record of how far it got, no rows
    features = FeatureStore.open(store.path).read("emb")
    expected = np.concatenate([arrays[u] for u in ids(30) if u in arrays])
    np.testing.assert_array_equal(features.data, expected)
    assert not store.path.with_name(store.path.name + ".staging").exists()
    assert FeatureStore.open(store.path).verify() == []


@pytest.mark.parametrize("checksums", [True, False], ids=["checksums", "before-checksums"])
@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_rows_that_cannot_be_stored_fail_and_the_rows_after_them_move_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, checksums: bool
) -> None:
    """The array, sized for every row counted, is cut to the rows kept: resized, or (HDF5
    written as before checksums: contiguous) written anew."""
    monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", checksums)
    monkeypatch.setattr(store_module, "CHUNK_BYTES", 4 * 2 * 2)  # 4 rows of 2 float16
    arrays = {u: np.full((3, 2), i, np.float32) for i, u in enumerate(ids(6))}
    arrays[ids(6)[1]][1, 0] = np.nan
    arrays[ids(6)[4]][0, 1] = 1e6  # beyond float16
    arrays[ids(6)[5]] = np.zeros((0, 2), np.float32)
    store, npz = made(tmp_path, arrays, 6, suffix)
    config = ImportConfig("emb", "audio", "frame", dtype="float16")
    result = import_npz(store, npz, config)
    assert result.rejected == [
        (ids(6)[1], "non-finite values (NaN/Inf) in the float16 output"),
        (ids(6)[4], "non-finite values (NaN/Inf) in the float16 output"),
        (ids(6)[5], "no output (0 rows)"),
    ]
    features = FeatureStore.open(store.path).read("emb")
    assert features.offsets.tolist() == [0, 3, 3, 6, 9, 9, 9]
    assert features.data[:, 0].tolist() == [0] * 3 + [2] * 3 + [3] * 3
    assert FeatureStore.open(store.path).verify() == []


def test_an_import_writes_the_receipt_an_extraction_keeps(tmp_path: Path) -> None:
    """`ser store verify` checks the store's sets against its receipt: an import records
    its set there, and keeps what an extraction recorded."""
    store, npz = made(tmp_path, vectors(8), 8)
    write_receipt(store.path, "key", {"sets": []})
    import_npz(store, npz, CONFIG)
    receipt = read_receipt(store.path) or {}
    assert receipt["key"] == "key" and receipt["summary"] == {"sets": []}
    assert receipt_sets(store.path)["emb"]["complete"] is True


def test_a_float32_file_of_fortran_arrays_reads_as_numpy_would(tmp_path: Path) -> None:
    matrix = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(4, 3))
    store, npz = made(tmp_path, {ids(1)[0]: matrix}, 1)
    import_npz(store, npz, ImportConfig("emb", "audio", "frame"))
    np.testing.assert_array_equal(FeatureStore.open(store.path).read("emb").data, matrix)
