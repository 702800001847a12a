"""A training run: feature sets × protocol folds × seeds -> one run record.

``<out>/<name>/run.json`` is written after each group; run again, an interrupted run
resumes from its finished (seed, fold)s when the config and the feature sets'
fingerprints are the record's, and is refused, the difference named, otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from ser.cache import FeatureStore
from ser.report.metrics import Metrics, overall_metrics, summarize
from ser.report.predictions import PREDICTIONS, PredictionTable, concat, predictions_csv
from ser.runtime.memory import memory_budget
from ser.runtime.threads import ThreadChoice, cpu_budget, set_torch_threads
from ser.train.data import TrainData
from ser.train.final import train_final
from ser.train.group import Job, default_at_once, describe, make_groups, train_group
from ser.train.plan import Plan, Prepared, TrainConfig, make_plan
from ser.train.pool import PoolChoice, choose_pool, pieces, train_pieces
from ser.train.prepare import Loaded, prepare
from ser.train.progress import Progress
from ser.train.record import RECORD, atomic, json_summary, write_json

__all__ = [
    "Plan", "Prepared", "Progress", "TrainConfig", "json_summary", "make_plan",
    "train", "train_many",
]  # fmt: skip


def train(config: TrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) `config`; return its run record (also in ``<out>/<name>/run.json``)."""
    return train_many([config], progress)[0]


def train_many(
    configs: Sequence[TrainConfig],
    progress: Progress | None = None,
    threads: ThreadChoice | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) several configs; jobs of different runs that can share a stacked
    model train as one (`ser.train.group`), on processes side by side where that trains
    more runs an hour (`ser.train.pool`). Records as `train` writes them, in order.
    Threads, processes and ``members_at_once`` come from the first config; `threads`, a
    choice made by the caller (`ser sweep`'s layout), replaces the threads and is
    recorded as it says."""
    stores = open_stores(configs)  # once per process: a plan reads its corpus kind
    plans = [make_plan(c, stores[c.store].corpus.kind) for c in configs]
    before = torch.get_num_threads()
    # The process's CPU budget, not the machine's cores: torch's default of one thread per
    # core made a run 10x slower beside one other busy process (ser/runtime/threads.py).
    count = threads.count if threads else configs[0].threads if configs else None
    chosen = set_torch_threads(threads=count)
    chosen = threads if threads else chosen
    # Denormal floats (masked attention rows, vanishing gradients) cost x86 CPUs 10-100x
    # per operation: with them, epochs of the demo's MSMSER took 3-18 s instead of 0.65 s.
    # Flushing them to zero changes results only below float32's normal range.
    on_cpu = any(p.device.type == "cpu" for p in plans)
    flushed = on_cpu and torch.set_flush_denormal(True)
    try:
        return _train(list(configs), plans, stores, progress or Progress(), chosen, count)
    finally:
        torch.set_num_threads(before)
        if flushed:
            torch.set_flush_denormal(False)


def open_stores(configs: Sequence[TrainConfig]) -> dict[str, FeatureStore]:
    """Each config's store, opened once (`StoreError`: missing or not a store)."""
    return {path: FeatureStore.open(path) for path in dict.fromkeys(c.store for c in configs)}


def _train(
    configs: list[TrainConfig],
    plans: list[Plan],
    stores: dict[str, FeatureStore],
    progress: Progress,
    threads: ThreadChoice,
    asked: int | None,
) -> list[dict[str, Any]]:
    loaded: Loaded = {}
    runs = [
        prepare(c, p, stores[c.store], progress, loaded, threads)
        for c, p in zip(configs, plans, strict=True)
    ]
    jobs = [Job(run, seed, k, fold) for run in runs for seed, k, fold in run.todo]
    at_once = configs[0].members_at_once if configs else None
    if at_once is None and plans:
        at_once = default_at_once(plans[0].device, plans[0].family)
    groups = make_groups(jobs, at_once)
    pool = _pool(configs, plans, runs, asked) if jobs else None
    if pool is not None and pool.count > 1:
        progress.message(f"training on {pool.describe()}; --processes 1 trains in this process")
        _train_pooled(runs, pieces(groups, pool.count), pool, progress)
    else:
        _train_here(groups, progress)
    for run in runs:
        if run.config.final:  # one model on all sessions, for new data
            train_final(run, progress)
    return [_finish(run, complete=True) for run in runs]


def _train_here(groups: list[list[Job]], progress: Progress) -> None:
    """Each group in this process, its runs' records written after it."""
    for group in groups:
        progress.fold_start(group[0].seed, describe(group), group[0].run.plan.epochs)
        for job, entry in zip(group, train_group(group, progress), strict=True):
            job.run.record["folds"].append(entry)
            progress.fold_end(job.seed, job.fold.name, entry)
        for run in {id(job.run): job.run for job in group}.values():
            _finish(run, complete=False)


def _pool(
    configs: list[TrainConfig], plans: list[Plan], runs: list[Prepared], asked: int | None
) -> PoolChoice:
    """`ser.train.pool`'s choice for these runs, recorded in each (with the threads that
    then train its members)."""
    pool = choose_pool(
        cpu_budget(),
        families={p.family for p in plans},
        jobs=sum(run.planned for run in runs),
        device=plans[0].device,
        work=sum(run.planned * run.plan.epochs * len(run.data) for run in runs),
        processes=configs[0].processes,
        threads=asked,
        data_bytes=sum(_data_bytes(data) for data in {id(r.data): r.data for r in runs}.values()),
        memory=memory_budget(),
    )
    for run in runs:
        run.record["processes"] = {"count": pool.count, "source": pool.source}
        if pool.threads is not None:
            run.record["threads"] = asdict(pool.threads)
            run.record["timings"]["threads"] = pool.threads.count
    return pool


def _data_bytes(data: TrainData) -> int:
    """The features' bytes in memory: what each pool process reads again."""
    return sum(table.flat.nbytes for table in data.features.values())


def _train_pooled(
    runs: list[Prepared], jobs: list[list[Job]], pool: PoolChoice, progress: Progress
) -> None:
    """The pieces `jobs` on `pool`'s processes; after each, its runs' records hold the
    resumed entries, then every finished piece's in piece order (the calling process's
    order of the same groups), whichever finished first."""
    resumed = {id(run): list(run.record["folds"]) for run in runs}
    finished: dict[int, list[tuple[Job, dict[str, Any]]]] = {}

    def done(n: int, entries: list[dict[str, Any]], tables: list[PredictionTable]) -> None:
        finished[n] = list(zip(jobs[n], entries, strict=True))
        for job, entry, table in zip(jobs[n], entries, tables, strict=True):
            job.run.predictions[(job.seed, job.fold.name)] = table
            progress.fold_end(job.seed, job.fold.name, entry)
        for run in {id(job.run): job.run for job in jobs[n]}.values():
            ours = [e for i in sorted(finished) for job, e in finished[i] if job.run is run]
            run.record["folds"] = resumed[id(run)] + ours
            _finish(run, complete=False)

    train_pieces(runs, jobs, pool, progress, done)


def _finish(run: Prepared, complete: bool) -> dict[str, Any]:
    record = run.record
    if record["folds"]:
        results = [(int(e["seed"]), Metrics.from_dict(e["metrics"])) for e in record["folds"]]
        record["summary"] = summarize(results)
        record["pooled"] = overall_metrics([m for _, m in results], record["classes"]).to_dict()
    record["complete"] = complete
    fold_seconds = sum(float(e["seconds"]) for e in record["folds"])
    record["timings"]["folds"] = fold_seconds
    record["timings"]["wall"] = time.perf_counter() - run.started
    record["seconds"] = fold_seconds + float(record["timings"].get("load", 0.0))
    _write_predictions(run)
    write_json(run.plan.run_dir / RECORD, record)
    return record


def _write_predictions(run: Prepared) -> None:
    """predictions.csv: the rows of every (seed, fold) the record holds, in its order (an
    entry resumed from a run trained before predictions were kept has none)."""
    keys = [(int(e["seed"]), str(e["fold"])) for e in run.record["folds"]]
    if not keys:
        return
    tables = [run.predictions[k] for k in keys if k in run.predictions]
    text = predictions_csv(concat(tables, run.data.classes))
    path = run.plan.run_dir / PREDICTIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
