"""A run's (seed, fold) jobs on local processes side by side, on the CPU.

On 2 cores every family's members trained ~1.1-1.4x more runs an hour as one-thread
processes side by side than in one process with both cores' threads (benchmarks/README.md,
"Do processes side by side speed up training?"): their steps are many small operators, which a
second thread hardly shares. So on the CPU `ser train` cuts its groups into a piece per process and
trains the pieces on spawned processes of one thread each, as many as `cpu_budget` has cores (above
2 cores one left free), never more than the run's jobs nor than copies of the run's data fit in
half the memory, once the run has its family's `MIN_WORK` of training (below it a
process's start-up costs more than it gains). The rule is a pure function of stable facts
(the budget and memory, the families, the run's size, the device), never of the load,
and it is recorded: the numbers depend on each process's thread count and on which
members stack together. `--processes N` asks for N (cores // N threads each);
`--processes 1` trains in the calling process; on a GPU the members stack on it instead.

A piece trains in its process exactly as the same group would in the calling process
with the same threads (tested bit for bit). Each process opens the run itself
(`ser.train.prepare.reopen`: the same data, folds and seeds), saves its members'
checkpoints and hands back their record entries and test predictions; the caller writes
the record after each piece, so a run stopped part way keeps every finished piece and
trains the rest when resumed. Epoch lines come back through a queue.

>>> from ser.runtime.threads import CpuBudget
>>> two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
>>> cpu = torch.device("cpu")
>>> choose_pool(two, families={"dialog"}, jobs=20, device=cpu, work=10**7).describe()
'2 processes x 1 torch thread (default for dialog runs: affinity 2 cores, cgroup none, 1 worker)'
>>> choose_pool(two, families={"msmser"}, jobs=20, device=cpu, work=1000).source
'one process: 1,000 utterance-epochs, under 100,000'
>>> [len(p) for p in pieces([list(range(5)), [5]], 2)]
[3, 2, 1]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ser.cache import FeatureStore
from ser.corpus.protocols.folds import Fold
from ser.errors import WorkerLost
from ser.report.predictions import PredictionTable
from ser.runtime.threads import SMALL_BUDGET, CpuBudget, ThreadChoice
from ser.train.group import Job, describe, train_group
from ser.train.plan import Prepared, TrainConfig, make_plan
from ser.train.prepare import Loaded, reopen
from ser.train.progress import Heartbeat, Message, Progress, Published

# Per family, the training (utterances x epochs x jobs) from which a run's members go to
# one-thread processes side by side on the CPU. Every family trained more runs an hour so
# on 2 cores (benchmarks/README.md, "Do processes side by side speed up training?": dialog 1.13x,
# MSMSER 1.38x, unimodal 1.11x, late_prob 1.09x), but a process's start-up (~4 s: imports, the data
# read again) must be paid for. Dialog's and unimodal's are ~30-45 s of training at their measured
# rates (~1.8e-5 and ~1.1e-5 s an utterance-epoch on IEMOCAP's 5531). An utterance-epoch
# of MSMSER or late_prob costs 10-1000x more or less with the model's size and frames, so
# theirs are set high: ~7-10 min at the demo's sizes (~4e-3, ~6e-3 s), where the tests'
# tiny models stay in one process; IEMOCAP's runs (553k for one LOSO seed of 20 epochs)
# are over them.
MIN_WORK = {"dialog": 1_500_000, "unimodal": 4_000_000, "msmser": 100_000, "late_prob": 100_000}
TICK = 0.5  # seconds between looks at the processes' progress lines
T = TypeVar("T")
Piece = tuple[int, int, int]  # (run index, seed, fold index): a job as a process finds it
Done = Callable[[int, list[dict[str, Any]], list[PredictionTable]], None]


@dataclass(frozen=True)
class PoolChoice:
    """How many processes train a run's jobs, with how many threads each, and why."""

    count: int
    source: str
    threads: ThreadChoice | None = None  # each process's; None: the calling process trains

    def describe(self) -> str:
        """e.g. "2 processes x 1 torch thread (default for dialog runs: affinity 2 ...)"."""
        per = self.threads.count if self.threads else 0
        where = f"{self.count} processes x {per} torch thread{'s' if per != 1 else ''}"
        return f"{where} ({self.source})"


def side_by_side(budget: CpuBudget, per: int, tasks: int) -> int:
    """Processes of `per` threads that `budget` runs side by side (above `SMALL_BUDGET`
    cores one core left free, as `default_threads` leaves one), at most `tasks`."""
    usable = budget.cores - 1 if budget.cores > SMALL_BUDGET else budget.cores
    return max(1, min(usable // per, tasks))


def choose_pool(
    budget: CpuBudget,
    *,
    families: Collection[str],
    jobs: int,
    device: torch.device,
    work: int | None = None,
    processes: int | None = None,
    threads: int | None = None,
    data_bytes: int = 0,
    memory: int = 0,
) -> PoolChoice:
    """The module doc's rule for a run of `jobs` planned (seed, fold) jobs (done or not,
    so that a resumed run chooses as its start did) and `work` utterances x epochs x jobs
    (under its families' `MIN_WORK` one process; None: no size rule); `processes`,
    `threads`: the options. By default each process's copy of the data (`data_bytes`),
    and the caller's, must fit in half of `memory` (`ser.runtime.memory`; 0: unknown)."""
    if processes is not None:  # above 1 refused off the CPU by `make_plan`
        count = max(1, min(processes, jobs))
        per = threads or max(1, budget.cores // processes)
        return _choice(count, per, f"--processes {processes}")
    if device.type != "cpu":
        return PoolChoice(1, f"{device}: the members stack on the device")
    if not set(families) <= MIN_WORK.keys():
        names = ", ".join(sorted(families))
        return PoolChoice(1, f"one process for {names}: processes unmeasured for it")
    least = max(MIN_WORK[f] for f in families) if families else 0
    if work is not None and work < least:
        return PoolChoice(1, f"one process: {work:,} utterance-epochs, under {least:,}")
    per = threads or 1
    count = side_by_side(budget, per, jobs)
    if data_bytes and memory and (count + 1) * data_bytes > memory // 2:
        count = max(1, memory // 2 // data_bytes - 1)
        if count < 2:
            gib = f"{data_bytes / 2**30:.1f} GiB of data in each process, {memory / 2**30:.0f} GiB"
            return PoolChoice(1, f"one process: {gib} of memory")
    rule = f"--threads {threads}" if threads else "default"
    names = ", ".join(sorted(families))
    return _choice(count, per, f"{rule} for {names} runs: {budget.describe()}")


def _choice(count: int, per: int, source: str) -> PoolChoice:
    if count < 2:
        return PoolChoice(1, source)
    plural = "s" if per != 1 else ""
    each = ThreadChoice(per, f"{per} thread{plural} in each of {count} processes: {source}")
    return PoolChoice(count, source, each)


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


def train_pieces(
    runs: Sequence[Prepared],
    jobs: Sequence[Sequence[Job]],
    choice: PoolChoice,
    progress: Progress,
    done: Done,
) -> None:
    """Train each piece of `jobs` on `choice.count` spawned processes; `done(n, entries,
    predictions)` for piece n as it finishes (in the calling process). Spawned, not
    forked: a fork of a process with torch's thread pools can hang."""
    context = multiprocessing.get_context("spawn")
    lines: Any = context.Queue()
    index = {id(run): i for i, run in enumerate(runs)}
    configs = [run.config for run in runs]
    per = choice.threads.count if choice.threads else 1
    pool = ProcessPoolExecutor(
        choice.count, mp_context=context, initializer=_open, initargs=(configs, per, lines)
    )
    try:
        todo = [[(index[id(j.run)], j.seed, j.k) for j in piece] for piece in jobs]
        pending = {pool.submit(_train_piece, piece): n for n, piece in enumerate(todo)}
        while pending:
            finished, _ = wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)
            _say(lines, progress)
            for future in finished:
                done(pending.pop(future), *future.result())
        _say(lines, progress)
    except BrokenProcessPool as e:  # a process died: the OS's doing, not a Python error
        pool.shutdown(wait=False, cancel_futures=True)
        raise WorkerLost(
            f"a training process stopped before its piece was done (killed? out of memory?) "
            f"({e}); the pieces finished before it are recorded: run the same command again "
            "to train the rest, with --processes 1 to train in one process"
        ) from e
    except BaseException:
        # Stopped (Ctrl-C, an error): drop what has not started; finished pieces are done.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _say(lines: Any, progress: Progress) -> None:
    """The processes' progress lines so far, as heartbeat lines of `progress`."""
    with contextlib.suppress(queue.Empty):
        while True:
            message: Message = lines.get_nowait()
            progress.heartbeat(message["text"])


# Per pool process: the runs opened once by the pool's initializer, and the lines' queue.
_OPENED: list[tuple[Prepared, list[Fold]]] = []
_LINES: list[Any] = []


def _open(configs: list[TrainConfig], threads: int, lines: Any) -> None:
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)
    torch.set_flush_denormal(True)  # as `train_many` sets it for the CPU
    loaded: Loaded = {}
    stores = {path: FeatureStore.open(path) for path in dict.fromkeys(c.store for c in configs)}
    for config in configs:
        store = stores[config.store]
        _OPENED.append(reopen(config, make_plan(config, store.corpus.kind), store, loaded))
    _LINES.append(lines)


def _train_piece(piece: list[Piece]) -> tuple[list[dict[str, Any]], list[PredictionTable]]:
    jobs = [Job(_OPENED[r][0], seed, k, _OPENED[r][1][k]) for r, seed, k in piece]
    progress = Heartbeat(Published([], _LINES[0].put))
    progress.fold_start(jobs[0].seed, describe(jobs), jobs[0].run.plan.epochs)
    entries = train_group(jobs, progress)
    return entries, [job.run.predictions[(job.seed, job.fold.name)] for job in jobs]
