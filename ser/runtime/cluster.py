"""dask.distributed clusters for `ser extract --workers` and `ser sweep --workers`.

`--workers N`: a local cluster of N single-threaded worker processes, each pinned to one
GPU where there are some (round robin), else they would all land on GPU 0. `--scheduler
ADDRESS` joins a running cluster (inputs and outputs on a filesystem every worker sees).

A worker trains as fast as a plain process with the same threads only without two of
distributed's defaults (benchmarks/README.md, "Is a dask worker as fast as a process?"): its nanny
sets ``MALLOC_TRIM_THRESHOLD_=65536`` before the worker starts, which also fixes glibc's mmap
threshold, so that every tensor above 128 KiB is a fresh mmap and its pages fault in
again (a fusion-study cell: 1.6x the plain process's time); and the statistical profiler
takes the GIL every 10 ms to walk the training thread's stack (1.2x). `WORKER_CONFIG`
and `WORKER_ENV` turn both off for the clusters made here; with both off a task trained
within a few percent of the plain process.

>>> gpu_pins(workers=3, gpus=2)
['0', '1', '0']
>>> with dask_client() as client:
...     print(client)
None
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ser.errors import ConfigError

if TYPE_CHECKING:  # distributed imports (a second) only where a cluster starts
    from distributed import SpecCluster

# dask config the local clusters' workers start with (read by each nanny when made).
WORKER_CONFIG: dict[str, Any] = {"distributed.worker.profile.enabled": False}
# Variables the nanny sets before it starts the worker process (None: left unset, so
# glibc keeps its adaptive thresholds). OMP/MKL/OpenBLAS stay at distributed's 1: torch's
# count is set per task (`ser.runtime.threads`); GOMP_SPINCOUNT comes from this process's
# environment, set by the `ser` command before torch loaded.
WORKER_ENV: dict[str, str | None] = {"MALLOC_TRIM_THRESHOLD_": None}


def gpu_pins(workers: int, gpus: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each worker: worker i gets GPU i mod `gpus`."""
    return [str(i % gpus) for i in range(workers)]


@contextlib.contextmanager
def dask_client(
    workers: int | None = None,
    scheduler: str | None = None,
    connect_timeout: float = 20.0,
    gpus: int | None = None,
) -> Iterator[Any]:
    """A `distributed.Client` for `--workers N` or `--scheduler ADDRESS`, None for
    neither. `gpus`: how many CUDA devices to pin workers to (None: those present)."""
    if workers is not None and scheduler is not None:
        raise ConfigError("give --workers N (a local cluster) or --scheduler ADDRESS, not both")
    if workers is None and scheduler is None:
        yield None
        return
    import dask
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as error:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler}: {error}") from error
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()  # 0 without CUDA
    # A nanny writes its pre-spawn variables (OMP_NUM_THREADS=1, ...) into this process's
    # environment too: put them back after, or a later `ser train` in this process would
    # read OMP_NUM_THREADS=1 as the user's choice.
    keys = {*dask.config.get("distributed.nanny.pre-spawn-environ"), "PYTHONHASHSEED"}
    with _environ_kept(keys):
        with dask.config.set(worker_config()):  # each nanny reads it when it is made
            cluster = _local_cluster(workers, gpus)
        with cluster, Client(cluster) as client:
            yield client


@contextlib.contextmanager
def _environ_kept(keys: Iterable[str]) -> Iterator[None]:
    """`keys` of ``os.environ`` as they were before the block, whatever it set."""
    saved = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def worker_config() -> dict[str, Any]:
    """`WORKER_CONFIG` and `WORKER_ENV` as one `dask.config.set` mapping."""
    env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENV.items()}
    return {**WORKER_CONFIG, **env}


def _local_cluster(workers: int, gpus: int) -> SpecCluster:
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    if gpus > 0:  # single-threaded nannies, one GPU each
        pinned = {
            f"gpu{pin}-{i}": {
                "cls": Nanny,
                "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": pin}},
            }
            for i, pin in enumerate(gpu_pins(workers, gpus))
        }
        scheduler_spec = {"cls": Scheduler, "options": {"dashboard_address": None}}
        return SpecCluster(workers=pinned, scheduler=scheduler_spec)
    return LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
