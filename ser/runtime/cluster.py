"""dask.distributed clusters for `ser extract --workers` and `ser sweep --workers`.

`--workers N`: a local cluster of N single-threaded worker processes, each pinned to one
GPU where there are some (round robin), else they would all land on GPU 0. `--scheduler
ADDRESS` joins a running cluster (inputs and outputs on a filesystem every worker sees).

>>> gpu_pins(workers=3, gpus=2)
['0', '1', '0']
>>> with dask_client() as client:
...     print(client)
None
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ser.errors import ConfigError


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
    from distributed import Client, LocalCluster, Nanny, Scheduler, SpecCluster

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
    if gpus > 0:  # single-threaded nannies, one GPU each
        pinned = {
            f"gpu{pin}-{i}": {
                "cls": Nanny,
                "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": pin}},
            }
            for i, pin in enumerate(gpu_pins(workers, gpus))
        }
        scheduler_spec = {"cls": Scheduler, "options": {"dashboard_address": None}}
        cluster = SpecCluster(workers=pinned, scheduler=scheduler_spec)
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    with cluster, Client(cluster) as client:
        yield client
