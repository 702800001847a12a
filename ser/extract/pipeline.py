"""Extraction as a pipeline: decode -> compute -> copy -> write, each stage busy at once.

Decoding runs ahead on a pool of threads (libsndfile, FFmpeg and soxr release the GIL);
this thread launches each batch on the device (`Extractor.extract_pending`), never
waiting for it; a writer thread waits for each batch's copy to the host, checks and
gathers its rows and commits each shard as its last batch lands (a shard of several
feature sets, an encoder's layers, on `writers` threads side by side). A bounded queue keeps
the compute at most `AHEAD` batches in front of the writer, so memory stays flat when
the disk is the slowest stage. Wall time approaches the slowest stage's, not their sum
(benchmarks/bench_extract.py `pipeline`).

Batches commit in plan order, so the store holds the bytes a batch-at-a-time loop
writes. A run stopped part way (Ctrl-C, an error) keeps every shard committed before the
stop, and the batches of the shard under way as its part (`ShardWriter.write_part`),
which is also written while a shard takes long (a recording of an hour, a kill that
leaves no time to write), `PART_SECONDS` after it began, then at twice the last wait
each time (a part is written whole each time: a shard of 13 layers' frames is a GB, and
the writes stay within twice its bytes): a resume extracts only the batches after it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from ser.extract.base import Extractor
from ser.extract.shards import BatchResult, Computed, Decoded, ShardJob, decode, finish, launch

# Batches launched ahead of the one the writer is committing: enough to cover a slow
# copy or write, few enough that a GPU's outputs waiting on the host stay small.
AHEAD = 3
Step = tuple[ShardJob, tuple[int, ...], bool]  # (job, batch, its shard committed with it)
#: A shard under way longer than this has its finished batches written as its part.
PART_SECONDS = 30.0
#: An utterance whose part became unreadable between the plan and its shard: failed, named.
LOST_PART = (
    "the rows a stopped run kept of it could not be read back: extract the set anew with "
    "--overwrite"
)


@dataclass
class StageTimes:
    """Seconds each stage spent on its own work (decode: summed over its threads)."""

    decode: float = 0.0
    compute: float = 0.0  # launching each batch on the device (its wait is "copy")
    copy: float = 0.0  # waiting for a batch's outputs to reach the host
    write: float = 0.0  # checking, gathering and committing shards
    batches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self.lock:
            setattr(self, stage, getattr(self, stage) + seconds)

    def record(self) -> dict[str, float]:
        stages = ("decode", "compute", "copy", "write")
        return {**{s: round(getattr(self, s), 4) for s in stages}, "batches": self.batches}


def run_jobs(
    extractor: Extractor,
    jobs: Sequence[ShardJob],
    device: torch.device,
    computed: Computed | None = None,
    decoders: int = 1,
    stats: StageTimes | None = None,
    writers: int = 1,
) -> Iterator[Step]:
    """Extract and commit `jobs` in order (the extractor loaded on `device`); yield (job,
    batch, committed) as each batch lands, committed true once its shard is.
    `computed`: each batch's results from elsewhere, in order (`ser.extract.processes`),
    committed here; else batches decode on `decoders` threads and compute here. A
    shard's feature sets are written on `writers` threads."""
    work = [(job, batch) for job in jobs for batch in job.shard.batches]
    stats = stats if stats is not None else StageTimes()
    committer = _Committer(work, stats, writers)
    if computed is not None:
        try:
            for step, result in zip(work, computed, strict=True):
                yield committer.commit(*step, functools.partial(_given, result))
        finally:
            committer.keep()
        return
    yield from _pipelined(extractor, work, device, decoders, committer)


def _pipelined(
    extractor: Extractor,
    work: list[tuple[ShardJob, tuple[int, ...]]],
    device: torch.device,
    decoders: int,
    committer: _Committer,
) -> Iterator[Step]:
    stats = committer.stats
    writer = _Writer(committer)
    try:
        for job, batch, decoded in _decoded(extractor, work, decoders, stats):
            started = time.perf_counter()
            with torch.inference_mode():
                launched = launch(extractor, list(decoded[0].items()), device)
            stats.add("compute", time.perf_counter() - started)
            writer.put(job, batch, functools.partial(finish, job, decoded, launched))
            yield from writer.landed()
        yield from writer.close()
    finally:
        writer.stop()
        committer.keep()  # the shard under way's finished batches, whatever stopped it


def _decoded(
    extractor: Extractor,
    work: list[tuple[ShardJob, tuple[int, ...]]],
    workers: int,
    stats: StageTimes,
) -> Iterator[tuple[ShardJob, tuple[int, ...], Decoded]]:
    """Each batch of `work` decoded, in order, `2 x workers` batches decoding ahead."""

    def timed(job: ShardJob, batch: tuple[int, ...]) -> Decoded:
        started = time.perf_counter()
        try:
            return decode(extractor, job.sources, batch)
        finally:
            stats.add("decode", time.perf_counter() - started)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ser-decode") as pool:
        submitted = ((job, batch, pool.submit(timed, job, batch)) for job, batch in work)
        ahead = deque(itertools.islice(submitted, max(2, 2 * workers)))
        for decoding in submitted:  # each batch yielded with the next ones submitted
            ahead.append(decoding)
            job, batch, future = ahead.popleft()
            yield job, batch, future.result()
        for job, batch, future in ahead:
            yield job, batch, future.result()


def _given(result: BatchResult) -> BatchResult:
    return result


class _Committer:
    """Gathers each batch's rows into its shard and commits the shard with its last batch."""

    def __init__(
        self, work: list[tuple[ShardJob, tuple[int, ...]]], stats: StageTimes, writers: int = 1
    ) -> None:
        self.writers = writers
        self.last = {id(job): len(job.shard.batches) - 1 for job, _ in work}
        self.seen = 0  # batches of the current job gathered so far
        self.stats = stats
        self.rows: dict[str, dict[int, np.ndarray]] = {}
        self.failures: dict[str, dict[int, str]] = {}
        self.current: ShardJob | None = None
        self.kept_at = time.monotonic()  # when the shard under way was last kept
        self.wait = PART_SECONDS  # how long after that it is kept again

    def commit(
        self, job: ShardJob, batch: tuple[int, ...], result: Callable[[], BatchResult]
    ) -> Step:
        started = time.perf_counter()
        batch_rows, batch_failures = result()  # waits for the batch's copy to the host
        landed = time.perf_counter()
        self.stats.add("copy", landed - started)
        if job is not self.current:
            self._start(job)
        for name in job.writers:
            self.rows[name].update(batch_rows[name])
            self.failures[name].update(batch_failures[name])
        last = self.seen == self.last[id(job)]
        self.seen += 1
        if last:
            self._write(job)
            self.rows, self.failures, self.current = {}, {}, None
        elif time.monotonic() - self.kept_at > self.wait:
            self.keep()
            self.wait *= 2
        self.stats.add("write", time.perf_counter() - landed)
        self.stats.batches += 1
        return job, batch, last

    def _start(self, job: ShardJob) -> None:
        """A shard begun: with the utterances of its part that its batches leave out
        (`ShardJob.kept`: a run before this one finished them)."""
        self.current, self.seen, self.kept_at = job, 0, time.monotonic()
        self.wait = PART_SECONDS
        kept = set(job.kept)
        self.rows, self.failures = {}, {}
        for name, writer in job.writers.items():
            rows, failures = writer.read_part(job.shard.shard_id) if kept else ({}, {})
            self.rows[name] = {i: r for i, r in rows.items() if i in kept}
            self.failures[name] = {i: r for i, r in failures.items() if i in kept}
            lost = kept - set(self.rows[name]) - set(self.failures[name])
            self.failures[name] |= dict.fromkeys(lost, LOST_PART)

    def keep(self) -> None:
        """The shard under way's finished batches written as its part (nothing when none
        has finished); a fault doing so is left unsaid, the stop's own cause said."""
        job = self.current
        if job is None or not self.seen:
            return
        with contextlib.suppress(Exception):
            for name, writer in job.writers.items():
                writer.write_part(job.shard.shard_id, self.rows[name], self.failures[name])
        self.kept_at = time.monotonic()

    def _write(self, job: ShardJob) -> None:
        """The shard's file of every feature set, sets side by side on `writers` threads
        (each set its own files: the bytes are one thread's); the first error raised."""

        def one(name: str) -> None:
            writer = job.writers[name]
            writer.write(job.shard.shard_id, self.rows[name], self.failures[name])

        names = list(job.writers)
        if self.writers > 1 and len(names) > 1:
            with ThreadPoolExecutor(min(self.writers, len(names)), "ser-shard") as pool:
                list(pool.map(one, names))
        else:
            for name in names:
                one(name)


_DONE = object()


class _Writer:
    """`_Committer` on a thread of its own, fed in order through a bounded queue; what
    it committed comes back through `landed`, an error it met through the next call."""

    def __init__(self, committer: _Committer) -> None:
        self.committer = committer
        self.todo: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.done: queue.Queue[Step] = queue.Queue()
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ser-writer", daemon=True)
        self.thread.start()

    def put(self, job: ShardJob, batch: tuple[int, ...], result: Callable[[], BatchResult]) -> None:
        """Queue a batch for commit; waits while `AHEAD` batches already wait."""
        while True:
            self._raise()
            try:
                self.todo.put((job, batch, result), timeout=0.1)
                return
            except queue.Full:
                continue

    def landed(self) -> Iterator[Step]:
        """Batches committed since the last call, in order."""
        self._raise()
        while True:
            try:
                yield self.done.get_nowait()
            except queue.Empty:
                return

    def close(self) -> Iterator[Step]:
        """Wait for every queued batch to land; yield them."""
        self.todo.put(_DONE)
        while self.thread.is_alive() or not self.done.empty():
            try:
                yield self.done.get(timeout=0.1)
            except queue.Empty:
                self._raise()
        self._raise()

    def stop(self) -> None:
        """Stop after the batch being committed (a shard is written whole or not at all)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.todo.put(_DONE)  # the writer drops what is queued once stopping
            self.thread.join()

    def _run(self) -> None:
        while True:
            item = self.todo.get()
            if item is _DONE:
                return
            if self.error is not None or self.stopping.is_set():
                continue  # drain: the thread that queues must never wait on a full queue
            try:
                self.done.put(self.committer.commit(*item))
            except BaseException as error:
                self.error = error

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
