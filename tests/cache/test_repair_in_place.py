"""A repair writes the re-extracted rows straight back into their place in the set's own
chunks (`ser.cache.repair_writer`), in Zarr and HDF5 alike: only small records beside the
store, never rows, and the same bytes as the staged repair (rows staged as shards, then
copied over the damaged ones); a repair stopped part way leaves a store verify reads and
goes on from its records; an utterance re-extracted with another row count leaves the
set as damaged as it was, no more."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest
from ser.cache import store as store_module
from ser.cache.raw_chunks import put_rows
from ser.cache.repair_writer import RepairWriter
from ser.cache.store_types import Damage
from ser.errors import StoreError
from tests.stores import damage_chunk, expected_data, fill

NAME = "hubert.L3"
# 5 rows of 6 float16 a chunk: utterances (1-9 rows) straddle chunk boundaries, so a
# repair writes into the good chunks beside a damaged one too.
SMALL_CHUNKS = 5 * 6 * 2


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", SMALL_CHUNKS)


def damaged(store_path: Path, manifest: Manifest) -> tuple[FeatureStore, dict[int, np.ndarray]]:
    """A set whose chunks 2 and 4 fail their checksum; the rows it was written with."""
    store = FeatureStore.create(store_path, manifest)
    rows = fill(store)
    damage_chunk(store, f"{NAME}/data", chunk=2)
    damage_chunk(store, f"{NAME}/data", chunk=4)
    return store, rows


def begun(
    store_path: Path, manifest: Manifest
) -> tuple[FeatureStore, dict[int, np.ndarray], Damage, RepairWriter]:
    """`damaged`'s set, its repair begun: the damage found and the writer placing rows."""
    store, rows = damaged(store_path, manifest)
    damage = store.begin_repair(NAME)
    writer = store.repair_writer(NAME, damage)
    assert writer is not None
    return store, rows, damage, writer


def chunk_bytes(path: Path) -> dict[str, bytes]:
    """Every chunk of the set's data as the format keeps it, its checksum with it."""
    if path.is_dir():
        folder = path / NAME / "data"
        return {
            str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
        }
    with h5py.File(path, "r") as f:
        data = f[NAME]["data"]
        starts = range(0, data.shape[0], data.chunks[0])
        return {str(s): bytes(data.id.read_direct_chunk((s, 0))[1]) for s in starts}


def staged_repair(store: FeatureStore, rows: dict[int, np.ndarray]) -> bool | None:
    """Today's other path: the re-extracted rows staged as a shard, then copied in."""
    damage = store.begin_repair(NAME)
    store.shard_writer(NAME).write(0, {i: rows[i] for i in damage.utterances})
    return store.repair(NAME, damage)


def staging_files(store: FeatureStore) -> set[str]:
    staging = store.path.with_name(store.path.name + ".staging")
    return {p.name for p in staging.rglob("*") if p.is_file()}


def test_rows_go_back_in_place_with_the_staged_repair_s_bytes(
    store_path: Path, manifest: Manifest, tmp_path: Path
) -> None:
    store, rows = damaged(store_path, manifest)
    last = -(-store.info(NAME).rows // 5) - 1
    assert store.info(NAME).rows % 5  # the last chunk padded: its padding written too
    damage_chunk(store, f"{NAME}/data", chunk=last)
    other = tmp_path / "staged" / store_path.name
    other.parent.mkdir()
    (shutil.copytree if store_path.is_dir() else shutil.copy2)(store_path, other)
    recorded = store.info(NAME).attrs["data_sha256"]

    damage = store.begin_repair(NAME)
    writer = store.repair_writer(NAME, damage)
    assert isinstance(writer, RepairWriter)
    others = {i: rows[i] for i in rows if i not in damage.utterances}  # a batch's neighbours
    writer.write(0, {i: rows[i] for i in damage.utterances[:2]} | others)
    writer.write(1, {i: rows[i] for i in damage.utterances[2:]})
    # Beside the store: the plan and the shards' records, no row.
    assert staging_files(store) == {"repair.json", "repaired-0.json", "repaired-1.json"}
    assert store.repair(NAME, damage) is True
    assert not store.path.with_name(store.path.name + ".staging").exists()

    assert staged_repair(FeatureStore.open(other, mode="a"), rows) is True
    assert chunk_bytes(store_path) == chunk_bytes(other)
    assert store.verify() == [] and store.info(NAME).attrs["data_sha256"] == recorded
    expected = expected_data(rows, len(manifest), "float16")
    np.testing.assert_array_equal(store.read(NAME).data, expected)


def test_a_stopped_repair_is_verified_then_goes_on_from_its_records(
    store_path: Path, manifest: Manifest
) -> None:
    """Stopped after its first shard's record and after a second shard's rows but before
    that shard's record (what a kill -9 leaves): verify names the damage, a repair begun
    again keeps the first shard's utterances and writes only the rest."""
    _, rows, damage, writer = begun(store_path, manifest)
    first, rest = damage.utterances[:2], damage.utterances[2:]
    writer.write(0, {i: rows[i] for i in first})
    start, count = writer.plan().places[rest[0]]  # its rows, cut short, and no record
    put_rows(writer.chunks, writer.plan().chunk_rows, start, np.ones((count - 1, 6), np.float16))

    report = FeatureStore.open(store_path).verify_report()
    assert NAME in report.damaged and not report.damaged[NAME].whole

    again = FeatureStore.open(store_path, mode="a")
    resumed = again.begin_repair(NAME)
    assert resumed.utterances == damage.utterances
    going_on = again.repair_writer(NAME, resumed)
    assert going_on is not None and set(going_on.covered()) == set(first)
    going_on.write(1, {i: rows[i] for i in rest})
    assert again.repair(NAME, resumed) is True
    assert again.verify() == []
    np.testing.assert_array_equal(
        again.read(NAME).data, expected_data(rows, len(manifest), "float16")
    )


def test_new_damage_outside_a_stopped_repair_begins_it_anew(
    store_path: Path, manifest: Manifest
) -> None:
    store, rows, damage, writer = begun(store_path, manifest)
    writer.write(0, {damage.utterances[0]: rows[damage.utterances[0]]})
    damage_chunk(store, f"{NAME}/data", chunk=7)  # a disk failing further since
    again = store.begin_repair(NAME)
    assert set(again.utterances) > set(damage.utterances)
    assert staging_files(store) == set()  # begun anew
    anew = store.repair_writer(NAME, again)
    assert anew is not None and anew.covered() == {}
    anew.write(0, {i: rows[i] for i in again.utterances})
    assert store.repair(NAME, again) is True and store.verify() == []


def test_another_row_count_leaves_the_set_as_damaged_as_it_was(
    store_path: Path, manifest: Manifest
) -> None:
    store, rows, damage, writer = begun(store_path, manifest)
    first = damage.utterances[0]
    writer.write(0, {i: rows[i] for i in damage.utterances} | {first: np.ones((20, 6))})
    with pytest.raises(
        StoreError, match=r"with 20 rows where the set holds \d+: .* left as they were"
    ):
        store.repair(NAME, damage)
    after = store.damage(NAME)
    assert set(after.utterances) <= set(damage.utterances) and not after.whole
    assert first in after.utterances
    assert staging_files(store) == set()
