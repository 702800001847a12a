"""`ser sweep`: a paper's table (or a SPEC file) as one command, cells content-addressed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from ser.errors import ConfigError


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {value!r}: expected KEY=VALUE")
        out[key.strip()] = rest.strip()
    return out


@click.command("sweep")
@click.argument("spec", metavar="SPEC")
@click.option("--store", required=True, envvar="SER_STORE", show_envvar=True, help="Feature store.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Sweep folder.")
@click.option(
    "--set",
    "params",
    multiple=True,
    metavar="KEY=SET",
    help="A preset's feature set: audio=hubert-base-ls960.L12, text=mpnet.",
)
@click.option(
    "--fix",
    multiple=True,
    metavar="OPTION=VALUE",
    help="A ser train option for every cell: --fix epochs=20 --fix d-model=64.",
)
@click.option(
    "--grid",
    multiple=True,
    metavar="OPTION=V1,V2",
    help="Sweep an option: every cell once per value (--grid lr=1e-4,5e-4).",
)
@click.option("--dry-run", is_flag=True, help="List the cells and estimates; train nothing.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Local dask cluster of N workers (one GPU each with CUDA).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Join a running dask cluster (store and --out on a shared filesystem).",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="torch threads per task [the CPU budget / workers, see ser/threads.py].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def sweep_command(**o: Any) -> None:
    """Train every cell of SPEC: a preset (msmser-table2, msmser-table3, msmser-queries,
    fusion-study, zhou, all) or a TOML file. Finished cells are skipped, partial ones
    resume; `ser report OUT` renders the tables next to the papers' numbers."""
    from ser.cluster import dask_client
    from ser.sweep.cells import resolve_cells, unique
    from ser.sweep.runner import run_sweep, write_manifest
    from ser.sweep.spec import load_spec

    spec = load_spec(o["spec"], params=_pairs(o["params"], "--set"),
                     fixed=_pairs(o["fix"], "--fix"), grid=_pairs(o["grid"], "--grid"))  # fmt: skip
    cells = resolve_cells(spec.cells, o["store"], o["out"])
    if o["dry_run"]:
        _dry_run(cells, o["store"], o["as_json"])
        return
    write_manifest(spec, cells, o["out"])
    err = Console(stderr=True)
    threads = o["threads"] or _threads_per_task(o["workers"])
    display = _Display(err, len(unique(cells)), live=sys.stderr.isatty() and not o["as_json"])
    with display, dask_client(o["workers"], o["scheduler"]) as client:
        outcomes = run_sweep(cells, o["out"], client, display.update, threads,
                             on_start=display.start)  # fmt: skip
    summary = _summary(spec.name, outcomes, display.started)
    if o["as_json"]:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{_line(summary)}; `ser report {o['out']}` renders the tables")
    if summary["failed"] or summary["busy"]:
        sys.exit(1)


def _threads_per_task(workers: int | None) -> int | None:
    """Each worker's share of this process's CPU budget (`ser.threads`); None in-process:
    each task then chooses as `ser train` does."""
    from ser.threads import cpu_budget, default_threads

    if workers is None:
        return None
    return default_threads(cpu_budget(workers=max(workers, 1))).count


class _Display:
    """A bar on a terminal (done / total, running, failed, ETA); a line per cell else."""

    def __init__(self, console: Console, total: int, live: bool) -> None:
        self.console, self.total, self.live = console, total, live
        self.counts = {"done": 0, "skipped": 0, "failed": 0, "busy": 0}
        self.started = time.perf_counter()
        self.running = 0
        self.bar = RichProgress(
            TextColumn("cells"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TextColumn("eta"), TimeRemainingColumn(),
            console=console, disable=not live,
        )  # fmt: skip
        self.task = self.bar.add_task("cells", total=total, status="")

    def __enter__(self) -> _Display:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, cells: int) -> None:
        self.running += cells
        self._redraw()

    def _redraw(self) -> None:
        failed = self.counts["failed"] + self.counts["busy"]
        status = f"running {self.running}" + (f", failed {failed}" if failed else "")
        self.bar.update(self.task, completed=sum(self.counts.values()), status=status)

    def update(self, outcome: Any, cell: Any) -> None:
        self.counts[outcome.status] += 1
        if outcome.status != "skipped":
            self.running = max(self.running - 1, 0)
        self._redraw()
        finished = sum(self.counts.values())
        ua = "" if outcome.ua is None else f" UA {outcome.ua:.2f}"
        why = f": {outcome.message}" if outcome.status in ("failed", "busy") else ""
        line = (
            f"cell {finished}/{self.total} {outcome.status}: {cell.cell.table} "
            f"'{cell.cell.label}' [{outcome.key}]{ua} ({outcome.seconds:.0f} s){why}"
        )
        if self.live:
            self.bar.console.print(line, highlight=False, markup=False)
        else:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)


def _summary(name: str, outcomes: list[Any], started: float) -> dict[str, Any]:
    counts = {
        s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed", "busy")
    }
    return {
        "sweep": name,
        "cells": len(outcomes),
        **counts,
        "seconds": time.perf_counter() - started,
        "failures": {o.key: o.message for o in outcomes if o.status in ("failed", "busy")},
    }


def _line(s: dict[str, Any]) -> str:
    return (
        f"sweep {s['sweep']}: {s['cells']} cells, {s['done']} trained, {s['skipped']} "
        f"finished before, {s['failed']} failed, {s['busy']} busy ({s['seconds']:.0f} s)"
    )


def _dry_run(cells: list[Any], store: str, as_json: bool) -> None:
    from ser.cache import FeatureStore
    from ser.sweep.estimate import estimate
    from ser.units import human_bytes

    handle = FeatureStore.open(store)
    cache: dict[Any, int] = {}
    rows = [(c, estimate(c, handle, cache)) for c in cells]
    if as_json:
        click.echo(json.dumps([
            {"table": c.cell.table, "cell": c.cell.label, "key": c.key, "members": c.members,
             "parameters": e.parameters, "memory": e.memory, "seconds": e.seconds,
             "config": c.resolved}
            for c, e in rows
        ]))  # fmt: skip
        return
    click.echo(f"{len(cells)} cells, {len({c.key for c in cells})} to train (dry run):")
    for c, e in rows:
        r = c.resolved
        click.echo(
            f"  {c.cell.table}  {c.cell.label}  [{c.key}]  {r['features']} {r['fusion']} "
            f"{r['protocol']} {r['epochs']} epochs x {len(r['seeds'])} seeds = {c.members} "
            f"members; {e.parameters:,} parameters, {human_bytes(e.memory)}, ~{e.seconds:.0f} s"
        )
    total = sum(e.seconds for c, e in {c.key: (c, e) for c, e in rows}.values())
    device = rows[0][1].device if rows else "cpu"
    click.echo(f"estimated total: ~{total / 60:.1f} min on {device} (rough: ser.sweep.estimate)")


COMMANDS: list[click.Command] = [sweep_command]
