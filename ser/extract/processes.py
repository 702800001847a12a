"""Extraction batches on local processes side by side, for kinds that compute off torch.

openSMILE (`is13`) takes one utterance at a time on the calling thread: one process keeps
one core busy however many torch threads it has. Such kinds (`Extractor.uses_torch`
false) send their batches to spawned processes, as many as `ser.runtime.execution`
chooses (by default one per core; `--processes N` for any kind on the CPU). Each process
loads its own extractor once and decodes its own audio; results come back in batch order
and shards commit in the calling process, so the store holds the bytes one process
writes (tested) and a run stopped part way keeps every shard committed before the stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import torch

from ser.extract.base import Extractor
from ser.extract.shards import BatchResult, ShardJob, compute_batch, decode
from ser.runtime.execution import Execution
from ser.runtime.orphans import spawned_pool


def batches_on_processes(
    extractor: Extractor, jobs: Sequence[ShardJob], execution: Execution
) -> Iterator[BatchResult]:
    """Each batch of `jobs` (in order) computed on the CPU of `execution.processes`
    spawned processes of `execution.threads` each, which end with this one."""
    pool = spawned_pool(execution.processes, _load, (extractor, execution.threads))
    try:
        # Every batch submitted at once; results yielded in order as they finish, each
        # future let go once yielded (they would hold every batch's features).
        tasks = [(_slim(job, batch), batch) for job in jobs for batch in job.shard.batches]
        futures = [pool.submit(_compute, task) for task in tasks][::-1]
        while futures:
            yield futures.pop().result()
    except BaseException:
        # Stopped early (Ctrl-C, an error): the processes end now, the shards committed stay.
        pool.stop()
        raise
    pool.close()


def _slim(job: ShardJob, batch: tuple[int, ...]) -> ShardJob:
    """What a process needs of `job` for one batch: its sources and the sets' dtypes."""
    sources = {i: job.sources[i] for i in batch}
    return dataclasses.replace(job, sources=sources, writers=dict.fromkeys(job.writers))


# Per spawned process: its extractor, loaded once by the executor's initializer.
_LOADED: list[Extractor] = []


def _load(extractor: Extractor, threads: int) -> None:
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
    extractor.load(torch.device("cpu"))
    _LOADED.append(extractor)


def _compute(task: tuple[ShardJob, tuple[int, ...]]) -> BatchResult:
    job, batch = task
    extractor, cpu = _LOADED[0], torch.device("cpu")
    return compute_batch(extractor, job, decode(extractor, job.sources, batch), cpu)
