"""ShardWriter and staging: what a worker may write and how a shard is committed."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from ser.cache.shards import ShardWriter, done_shards, gather, shard_paths
from ser.errors import StoreError


@pytest.fixture
def writer(tmp_path: Path) -> ShardWriter:
    return ShardWriter(
        tmp_path / "staging", "fp", dim=3, dtype="float16", level="frame", n_utterances=6
    )


def meta(writer: ShardWriter, shard_id: int) -> dict:
    return json.loads(shard_paths(writer.directory, shard_id)[1].read_text())


def test_shard_files_sorted_and_cast(writer: ShardWriter) -> None:
    writer.write(4, {5: np.ones((2, 3)), 1: np.zeros((1, 3), np.float32)}, {3: "no audio"})
    data = np.load(shard_paths(writer.directory, 4)[0])
    assert data.dtype == np.float16 and data.tolist() == [[0] * 3, [1] * 3, [1] * 3]
    assert meta(writer, 4) == {
        "fingerprint": "fp",
        "indices": [1, 5],
        "counts": [1, 2],
        "failures": {"3": "no audio"},
    }
    assert done_shards(writer.directory) == {4}
    assert not [p for p in writer.directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("counts", [[], [1], [4, 1, 7]])
def test_a_shard_file_is_np_save_of_its_rows_byte_for_byte(
    writer: ShardWriter, counts: list[int], tmp_path: Path
) -> None:
    """Written part after part (no concatenated copy), the file is what `np.save` of the
    concatenation writes: every reader of `.npy` reads it, and earlier shards resume."""
    rng = np.random.default_rng(0)
    rows = {i: rng.standard_normal((n, 3)).astype(np.float16) for i, n in enumerate(counts)}
    writer.write(0, rows)
    expected = tmp_path / "expected.npy"
    np.save(expected, np.concatenate([np.empty((0, 3), np.float16), *rows.values()]))
    assert shard_paths(writer.directory, 0)[0].read_bytes() == expected.read_bytes()


def test_empty_and_non_finite_outputs_become_failures(writer: ShardWriter) -> None:
    overflow = np.full((2, 3), 1e6, np.float32)  # beyond float16's range -> inf
    nan = np.full((1, 3), np.nan)
    writer.write(0, {0: overflow, 1: np.empty((0, 3)), 2: nan, 4: np.ones((1, 3))})
    assert meta(writer, 0)["indices"] == [4]
    assert meta(writer, 0)["failures"] == {
        "0": "non-finite values (NaN/Inf) in the float16 output",
        "1": "no output (0 rows)",
        "2": "non-finite values (NaN/Inf) in the float16 output",
    }


def test_utterance_level_takes_vectors(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, "fp", dim=4, dtype="float32", level="utterance", n_utterances=2)
    w.write(0, {0: np.arange(4.0), 1: np.ones((1, 4))})
    assert np.load(shard_paths(tmp_path, 0)[0]).shape == (2, 4)
    with pytest.raises(StoreError, match="need one row"):
        w.write(1, {0: np.ones((2, 4))})


@pytest.mark.parametrize(
    ("shard_id", "rows", "failures", "message"),
    [
        (0, {0: np.ones((2, 4))}, {}, r"expected \[rows, 3\] features, got \(2, 4\)"),
        (0, {0: np.ones(3)}, {}, r"expected \[rows, 3\]"),
        (0, {6: np.ones((1, 3))}, {}, "index 6 out of range"),
        (0, {1: np.ones((1, 3))}, {1: "x"}, "both written and failed"),
        (-1, {}, {}, "non-negative integer"),
    ],
)
def test_bad_shards_are_refused(writer: ShardWriter, shard_id, rows, failures, message) -> None:
    with pytest.raises(StoreError, match=message):
        writer.write(shard_id, rows, failures)
    assert done_shards(writer.directory) == set()


def test_shard_without_record_is_not_done(writer: ShardWriter) -> None:
    """A worker killed between the data file and the record leaves an unfinished shard."""
    writer.write(0, {0: np.ones((1, 3))})
    shard_paths(writer.directory, 0)[1].unlink()
    (writer.directory / ".shard-000001.json.abc.tmp").write_text("{")
    assert done_shards(writer.directory) == set()
    writer.write(0, {0: np.ones((1, 3))})  # rewriting it is fine
    assert done_shards(writer.directory) == {0}


def test_writer_pickles(writer: ShardWriter) -> None:
    assert pickle.loads(pickle.dumps(writer)) == writer


def test_gather_checks_records(writer: ShardWriter) -> None:
    writer.write(0, {i: np.ones((i + 1, 3)) for i in range(3)})
    writer.write(1, {3: np.ones((1, 3))}, {4: "x", 5: "y"})
    layout = gather(writer, 2)
    assert layout.offsets.tolist() == [0, 1, 3, 6, 7, 7, 7]
    assert layout.shard.tolist() == [0, 0, 0, 1, 1, 1]
    assert layout.start.tolist() == [0, 1, 3, 0, 0, 0]
    assert layout.failures == {4: "x", 5: "y"}
    other = ShardWriter(writer.directory, "other", 3, "float16", "frame", 6)
    with pytest.raises(StoreError, match="another version of this feature set"):
        gather(other, 2)
    np.save(shard_paths(writer.directory, 1)[0], np.ones((5, 3), np.float16))
    with pytest.raises(StoreError, match="holds 5 rows, its record says 1"):
        gather(writer, 2)
    np.save(shard_paths(writer.directory, 1)[0], np.ones((1, 3), np.float32))
    with pytest.raises(StoreError, match=r"expected \[rows, 3\] float16, got \(1, 3\) float32"):
        gather(writer, 2)  # before consolidate lays out any data
