"""Stored bytes that cannot rot silently: per-chunk checksums, the recorded content
checksum, what verify and reads say of damage, stores written before, and repair; run
against Zarr and HDF5 alike."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from zarr.codecs import Crc32cCodec

from ser.cache import FeatureStore, Manifest, backend
from ser.cache import store as store_module
from ser.cache.verify import utterances_in
from ser.errors import StoreError
from tests.stores import EXAMPLE_ATTRS as ATTRS
from tests.stores import damage_chunk, drop_recorded_checksums, expected_data, fill

# 5 rows of 6 float16 a chunk: utterances (1-9 rows) straddle chunk boundaries.
SMALL_CHUNKS = 5 * 6 * 2


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "CHUNK_BYTES", SMALL_CHUNKS)


def stored_arrays(path: Path) -> dict[str, bool]:
    """Every array of the store at ``path`` -> whether its chunks carry a checksum."""
    if path.suffix == ".zarr":
        found = {}
        for meta in path.rglob("zarr.json"):
            node = zarr.open(str(meta.parent), mode="r")
            if isinstance(node, zarr.Array):
                key = str(meta.parent.relative_to(path))
                found[key] = any(isinstance(c, Crc32cCodec) for c in node.metadata.codecs)
        return found
    with h5py.File(path, "r") as f:
        datasets: dict[str, bool] = {}
        f.visititems(
            lambda key, node: (
                datasets.update({key: node.fletcher32}) if isinstance(node, h5py.Dataset) else None
            )
        )
        return datasets


def with_transcripts(store: FeatureStore) -> None:
    store.begin_transcripts("asr-w", {"kind": "asr", "asr_model": "org/w"})
    store.write_transcripts("asr-w", {i: f"text {i}" for i in range(len(store.manifest))})
    store.finish_transcripts("asr-w")


class TestChecksums:
    """`store_path` is a .zarr and a .h5 path."""

    def test_every_array_carries_a_checksum(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        with_transcripts(store)
        arrays = stored_arrays(store_path)
        assert {"hubert.L3/data", "hubert.L3/offsets", "hubert.L3/failures_reason"} <= set(arrays)
        assert {"manifest/utt_id", "manifest/transcript", "transcripts/asr-w/text"} <= set(arrays)
        assert all(arrays.values()), [key for key, checked in arrays.items() if not checked]
        assert FeatureStore.open(store_path).manifest == manifest  # text round-trips

    def test_checksum_recorded_when_completed(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        attrs = store.info("hubert.L3").attrs
        assert attrs["data_sha256"] == store.checksum("hubert.L3")
        report = store.verify_report()
        assert report.healthy and report.recorded == {"hubert.L3": attrs["data_sha256"]}
        assert report.unrecorded == [] and report.damaged == {}

    def test_garbage_in_a_chunk_is_found_by_verify_and_reads(
        self, store_path: Path, manifest: Manifest, small_chunks: None
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        fill(store, name="other", seed=1)
        offsets = store.read("hubert.L3").offsets
        damage_chunk(store, "hubert.L3/data", chunk=2)  # rows 10-14
        held = sorted(utterances_in(offsets, [(10, 15)]))
        ids = [str(manifest.utt_ids[i]) for i in held]

        report = store.verify_report()
        (problem,) = report.problems
        assert problem.startswith("hubert.L3: rows 10-14 fail their chunk checksum")
        assert f"{len(held)} utterances: {ids[0]}" in problem
        assert report.damaged["hubert.L3"].utterances == tuple(held)
        assert not report.damaged["hubert.L3"].whole
        assert report.checksums["hubert.L3"] is None and report.checksums["other"] is not None

        with pytest.raises(StoreError) as error:
            store.read("hubert.L3")
        message = str(error.value)
        assert message.startswith(f"{store.path}: feature set 'hubert.L3' is damaged: rows 10-14")
        assert all(utt in message for utt in ids[:3])
        assert f"`ser store repair {store.path} CORPUS_ROOT`" in message
        assert "\n" not in message
        with pytest.raises(StoreError, match="fail their chunk checksum"):
            store.checksum("hubert.L3")
        assert store.read("other").data.shape[1] == 6  # the rest of the store reads

    def test_damaged_offsets_mean_the_whole_set(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        damage_chunk(store, "hubert.L3/offsets")
        (problem,) = store.verify()
        assert problem.startswith("hubert.L3: its offsets array fails its checksum")
        assert store.damage("hubert.L3").whole
        assert store.info("hubert.L3").failures == 2  # info reads no chunk
        with pytest.raises(
            StoreError,
            match=r"its offsets array fails its checksum .*re-extract the set with `ser store",
        ):
            store.read("hubert.L3")

    def test_damaged_failures_table_means_the_whole_set(
        self, store_path: Path, manifest: Manifest
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        damage_chunk(store, "hubert.L3/failures_reason")
        (problem,) = store.verify()
        assert problem.startswith("hubert.L3: its failures_reason array fails its checksum")
        assert store.damage("hubert.L3").whole
        with pytest.raises(StoreError, match="failures_reason: 1 chunk"):
            store.failures("hubert.L3")

    def test_damaged_transcripts_and_manifest(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        with_transcripts(store)
        damage_chunk(store, "transcripts/asr-w/text")
        (problem,) = store.verify()
        assert problem.startswith("transcripts asr-w: ") and "fail their checksum" in problem
        with pytest.raises(StoreError, match="transcripts/asr-w/text: 1 chunk"):
            store.read_transcripts("asr-w")
        damage_chunk(store, "manifest/label")
        opened = FeatureStore.open(store_path)  # a damaged manifest blocks no set's checks
        with pytest.raises(StoreError, match=r"manifest/label: 1 chunk\(s\) fail their checksum"):
            _ = opened.manifest
        assert [p.split(":")[0] for p in opened.verify()] == ["manifest", "transcripts asr-w"]

    @pytest.mark.slow
    def test_store_written_before_checksums(
        self, store_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Opens, reads and verifies as it is; its set keeps its fingerprint; sets added
        now carry checksums."""
        monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", False)
        old = FeatureStore.create(store_path, manifest)
        rows = fill(old)
        drop_recorded_checksums(old)
        assert not any(stored_arrays(store_path).values())
        monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", True)

        store = FeatureStore.open(store_path, mode="a")
        assert store.manifest == manifest
        expected = expected_data(rows, len(manifest), "float16")
        np.testing.assert_array_equal(store.read("hubert.L3").data, expected)
        report = store.verify_report()
        assert report.healthy and report.unrecorded == ["hubert.L3"]
        new = FeatureStore.create(store_path.with_name("new" + store_path.suffix), manifest)
        fill(new)
        assert store.info("hubert.L3").fingerprint == new.info("hubert.L3").fingerprint
        store.begin_feature_set("hubert.L3", ATTRS)  # the same fingerprint: resumed, kept
        assert store.info("hubert.L3").complete

        fill(store, name="added")
        assert stored_arrays(store_path)["added/data"]
        assert store.verify_report().unrecorded == ["hubert.L3"]

    def test_repair_writes_back_reextracted_rows(
        self, store_path: Path, manifest: Manifest, small_chunks: None
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store)
        recorded = store.info("hubert.L3").attrs["data_sha256"]
        damage_chunk(store, "hubert.L3/data", chunk=2)
        damage_chunk(store, "hubert.L3/data", chunk=4)
        damage = store.damage("hubert.L3")
        store.begin_repair("hubert.L3")
        # What `ser extract --repair` does: the shards holding them, extracted again.
        store.shard_writer("hubert.L3").write(7, {i: rows[i] for i in damage.utterances})
        assert store.repair("hubert.L3", damage) is True  # the recorded bytes again
        assert store.verify() == []
        assert store.info("hubert.L3").attrs["data_sha256"] == recorded
        expected = expected_data(rows, len(manifest), "float16")
        np.testing.assert_array_equal(store.read("hubert.L3").data, expected)
        assert store.done_shards("hubert.L3") == set()  # staging cleared

    def test_repair_with_other_bytes_records_them(
        self, store_path: Path, manifest: Manifest, small_chunks: None
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store)
        damage_chunk(store, "hubert.L3/data", chunk=1)
        damage = store.damage("hubert.L3")
        again = {i: rows[i] + 0.25 for i in damage.utterances}  # another machine's numbers
        store.shard_writer("hubert.L3").write(0, again)
        assert store.repair("hubert.L3", damage) is False
        assert store.verify() == []
        attrs = store.info("hubert.L3").attrs
        assert attrs["data_sha256"] == store.checksum("hubert.L3")
        data = store.read("hubert.L3")
        first = damage.utterances[0]
        np.testing.assert_array_equal(data.utterance(first), again[first].astype(np.float16))

    def test_repair_refuses_other_row_counts(
        self, store_path: Path, manifest: Manifest, small_chunks: None
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store)
        damage_chunk(store, "hubert.L3/data", chunk=1)
        damage = store.damage("hubert.L3")
        first = damage.utterances[0]
        longer = {i: rows[i] for i in damage.utterances} | {first: np.ones((20, 6))}
        store.shard_writer("hubert.L3").write(0, longer)
        with pytest.raises(
            StoreError, match=r"with 20 rows where the set holds \d+: .* nothing was written"
        ):
            store.repair("hubert.L3", damage)
        assert store.damage("hubert.L3").utterances == damage.utterances

    def test_nan_rows_of_a_store_written_before_are_repaired(
        self, store_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", False)
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store)
        drop_recorded_checksums(store)
        monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", True)
        offsets = store.read("hubert.L3").offsets
        poison = np.full((1, 6), np.nan, np.float16)
        store._backend.write_blocks("hubert.L3", [(int(offsets[4]), poison)])
        damage = store.damage("hubert.L3")
        assert damage.utterances == (4,) and not damage.whole
        store.shard_writer("hubert.L3").write(0, {4: rows[4]})
        assert store.repair("hubert.L3", damage) is None  # no recorded checksum to compare
        assert store.verify() == []


def test_zarr_missing_chunk_file_is_damage(tmp_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(tmp_path / "f.zarr", manifest)
    fill(store)
    (store.path / "hubert.L3" / "data" / "c" / "0" / "0").unlink()
    with pytest.raises(StoreError, match=r"rows 0-\d+ of its data fail their checksum"):
        store.read("hubert.L3")
    (store.path / "hubert.L3" / "offsets" / "c" / "0").unlink()
    assert store.damage("hubert.L3").whole


def test_hdf5_data_is_chunked_as_zarr_is(
    tmp_path: Path, manifest: Manifest, small_chunks: None
) -> None:
    store = FeatureStore.create(tmp_path / "f.h5", manifest)
    fill(store)
    with h5py.File(store.path, "r") as f:
        data = f["hubert.L3/data"]
        assert data.chunks == (5, 6) and data.fletcher32
    assert store._backend.chunk_rows("hubert.L3") == 5
