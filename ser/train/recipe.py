"""The trainer's recipe: what `ser train` does with its configs, read top to bottom in
`train_many`; each stage is one call into the module that owns it.

1. Resolve the configs: each one's `Plan` (`ser.train.plan`: defaults, protocol, device,
   name) against the stores it names, and its inputs (`ser.train.prepare`: the feature
   sets, the class set); every refusal comes here, before anything is written.
2. Folds and members: each run's record, new or read back to resume
   (`ser.train.record`), its data loaded once (`ser.train.data`) and its folds
   (`ser.train.prepare`); the (seed, fold)s its record lacks, grouped into ensembles that
   train together (`ser.train.group`), here or on processes as `ser.runtime.execution`
   chooses (`ser.train.processes`).
3. Members built, fit, tested, calibrated and saved, group by group
   (`ser.train.group.train_groups`), each group's entries recorded as it ends; the
   `--final` model (`ser.train.final`).
4. Record: each run's whole record and predictions.csv (`ser.train.record.finish`).

A cross-corpus run (`--test-store`) differs in stage 1 only: its plan and inputs hold the
test store (`ser.train.cross`); a plain run's path never enters that module.

``<out>/<name>/run.json`` is written after each group; run again, an interrupted run
resumes from its finished (seed, fold)s when the config and the feature sets'
fingerprints are the record's, and is refused, the difference named, otherwise. One
process trains a run at a time (`ser.train.folder`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ser.errors import Interrupted
from ser.runs.record import RunRecord, json_summary
from ser.runtime.threads import ThreadChoice, torch_settings
from ser.track.progress import Progress
from ser.track.tracking import check
from ser.train.engine import Steps
from ser.train.final import train_final
from ser.train.folder import kept, locked, unless_written
from ser.train.group import make_groups, train_groups
from ser.train.options import TrainConfig
from ser.train.plan import Job, Plan, Prepared, make_plan, open_stores, plan_for
from ser.train.prepare import Loaded, open_inputs, prepare
from ser.train.processes import choose_execution, job_pieces, train_on_processes
from ser.train.record import finish, start_record

__all__ = [
    "Interrupted",
    "Plan",
    "Prepared",
    "Progress",
    "TrainConfig",
    "json_summary",
    "make_plan",
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
        # 1. Resolve the configs: a plan each (a plan reads its store's corpus kind: each
        # store opened once), every run's sets and inputs checked before its folder is
        # locked (and so made): a refused run leaves nothing behind.
        stores = open_stores(configs)
        plans = [plan_for(c, stores) for c in configs]
        inputs = [open_inputs(c, p, stores) for c, p in zip(configs, plans, strict=True)]
        for tracking in dict.fromkeys(p.tracking for p in plans):  # --track's package
            check(tracking)
        asked = threads.count if threads else configs[0].threads if configs else None
        on_cpu = any(p.device.type == "cpu" for p in plans)
        with torch_settings(asked, on_cpu) as chosen, locked(plans):
            threads = threads or chosen
            # 2. Folds and members: each run's record (new, or read back to resume), its
            # data (runs on the same data share it), its folds; the (seed, fold)s left,
            # where they train, their groups.
            loaded: Loaded = {}
            runs: list[Prepared] = []
            for c, p, i in zip(configs, plans, inputs, strict=True):
                streamed = sorted(i.placement.streamed) if i.placement else []
                started = start_record(
                    c, p, i.features, i.classes, progress, threads, i.view_prints, streamed
                )
                runs.append(prepare(c, p, i, started, progress, loaded, threads))
            jobs = [Job(run, seed, k, fold) for run in runs for seed, k, fold in run.todo]
            execution = choose_execution(configs, plans, runs, threads, asked)
            if jobs:
                progress.message(f"training as {execution.describe()}")
            groups = make_groups(jobs, execution.stacked, masked=execution.step == "graphed")
            # 3. Members built, fit, tested, calibrated and saved, each group recorded.
            try:
                if jobs and execution.processes > 1:
                    cut = job_pieces(groups, execution.processes)
                    train_on_processes(runs, cut, execution, progress)
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
            # 4. Record: each run's whole record and predictions.csv.
            return [finish(run, complete=True, progress=progress) for run in runs]
