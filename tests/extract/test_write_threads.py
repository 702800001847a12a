"""An encoder's layers are written side by side: each shard's sets on threads of their
own, and the pass's sets laid out on threads where the store's format allows it (Zarr;
HDF5 one at a time). The bytes are the ones a single thread writes."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from ser.cache import FeatureStore
from ser.cache.scattered import ScatteredWriter
from ser.cache.shards import ShardWriter
from ser.cache.verify import RECORDED
from ser.extract.run import ExtractConfig, extract_features
from ser.runtime.execution import write_threads
from ser.runtime.threads import CpuBudget


@pytest.fixture
def corpus(synthetic_corpus: tuple[Path, Any]) -> Path:
    return synthetic_corpus[0]


def extract(
    corpus: Path, store: Path, tiny_models: Any, threads: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, set[str]]:
    """Every layer's frames of the tiny HuBERT into `store`, on `threads` writing threads;
    the names of the threads that wrote shards and laid sets out."""
    # staging and laying out
    monkeypatch.setattr("ser.extract.run.write_threads", lambda sets: min(sets, threads))
    seen: dict[str, set[str]] = {"shards": set(), "sets": set()}
    consolidate = FeatureStore.consolidate

    def writing(self: Any, write: Any, *args: Any, **kwargs: Any) -> None:
        seen["shards"].add(threading.current_thread().name.split("_")[0])
        write(self, *args, **kwargs)

    def laying_out(self: FeatureStore, *args: Any) -> None:
        seen["sets"].add(threading.current_thread().name.split("_")[0])
        consolidate(self, *args)

    for kind in (ShardWriter, ScatteredWriter):  # rows staged, or placed in the store
        monkeypatch.setattr(kind, "write", functools.partialmethod(writing, kind.write))
    monkeypatch.setattr(FeatureStore, "consolidate", laying_out)
    options = {"model": str(tiny_models.hubert), "layers": "all"}
    config = ExtractConfig(features=("hubert",), options={"hubert": options}, device="cpu",
                           shard_size=16)  # fmt: skip
    report = extract_features(corpus, store, config, console=Console(quiet=True))
    assert report.exit_code == 0 and len(report.extracted) == 3
    return seen


def sets_of(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Each set's rows, offsets and the checksum recorded as they were laid out."""
    store = FeatureStore.open(path)
    out = {}
    for name in store.feature_sets():
        data = store.read(name)
        out[name] = (data.data, data.offsets, data.attrs[RECORDED])  # the rows' checksum
    return out


@pytest.mark.slow
def test_threads_write_the_bytes_one_thread_writes(
    corpus: Path, tiny_models: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (each call wraps the writers again: its threads are checked before the next call)
    alone = extract(corpus, tmp_path / "one.zarr", tiny_models, 1, monkeypatch)
    assert alone == {"shards": {"ser-writer"}, "sets": {"MainThread"}}
    side = extract(corpus, tmp_path / "four.zarr", tiny_models, 4, monkeypatch)
    assert side == {"shards": {"ser-shard"}, "sets": {"ser-consolidate"}}
    one, four = sets_of(tmp_path / "one.zarr"), sets_of(tmp_path / "four.zarr")
    assert list(one) == list(four)
    for name in one:
        np.testing.assert_array_equal(one[name][0], four[name][0])
        np.testing.assert_array_equal(one[name][1], four[name][1])
        assert one[name][2] == four[name][2]


@pytest.mark.slow
def test_an_hdf5_store_lays_its_sets_out_one_at_a_time(
    corpus: Path, tiny_models: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file, locked by each open: its sets' shards are still staged on threads."""
    seen = extract(corpus, tmp_path / "four.h5", tiny_models, 4, monkeypatch)
    assert seen == {"shards": {"ser-shard"}, "sets": {"MainThread"}}
    extract(corpus, tmp_path / "one.zarr", tiny_models, 1, monkeypatch)
    h5, one = sets_of(tmp_path / "four.h5"), sets_of(tmp_path / "one.zarr")
    for name in one:
        np.testing.assert_array_equal(h5[name][0], one[name][0])


def test_write_threads_one_a_set_up_to_the_cores_and_eight() -> None:
    def cores(n: int) -> CpuBudget:
        return CpuBudget(cores=n, affinity=n, quota=None, workers=1)

    assert write_threads(1) == 1
    assert write_threads(13, cores(2)) == 2
    assert write_threads(13, cores(16)) == 8
    assert write_threads(3, cores(16)) == 3
