"""Scale-out: shards as dask tasks give the same store as the in-process run, with one
model load per worker and pass."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.errors import ConfigError
from ser.extract.dask_run import model_loads
from ser.extract.run import ExtractConfig, extract_features
from ser.runtime.cluster import dask_client


def _assert_same_store(a: Path, b: Path, names: list[str]) -> None:
    first, second = FeatureStore.open(a), FeatureStore.open(b)
    for name in names:
        x, y = first.read(name), second.read(name)
        assert np.array_equal(x.offsets, y.offsets), name
        assert np.array_equal(x.data, y.data), name
        assert first.failures(name) == second.failures(name), name


@pytest.mark.slow
def test_two_worker_cluster_writes_the_in_process_store(
    synthetic_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    root = synthetic_corpus[0]
    config = ExtractConfig(
        features=("hubert", "bert"),
        options={
            "hubert": {"model": str(tiny_models.hubert), "layers": "1,2"},
            "bert": {"model": str(tiny_models.bert)},
        },
        device="cpu",
        shard_size=24,
        progress=False,
        # What the two sides must share to write the same bytes: torch splits products
        # among its threads, so another count rounds otherwise (1 fp16 step in ~2 % of
        # the rows on an AVX2 CPU with 1 thread here and 2 in the workers).
        threads=2,
    )
    local = extract_features(root, tmp_path / "local.zarr", config)

    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        scaled = dataclasses.replace(config, scheduler=cluster.scheduler_address)
        report = extract_features(root, tmp_path / "dask.zarr", scaled)
        loads = client.run(model_loads)
        threads = client.run(torch.get_num_threads)

    assert report.extracted == local.extracted == ("tiny-hubert.L1", "tiny-hubert.L2", "tiny-bert")
    _assert_same_store(tmp_path / "local.zarr", tmp_path / "dask.zarr", list(local.extracted))
    # 8 shards per pass over 2 workers: each worker loaded each model at most once
    assert all(count == 1 for counts in loads.values() for count in counts.values()), loads
    assert {kind for counts in loads.values() for kind in counts} == {"hubert", "bert"}
    assert set(threads.values()) == {2}, threads  # --threads: each worker's torch threads


@pytest.mark.slow
def test_workers_option_starts_a_local_cluster_from_the_command_line(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    root = synthetic_corpus[0]
    args = ["extract", str(root), "--features", "logmel", "--shard-size", "64", "--quiet"]
    local = CliRunner().invoke(main, [*args, "--store", str(tmp_path / "a.zarr")])
    assert local.exit_code == 0, local.output
    # one worker process keeps this cheap; the two-worker case is tested above
    scaled = CliRunner().invoke(
        main, [*args, "--store", str(tmp_path / "b.zarr"), "--workers", "1"]
    )
    assert scaled.exit_code == 0, scaled.output
    _assert_same_store(tmp_path / "a.zarr", tmp_path / "b.zarr", ["logmel80"])


def test_workers_and_scheduler_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"), dask_client(2, "tcp://127.0.0.1:1"):
        pass


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error() -> None:
    with (
        pytest.raises(ConfigError, match=re.escape("cannot reach the dask scheduler at tcp://")),
        dask_client(None, "tcp://127.0.0.1:9", connect_timeout=1.0),
    ):
        pass
