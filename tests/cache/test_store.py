"""One conformance suite for the feature store, run against Zarr and HDF5 alike."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest, backend
from ser.cache import store as store_module
from ser.cache.formats import backend_for
from ser.cache.zarr_backend import _chunk_layout
from ser.errors import FingerprintMismatch, StoreError, StoreLocked
from tests.stores import EXAMPLE_ATTRS as ATTRS
from tests.stores import (
    example_columns,
    expected_data,
    fill,
    labelled_store,
    random_rows,
    write_shards,
)

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def drop_array(store_path: Path, name: str, key: str) -> None:
    """Remove one small array of a set as a lost file or a bad copy would."""
    if store_path.suffix == ".zarr":
        shutil.rmtree(store_path / name / key)
        return
    with h5py.File(store_path, "a") as f:
        del f[name][key]


class TestStoreConformance:
    """Behaviour every backend must show; `store_path` is a .zarr and a .h5 path."""

    def test_manifest_round_trips_exactly(self, store_path: Path, manifest: Manifest) -> None:
        FeatureStore.create(store_path, manifest, attrs={"corpus": "synthetic"})
        store = FeatureStore.open(store_path)
        assert store.manifest == manifest
        for name in manifest.names:
            got, want = store.manifest.column(name), manifest.column(name)
            assert got.dtype.kind == want.dtype.kind and got.tolist() == want.tolist(), name
        assert store.manifest.column("transcript")[:4].tolist() == [
            "",
            "naïve café — 日本語",
            "  spaced  ",
            "line\nbreak",
        ]
        assert store.manifest.column("wav")[0] == ""
        assert store.attrs["corpus"] == "synthetic"
        assert store.backend == ("zarr" if store_path.suffix == ".zarr" else "hdf5")

    def test_create_again_opens_or_refuses(self, store_path: Path, manifest: Manifest) -> None:
        FeatureStore.create(store_path, manifest)
        fill(FeatureStore.create(store_path, manifest))  # opened for writing
        columns = manifest.columns()
        columns["label"][3] = "ang"
        with pytest.raises(StoreError, match=r"another manifest.*label"):
            FeatureStore.create(store_path, Manifest.from_columns(columns))

    def test_create_never_replaces_a_store(self, store_path: Path, manifest: Manifest) -> None:
        """Two runs creating the same store at once: the loser opens the winner's."""
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        with pytest.raises(FileExistsError):
            backend_for(store_path, writable=True).create(manifest.columns(), {})
        assert FeatureStore.open(store_path).feature_sets() == ["hubert.L3"]

    def test_open_missing_store(self, store_path: Path) -> None:
        with pytest.raises(StoreError, match="no feature store here"):
            FeatureStore.open(store_path)

    @pytest.mark.parametrize("dtype", ["float16", "float32"])
    def test_shards_out_of_order_consolidate_read(
        self, store_path: Path, manifest: Manifest, dtype: str
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store, attrs={**ATTRS, "dtype": dtype}, n_shards=4)
        features = store.read("hubert.L3")
        assert features.data.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(features.data, expected_data(rows, len(manifest), dtype))
        lengths = [len(rows.get(i, ())) for i in range(len(manifest))]
        assert features.offsets.dtype == np.int64
        assert features.offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
        np.testing.assert_array_equal(features.utterance(7), rows[7].astype(dtype))
        assert len(features.utterance(2)) == 0 and len(features) == len(manifest)
        assert features.attrs["layer"] == 3 and features.attrs["complete"] is True
        assert store.done_shards("hubert.L3") == set()  # staging gone once complete

    def test_failures_table(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store, failures={9: "decoder: truncated file", 2: "naïve reason"})
        ids = manifest.utt_ids
        assert store.failures("hubert.L3") == [
            (ids[2], "naïve reason"),
            (ids[9], "decoder: truncated file"),
        ]
        offsets = store.read("hubert.L3").offsets
        assert offsets[3] == offsets[2] and offsets[10] == offsets[9]

    def test_no_failures_and_all_failed(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store, name="clean", failures={})
        assert store.failures("clean") == []
        everything = {i: "model crashed" for i in range(len(manifest))}
        fill(store, name="broken", failures=everything)
        assert store.read("broken").data.shape == (0, ATTRS["dim"])
        assert len(store.failures("broken")) == len(manifest)
        assert store.verify() == []

    def test_info_fields(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store)
        info = store.info("hubert.L3")
        n_rows = sum(len(r) for r in rows.values())
        assert (info.name, info.modality, info.level) == ("hubert.L3", "audio", "frame")
        assert (info.rows, info.dim, info.dtype) == (n_rows, 6, "float16")
        assert info.complete and info.failures == 2 and len(info.fingerprint) == 64
        assert n_rows * 6 * 2 <= info.bytes < n_rows * 6 * 2 + 200_000
        assert info.attrs["weights_sha256"] == "ab" * 32

    def test_info_while_incomplete(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = random_rows(len(manifest), 6, failed=[1])
        store.begin_feature_set("hubert.L3", ATTRS)
        write_shards(store, "hubert.L3", rows, {1: "bad"}, n_shards=4, only=[1, 3])
        info = store.info("hubert.L3")
        assert not info.complete and info.staged_shards == 2 and info.failures == 1
        assert info.rows == sum(len(r) for i, r in rows.items() if i % 4 in (1, 3))
        assert store.feature_sets() == ["hubert.L3"]

    def test_same_fingerprint_resumes(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        rows = random_rows(len(manifest), 6)
        store.begin_feature_set("hubert.L3", ATTRS)
        write_shards(store, "hubert.L3", rows, {}, n_shards=4, only=[0, 2])
        again = FeatureStore.open(store_path, mode="a")  # a new run
        again.begin_feature_set("hubert.L3", dict(reversed(ATTRS.items())))  # key order moot
        assert again.done_shards("hubert.L3") == {0, 2}
        write_shards(again, "hubert.L3", rows, {}, n_shards=4, only=[1, 3])
        again.consolidate("hubert.L3", 4)
        np.testing.assert_array_equal(
            again.read("hubert.L3").data, expected_data(rows, len(manifest), "float16")
        )

    def test_other_fingerprint_is_refused(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        store.begin_feature_set("hubert.L3", ATTRS)
        write_shards(store, "hubert.L3", random_rows(len(manifest), 6), {}, 2, only=[0])
        with pytest.raises(FingerprintMismatch) as err:
            store.begin_feature_set("hubert.L3", {**ATTRS, "layer": 4, "sample_rate": 8000})
        assert "layer: 3 -> 4" in str(err.value) and "sample_rate: 16000 -> 8000" in str(err.value)
        assert "--overwrite" in str(err.value)
        assert store.done_shards("hubert.L3") == {0}  # nothing lost

    def test_overwrite_replaces(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        old = store.info("hubert.L3").fingerprint
        store.begin_feature_set("hubert.L3", {**ATTRS, "layer": 4}, overwrite=True)
        info = store.info("hubert.L3")
        assert not info.complete and info.fingerprint != old and info.attrs["layer"] == 4
        with pytest.raises(StoreError, match="incomplete"):
            store.read("hubert.L3")
        rows = fill(store, attrs={**ATTRS, "layer": 4}, seed=3)
        got = store.read("hubert.L3").data
        np.testing.assert_array_equal(got, expected_data(rows, len(manifest), "float16"))

    def test_delete_feature_set(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store, name="a")
        fill(store, name="b")
        store.delete_feature_set("a")
        assert FeatureStore.open(store_path).feature_sets() == ["b"]
        with pytest.raises(StoreError, match="no feature set 'a'"):
            store.read("a")

    @pytest.mark.slow
    def test_lock_refused_from_second_process(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(store_path)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(StoreLocked) as err, store.lock():
                pass
            assert str(store_path) in str(err.value) and f"pid {holder.pid}" in str(err.value)
        finally:
            holder.communicate("", timeout=30)
        with store.lock():  # free again once the holder is gone
            pass

    @pytest.mark.slow
    def test_lock_released_when_holder_is_killed(
        self, store_path: Path, manifest: Manifest
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        code = _HOLD_LOCK.replace("sys.stdin.read()", "os.kill(os.getpid(), 9)")
        assert run_python(code, str(store_path)).returncode == -9
        with store.lock():
            pass

    def test_verify_healthy(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        assert store.verify() == []
        report = store.verify_report()
        assert report.healthy and report.checksums == {"hubert.L3": store.checksum("hubert.L3")}

    def test_verify_catches_nan(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        offsets = store.read("hubert.L3").offsets
        poison = np.full((1, 6), np.nan, np.float16)
        store._backend.write_blocks("hubert.L3", [(int(offsets[4]), poison)])
        nan, content = store.verify()  # written through the backend: its chunk checksum holds
        assert "NaN or Inf" in nan and manifest.utt_ids[4] in nan
        assert "content checksum" in content and "differs from the one recorded" in content
        assert store.damage("hubert.L3").utterances == (4,)

    def test_verify_catches_bad_offsets(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store)
        offsets = store.read("hubert.L3").offsets.copy()
        offsets[6], offsets[7] = offsets[7] + 1, offsets[6]
        store._backend.write_arrays("hubert.L3", {"offsets": offsets})
        assert any("not monotonic" in p for p in store.verify())
        store._backend.write_arrays("hubert.L3", {"offsets": offsets[:-1]})
        assert any("offsets has shape" in p for p in store.verify())

    def test_verify_catches_incomplete_and_failure_rows(
        self, store_path: Path, manifest: Manifest
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        fill(store, name="done")
        store.begin_feature_set("pending", ATTRS)
        ids = manifest.utt_ids
        store._backend.write_arrays("done", {"failures_utt_id": ids[[0, 2]]})
        problems = store.verify()
        assert any(p.startswith("pending: incomplete") for p in problems)
        assert any("failed utterances have rows: " + ids[0] in p for p in problems)
        assert any("no rows and no failure" in p and ids[5] in p for p in problems)

    def test_verify_and_reads_catch_a_failures_table_half_there(
        self, store_path: Path, manifest: Manifest
    ) -> None:
        # Both arrays are written together: one alone, or lengths apart, lost the reasons.
        store = FeatureStore.create(store_path, manifest)
        fill(store, name="done")  # utterances 2 and 5 failed
        assert store.failures("done") == [
            (manifest.utt_ids[2], "audio file missing"),
            (manifest.utt_ids[5], "empty transcript"),
        ]
        store._backend.write_arrays("done", {"failures_reason": np.array(["x"], np.str_)})
        assert "done: its failures table is damaged: 2 utterance ids but 1 reasons" in (
            store.verify()
        )
        with pytest.raises(StoreError, match="'done': its failures table is damaged"):
            store.failures("done")
        drop_array(store_path, "done", "failures_reason")
        assert "done: its failures table is damaged: failures_reason is missing" in (
            FeatureStore.open(store_path).verify()
        )
        with pytest.raises(StoreError, match="failures_reason is missing; `ser store verify"):
            FeatureStore.open(store_path).failures("done")

    def test_read_only_refuses_writes(self, store_path: Path, manifest: Manifest) -> None:
        FeatureStore.create(store_path, manifest)
        with pytest.raises(StoreError, match="read-only"):
            FeatureStore.open(store_path).begin_feature_set("x", ATTRS)

    def test_consolidate_refuses_missing_shards(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        store.begin_feature_set("hubert.L3", ATTRS)
        write_shards(store, "hubert.L3", random_rows(16, 6), {}, n_shards=4, only=[0, 3])
        with pytest.raises(StoreError, match=r"2 of 4 shards are not written yet \(e.g. 1, 2\)"):
            store.consolidate("hubert.L3", 4)
        store.delete_feature_set("hubert.L3")
        store.begin_feature_set("hubert.L3", ATTRS)
        writer = store.shard_writer("hubert.L3")
        writer.write(0, {0: np.ones((1, 6))})
        writer.write(1, {1: np.ones((1, 6))})
        with pytest.raises(StoreError, match="14 utterances are in none of the 2 shards"):
            store.consolidate("hubert.L3", 2)
        writer.write(2, {1: np.ones((1, 6))})
        with pytest.raises(StoreError, match="index 1 is in more than one shard"):
            store.consolidate("hubert.L3", 3)

    def test_layout_independent_of_sharding(self, tmp_path: Path, manifest: Manifest) -> None:
        """Any split into shards, and either backend, gives the same bytes."""
        digests = set()
        for n_shards, suffix in [(1, ".zarr"), (5, ".zarr"), (3, ".h5"), (16, ".h5")]:
            store = FeatureStore.create(tmp_path / f"s{n_shards}{suffix}", manifest)
            fill(store, n_shards=n_shards)
            digests.add(store.checksum("hubert.L3"))
        assert len(digests) == 1

    def test_many_chunks(
        self, store_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store_module, "CHUNK_BYTES", 5 * 6 * 2)  # 5 rows per chunk
        store = FeatureStore.create(store_path, manifest)
        rows = fill(store)
        expected = expected_data(rows, len(manifest), "float16")
        np.testing.assert_array_equal(store.read("hubert.L3").data, expected)
        assert store.verify() == []

    @pytest.mark.slow
    def test_shard_writer_works_in_another_process(
        self, store_path: Path, manifest: Manifest, tmp_path: Path
    ) -> None:
        store = FeatureStore.create(store_path, manifest)
        store.begin_feature_set("hubert.L3", ATTRS)
        pickled = tmp_path / "writer.pkl"
        pickled.write_bytes(pickle.dumps(store.shard_writer("hubert.L3")))
        done = run_python(
            f"""
            import pickle, numpy as np
            writer = pickle.loads(open({str(pickled)!r}, "rb").read())
            writer.write(0, {{i: np.full((2, 6), i) for i in range(16) if i != 3}}, {{3: "x"}})
            """
        )
        assert done.returncode == 0, done.stderr
        store.consolidate("hubert.L3", 1)
        data = store.read("hubert.L3").data
        assert data.shape == (30, 6) and data[2:4].tolist() == [[1.0] * 6] * 2
        assert store.failures("hubert.L3") == [(manifest.utt_ids[3], "x")]

    def test_interrupted_consolidation_recovers(
        self, store_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(store_module, "CHUNK_BYTES", 4 * 6 * 2)
        store = FeatureStore.create(store_path, manifest)
        rows = random_rows(len(manifest), 6, failed=[5])
        store.begin_feature_set("hubert.L3", ATTRS)
        write_shards(store, "hubert.L3", rows, {5: "bad"}, n_shards=3)
        real = store._backend.write_blocks

        def crash_after_one(name, blocks):
            real(name, [next(iter(blocks))])
            raise KeyboardInterrupt

        monkeypatch.setattr(store._backend, "write_blocks", crash_after_one)
        with pytest.raises(KeyboardInterrupt):
            store.consolidate("hubert.L3", 3)
        monkeypatch.setattr(store._backend, "write_blocks", real)
        assert not store.info("hubert.L3").complete
        assert store.done_shards("hubert.L3") == {0, 1, 2}
        store.consolidate("hubert.L3", 3)
        expected = expected_data(rows, len(manifest), "float16")
        np.testing.assert_array_equal(store.read("hubert.L3").data, expected)
        assert store.verify() == []

    @pytest.mark.slow
    def test_consolidation_killed_with_sigkill_recovers(
        self, store_path: Path, manifest: Manifest, tmp_path: Path
    ) -> None:
        reference = FeatureStore.create(tmp_path / f"ref{store_path.suffix}", manifest)
        fill(reference, name="other")
        rows = fill(reference)
        store = FeatureStore.create(store_path, manifest)
        fill(store, name="other")
        store.begin_feature_set("hubert.L3", ATTRS)
        write_shards(store, "hubert.L3", rows, {2: "audio file missing", 5: "empty transcript"}, 3)
        killed = run_python(_KILL_MID_CONSOLIDATION.format(path=str(store_path)))
        assert killed.returncode == -9, killed.stderr
        store = FeatureStore.open(store_path, mode="a")
        assert not store.info("hubert.L3").complete
        assert store.read("other").data.shape[0] > 0  # the rest of the store is intact
        store.consolidate("hubert.L3", 3)
        assert store.verify() == []
        for name in ("hubert.L3", "other"):
            assert store.checksum(name) == reference.checksum(name)
        np.testing.assert_array_equal(
            store.read("hubert.L3").offsets, reference.read("hubert.L3").offsets
        )
        assert store.failures("hubert.L3") == reference.failures("hubert.L3")

    def test_bad_names_and_attrs(self, store_path: Path, manifest: Manifest) -> None:
        store = FeatureStore.create(store_path, manifest)
        for name in ("manifest", "", "a/b", ".hidden"):
            with pytest.raises(StoreError, match="feature set name"):
                store.begin_feature_set(name, ATTRS)
        with pytest.raises(StoreError, match="lack dim"):
            store.begin_feature_set("x", {k: v for k, v in ATTRS.items() if k != "dim"})
        with pytest.raises(StoreError, match="level"):
            store.begin_feature_set("x", {**ATTRS, "level": "segment"})
        with pytest.raises(StoreError, match="plain JSON"):
            store.begin_feature_set("x", {**ATTRS, "when": object()})


_HOLD_LOCK = """
import os, sys
from ser.cache import FeatureStore
store = FeatureStore.open(sys.argv[1], mode="a")
with store.lock():
    print("locked", flush=True)
    sys.stdin.read()
"""

_KILL_MID_CONSOLIDATION = """
import os, signal
from ser.cache import FeatureStore, store as store_module
store_module.CHUNK_BYTES = 3 * 6 * 2  # several blocks
store = FeatureStore.open({path!r}, mode="a")
real = store._backend.write_blocks
def die_after_one(name, blocks):
    real(name, [next(iter(blocks))])
    os.kill(os.getpid(), signal.SIGKILL)
store._backend.write_blocks = die_after_one
store.consolidate("hubert.L3", 3)
"""


def test_zarr_direct_read_matches_zarr(
    tmp_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk-file fast path returns exactly what zarr itself reads."""
    import zarr

    monkeypatch.setattr(store_module, "CHUNK_BYTES", 7 * 6 * 2)
    store = FeatureStore.create(tmp_path / "f.zarr", manifest)
    fill(store)
    via_zarr = zarr.open_array(str(tmp_path / "f.zarr" / "hubert.L3" / "data"), mode="r")[...]
    assert via_zarr.shape[0] > 7 * 3  # several chunks, the last one partial
    array = zarr.open_array(str(tmp_path / "f.zarr" / "hubert.L3" / "data"), mode="r")
    assert _chunk_layout(array) == "crc32c"  # the fast path is taken
    np.testing.assert_array_equal(store.read("hubert.L3").data, via_zarr)
    # A layout ser does not write (compressed, say) is read through zarr's own path.
    group = zarr.open_group(str(tmp_path / "f.zarr" / "hubert.L3"), mode="r+")
    array = group.create_array("data", data=via_zarr, chunks=(7, 6), overwrite=True)
    assert _chunk_layout(array) is None
    np.testing.assert_array_equal(store.read("hubert.L3").data, via_zarr)


def test_zarr_direct_read_refuses_a_short_chunk_file(
    tmp_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore.create(tmp_path / "f.zarr", manifest)
    fill(store)
    chunk = tmp_path / "f.zarr" / "hubert.L3" / "data" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1])
    with pytest.raises(StoreError, match=r"rows 0-\d+ of its data fail their checksum"):
        store.read("hubert.L3")
    monkeypatch.setattr(backend, "CHUNK_CHECKSUMS", False)  # a store written before
    store = FeatureStore.create(tmp_path / "old.zarr", manifest)
    fill(store)
    chunk = tmp_path / "old.zarr" / "hubert.L3" / "data" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1])
    with pytest.raises(StoreError, match="chunk file is shorter than its array says"):
        store.read("hubert.L3")


def test_hdf5_overwrite_reuses_space(tmp_path: Path) -> None:
    """Replacing a set again and again must not grow the file without bound."""
    columns = example_columns([f"Ses01F_impro01_F{i:03d}" for i in range(200)])
    store = FeatureStore.create(tmp_path / "f.h5", Manifest.from_columns(columns))
    attrs = {**ATTRS, "dim": 256}
    fill(store, name="a", attrs=attrs, failures={})
    fill(store, name="b", attrs=attrs, failures={})
    size, one_set = os.path.getsize(store.path), store.info("a").bytes
    for layer in range(5, 11):
        store.begin_feature_set("a", {**attrs, "layer": layer}, overwrite=True)
        fill(store, name="a", attrs={**attrs, "layer": layer}, failures={}, seed=layer)
    assert os.path.getsize(store.path) < size + 1.5 * one_set  # not size + 6 * one_set


def test_unknown_suffix(tmp_path: Path, manifest: Manifest) -> None:
    with pytest.raises(StoreError, match=r"must end in \.zarr"):
        FeatureStore.create(tmp_path / "features.npz", manifest)


def test_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(StoreError, match="not an HDF5 file"):
        FeatureStore.open(tmp_path / "x.h5")
    (tmp_path / "y.zarr").mkdir()
    (tmp_path / "y.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    with pytest.raises(StoreError, match="not a ser feature store"):
        FeatureStore.open(tmp_path / "y.zarr")


def test_trash_of_a_killed_delete_is_swept(tmp_path: Path, manifest: Manifest) -> None:
    store = FeatureStore.create(tmp_path / "f.zarr", manifest)
    fill(store)
    trash = tmp_path / ".f.zarr.0123.trash"
    (store.path / "hubert.L3").rename(trash)  # as if killed between rename and rmtree
    FeatureStore.open(store.path)  # read-only: leaves it
    assert trash.exists()
    assert FeatureStore.open(store.path, mode="a").feature_sets() == []
    assert not trash.exists()


@pytest.mark.parametrize("module", ["manifest", "store", "importer"])
def test_docstring_examples(module: str) -> None:
    """The examples need no fixture module: they build their manifest in one line."""
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"ser.cache.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_staging_folder_removed_by_a_thread_beside_is_no_error(
    tmp_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sets consolidated on threads side by side each remove the staging folder once it is
    empty: the other thread's removal may land between this one's looks at the folder."""
    store = FeatureStore.create(tmp_path / "f.zarr", manifest)
    store.begin_feature_set("hubert.L3", ATTRS)
    rows = random_rows(len(manifest), ATTRS["dim"], [], seed=0)
    write_shards(store, "hubert.L3", rows, {}, n_shards=2)
    staging = store.path.with_name("f.zarr.staging")
    is_dir = Path.is_dir

    def other_thread_removes_it(path: Path) -> bool:
        found = is_dir(path)
        if path == staging and found and not any(os.scandir(path)):
            path.rmdir()  # the thread beside found it empty a moment earlier
        return found

    monkeypatch.setattr(Path, "is_dir", other_thread_removes_it)
    store.consolidate("hubert.L3", 2)

    assert not staging.exists()
    assert store.info("hubert.L3").complete


def test_folder_bytes_skips_a_temp_file_renamed_while_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer beside (an extraction, while `ser store info` counts its staging) renames
    its temp file onto the shard just after the count has seen it."""
    (tmp_path / "shard-000000.npy").write_bytes(b"x" * 10)
    temp = tmp_path / ".shard-000001.npy.tmp"
    temp.write_bytes(b"y" * 7)
    stat, renamed = os.stat, []

    def renamed_once_seen(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        found = stat(path, *args, **kwargs)
        if not renamed and os.fspath(path) == str(temp):
            renamed.append(path)
            os.rename(temp, tmp_path / "shard-000001.npy")
        return found

    monkeypatch.setattr(os, "stat", renamed_once_seen)
    assert backend.folder_bytes(tmp_path) in (10, 17)  # never an error
    assert backend.folder_bytes(tmp_path / "gone") == 0


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_rows_read_into_a_buffer_are_the_rows_whatever_the_buffer(
    tmp_path: Path, suffix: str
) -> None:
    """`read_rows(..., out=)` fills a reader's buffer with the rows, any span of them; a
    buffer of another dtype gets them cast (HDF5) or rows of their own (Zarr), never
    its bytes taken for the set's."""
    store = labelled_store(
        tmp_path / f"f{suffix}", {"hubert": ("hubert", "audio", "frame", 6, "float16")}
    )
    want = store.read("hubert").data
    chunk = store.chunk_rows("hubert")
    for buffer in (np.zeros((chunk + 3, 6), np.float16), np.zeros((chunk + 3, 6), np.float32)):
        for start, stop in ((0, chunk), (chunk, min(2 * chunk, len(want))), (1, 4)):
            got = store.read_rows("hubert", start, stop, buffer)
            np.testing.assert_array_equal(got, want[start:stop])
