"""Which way of running a run's (seed, fold) members is fastest on this CPU, at the shapes
users train: the ways `ser.runtime.execution` chooses between, side by side, wall time to
wall time of one `ser train` command each.

- ``one``: one process with the default threads, members one after another
  (`--processes 1 --members-at-once 1`);
- ``stacked``: one process, every member stacked in one model (`--processes 1
  --members-at-once M`);
- ``processes``: one-thread processes side by side, each taking the next member when it
  is free (`--processes P --members-at-once 1`);
- ``pieces``: one-thread processes side by side, each training its share of the members
  stacked (`--processes P --members-at-once M`);
- ``default``: no option, the policy's choice (printed).

Runs (`--run`): ``fusion`` the fusion study's reference row (LGF ADD + perspective loss,
sessions 1-4 train, session 5 tests, `--val none`) on an IEMOCAP-shaped store of
`--audio-dim`-d audio vectors (6373: IS13's functionals; 100: the published code's) and
768-d text vectors; ``unimodal`` the MLP on the audio vectors alone; ``msmser`` MSMSER at
the demo's sizes on `--utterances` utterances of frames and tokens. `--code DIR` runs
another checkout's `ser` (the same options, its own default), for before/after figures.

    .venv/bin/python benchmarks/bench_execution.py --run fusion --seeds 3,5,20 --epochs 30
    .venv/bin/python benchmarks/bench_execution.py --run unimodal --seeds 3,20 --epochs 30

Progress on stderr; a JSON object per (seeds, way) on stdout. Figures: benchmarks/README.md,
"How should a run's members share the CPU?".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import fusion_store, msmser_store
from checkout import checkout_path

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("one", "stacked", "processes", "pieces", "default")
FUSION = {"features": "is13+bert", "fusion": "add", "fusion_at": "logits",
          "loss": "perspective"}  # fmt: skip
SESSION5 = {"protocol": "session5", "val": "none", "classes": "4", "device": "cpu"}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def way_options(way: str, members: int, processes: int) -> dict[str, Any]:
    return {
        "one": {"processes": 1, "members_at_once": 1},
        "stacked": {"processes": 1, "members_at_once": members},
        "processes": {"processes": processes, "members_at_once": 1},
        "pieces": {"processes": processes, "members_at_once": members},
        "default": {},
    }[way]


def run_options(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if args.run in ("fusion", "unimodal"):
        store = work / f"fusion{args.audio_dim}.h5"
        if not store.exists():
            fusion_store(store, np.random.default_rng(0), audio_dim=args.audio_dim)
        model = FUSION if args.run == "fusion" else {"features": "is13", "fusion": "none"}
        return {"store": store, **model, **SESSION5}
    store = work / f"frames{args.utterances}.h5"
    if not store.exists():
        msmser_store(store, args.utterances, np.random.default_rng(0), dim=20)
    return {"store": store, "features": "hubert.L12+mpnet", "fusion": "mit", "d_model": 64,
            "heads": 4, "queries": 8, **SESSION5}  # fmt: skip


def train(code: Path, options: dict[str, Any], out: Path) -> tuple[float, str, dict[str, Any]]:
    """Wall seconds of one `ser train`, its execution line, and its record."""
    flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    command = [sys.executable, "-m", "ser.cli", "train", *flags, "--out", str(out),
               "--name", "run", "--overwrite"]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": checkout_path(code),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("OMP_NUM_THREADS", None)  # the defaults under test decide
    start = time.perf_counter()
    # In the checkout: `python -m` puts the working folder first on the path.
    done = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    chose = next((ln for ln in done.stderr.splitlines() if "process" in ln), "")
    return wall, chose, json.loads((out / "run" / "run.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", choices=("fusion", "unimodal", "msmser"), default="fusion")
    parser.add_argument("--seeds", default="3,5,20", help="comma-separated seed counts")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--audio-dim", type=int, default=6373)
    parser.add_argument("--utterances", type=int, default=1000, help="msmser")
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--processes", type=int, default=2, help="the ways with processes")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose ser runs")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        base = {**run_options(args, work), "epochs": args.epochs}
        for seeds in (int(s) for s in args.seeds.split(",")):
            for way in args.ways.split(","):
                options = {**base, "seeds": seeds, **way_options(way, seeds, args.processes)}
                wall, chose, record = train(args.code, options, work / f"{way}-{seeds}")
                uas = [float(e["metrics"]["ua"]) for e in record["folds"]]  # percent
                row = {"run": args.run, "audio_dim": args.audio_dim, "epochs": args.epochs,
                       "seeds": seeds, "way": way, "wall": round(wall, 1),
                       "runs_per_hour": round(3600 * seeds / wall, 1),
                       "ua": round(float(np.mean(uas)), 2), "ua_std": round(float(np.std(uas)), 2),
                       "load": round(os.getloadavg()[0], 2)}  # fmt: skip
                say(f"{args.run} {seeds} seeds {way}: {wall:.1f} s  {chose.strip()[:150]}")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
