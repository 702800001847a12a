"""Extraction batches on a pool of local processes, for kinds that compute off torch.

openSMILE (`is13`) takes one utterance at a time on the calling thread: one process keeps
one core busy however many torch threads it has (300 s of a 427 s extraction at 100 % of
one core of two). Such kinds (`Extractor.uses_torch` false) send their batches to
spawned processes, by default one per core of `cpu_budget`; `--processes N` asks for N
with any kind on the CPU, each with cores // N torch threads. Each process loads its own
extractor once and decodes its own audio; results come back in batch order and shards
commit in the calling process, so the store holds the bytes one process writes (tested)
and a run stopped part way keeps every shard committed before the stop.

>>> from ser.extract.registry import build_extractor
>>> choose_processes(build_extractor("is13"), None, batches=1).count
1
>>> choose_processes(build_extractor("logmel"), None, batches=100).source
'one process: logmel computes with torch threads'
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import torch

from ser.errors import ConfigError
from ser.extract.base import Extractor
from ser.extract.shards import BatchResult, ShardJob, compute_batch, decode
from ser.runtime.threads import ThreadChoice, cpu_budget, worker_threads


@dataclass(frozen=True)
class ProcessChoice:
    """How many processes extract one kind, and why (printed before the pass runs)."""

    count: int
    source: str
    threads: ThreadChoice | None = None  # torch threads of each process (None: in-process)

    @property
    def per_process(self) -> int:
        """Torch threads each pool process sets (1 where none was chosen)."""
        return self.threads.count if self.threads is not None else 1


def choose_processes(
    extractor: Extractor,
    requested: int | None,
    batches: int,
    device: torch.device | None = None,
    threads: int | None = None,
) -> ProcessChoice:
    """`requested` (`--processes`), else one per core of `cpu_budget` for a kind that does
    not compute with torch, else one; never more than there are `batches`. From stable
    facts only (the budget, not the load), like every thread count in ser."""
    if requested is not None:
        if requested > 1 and extractor.uses_torch and device is not None and device.type != "cpu":
            raise ConfigError(
                f"--processes {requested} runs {extractor.kind} on the CPU; on a GPU give "
                "--workers N (a dask cluster pins each worker to a GPU)"
            )
        count, source = requested, f"--processes {requested}"
    elif extractor.uses_torch:
        return ProcessChoice(1, f"one process: {extractor.kind} computes with torch threads")
    else:
        budget = cpu_budget()
        count, source = budget.cores, f"one per core: {budget.describe()}"
    count = max(1, min(count, batches))
    if count == 1:
        return ProcessChoice(1, source)
    return ProcessChoice(count, source, worker_threads(threads, workers=count))


def pooled_batches(
    extractor: Extractor, jobs: Sequence[ShardJob], choice: ProcessChoice
) -> Iterator[BatchResult]:
    """Each batch of `jobs` (in order) computed on the CPU of `choice.count` spawned processes.
    Spawned, not forked: a fork of a process with torch's thread pools can hang."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        choice.count,
        mp_context=context,
        initializer=_load,
        initargs=(extractor, choice.per_process),
    )
    try:
        tasks = [(_slim(job, batch), batch) for job in jobs for batch in job.shard.batches]
        # map submits every batch at once and yields results in order as they finish.
        yield from pool.map(_compute, tasks)
    except BaseException:
        # Stopped early (Ctrl-C, an error): drop what has not started, leave the rest.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _slim(job: ShardJob, batch: tuple[int, ...]) -> ShardJob:
    """What a process needs of `job` for one batch: its sources and the sets' dtypes."""
    sources = {i: job.sources[i] for i in batch}
    return dataclasses.replace(job, sources=sources, writers=dict.fromkeys(job.writers))


# Per pool process: its extractor, loaded once by the pool's initializer.
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
