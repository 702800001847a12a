"""Speed of `ser sweep probe`: every layer of an encoder x LOSO x seeds, many probes at
once, against the same probes one after another and a plain scikit-learn baseline.

A synthetic store of IEMOCAP's shape (`bench_train.synthetic_manifest`: 5531 labelled
utterances, the 4-class set's per-session counts; nothing of IEMOCAP itself) holds
`--layers` pooled layer sets (`<stem>.L<n>.mean`, `--dim` wide, fp16, as `ser extract
--layers all --pool mean` writes them) of random features: a speaker offset plus unit
noise, and a class signal in a 32-d subspace whose strength peaks at `--peak` (a
Gaussian bump over the layers, `--signal` at its top; layers far from it carry almost
none). Then, each in its own process (imports and start-up included), back to back:

- ``stacked``: ``ser sweep probe --store S --out O --set weighted-sum=no`` (the preset's
  settings, `--fix` passes more; `--weighted-sum` keeps the weighted-sum row), its wall
  time;
- ``sequential``: the same with ``--fix members-at-once=1``: the same probes one after
  another (without dropout the same numbers to float rounding);
- ``logreg``: per layer and LOSO fold a scikit-learn ``StandardScaler`` +
  ``LogisticRegression(max_iter=1000)`` trained on the other four sessions: the cheapest
  thing a researcher would write (one fit per (layer, fold): no seeds to repeat).

It prints one JSON object: each way's wall time, CPU time (user + system, all threads;
on a busy machine wall time is what the other processes leave, CPU time what the work
took), probes and UA per layer (the mean over folds, and over seeds), the load average
before and after each, and the wall-time ratios.

    .venv/bin/python benchmarks/bench_probe.py                       # 13 x 768, 3 seeds
    .venv/bin/python benchmarks/bench_probe.py --only stacked --repeat 3
    .venv/bin/python benchmarks/bench_probe.py --store /tmp/probe.zarr --keep   # reuse it
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_train import add_feature_set, class_index, synthetic_manifest
from checkout import checkout_path

from ser.cache import FeatureStore

ROOT = Path(__file__).resolve().parents[1]
STEM = "synthetic-base"  # the encoder's set stem
WAYS = ("stacked", "sequential", "logreg")


def build_store(path: Path, layers: int, dim: int, peak: float, signal: float) -> None:
    """The synthetic store (module docstring); the same bytes for the same arguments."""
    rng = np.random.default_rng(0)
    manifest = synthetic_manifest(rng)
    store = FeatureStore.create(path, manifest)
    labels = class_index(manifest)
    speakers = np.unique(manifest.column("speaker"), return_inverse=True)[1]
    for layer in range(layers):
        basis = np.linalg.qr(rng.normal(size=(dim, 32)))[0].T  # [32, dim] orthonormal rows
        centres = rng.normal(size=(4, 32)) @ basis * np.sqrt(dim / 32)  # [4, dim]
        strength = signal * np.exp(-(((layer - peak) / 3.0) ** 2))
        offsets = rng.normal(size=(speakers.max() + 1, dim)) * 0.3
        x = centres[labels] * strength + offsets[speakers] + rng.normal(size=(len(labels), dim))
        rows = list(x.astype(np.float16)[:, None, :])  # one pooled row per utterance
        attrs = {"extractor": "speech", "modality": "audio", "level": "utterance", "dim": dim,
                 "dtype": "float16", "model": STEM, "layer": layer, "pool": "mean",
                 "source": "benchmarks/bench_probe.py (random)"}  # fmt: skip
        add_feature_set(store, f"{STEM}.L{layer}.mean", attrs, rows, shard=1000)


def load() -> float:
    return os.getloadavg()[0]


def cpu(who: int) -> float:
    """User + system seconds of this process (RUSAGE_SELF) or its children so far."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ser_sweep(store: Path, out: Path, fixes: list[str], summed: bool) -> dict[str, Any]:
    """`ser sweep probe` in a new process; its wall and CPU time and the UA per layer."""
    cmd = [sys.executable, "-c", "from ser.cli import main; main()", "sweep", "probe",
           "--store", str(store), "--out", str(out), "--json"]  # fmt: skip
    cmd += [] if summed else ["--set", "weighted-sum=no"]
    for fix in fixes:
        cmd += ["--fix", fix]
    env = {
        **os.environ,
        "PYTHONPATH": checkout_path(ROOT),
    }
    before, start, used = load(), time.perf_counter(), cpu(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    cpu_s = cpu(resource.RUSAGE_CHILDREN) - used
    if done.returncode != 0:
        raise SystemExit(f"ser sweep failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    uas, probes = {}, 0
    for run in sorted((out / "cells").glob("*/run.json")):
        record = json.loads(run.read_text())
        uas[layer_of(record["config"]["features"])] = round(float(record["summary"]["ua"]), 2)
        probes += len(record["folds"])
    ua = dict(sorted(uas.items(), key=lambda kv: str(kv[0]).zfill(3)))
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu_s, 1), "probes": probes,
            "cells": summary["cells"], "load_before": before, "load_after": load(),
            "ua": ua}  # fmt: skip


def layer_of(name: str) -> int | str:
    """`synthetic-base.L7.mean` -> 7; a weighted sum's `synthetic-base.L0-12.mean` -> "sum"."""
    layers = name.split(".L")[1].split(".")[0]
    return int(layers) if layers.isdigit() else "sum"


def logreg(store_path: Path) -> dict[str, Any]:
    """Per layer and LOSO fold: z-scores and logistic regression on the other sessions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    before, start, used = load(), time.perf_counter(), cpu(resource.RUSAGE_SELF)
    store = FeatureStore.open(store_path)
    labels = class_index(store.manifest)
    sessions = np.asarray(store.manifest.column("session")).astype(int)
    uas, fits = {}, 0
    for name in sorted(store.feature_sets(), key=lambda n: int(layer_of(n))):
        x = np.asarray(store.read(name).data, dtype=np.float32)
        scores = []
        for session in np.unique(sessions):
            train, test = sessions != session, sessions == session
            scaler = StandardScaler().fit(x[train])
            model = LogisticRegression(max_iter=1000).fit(scaler.transform(x[train]), labels[train])
            predicted = model.predict(scaler.transform(x[test]))
            scores.append(100 * balanced_accuracy_score(labels[test], predicted))
            fits += 1
        uas[layer_of(name)] = round(float(np.mean(scores)), 2)
    wall, cpu_s = time.perf_counter() - start, cpu(resource.RUSAGE_SELF) - used
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu_s, 1), "probes": fits,
            "load_before": before, "load_after": load(), "ua": uas}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--peak", type=float, default=8.0, help="layer of the strongest signal")
    parser.add_argument("--signal", type=float, default=0.08, help="class signal at the peak")
    parser.add_argument("--store", type=Path, help="build (or reuse) the store here")
    parser.add_argument("--keep", action="store_true", help="keep the sweep folders")
    parser.add_argument("--only", default=",".join(WAYS), help="ways to time: " + ",".join(WAYS))
    parser.add_argument("--repeat", type=int, default=1, help="time each way this many times")
    parser.add_argument("--fix", action="append", default=[], help="more --fix for ser sweep")
    parser.add_argument("--weighted-sum", action="store_true", help="keep the weighted-sum row")
    args = parser.parse_args()
    ways = [w.strip() for w in args.only.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench_probe_"))
    store = args.store or tmp / "probe.zarr"
    start = time.perf_counter()
    if not store.exists():
        build_store(store, args.layers, args.dim, args.peak, args.signal)
    print(f"store {store}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    runs: dict[str, list[dict[str, Any]]] = {w: [] for w in ways}
    for n in range(args.repeat):
        for way in ways:
            out = tmp / f"{way}{n}"
            if way == "logreg":
                runs[way].append(logreg(store))
            else:
                extra = ["members-at-once=1"] if way == "sequential" else []
                runs[way].append(ser_sweep(store, out, [*args.fix, *extra], args.weighted_sum))
            print(f"{way}: {runs[way][-1]['wall_s']} s", file=sys.stderr)
    walls = {w: [r["wall_s"] for r in rs] for w, rs in runs.items()}
    cpus = {w: [r["cpu_s"] for r in rs] for w, rs in runs.items()}
    ratios = {
        f"{w}/stacked": round(float(np.median(walls[w]) / np.median(walls["stacked"])), 2)
        for w in ways
        if w != "stacked" and "stacked" in walls
    }
    print(json.dumps({"cores": len(os.sched_getaffinity(0)), "fix": args.fix, "walls": walls,
                      "cpu": cpus, "ratios": ratios, "runs": runs}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
