"""`ser sweep`: a paper's table (or a SPEC file) as one command, cells content-addressed."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import TextColumn, TimeRemainingColumn

from ser.commands.options import command_line, interrupted
from ser.commands.outputs import output_folder
from ser.errors import ConfigError, SerError
from ser.runtime.progress import clock_time, live_bar, log_console, on_terminal
from ser.runtime.units import human_bytes
from ser.track.progress import Heartbeat, Progress
from ser.track.tracking import TRACKERS, Tracking, check

if TYPE_CHECKING:  # imported where the command runs: `ser --help` stays quick
    from ser.runtime.execution import Execution
    from ser.sweep.cells import ResolvedCell
    from ser.sweep.estimate import SweepEstimate
    from ser.sweep.runner import Outcome


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
@click.option(
    "--store",
    "stores",
    multiple=True,
    required=True,
    envvar="SER_STORE",
    show_envvar=True,
    help="Feature store; again for every cell on another corpus too (--store iemocap.zarr "
    "--store meld.zarr): `ser report` gives a column per corpus (probe: each store's own "
    "layers, a section per corpus).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Sweep folder.")
@click.option(
    "--set",
    "params",
    multiple=True,
    metavar="KEY=SET",
    help="A preset's feature sets: audio=hubert-base-ls960.L12, text=mpnet; probe: "
    "encoders=wavlm-base-plus,hubert-base-ls960 (set stems; default: all stored), "
    "weighted-sum=no (no row of a learnt weighted sum of all layers); finetune: "
    "encoder=STEM (the encoder whose layers the store holds), lora=R (LoRA's rank, 8).",
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
    "--no-probe",
    is_flag=True,
    help="With --dry-run: no timed probe of each family no trained cell calibrates (a few "
    "steps of its first cell's first member, in a temporary folder); the rough estimate.",
)
@click.option(
    "--workers",
    type=int,
    help="Local dask cluster of N workers (one GPU each with CUDA) [on the CPU: chosen from "
    "the cores and the cells' families, see ser/runtime/execution.py].",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Join a running dask cluster (store and --out on a shared filesystem).",
)
@click.option(
    "--threads",
    type=int,
    help="torch threads per task [with --workers: the CPU budget / workers; else chosen "
    "with the workers, see ser/runtime/execution.py].",
)
@click.option(
    "--track",
    type=click.Choice(TRACKERS),
    help="Log every cell it trains as a run, its options as parameters: to TensorBoard "
    "(its folder's tensorboard/) or MLflow (--track-uri); needs pip install 'ser[track]'.",
)
@click.option(
    "--track-uri",
    metavar="URI",
    help="--track mlflow: the tracking server (http://host:5000) or folder [default: OUT/mlruns].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def sweep_command(**o: Any) -> None:  # Any: each option's value, of its own type
    """Train every cell of SPEC: a preset (msmser-table2, msmser-table3, msmser-queries,
    fusion-study, zhou, all; probe: a light probe on every stored layer of each encoder;
    cross-corpus: trained on each --store, tested on each other, and each under its own
    protocol; msp-podcast-challenge: the MSP-Podcast challenge's two tasks on Development;
    mosei-sentiment: CMU-MOSEI's or CMU-MOSI's sentiment score from text, audio and both;
    finetune: how many of an encoder's top layers to fine-tune, k = 0 (frozen), 1, 2, 4,
    whole or with LoRA) or a TOML file, on each --store. Finished cells are skipped,
    partial ones resume; `ser report OUT` renders the tables next to the papers' numbers.
    On a store of another corpus than IEMOCAP a preset's own protocol and class set give
    way to the corpus's (--fix and --grid apply to every store)."""
    from ser.runtime.cluster import dask_client
    from ser.sweep.cells import resolve_cells, tracked
    from ser.sweep.challenge import challenge_table
    from ser.sweep.cross import cross_table
    from ser.sweep.estimate import estimate_sweep
    from ser.sweep.finetune import finetune_table
    from ser.sweep.presets import CHALLENGE, CROSS, FINETUNE, SENTIMENT
    from ser.sweep.runner import run_sweep, write_manifest
    from ser.sweep.sentiment import sentiment_table
    from ser.sweep.spec import load_spec

    # MLflow's default store is the sweep's (<out>/mlruns), not one in its cells' folder.
    tracking = Tracking.of(o["track"], o["track_uri"], o["out"])
    if not o["dry_run"]:  # a dry run writes nothing
        output_folder(o["out"], "--out")
        check(tracking)  # its package, its server: refused once, not by every cell
    stores = list(o["stores"])
    made = cross_table(stores) if o["spec"] == CROSS else None  # rows: pairs of stores
    made = challenge_table(stores) if o["spec"] == CHALLENGE else made  # MSP-Podcast's
    made = sentiment_table(stores) if o["spec"] == SENTIMENT else made  # CMU-MOSEI's / MOSI's
    if o["spec"] == FINETUNE:  # the encoder's layers in the store; a line per k left out
        made, said = finetune_table(stores, _pairs(o["params"], "--set"))
        for line in said:
            click.echo(line, err=True)
    spec = load_spec(
        o["spec"],
        params=_pairs(o["params"], "--set"),
        fixed=_pairs(o["fix"], "--fix"),
        grid=_pairs(o["grid"], "--grid"),
        store=stores,
        made=made,
    )
    cells = tracked(resolve_cells(spec.cells, stores, o["out"]), tracking)
    execution = sweep_execution(cells, o["workers"], o["threads"], o["scheduler"])
    probe = o["dry_run"] and not o["no_probe"]  # a run times itself as it trains
    plan = estimate_sweep(cells, o["out"], execution, probe=probe)
    if o["dry_run"]:
        _dry_run(cells, plan, o["as_json"], execution)
        return
    write_manifest(spec, cells, o["out"])
    err = log_console()
    display = _Display(err, plan, on_terminal(err) and not o["as_json"], several=len(stores) > 1)
    display.say(f"{_counts(cells, plan)}; {_total(plan)}")
    display.say(f"training as {execution.describe()}")
    workers = execution.processes if execution.cluster and not o["scheduler"] else None
    try:
        with display.bar, dask_client(workers, o["scheduler"]) as client:
            outcomes = run_sweep(
                cells,
                o["out"],
                client,
                display.update,
                execution.thread_choice() if execution.threads else None,
                on_start=display.start,
                progress=Heartbeat(display),
                on_wait=display.waiting,
                on_progress=display.told,
            )
    except KeyboardInterrupt:  # as `ser train`'s Ctrl-C: what is kept, and how to resume
        interrupted(interrupted_line(cells, o["out"]))
    statuses = ("done", "skipped", "failed", "busy")
    counts = {s: sum(x.status == s for x in outcomes) for s in statuses}
    seconds = time.perf_counter() - display.started
    failures = {x.key: x.message for x in outcomes if x.status in ("failed", "busy")}
    if o["as_json"]:
        summary = {
            "sweep": spec.name,
            "cells": len(outcomes),
            **counts,
            "seconds": seconds,
            "failures": failures,
        }
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"sweep {spec.name}: {len(outcomes)} cells, {counts['done']} trained, "
            f"{counts['skipped']} finished before, {counts['failed']} failed, {counts['busy']} "
            f"busy ({seconds:.0f} s); `ser report {o['out']}` renders the tables"
        )
    if failures:
        sys.exit(1)


def interrupted_line(cells: list[ResolvedCell], out: Path) -> str:
    """Ctrl-C's one line: the cells finished (kept: a rerun skips them; a cell's finished
    (seed, fold)s are kept too) and the command that resumes."""
    from ser.sweep.cells import record_of, unique

    distinct = unique(cells)
    finished = 0
    for cell in distinct:
        with contextlib.suppress(SerError, OSError):  # a record half read: not finished
            record = record_of(out, cell.key)
            finished += bool(record is not None and record.complete)
    again = command_line(click.get_current_context())
    return (
        f"interrupted: {finished} of {len(distinct)} cells finished, kept in {out} with the "
        f"finished folds of the others; to resume, run the same command again: {again}"
    )


def sweep_execution(
    cells: list[ResolvedCell], workers: int | None, threads: int | None, scheduler: str | None
) -> Execution:
    """How the sweep trains on this machine (`ser.runtime.execution.for_sweep`)."""
    from ser.models import family_of
    from ser.models.registry import costs
    from ser.runtime.execution import for_sweep
    from ser.runtime.threads import cpu_budget
    from ser.sweep.cells import unique
    from ser.train.plan import device_of

    distinct = unique(cells)
    return for_sweep(
        cpu_budget(),
        families=costs(family_of(c.settings.model).name for c in distinct),
        cells=len(distinct),
        cuda=any(device_of(c.settings).type == "cuda" for c in distinct),
        workers=workers,
        threads=threads,
        scheduler=scheduler,
    )


class _Display(Progress):
    """A bar on a terminal (done / total, running, failed, ETA); a line per cell else.
    Either way a line when a task starts, and heartbeat lines while one trains (an
    in-process task's other notes are its run record's business)."""

    def __init__(
        self, console: Console, plan: SweepEstimate, live: bool, several: bool = False
    ) -> None:
        self.console = console
        self.several = several  # stores: each cell named with its corpus
        self.plan = {c.cell.key: c for c in plan.cells}
        self.total = len(plan.cells)
        self.counts = {"done": 0, "skipped": 0, "failed": 0, "busy": 0}
        self.started = time.perf_counter()
        self.running = 0
        columns = (TextColumn("{task.fields[status]}"), TextColumn("eta"), TimeRemainingColumn())
        self.bar = live_bar(console, live, "cells", *columns)
        self.task = self.bar.add_task("cells", total=self.total, status="")

    def say(self, line: str) -> None:
        """A plain line (above the bar on a terminal)."""
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def start(self, cells: list[ResolvedCell]) -> None:
        """A task of `cells` (trained as one stacked model) starts, or is queued."""
        self.running += len(cells)
        self._redraw()
        planned = [self.plan[c.key] for c in cells if c.key in self.plan]
        # Members a cell tested from another's training (`CellPlan.shared`) trains no more.
        members = sum(p.cell.members for p in planned if not p.shared)
        seconds = sum(p.seconds for p in planned)
        names = ", ".join(_name(c, self.several) for c in cells[:3])
        if len(cells) > 1:
            more = f" and {len(cells) - 3} more" if len(cells) > 3 else ""
            names = f"{len(cells)} cells as one stacked model: {names}{more}"
        count = f"{members} member{'s' * (members != 1)}"
        self.say(f"training {names} ({count}); {_duration(seconds)} estimated")

    def heartbeat(self, text: str) -> None:
        self.say(f"  {text}")

    def told(self, cells: list[ResolvedCell], text: str) -> None:
        """A line a worker published about the task of `cells` (epoch, seed, ETA)."""
        names = ", ".join(_name(c, self.several) for c in cells[:2])
        more = f" and {len(cells) - 2} more" if len(cells) > 2 else ""
        self.say(f"  {names}{more}: {text}")

    def waiting(self) -> None:
        """Tasks run on a cluster and none finished for a while."""
        finished = sum(self.counts.values())
        elapsed = clock_time(time.perf_counter() - self.started)
        self.say(
            f"{self.running} cell(s) training on the cluster, {finished}/{self.total} "
            f"finished, elapsed {elapsed}"
        )

    def _redraw(self) -> None:
        failed = self.counts["failed"] + self.counts["busy"]
        status = f"running {self.running}" + (f", failed {failed}" if failed else "")
        self.bar.update(self.task, completed=sum(self.counts.values()), status=status)

    def update(self, outcome: Outcome, cell: ResolvedCell) -> None:
        self.counts[outcome.status] += 1
        if outcome.status != "skipped":
            self.running = max(self.running - 1, 0)
        self._redraw()
        finished = sum(self.counts.values())
        scores = "" if outcome.ua is None else f" UA {outcome.ua:.2f}"
        scores += "" if outcome.wa is None else f" WA {outcome.wa:.2f}"
        n = outcome.shared  # its seconds are its share of a task of n cells
        share = f": 1/{n} of {n} cells trained as one model" if n > 1 else ""
        why = f": {outcome.message}" if outcome.status in ("failed", "busy") else ""
        self.say(
            f"cell {finished}/{self.total} {outcome.status}: {_name(cell, self.several)} "
            f"[{outcome.key}]{scores} ({outcome.seconds:.0f} s{share}){why}"
        )


def _name(c: ResolvedCell, several: bool) -> str:
    """A cell as lines name it: "msmser-table2 'Full'", with " on MELD" for several stores."""
    return f"{c.cell.table} '{c.cell.label}'" + (f" on {c.store.title}" if several else "")


def _duration(seconds: float) -> str:
    """ "~40 s", "~12 min", "~3.5 h"."""
    if seconds < 90:
        return f"~{seconds:.0f} s"
    return f"~{seconds / 60:.0f} min" if seconds < 90 * 60 else f"~{seconds / 3600:.1f} h"


def _counts(cells: list[ResolvedCell], plan: SweepEstimate) -> str:
    """e.g. "26 cells: 13 finished, 13 to train (2 partly trained)", "6 cells: 0 finished,
    6 to train (4 tested from another cell's training)"."""
    distinct = f" ({len(plan.cells)} distinct)" if len(plan.cells) != len(cells) else ""
    todo = plan.to_train
    partly = sum(1 for c in todo if c.trained)
    shared = sum(1 for c in todo if c.shared)
    part = f" ({partly} partly trained)" if partly else ""
    part += f" ({shared} tested from another cell's training)" if shared else ""
    finished = len(plan.cells) - len(todo)
    return f"{len(cells)} cells{distinct}: {finished} finished, {len(todo)} to train{part}"


def _total(plan: SweepEstimate) -> str:
    return f"{_duration(plan.seconds)} estimated on {plan.device()} ({plan.note()})"


def _dry_run(
    cells: list[ResolvedCell], plan: SweepEstimate, as_json: bool, execution: Execution
) -> None:
    by_key = {c.cell.key: c for c in plan.cells}
    several = len({c.store.path for c in cells}) > 1
    if as_json:
        rows = [
            {
                "table": c.cell.table,
                "cell": c.cell.label,
                "key": c.key,
                "members": c.members,
                "parameters": p.estimate.parameters,
                "memory": p.estimate.memory,
                "seconds": p.seconds,
                "finished": p.finished,
                "trained": p.trained,
                "config": c.resolved,
                **({"corpus": c.store.corpus, "store": c.store.path} if several else {}),
            }
            for c in cells
            for p in [by_key[c.key]]
        ]
        click.echo(json.dumps(rows))
        return
    click.echo(f"{_counts(cells, plan)} (dry run):")
    for c in cells:
        p, r = by_key[c.key], c.resolved
        left = "finished" if p.finished else _duration(p.seconds)
        if p.trained and not p.finished:
            left += f" for {c.members - p.trained} of {c.members} members left"
        on = f"  on {c.store.title} (classes {r['classes']})" if several else ""
        click.echo(
            f"  {c.cell.table}  {c.cell.label}{on}  [{c.key}]  {r['features']} {r['fusion']} "
            f"{r['protocol']} {r['epochs']} epochs x {len(r['seeds'])} seeds = {c.members} "
            f"members; {p.estimate.parameters:,} parameters, "
            f"{human_bytes(p.estimate.memory)}, {left}"
        )
    for line in plan.probed.values():  # what each family's probe measured, or why not
        click.echo(f"probe: {line}")
    click.echo(f"estimated total for the cells to train: {_total(plan)}")
    click.echo(f"would train as {execution.describe()}")


COMMANDS: list[click.Command] = [sweep_command]
