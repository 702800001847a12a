"""`ser sweep` on the CPU: a cell on a dask worker against the same cell in a plain
process, and runs per hour of the ways to share the machine, side by side.

The store is `bench_train.fusion_store` (IEMOCAP's shape, the fusion study's 100-d audio
and 768-d text vectors per utterance, random features with some class signal); the cell
is the fusion study's reference row (LGF ADD + perspective loss, sessions 1-4 train,
session 5 test, `--val none`).

``worker``: the cell with one thread, its training seconds (`record["timings"]["folds"]`,
the data's loading and the process's start left out) in each way, the ways alternated
within every repeat so that the machine's other work falls on all of them alike:

- ``process``: `ser train --threads 1` in a new process (the plain process);
- ``dask-defaults``: one dask worker as `ser sweep --workers` made them by default
  (distributed's defaults: `MALLOC_TRIM_THRESHOLD_=65536` set in the worker's
  environment before it starts, the statistical profiler every 10 ms);
- ``dask-trim``: the defaults less the malloc setting (glibc then keeps its own);
- ``dask-profile``: the defaults less the profiler;
- ``dask``: `ser.runtime.cluster.dask_client` as it is now.

``throughput``: `--cells` cells x `--seeds` seeds (the reference row and EF ADD, both
losses) as `ser sweep` in a new process, wall time to wall time, runs per hour: ``1x2``
(`--threads 2`: one process of 2 threads, the former default on 2 cores),
``default`` (no option: `ser.runtime.execution.for_sweep`'s choice) and
``workers2x1-defaults`` (`--workers 2 --threads 1` with distributed's defaults, the
cluster as distributed makes it:
`SER_BENCH_DASK_DEFAULTS=1`, which this script's `sweep` wrapper reads) and ``plain``
(the same cells as `ser train --threads 1` processes, two side by side: what a sweep
should cost); `--sweep-ways` picks them.

``train``: `ser train` of the reference row with `--seeds` seeds, wall time to wall time:
``one`` (`--processes 1`: the members stacked in one process with its default threads,
`ser train`'s CPU path for the dialog family before processes side by side), ``default``
(no option: `ser.runtime.execution.for_training`'s choice, printed) and ``split`` (two
`ser train --threads 1 --processes 1` commands side by side, each half the seeds,
`--seed 0` and `--seed S/2`: what processes side by side do, by hand) and ``two``
(`--processes 2`: processes asked for, any family); `--train-ways` picks them.
`--family` picks the run: ``dialog`` (the reference row), ``unimodal`` (the MLP on the
768-d text vectors, session 5), ``msmser`` and ``late_prob`` (the demo's sizes, d 64,
on `--utterances` utterances of 20-d HuBERT-like frames and MPNet-like tokens, session
5): whether processes pay for a family.

    .venv/bin/python benchmarks/bench_sweep.py worker --epochs 30 --repeats 3
    .venv/bin/python benchmarks/bench_sweep.py throughput --epochs 30 --seeds 2
    .venv/bin/python benchmarks/bench_sweep.py train --epochs 150 --seeds 20 --repeats 1
    .venv/bin/python benchmarks/bench_sweep.py train --family msmser --train-ways one,two

Progress on stderr; one JSON object on stdout. Figures: benchmarks/README.md,
"How should a sweep share the CPU?" and the sections beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import fusion_store, msmser_store
from checkout import checkout_path

ROOT = Path(__file__).resolve().parents[1]
CELL = {"features": "is13+bert", "fusion": "add", "fusion_at": "logits",
        "loss": "perspective", "protocol": "session5", "val": "none", "classes": "4",
        "device": "cpu"}  # fmt: skip
# distributed's own defaults, as a cluster has them unless told.
DEFAULTS: dict[str, Any] = {"distributed.worker.profile.enabled": True}
NO_TRIM: dict[str, Any] = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
NO_PROFILE: dict[str, Any] = {"distributed.worker.profile.enabled": False}
WAYS = ("process", "dask-defaults", "dask-trim", "dask-profile", "dask")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cli_args(options: dict[str, Any]) -> list[str]:
    return [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def env() -> dict[str, str]:
    out = {
        **os.environ,
        "PYTHONPATH": checkout_path(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for key in ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_"):
        out.pop(key, None)  # the defaults under test decide
    return out


def fold_seconds(run_dir: Path) -> float:
    record = json.loads((run_dir / "run.json").read_text())
    return float(record["timings"]["folds"])


def in_process(store: Path, out: Path, epochs: int) -> float:
    options = {**CELL, "store": store, "epochs": epochs, "seeds": 1, "threads": 1}
    command = [sys.executable, "-m", "ser.cli", "train", *cli_args(options),
               "--out", str(out), "--name", "cell", "--overwrite", "--json"]  # fmt: skip
    done = subprocess.run(command, env=env(), capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return fold_seconds(out / "cell")


def distributed_defaults(less: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """`dask_client`'s clusters with distributed's defaults (a cluster as distributed makes it),
    less the `less` settings, while the block runs."""
    import ser.runtime.cluster as module

    return mock.patch.multiple(module, WORKER_CONFIG={**DEFAULTS, **less}, WORKER_ENV={})


@contextlib.contextmanager
def cluster(way: str) -> Iterator[Any]:
    """One single-threaded worker: `dask_client`'s, or distributed's defaults less what
    `way` names."""
    from ser.runtime.cluster import dask_client

    less = {"dask-trim": NO_TRIM, "dask-profile": NO_PROFILE}.get(way, {})
    settings = contextlib.nullcontext() if way == "dask" else distributed_defaults(less)
    with settings, dask_client(workers=1, gpus=0) as client:
        yield client


def on_worker(store: Path, out: Path, epochs: int, way: str) -> float:
    from ser.sweep.runner import run_task
    from ser.train.option_table import train_config

    options = {**CELL, "store": str(store), "epochs": epochs, "seeds": 1, "threads": 1}
    config = train_config({**options, "out": str(out), "name": "cell", "overwrite": True})
    with cluster(way) as client:
        [outcome] = client.submit(run_task, [config], str(out), pure=False).result()
    if outcome.status != "done":
        raise SystemExit(f"{way}: {outcome.status} {outcome.message}")
    return fold_seconds(out / "cell")


def bench_worker(args: argparse.Namespace, tmp: Path, store: Path) -> dict[str, Any]:
    ways = args.ways.split(",")
    seconds: dict[str, list[float]] = {w: [] for w in ways}
    for repeat in range(args.repeats):
        order = ways if repeat % 2 == 0 else ways[::-1]  # no way always first or last
        for way in order:
            out = tmp / f"{way}-{repeat}"
            if way == "process":
                s = in_process(store, out, args.epochs)
            else:
                s = on_worker(store, out, args.epochs, way)
            seconds[way].append(round(s, 2))
            say(f"repeat {repeat}: {way} {s:.1f} s ({os.getloadavg()[0]:.1f} load)")
    base = statistics.median(seconds["process"]) if "process" in seconds else None
    result: dict[str, Any] = {"epochs": args.epochs, "seconds": seconds}
    if base:
        result["median_over_process"] = {
            w: round(statistics.median(s) / base, 3) for w, s in seconds.items()
        }
    return result


def bench_throughput(args: argparse.Namespace, tmp: Path, store: Path) -> dict[str, Any]:
    fixes = {"epochs": args.epochs, "seeds": args.seeds}
    spec = tmp / "cells.toml"
    rows = [("LGF", "logits"), ("EF", "early")][: max(1, (args.cells + 1) // 2)]
    cells = "".join(
        f'[[cells]]\nlabel = "{label} {loss}"\nfusion = "add"\nfusion-at = "{at}"\n'
        f'loss = "{loss}"\n'
        for label, at in rows
        for loss in ("perspective", "single")
    )
    spec.write_text(
        'name = "bench"\n[fixed]\nfeatures = "is13+bert"\nprotocol = "session5"\n'
        'val = "none"\nclasses = "4"\ndevice = "cpu"\n'
        + "".join(f"{k} = {v}\n" for k, v in fixes.items())
        + cells
    )
    n_cells = len(rows) * 2
    ways = {
        "1x2": ["--threads", "2"],  # one process, 2 threads: the former default
        "default": [],
        "workers2x1-defaults": ["--workers", "2", "--threads", "1"],
        "plain": [],  # the same cells as `ser train --threads 1` processes, 2 side by side
    }
    ways = {w: o for w, o in ways.items() if w in args.sweep_ways.split(",")}
    plain = [
        {"store": store, "features": "is13+bert", "protocol": "session5", "val": "none",
         "classes": "4", "device": "cpu", **fixes, "fusion": "add", "fusion_at": at,
         "loss": loss, "threads": 1}
        for _, at in rows for loss in ("perspective", "single")
    ]  # fmt: skip
    walls: dict[str, list[float]] = {w: [] for w in ways}
    for repeat in range(args.repeats):
        order = list(ways) if repeat % 2 == 0 else list(ways)[::-1]
        for way in order:
            if way == "plain":
                wall = side_by_side(plain, tmp / f"plain-{repeat}", 2)
                walls[way].append(round(wall, 1))
                say(f"repeat {repeat}: plain processes {wall:.1f} s")
                continue
            out = tmp / f"sweep-{way}-{repeat}"
            command = [sys.executable, str(Path(__file__).resolve()), "sweep", str(spec),
                       "--store", str(store), "--out", str(out), *ways[way]]  # fmt: skip
            extra = {"SER_BENCH_DASK_DEFAULTS": "1"} if way.endswith("defaults") else {}
            start = time.perf_counter()
            done = subprocess.run(
                command, env={**env(), **extra}, capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - start
            if done.returncode:
                raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            walls[way].append(round(wall, 1))
            say(f"repeat {repeat}: sweep {way} {wall:.1f} s ({os.getloadavg()[0]:.1f} load)")
            if repeat == 0:
                chose = [line for line in done.stderr.splitlines() if "thread" in line][:2]
                say("  " + "\n  ".join(chose))
    runs = n_cells * args.seeds
    per_hour = {w: round(3600 * runs / statistics.median(s), 1) for w, s in walls.items()}
    return {
        "cells": n_cells,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "wall": walls,
        "runs_per_hour": per_hour,
    }


def side_by_side(cells: list[dict[str, Any]], out: Path, at_once: int) -> float:
    """Wall seconds of `ser train` over `cells`, `at_once` processes at a time, each next
    cell started as one ends."""
    commands = [
        [sys.executable, "-m", "ser.cli", "train", *cli_args(options), "--out", str(out),
         "--name", f"cell{i}", "--overwrite"]
        for i, options in enumerate(cells)
    ]  # fmt: skip

    def run(command: list[str]) -> None:
        done = subprocess.run(command, env=env(), capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"ser train failed:\n{done.stderr[-3000:]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(run, commands))
    return time.perf_counter() - start


def family_run(args: argparse.Namespace, tmp: Path, store: Path) -> dict[str, Any]:
    """`ser train`'s options of `--family`'s run (its store made if need be)."""
    if args.family == "dialog":
        return {**CELL, "store": store}
    if args.family == "unimodal":
        return {"store": store, "features": "bert", "fusion": "none", "protocol": "session5",
                "val": "none", "classes": "4", "device": "cpu"}  # fmt: skip
    frames = tmp / f"frames-{args.utterances}.h5"
    if not frames.exists():
        msmser_store(frames, args.utterances, np.random.default_rng(0), dim=20)
    fusion = {"msmser": {"fusion": "mit", "d_model": 64, "heads": 4, "queries": 8},
              "late_prob": {"fusion": "late-prob"}}[args.family]  # fmt: skip
    return {"store": frames, "features": "hubert.L12+mpnet", **fusion, "protocol": "session5",
            "val": "none", "classes": "4", "device": "cpu"}  # fmt: skip


def bench_train(args: argparse.Namespace, tmp: Path, store: Path) -> dict[str, Any]:
    half = args.seeds // 2
    base = {**family_run(args, tmp, store), "epochs": args.epochs}
    ways = {
        "one": [{**base, "seed": 0, "seeds": args.seeds, "processes": 1}],
        "default": [{**base, "seed": 0, "seeds": args.seeds}],
        "two": [{**base, "seed": 0, "seeds": args.seeds, "processes": 2}],
        "split": [
            {**base, "seed": s, "seeds": half, "threads": 1, "processes": 1} for s in (0, half)
        ],
    }
    order = args.train_ways.split(",")
    walls: dict[str, list[float]] = {way: [] for way in order}
    for repeat in range(args.repeats):
        for way in order if repeat % 2 == 0 else order[::-1]:
            out = str(tmp / f"train-{way}-{repeat}")
            commands = [
                [sys.executable, "-m", "ser.cli", "train", *cli_args(options), "--out", out,
                 "--name", f"part{i}", "--overwrite"]
                for i, options in enumerate(ways[way])
            ]  # fmt: skip
            start = time.perf_counter()
            procs = [
                subprocess.Popen(c, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for c in commands
            ]
            errs = [p.communicate()[1].decode() for p in procs]
            if any(p.returncode for p in procs):
                raise SystemExit(f"ser train ({way}) failed:\n{errs[0][-3000:]}")
            wall = time.perf_counter() - start
            walls[way].append(round(wall, 1))
            say(f"repeat {repeat}: train {way} {wall:.1f} s ({os.getloadavg()[0]:.1f} load)")
            if repeat == 0:
                say("  " + "\n  ".join(line for line in errs[0].splitlines() if "thread" in line))
    runs = args.seeds
    per_hour = {w: round(3600 * runs / statistics.median(s), 1) for w, s in walls.items()}
    return {"family": args.family, "seeds": args.seeds, "epochs": args.epochs, "wall": walls,
            "runs_per_hour": per_hour}  # fmt: skip


def sweep_main(argv: list[str]) -> None:
    """`ser sweep ARGV`; with SER_BENCH_DASK_DEFAULTS=1 its cluster has distributed's
    defaults (a cluster as distributed makes it)."""
    from ser.runtime.threads import brief_waits

    brief_waits()
    defaults = os.environ.get("SER_BENCH_DASK_DEFAULTS")
    from ser.cli import main

    with distributed_defaults({}) if defaults else contextlib.nullcontext():
        main(["sweep", *argv], standalone_mode=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "sweep":
        sweep_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=("worker", "throughput", "train"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--ways", default=",".join(WAYS), help="worker: which ways")
    parser.add_argument("--train-ways", default="one,default", help="train: one,default,two,split")
    parser.add_argument(
        "--sweep-ways", default="1x2,default,workers2x1-defaults,plain",
        help="throughput: which ways",
    )  # fmt: skip
    parser.add_argument(
        "--family", default="dialog", choices=("dialog", "unimodal", "msmser", "late_prob")
    )
    parser.add_argument("--utterances", type=int, default=1000, help="train: msmser, late_prob")
    parser.add_argument("--workdir", type=Path, help="keep the store here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.workdir or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        store = tmp / "fusion.h5"
        if not store.exists():
            fusion_store(store, np.random.default_rng(0))
        parts = {"worker": bench_worker, "throughput": bench_throughput, "train": bench_train}
        part = parts[args.part]
        result = {"part": args.part, "load_before": os.getloadavg()[0]}
        result.update(part(args, tmp, store))
        result["load_after"] = os.getloadavg()[0]
        print(json.dumps(result))


if __name__ == "__main__":
    main()
