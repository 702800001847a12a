"""Scale-out: extraction shards as dask.distributed tasks (the cluster:
`ser.runtime.cluster`; `--scheduler`: the corpus and store on a filesystem every worker
sees). Each task extracts one shard with the in-process runner's code and batches and
commits it with the store's picklable `ShardWriter`, so the store is byte-identical to a
single-process run's. A worker loads the model once per pass, for all its shards.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ser.extract.base import Extractor
from ser.extract.pipeline import run_jobs
from ser.extract.registry import build_extractor
from ser.extract.shards import ShardJob

if TYPE_CHECKING:  # distributed imports only where a cluster runs
    from distributed import Client
from ser.runtime.device import pick_device

# Per worker process: the extractor of the pass in progress, loaded once, keyed by its full
# config; a new pass replaces the entry, so a worker holds one model at a time.
_LOADED: dict[tuple[Any, ...], tuple[Extractor, torch.device]] = {}
_LOADING = threading.Lock()
_LOADS: Counter[str] = Counter()  # model loads in this process by kind, for tests and logs


def run_jobs_dask(
    client: Client,
    kind: str,
    options: dict[str, Any],
    device: str,
    jobs: Sequence[ShardJob],
    threads: int | None = None,
) -> Iterator[int]:
    """Submit one task per shard; yield each shard's utterance count as it is committed.
    `threads`: torch threads of the worker running a task (None: the worker's own)."""
    from distributed import as_completed

    run = f"ser-extract-{kind}-{uuid.uuid4().hex[:8]}"
    submit = functools.partial(client.submit, extract_shard_task, kind, options, device, pure=False)
    futures = [submit(job, threads, key=f"{run}-{job.shard.shard_id}") for job in jobs]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)


def extract_shard_task(
    kind: str, options: dict[str, Any], device: str, job: ShardJob, threads: int | None = None
) -> int:
    """The dask task: extract and commit one shard with this worker's loaded model; its
    number of utterances."""
    if threads is not None and torch.get_num_threads() != threads:
        # The nanny started the worker with OMP_NUM_THREADS=1; its share may be more.
        torch.set_num_threads(threads)
    extractor, torch_device = _worker_extractor(kind, options, device)
    for _ in run_jobs(extractor, [job], torch_device):
        pass  # batch by batch; the shard is committed after its last
    return len(job.shard)


def _worker_extractor(
    kind: str, options: dict[str, Any], device: str
) -> tuple[Extractor, torch.device]:
    from transformers.utils import logging as hf_logging

    key = (kind, device, *sorted((name, repr(value)) for name, value in options.items()))
    with _LOADING:
        if key not in _LOADED:
            _LOADED.clear()
            hf_logging.disable_progress_bar()  # worker logs: no per-load bars
            extractor = build_extractor(kind, **options)
            torch_device = pick_device(device)
            extractor.load(torch_device)
            _LOADS[kind] += 1
            _LOADED[key] = (extractor, torch_device)
        return _LOADED[key]


def model_loads() -> dict[str, int]:
    """Model loads in this process by extractor kind (one per worker and pass)."""
    return dict(_LOADS)
