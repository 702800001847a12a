"""The trainer's recipe: what `ser train` does with its configs, read top to bottom in
`train_many`; each stage is one call into the module that owns it.

1. Resolve the configs: each one's defaults filled in (`ser.train.plan`: protocol,
   device, name...) against the stores it names, and its inputs (`ser.train.prepare`: the feature
   sets, the class set); every refusal comes here, before anything is written.
2. Folds and members: each run's record, new or read back to resume
   (`ser.train.record`), its data loaded once (`ser.train.data`) and its folds
   (`ser.train.prepare`); the (seed, fold)s its record lacks, grouped into ensembles that
   train together (`ser.train.group`), here or on processes as `ser.runtime.execution`
   chooses (`ser.train.processes`).
3. Each group's stages (`train_group`, which a training process runs too): its members
   built (`ser.train.group`), fit (`ser.train.engine`), tested, calibrated
   (`ser.train.calibration`), their checkpoints saved (`ser.train.checkpoint`) and their
   entries made and recorded as the group ends (`ser.train.record`); then the `--final`
   model (`ser.train.final`).
4. Record: each run's whole record and predictions.csv (`ser.train.record.finish`).

A cross-corpus run (`--test-store`) differs in stage 1 only: its config and inputs name the
test store (`ser.train.cross`); a plain run's path never enters that module.

``<out>/<name>/run.json`` is written after each group; run again, an interrupted run
resumes from its finished (seed, fold)s when the config and the feature sets'
fingerprints are the record's, and is refused, the difference named, otherwise. One
process trains a run at a time (`ser.train.folder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from ser.errors import Interrupted, SerError, StoreError, StoreLocked
from ser.runs.fold_entry import FoldEntry
from ser.runs.record import RunRecord, json_summary
from ser.runtime.threads import ThreadChoice, torch_settings
from ser.track.progress import Progress
from ser.track.tracking import check
from ser.train.calibration import calibrate
from ser.train.checkpoint import save_member
from ser.train.engine import Steps, fit
from ser.train.final import train_final
from ser.train.folder import kept, locked, unless_written
from ser.train.group import PartlySaved, build, drawing, make_groups, outcomes, test_runs
from ser.train.options import TrainConfig
from ser.train.plan import Job, Prepared, open_stores, resolve, resolve_in, tracking_of
from ser.train.prepare import Loaded, open_inputs, prepare
from ser.train.processes import choose_execution, job_pieces, train_on_processes
from ser.train.record import finish, member_entries, record_group, start_record

__all__ = [
    "Interrupted",
    "Prepared",
    "Progress",
    "TrainConfig",
    "json_summary",
    "resolve",
    "train",
    "train_many",
]


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
    progress = progress or Progress()
    configs = list(configs)
    with unless_written(configs):
        # 1. Resolve the configs: defaults filled in (from its store's corpus kind: each
        # store opened once), every run's sets and inputs checked before its folder is
        # locked (and so made): a refused run leaves nothing behind.
        stores = open_stores(configs)
        resolved = [resolve_in(c, stores) for c in configs]
        inputs = [open_inputs(c, r, stores) for c, r in zip(configs, resolved, strict=True)]
        for tracking in dict.fromkeys(tracking_of(r) for r in resolved):  # --track's package
            check(tracking)
        asked = threads.count if threads else configs[0].threads if configs else None
        on_cpu = any(i.device.type == "cpu" for i in inputs)
        with torch_settings(asked, on_cpu) as chosen, locked(resolved):
            threads = threads or chosen
            # 2. Folds and members: each run's record (new, or read back to resume), its
            # data (runs on the same data share it), its folds; the (seed, fold)s left,
            # where they train, their groups.
            loaded: Loaded = {}
            runs: list[Prepared] = []
            for i in inputs:
                test = i.test.store.corpus if i.test else None  # cross-corpus: recorded
                started = start_record(
                    i.config,
                    i.protocol,
                    i.features,
                    i.classes,
                    progress,
                    threads,
                    i.view_prints,
                    i.streamed,
                    test,
                )
                runs.append(prepare(i, started, progress, loaded, threads))
            jobs = [Job(run, seed, k, fold) for run in runs for seed, k, fold in run.todo]
            execution = choose_execution(runs, threads, asked)
            if jobs:
                progress.message(f"training as {execution.describe()}")
            groups = make_groups(jobs, execution.stacked, masked=execution.step == "graphed")
            # 3. Each group's stages (`train_group`), each group recorded as it ends.
            try:
                if jobs and execution.processes > 1:
                    cut = job_pieces(groups, execution.processes)
                    train_on_processes(runs, cut, execution, progress, train_group)
                else:
                    step = execution.step
                    train_groups(
                        groups,
                        progress,
                        Steps(compiled=step == "compiled", graphed=step == "graphed"),
                    )
                for run in runs:
                    if run.config.final:  # one model on all sessions, for new data
                        train_final(run, progress)
            except KeyboardInterrupt:
                raise Interrupted([kept(run) for run in runs]) from None
            except StoreLocked:  # another process writes it: said as such (`unless_written`)
                raise
            except StoreError as error:  # a store gone or damaged mid-run: what stays
                raise StoreError(
                    f"{error}; {'; '.join(kept(run) for run in runs)}: once the store is "
                    "whole again (put back, or repaired), the same command resumes from them"
                ) from None
            # 4. Record: each run's whole record and predictions.csv.
            return [finish(run, complete=True, progress=progress) for run in runs]


def train_groups(groups: Sequence[Sequence[Job]], progress: Progress, steps: Steps) -> None:
    """Each group in this process (`train_group`), its runs' records written after it
    (with the shapes its compiled steps met)."""
    for group in groups:
        try:
            entries = train_group(group, progress, steps)
        except PartlySaved as stop:  # the members whose checkpoints are whole are kept
            record_group(group[: len(stop.entries)], stop.entries, progress, steps)
            raise stop.error from None
        record_group(group, entries, progress, steps)


def train_group(
    group: Sequence[Job], progress: Progress, steps: Steps | None = None
) -> list[FoldEntry]:
    """One group's stages, here or in a training process (`train_on_processes` is handed
    this function): its jobs trained as one ensemble (`steps`: eager by default), said
    as it starts; their checkpoints saved, their test predictions kept in their runs'
    `predictions`, their record entries returned for the caller to record.
    `PartlySaved` when a checkpoint cannot be written (a full disk): the entries of the
    members saved before it, which the caller records."""
    steps = steps or Steps()
    # Build: a member per distinct training, from its seed, with its training side's
    # statistics; jobs that differ only in how they are tested share one.
    built = build(group, progress, steps)
    with drawing(group):  # the group's draws: from its first job's stream
        # Fit each stage, then the whole model, selecting on validation; then test.
        ensemble, members, chosen = fit(built.modules, built.sides, built.classes, progress, steps)
        tested = test_runs(built, ensemble, members, "test", progress, steps)
        validated = partial(test_runs, built, ensemble, members, "val", progress, steps)
        tested, temperatures = calibrate(group, tested, validated, progress)  # --calibrate
    trained = outcomes(built, ensemble, chosen, tested, temperatures)
    # Save each job's checkpoint, then make its record entry.
    for n, member in enumerate(trained):
        try:
            save_member(member.job, member.state, member.zscore, member.scale, member.sidecar)
        except SerError as error:  # the members saved before it are finished: kept
            raise PartlySaved(member_entries(trained[:n]), error) from error
    return member_entries(trained)
