"""A run's (seed, fold) members on local processes side by side, on the CPU, as
`ser.runtime.execution` chooses: the pieces of its groups (stacked members cut evenly, one
piece a process; members one after another, one piece each) go to spawned processes of
the chosen threads, each taking the next piece when it is free.

A piece trains in its process exactly as the same group would in the calling process
with the same threads (tested bit for bit). Each process opens the run itself
(`ser.train.prepare.reopen`: the same data, folds and seeds), trains a piece through the
recipe's stages (`ser.train.recipe.train_group`, handed in), saves its members'
checkpoints and hands back their record entries and test predictions; the caller writes
the record after each piece, so a run stopped part way keeps every finished piece and
trains the rest when resumed. Epoch lines come back through a queue.

>>> [len(p) for p in pieces([list(range(5)), [5]], 2)]
[3, 2, 1]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import torch

from ser.corpus.protocols.folds import Fold
from ser.errors import WorkerLost
from ser.models import family_of
from ser.models.registry import costs
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import PredictionTable
from ser.runs.provenance import ExecutionRecord, Threads
from ser.runtime.cost import padded_utterances
from ser.runtime.execution import Execution, Training, for_training
from ser.runtime.memory import memory_budget
from ser.runtime.orphans import spawned_pool
from ser.runtime.threads import ThreadChoice, cpu_budget
from ser.track.progress import Heartbeat, Message, Progress, Published
from ser.train.batches import streams_of
from ser.train.data import TrainData
from ser.train.group import PartlySaved, by_training
from ser.train.options import ResolvedConfig
from ser.train.plan import Job, Prepared, device_of, open_stores
from ser.train.prepare import Loaded, reopen
from ser.train.record import finish

if TYPE_CHECKING:  # a type for checkers alone: the queue class takes no [] at run time
    from multiprocessing.queues import Queue

    Lines = Queue[Message]  # the processes' progress lines, to the calling process

TICK = 0.5  # seconds between looks at the processes' progress lines
T = TypeVar("T")
Piece = tuple[int, int, int]  # (run index, seed, fold index): a job as a process finds it
Done = Callable[[int, list[FoldEntry], list[PredictionTable]], None]
# A group's stages (`ser.train.recipe.train_group`), handed in: the recipe imports this module.
TrainGroup = Callable[[Sequence[Job], Progress], list[FoldEntry]]


def pieces(groups: Sequence[Sequence[T]], count: int) -> list[list[T]]:
    """Each group cut into `count` contiguous pieces of near-equal size (fewer for a group
    of fewer members), in order: a process's piece still stacks its members."""
    out: list[list[T]] = []
    for group in groups:
        n = min(count, len(group))
        sizes = [len(group) // n + (i < len(group) % n) for i in range(n)]
        starts = [sum(sizes[:i]) for i in range(n)]
        out += [list(group[s : s + size]) for s, size in zip(starts, sizes, strict=True)]
    return out


def job_pieces(groups: Sequence[Sequence[Job]], count: int) -> list[list[Job]]:
    """`pieces` of the groups' distinct trainings (`by_training`): the jobs that share one
    stay in one piece, which trains it once for them all."""
    bundled = pieces([by_training(group) for group in groups], count)
    return [[job for jobs in piece for job in jobs] for piece in bundled]


def train_pieces(
    runs: Sequence[Prepared],
    jobs: Sequence[Sequence[Job]],
    execution: Execution,
    progress: Progress,
    done: Done,
    train: TrainGroup,
) -> None:
    """Train each piece of `jobs` on `execution.processes` spawned processes of
    `execution.threads` each, as `train` trains a group; `done(n, entries, predictions)`
    for piece n as it finishes (in the calling process). The processes end with this one
    (`spawned_pool`)."""
    lines: Lines = multiprocessing.get_context("spawn").Queue()
    index = {id(run): i for i, run in enumerate(runs)}
    configs = [run.config for run in runs]
    pool = spawned_pool(execution.processes, _open, (configs, execution.threads, lines))
    try:
        todo = [[(index[id(j.run)], j.seed, j.k) for j in piece] for piece in jobs]
        pending = {pool.submit(_train_piece, train, piece): n for n, piece in enumerate(todo)}
        while pending:
            finished, _ = wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)
            _say(lines, progress)
            for future in finished:
                n = pending.pop(future)
                try:
                    done(n, *future.result())
                except PartlySaved as stop:  # its members saved before a full disk: kept
                    done(n, stop.entries, stop.tables)
                    raise stop.error from None
        _say(lines, progress)
    except BrokenProcessPool as e:  # a process died: the OS's doing, not a Python error
        pool.stop()
        raise WorkerLost(
            f"a training process stopped before its piece was done (killed? out of memory?) "
            f"({e}); the pieces finished before it are recorded: run the same command again "
            "to train the rest, with --processes 1 to train in one process"
        ) from e
    except BaseException:
        # Stopped (Ctrl-C, an error): the processes end now; finished pieces are recorded.
        pool.stop()
        raise
    pool.close()


def choose_execution(runs: list[Prepared], threads: ThreadChoice, asked: int | None) -> Execution:
    """`ser.runtime.execution`'s choice for these runs (`threads`: this process's):
    stacked, on processes, which steps; recorded in each, with the threads that then
    train its members."""
    at_once, step, processes = _asked([run.config for run in runs], runs)
    execution = for_training(
        _training(runs),
        device=device_of(runs[0].config).type if runs else "cpu",
        budget=cpu_budget(),
        threads=threads,
        memory=memory_budget(),
        processes=processes,
        asked_threads=asked,
        at_once=at_once,
        step=step,
    )
    memory = _placed(runs)
    if memory and execution.processes > 1:  # each places its rows as this one did
        memory += f" (each of the {execution.processes} processes)"
    execution = replace(execution, memory=memory)
    _recorded(runs, execution)
    return execution


def _asked(
    configs: list[ResolvedConfig], runs: list[Prepared]
) -> tuple[int | None, str | None, int | None]:
    """The members at once, steps and processes the first config asks for. A run whose
    rows stream trains on the processes it asks for, one by default (each process places
    its rows under the whole budget); one whose batches read streamed rows stacks only
    the members it asks for (its placement gave each a window in each stream's cache)."""
    at_once = configs[0].members_at_once if configs else None
    step = configs[0].step if configs else None
    processes = configs[0].processes if configs else None
    if any(data.placement is not None and data.placement.streamed for data in _data(runs)):
        processes = processes or 1
    if any(streams_of(run.data, run.specs) for run in runs):
        at_once = at_once or 1
    return at_once, step, processes


def _training(runs: list[Prepared]) -> Training:
    """What the runs' members cost to train, as `for_training` weighs it."""
    configs = [run.config for run in runs]
    epochs = [run.config.epochs for run in runs]
    return Training(
        members=sum(run.planned for run in runs),
        work=round(
            sum(r.planned * e * epoch_utterances(r) for r, e in zip(runs, epochs, strict=True))
        ),
        width=max((sum(spec.dim for spec in run.specs) for run in runs), default=0),
        data_bytes=sum(_data_bytes(d) for d in _data(runs)),
        fp16=any(c.precision == "fp16" for c in configs),
        tuned=max((_tuned_size(run) for run in runs), default=0),
        families=costs(family_of(c.model).name for c in configs),
    )


def _data(runs: list[Prepared]) -> list[TrainData]:
    """The runs' data, each once (runs over the same data share it)."""
    return list({id(r.data): r.data for r in runs}.values())


def _placed(runs: list[Prepared]) -> str:
    """Where the runs' inputs' rows live, as `Execution.memory` says it ("": no
    --memory-budget placed them)."""
    placed = [d.placement for d in _data(runs) if d.placement is not None]
    return "; ".join(dict.fromkeys(p.describe() for p in placed))


def _recorded(runs: list[Prepared], execution: Execution) -> None:
    """The execution in each run's record; on processes, with each process's threads."""
    for run in runs:
        run.record = replace(run.record, execution=ExecutionRecord.of(execution))
        if execution.processes > 1:
            run.record = replace(
                run.record,
                threads=Threads.of(execution.thread_choice()),
                timings=replace(run.record.timings, threads=execution.threads),
            )


def _tuned_size(run: Prepared) -> int:
    """The parameters of a member's fine-tuned top layers (0: none)."""
    tops = run.tuning.prototypes.values() if run.tuning else []
    return sum(p.numel() for top in tops for p in top.parameters())


def epoch_utterances(run: Prepared) -> float:
    """The utterances a member's epoch costs: with sequence inputs, batches padded to
    their longest member count the longest utterances many times over
    (`padded_utterances`, by the input of most rows)."""
    tables = [run.data.features[spec.name] for spec in run.specs if spec.gathered == "sequence"]
    if not tables:
        return float(len(run.data))
    widest = max(tables, key=lambda table: int(table.lengths_np.sum()))
    return padded_utterances(widest.lengths_np.tolist(), run.config.batch_size)


def _data_bytes(data: TrainData) -> int:
    """The features' bytes in memory: what each training process reads again."""
    return sum(table.flat.nbytes for table in data.features.values())


def _say(lines: Lines, progress: Progress) -> None:
    """The processes' progress lines so far, as heartbeat lines of `progress`."""
    with contextlib.suppress(queue.Empty):
        while True:
            message: Message = lines.get_nowait()
            progress.heartbeat(message["text"])


# Per spawned process: the runs opened once by the executor's initializer, and the lines' queue.
_OPENED: list[tuple[Prepared, list[Fold]]] = []
_LINES: list[Lines] = []


def _open(configs: list[ResolvedConfig], threads: int, lines: Lines) -> None:
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
    torch.set_flush_denormal(True)  # as `train_many` sets it for the CPU
    loaded: Loaded = {}
    stores = open_stores(configs)
    for config in configs:
        _OPENED.append(reopen(config, stores, loaded))  # resolved in the calling process
    _LINES.append(lines)


def _train_piece(
    train: TrainGroup, piece: list[Piece]
) -> tuple[list[FoldEntry], list[PredictionTable]]:
    jobs = [Job(_OPENED[r][0], seed, k, _OPENED[r][1][k]) for r, seed, k in piece]
    progress = Heartbeat(Published([], _LINES[0].put))
    try:
        entries = train(jobs, progress)
    except PartlySaved as stop:  # the saved members' predictions go back with them
        saved = jobs[: len(stop.entries)]
        stop.tables = [job.run.predictions[(job.seed, job.fold.name)] for job in saved]
        raise
    return entries, [job.run.predictions[(job.seed, job.fold.name)] for job in jobs]


def train_on_processes(
    runs: list[Prepared],
    jobs: list[list[Job]],
    execution: Execution,
    progress: Progress,
    train: TrainGroup,
) -> None:
    """The pieces `jobs` on `execution`'s processes, each trained as `train` trains a group
    (the recipe's stages); after each, its runs' records hold the
    resumed entries, then every finished piece's in piece order (the calling process's
    order of the same groups), whichever finished first."""
    resumed = {id(run): run.record.folds for run in runs}
    finished: dict[int, list[tuple[Job, FoldEntry]]] = {}

    def done(n: int, entries: list[FoldEntry], tables: list[PredictionTable]) -> None:
        ran = jobs[n][: len(entries)]  # all the piece's, or those saved before a full disk
        finished[n] = list(zip(ran, entries, strict=True))
        for job, entry, table in zip(ran, entries, tables, strict=True):
            job.run.predictions[(job.seed, job.fold.name)] = table
            progress.fold_end(job.seed, job.fold.name, entry)
        for run in {id(job.run): job.run for job in jobs[n]}.values():
            ours = [e for i in sorted(finished) for job, e in finished[i] if job.run is run]
            run.record = replace(run.record, folds=(*resumed[id(run)], *ours))
            finish(run, complete=False, progress=progress)

    train_pieces(runs, jobs, execution, progress, done, train)
