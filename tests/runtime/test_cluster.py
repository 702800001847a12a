"""Local dask clusters: GPU pinning per worker (tested with a pretend GPU count)."""

from __future__ import annotations

import os

import pytest

from ser.errors import ConfigError
from ser.runtime.cluster import dask_client, gpu_pins


def test_gpu_pins_give_each_worker_its_own_gpu_round_robin() -> None:
    assert gpu_pins(workers=2, gpus=2) == ["0", "1"]
    assert gpu_pins(workers=5, gpus=2) == ["0", "1", "0", "1", "0"]


def visible_devices() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


@pytest.mark.slow
def test_workers_on_a_gpu_machine_land_on_different_gpus() -> None:
    """The cluster sets CUDA_VISIBLE_DEVICES per worker process; without the pinning all
    would see GPU 0."""
    with dask_client(workers=3, gpus=2) as client:
        seen = sorted(client.run(visible_devices).values())
    assert seen == ["0", "0", "1"]


def test_workers_and_scheduler_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"), dask_client(2, "tcp://127.0.0.1:1"):
        pass


def worker_settings() -> tuple[str | None, bool, str | None]:
    import dask

    profile = bool(dask.config.get("distributed.worker.profile.enabled"))
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), profile, os.environ.get("GOMP_SPINCOUNT")


@pytest.mark.slow
def test_workers_start_without_the_malloc_setting_and_the_profiler_that_slowed_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """distributed's defaults made a worker train 1.8x slower than a plain process
    (benchmarks/README.md, "Is a dask worker as fast as a process?"); the brief OpenMP waits reach
    it as they reach any child process."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    with dask_client(workers=1, gpus=0) as client:
        [seen] = client.run(worker_settings).values()
    assert tuple(seen) == (None, False, "10000")


@pytest.mark.slow
def test_the_nanny_s_variables_do_not_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """distributed's nanny sets OMP_NUM_THREADS=1 (and others) in the process that starts
    it; left there, a later `ser train` here would take it for the user's thread count."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with dask_client(workers=1, gpus=0):
        pass
    assert "OMP_NUM_THREADS" not in os.environ
