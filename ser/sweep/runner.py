"""Running a sweep: tasks of cells, in this process or as dask.distributed tasks.

A task is a list of cells that train as one stacked model (`ser.sweep.cells.tasks`),
by `ser.train.recipe.train_many`, each cell written like any `ser train` run: a task killed
loses nothing finished (run again: finished cells are skipped, partial ones resume).
A cell trains under an exclusive ``flock`` on ``<out>/locks/<key>.lock``: a second sweep
that reaches it reports it busy instead of writing into it.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.cache.atomic import write_json
from ser.cache.lock import try_lock
from ser.errors import DiskFullError, SerError
from ser.runs.record import RunRecord
from ser.runtime.threads import ThreadChoice
from ser.sweep.cells import ResolvedCell, cell_record, tasks
from ser.sweep.presets import row_key
from ser.sweep.progress import TOPIC, is_message, worker_progress
from ser.sweep.spec import SweepSpec
from ser.sweep.stores import columns as store_columns
from ser.track.progress import Message, Progress

if TYPE_CHECKING:  # dask is imported where a cluster starts (`ser.runtime.cluster`)
    from distributed import Client

LOCKS = "locks"
SWEEPS = "sweeps"  # <out>/sweeps/<name>.json: what a report renders
WAIT = 60.0  # seconds: on dask, a line when no task finished nor told anything this long
TICK = 1.0  # seconds: on dask, how often the lines workers published are shown


@dataclass(frozen=True)
class Outcome:
    """What became of one cell."""

    key: str
    status: str  # "done" | "skipped" (finished before) | "busy" | "failed"
    message: str = ""
    seconds: float = 0.0  # of a task of several cells (one stacked model): its share
    ua: float | None = None
    wa: float | None = None
    shared: int = 1  # cells of the task whose time `seconds` is a share of


def write_manifest(spec: SweepSpec, cells: Sequence[ResolvedCell], out: Path) -> Path:
    """``<out>/sweeps/<name>.json``: the sweep's tables and cells (each with its store and
    the report's column for it), for `ser report`."""
    keys = ("name", "title", "paper", "protocol", "reference", "metrics", "figure", "note")
    tables = [{k: getattr(t, k) for k in keys} for t in spec.tables]  # metrics: a JSON list
    idents = list({c.store.path: c.store for c in cells}.values())
    named = dict(zip((i.path for i in idents), store_columns(idents), strict=True))
    rows = [
        {
            "table": c.cell.table,
            "label": c.cell.label,
            "row": c.cell.row.label,
            "column": c.cell.row.column,
            "row_key": row_key(c.cell.row),
            "grid": dict(c.cell.grid),
            "published": dict(c.cell.row.published),
            "meta": dict(c.cell.row.meta),
            "key": c.key,
            "config": c.resolved,
            "store": c.store.record(named[c.store.path]),
            "own_store": c.cell.row.store is not None,  # its published numbers: its corpus's
        }
        for c in cells
    ]
    manifest = {"name": spec.name, "source": spec.source, "tables": tables, "cells": rows}
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in spec.name) or "sweep"
    return write_json(Path(out) / SWEEPS / f"{safe}.json", manifest, "the sweep's manifest")


def run_sweep(
    cells: Sequence[ResolvedCell],
    out: Path,
    client: Client | None = None,
    on_outcome: Callable[[Outcome, ResolvedCell], None] | None = None,
    threads: int | ThreadChoice | None = None,
    task: Callable[..., list[Outcome]] | None = None,
    on_start: Callable[[list[ResolvedCell]], None] | None = None,
    progress: Progress | None = None,
    on_wait: Callable[[], None] | None = None,
    on_progress: Callable[[list[ResolvedCell], str], None] | None = None,
) -> list[Outcome]:
    """Train every unfinished cell, in this process or as dask tasks on `client`; one
    outcome per distinct cell. `threads`: for the cells that set none (a `ThreadChoice`
    is also recorded as it says why); `task` replaces `run_task`, taking its arguments
    (tests wrap it to kill their worker); the hooks: docs/dev/sweep.md, "Sweeps"."""
    by_key = {c.key: c for c in cells}
    report = on_outcome or (lambda outcome, cell: None)
    outcomes = []
    todo: list[tuple[list[Any], ThreadChoice | None]] = []  # configs, what `run_task` records
    count = threads.count if isinstance(threads, ThreadChoice) else threads
    choice = threads if isinstance(threads, ThreadChoice) and threads.count else None
    # On a cluster its workers are the processes: a task trains in its worker.
    alone = 1 if client is not None else None
    for group in tasks(cells):
        left = []
        for c in group:
            record, problem = cell_record(out, c.key)
            if problem:  # training it would stop at the same record
                outcomes.append(Outcome(c.key, "failed", problem))
                report(outcomes[-1], c)
                continue
            if record is None or not record.complete:
                left.append(c)
                continue
            outcomes.append(Outcome(c.key, "skipped", "finished before", 0.0, *_scores(record)))
            report(outcomes[-1], c)
        if left:  # `threads` for the cells that do not set their own
            configs = [
                replace(c.config, threads=c.config.threads or count or None, processes=alone)
                for c in left
            ]
            todo.append((configs, None if any(c.config.threads for c in left) else choice))

    def started(configs: Sequence[Any]) -> None:
        if on_start is not None:
            on_start([by_key[c.name] for c in configs])

    run = task or run_task

    def in_process() -> Iterator[Outcome]:
        for configs, task_choice in todo:
            started(configs)
            yield from run(configs, str(out), progress=progress, **_threads(task_choice))

    def told(message: Message) -> None:
        mine = [by_key[k] for k in message["keys"] if k in by_key]
        if mine and on_progress is not None:  # another sweep's cells: its own business
            on_progress(mine, message["text"])

    if client is None:
        results = in_process()
    else:
        hooks = (started, on_wait or (lambda: None), told)
        results = _on_dask(todo, str(out), client, run, *hooks)
    for outcome in results:
        outcomes.append(outcome)
        report(outcome, by_key[outcome.key])
    return outcomes


def _threads(choice: ThreadChoice | None) -> dict[str, Any]:
    """`run_task`'s `threads` keyword when there is a choice (other tasks take none)."""
    return {} if choice is None else {"threads": choice}


def _on_dask(
    submit: list[tuple[list[Any], ThreadChoice | None]],
    out: str,
    client: Client,
    task: Callable[..., list[Outcome]],
    started: Callable[[Sequence[Any]], None],
    waiting: Callable[[], None],
    told: Callable[[Message], None],
) -> Iterator[Outcome]:
    from distributed import wait

    workers = len(client.scheduler_info().get("workers", {}))
    # Each config's task's choice: `balance` cuts tasks into halves of the same objects.
    choices = {id(c): choice for configs, choice in submit for c in configs}
    todo = balance([configs for configs, _ in submit], workers)
    # Workers publish their tasks' progress lines; this thread prints them between waits
    # (the handler runs on the client's event-loop thread).
    lines: queue.SimpleQueue[Message] = queue.SimpleQueue()

    def heard(event: tuple[float, Any]) -> None:
        if is_message(event[1]):  # a topic is anyone's to log to
            lines.put(event[1])

    client.subscribe_topic(TOPIC, heard)
    pending = [
        client.submit(task, configs, out, pure=False, **_threads(choices[id(configs[0])]))
        for configs in todo
    ]
    for configs in todo:
        started(configs)  # queued or running on the cluster
    last = time.monotonic()
    try:
        while pending:
            try:
                done, left = wait(pending, timeout=TICK, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done, left = [], pending
            news = bool(done) or not lines.empty()
            while not lines.empty():
                told(lines.get())
            if news:
                last = time.monotonic()
            elif time.monotonic() - last >= WAIT:  # nothing finished nor said: say so
                waiting()
                last = time.monotonic()
            pending = list(left)
            for future in done:
                yield from future.result()
    finally:
        client.unsubscribe_topic(TOPIC)


def balance(todo: list[list[Any]], workers: int) -> list[list[Any]]:
    """Tasks split by cells until every worker has one (or no task has two cells left):
    a table whose cells all stack into one model would otherwise keep one GPU busy and
    the others idle. The biggest task is halved first; each half still stacks its cells.

    >>> [len(t) for t in balance([list(range(6)), [6]], workers=4)]
    [2, 1, 3, 1]
    """
    tasks = [list(t) for t in todo]
    while 0 < len(tasks) < workers:
        largest = max(range(len(tasks)), key=lambda i: len(tasks[i]))
        cells = tasks[largest]
        if len(cells) < 2:
            break
        half = (len(cells) + 1) // 2
        tasks[largest : largest + 1] = [cells[:half], cells[half:]]
    return tasks


def run_task(
    configs: Sequence[Any],
    out: str,
    progress: Progress | None = None,
    threads: ThreadChoice | None = None,
) -> list[Outcome]:
    """Train `configs` (cells' TrainConfigs) as one `train_many` call (`threads`: its
    thread choice), each under its cell lock (a cell another process holds is busy): the
    dask task. Without `progress`, on a dask worker it publishes its progress
    (`ser.sweep.progress`)."""
    from ser.train.recipe import train_many

    with contextlib.ExitStack() as stack:
        mine, outcomes = [], []
        for config in configs:
            holder = stack.enter_context(try_lock(Path(out) / LOCKS / f"{config.name}.lock"))
            if holder is None:
                mine.append(config)
            else:
                who = f" (pid {holder})" if holder else ""
                outcomes.append(Outcome(config.name, "busy", f"another sweep{who} trains it"))
        if not mine:
            return outcomes
        start = time.perf_counter()
        progress = progress or worker_progress([c.name for c in mine])
        try:
            records = train_many(mine, progress, threads)
        except DiskFullError:  # every cell after it would fail so: the sweep stops
            raise
        except SerError as e:
            return outcomes + [Outcome(c.name, "failed", str(e)) for c in mine]
        except (RuntimeError, MemoryError) as e:  # e.g. CUDA out of memory: the other
            # tasks still run; the cells' finished groups are on disk for the next run.
            why = f"{type(e).__name__}: {e}"
            return outcomes + [Outcome(c.name, "failed", why) for c in mine]
        seconds = (time.perf_counter() - start) / len(mine)  # each cell's share
        for config, record in zip(mine, records, strict=True):
            ua, wa = _scores(record)
            outcomes.append(Outcome(config.name, "done", "", seconds, ua, wa, len(mine)))
        return outcomes


def _scores(record: RunRecord) -> tuple[float | None, float | None]:
    """The record's mean UA and WA (None before its first fold, or for a run on emotion
    attributes alone)."""
    scores = record.summary.scores if record.summary else {}
    ua, wa = (scores[k].mean if k in scores else None for k in ("ua", "wa"))
    return ua, wa
