"""The trainer's recipe: what `ser train` does with a config, step by step, read top to
bottom (`train_many`, then `_train`); each step is a call into the module that owns it.

1. Resolve the options: each config's (`TrainConfig`, `ser.train.options`) `Plan`
   (`ser.train.plan`: defaults, protocol, device, name) against the stores it names, and
   its inputs (`ser.train.prepare`: the feature sets, the class set); every refusal comes
   here, before anything is written.
2. Open each run: its record, new or read back to resume (`ser.train.record`), its
   features loaded once (`ser.train.data`), its folds (`ser.train.prepare`).
3. Plan the members: the (seed, fold)s its record lacks, grouped into ensembles that
   train stacked (`ser.train.group`), here or on processes as `ser.runtime.execution`
   chooses (`ser.train.processes`).
4. Build, train and test each group's members (`ser.train.group.train_groups`: the
   models, `ser.train.loop`'s select and test, the checkpoints).
5. Record: after each group its entries in the run's record, then the whole record and
   predictions.csv (`ser.train.record`).

``<out>/<name>/run.json`` is written after each group; run again, an interrupted run
resumes from its finished (seed, fold)s when the config and the feature sets'
fingerprints are the record's, and is refused, the difference named, otherwise.

One process trains a run at a time: each holds its runs' folder locks (`RUN_LOCK`, as an
extraction holds its store's) from before their records are read until it ends; another
is refused at once (`RunLocked`, naming the holder). Ctrl-C while they train is
`Interrupted`: what each run keeps, for the one line that says how to resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch

from ser.cache.lock import refuse_while_written, try_lock, who, writer
from ser.errors import ConfigError, RunLocked, SerError, StoreError, StoreLocked
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import PredictionTable
from ser.runs.record import RECORD, RunRecord, json_summary
from ser.runtime.execution import Execution
from ser.runtime.threads import ThreadChoice, set_torch_threads
from ser.track.tracking import check
from ser.train.checkpoint import fold_key, has_checkpoint
from ser.train.final import train_final
from ser.train.group import Job, make_groups, train_groups
from ser.train.options import TrainConfig
from ser.train.plan import Plan, Prepared, make_plan, open_stores, plan_for
from ser.train.prepare import Inputs, Loaded, open_inputs, prepare
from ser.train.processes import choose_execution, job_pieces, train_pieces
from ser.train.progress import Progress
from ser.train.record import RUN_LOCK, finish, read_record, start_record
from ser.train.steps import Steps

__all__ = [
    "Interrupted",
    "Kept",
    "Plan",
    "Prepared",
    "Progress",
    "TrainConfig",
    "json_summary",
    "make_plan",
    "train",
    "train_many",
]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while runs trained; `kept`: what each run keeps."""

    def __init__(self, kept: list[Kept]) -> None:
        super().__init__()
        self.kept = kept


def train(config: TrainConfig, progress: Progress | None = None) -> RunRecord:
    """Run (or resume) `config`; return its run record (also in ``<out>/<name>/run.json``)."""
    return train_many([config], progress)[0]


def train_many(
    configs: Sequence[TrainConfig],
    progress: Progress | None = None,
    threads: ThreadChoice | None = None,
) -> list[RunRecord]:
    """Run (or resume) several configs; jobs of different runs that can share a stacked
    model train as one (`ser.train.group`), stacked and on processes side by side as
    `ser.runtime.execution` chooses (`ser.train.processes`). Records as `train` writes
    them, in order. Threads, processes and ``members_at_once`` come from the first
    config; `threads`, a choice made by the caller (`ser sweep`'s), replaces the threads
    and is recorded as it says. `RunLocked` when another process trains one of them;
    `Interrupted` on Ctrl-C once they train."""
    with _unless_written(configs):
        # 1. Resolve the options: a plan per config (a plan reads its store's corpus kind:
        # each store opened once), every run's sets and inputs checked before its folder is
        # locked (and so made): a refused run leaves nothing behind.
        stores = open_stores(configs)
        plans = [plan_for(c, stores) for c in configs]
        inputs = [open_inputs(c, p, stores) for c, p in zip(configs, plans, strict=True)]
        for tracking in dict.fromkeys(c.tracking for c in configs):  # --track's package
            check(tracking)
        count = threads.count if threads else configs[0].threads if configs else None
        with _torch_settings(count, plans) as chosen, _locked(plans):
            return _train(
                list(configs), plans, inputs, progress or Progress(), threads or chosen, count
            )


def _train(
    configs: list[TrainConfig],
    plans: list[Plan],
    inputs: list[Inputs],
    progress: Progress,
    threads: ThreadChoice,
    asked: int | None,
) -> list[RunRecord]:
    """Steps 2-5 (module docstring) for the resolved runs, their folders locked."""
    # 2. Open each run: its record (new, or read back to resume), its data (runs on the
    # same data share it), its folds.
    loaded: Loaded = {}
    runs: list[Prepared] = []
    for c, p, i in zip(configs, plans, inputs, strict=True):
        started = start_record(c, p, i.features, i.classes, progress, threads, i.view_prints)
        runs.append(prepare(c, p, i, started, progress, loaded, threads))
    # 3. Plan the members: the (seed, fold) jobs left, where they train, their groups.
    jobs = [Job(run, seed, k, fold) for run in runs for seed, k, fold in run.todo]
    execution = choose_execution(configs, plans, runs, threads, asked)
    if jobs:
        progress.message(f"training as {execution.describe()}")
    groups = make_groups(jobs, execution.stacked, masked=execution.step == "graphed")
    try:
        # 4. Build, train and test each group's members, recording each group (5).
        if jobs and execution.processes > 1:
            cut = job_pieces(groups, execution.processes)
            _train_on_processes(runs, cut, execution, progress)
        else:
            steps = Steps(
                compiled=execution.step == "compiled", graphed=execution.step == "graphed"
            )
            train_groups(groups, progress, steps)
        for run in runs:
            if run.config.final:  # one model on all sessions, for new data
                train_final(run, progress)
    except KeyboardInterrupt:
        raise Interrupted([kept(run) for run in runs]) from None
    # 5. Record: each run's whole record and predictions.csv.
    return [finish(run, complete=True, progress=progress) for run in runs]


@contextlib.contextmanager
def _torch_settings(count: int | None, plans: Sequence[Plan]) -> Iterator[ThreadChoice]:
    """torch's threads (`count`; None: the process's CPU budget) and, on the CPU, denormals
    flushed, for the block; the chosen threads given to it, torch's own settings back
    after it."""
    before = torch.get_num_threads()
    try:
        # The process's CPU budget, not the machine's cores: torch's default of one thread
        # per core made a run 10x slower beside one other busy process
        # (ser/runtime/threads.py).
        chosen = set_torch_threads(threads=count)
        # Denormal floats (masked attention rows, vanishing gradients) cost x86 CPUs
        # 10-100x per operation: with them, epochs of the demo's MSMSER took 3-18 s
        # instead of 0.65 s. Flushing them to zero changes results only below float32's
        # normal range.
        flushed = any(p.device.type == "cpu" for p in plans) and torch.set_flush_denormal(True)
        try:
            yield chosen
        finally:
            if flushed:
                torch.set_flush_denormal(False)
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _locked(plans: Sequence[Plan]) -> Iterator[None]:
    """Each run's folder locked for the block; `RunLocked` at once if another process
    holds one."""
    with contextlib.ExitStack() as held:
        for run_dir in dict.fromkeys(plan.run_dir for plan in plans):
            if run_dir.exists() and not run_dir.is_dir():
                raise ConfigError(
                    f"{run_dir}: a file where the run's folder goes; choose another --name or --out"
                )
            holder = held.enter_context(try_lock(run_dir / RUN_LOCK))
            if holder is not None:
                raise RunLocked(
                    f"{run_dir} is being trained by {who(holder)}: one process "
                    "trains a run at a time; wait for it to end (or stop it), then run this "
                    "command again: it resumes from what that one finished; or give another "
                    "--name"
                )
        yield


@contextlib.contextmanager
def _unless_written(configs: Sequence[TrainConfig]) -> Iterator[None]:
    """A store's fault found while another process writes that store (an extraction, a
    repair) is its work under way, not damage: `StoreLocked` naming that process instead."""
    try:
        yield
    except StoreLocked:
        raise
    except StoreError:
        for store in dict.fromkeys(s for c in configs for s in (c.store, c.test_store) if s):
            refuse_while_written(Path(store).absolute())
        raise


def refuse_while_trained(run_dir: Path) -> None:
    """`RunLocked` while another process trains the run in `run_dir`: its checkpoints and
    run.json are not whole until it ends (what `ser export` and `ser predict --run` read)."""
    holder = writer(Path(run_dir) / RUN_LOCK)
    if holder is not None:
        raise RunLocked(
            f"{run_dir} is being trained by {who(holder)}; wait for it to finish, then run "
            "this again"
        )


def _train_on_processes(
    runs: list[Prepared], jobs: list[list[Job]], execution: Execution, progress: Progress
) -> None:
    """The pieces `jobs` on `execution`'s processes; after each, its runs' records hold the
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

    train_pieces(runs, jobs, execution, progress, done)


class Kept(NamedTuple):
    """What an interrupted run keeps: its finished (seed, fold)s of those planned, in the
    record its folder holds (those a resume skips)."""

    name: str
    run_dir: Path
    kept: int
    planned: int


def kept(run: Prepared) -> Kept:
    """What `run` keeps in its folder (the record read back: a resume reads that one)."""
    path = run.plan.run_dir / RECORD
    kept = 0
    if path.exists():
        with contextlib.suppress(SerError, OSError):
            folds = read_record(path).folds
            kept = sum(has_checkpoint(run.plan.run_dir, fold_key(*e.key)) for e in folds)
    return Kept(run.plan.name, run.plan.run_dir, kept, run.planned)
