"""What attribute targets cost, and what the multi-task run's attribute weight should be.

``cost``: the same model trained on the category, on the three attributes and on both
(`--target emotion`, `attributes`, `emotion+attributes`), side by side in one run, on a
store of IEMOCAP's shape (`bench_train.synthetic_manifest`: 5531 labelled utterances of
the 4-class set in 5 sessions, IEMOCAP-like durations; random features with class signal,
attributes that follow the class plus noise). Two models users train on such a store:
the unimodal MLP on IS13's 6373-d functionals and the fusion study's dialog model (LGF
ADD at the logits, perspective loss) on IS13 + 768-d BERT vectors, 3 seeds stacked,
session 5 tested. Each configuration runs in its own process, so that its peak resident
memory is its own: seconds of a steady epoch (every member; the median after the first)
and the peak RSS, and their ratios to the categorical run.

``weight``: `--target emotion+attributes` on a given store (the demo's) for each
`--weights` value, 3 seeds, session 5 tested: UA and the mean CCC beside the category
alone and the attributes alone, to choose `--attribute-weight`'s default.

    .venv/bin/python benchmarks/bench_attributes.py cost
    .venv/bin/python benchmarks/bench_attributes.py weight --store demo/features.zarr \
        --features is13 --weights 0.25,0.5,1,2,4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from bench_train import (
    Clock,
    add_feature_set,
    attrs_of,
    class_index,
    signal_rows,
    synthetic_manifest,
)

from ser.cache import FeatureStore
from ser.cache.manifest import Manifest
from ser.models import ModelConfig
from ser.train.recipe import TrainConfig, train

TARGETS = ("emotion", "attributes", "emotion+attributes")
# Each 4-class code's (arousal, valence, dominance), IEMOCAP's 1-5 scale.
MEANS = {"neu": (2.7, 3.0, 2.8), "hap": (3.4, 3.9, 3.1), "exc": (3.8, 4.0, 3.4),
         "sad": (2.3, 2.1, 2.4), "ang": (3.9, 1.9, 3.8)}  # fmt: skip
MODELS: dict[str, dict[str, Any]] = {
    "unimodal is13": {"features": ("is13",), "model": ModelConfig(fusion="none")},
    "dialog is13+bert": {
        "features": ("is13", "bert"),
        "model": ModelConfig(fusion="add", fusion_at="logits", loss="perspective"),
    },
}


def iemocap_store(path: Path, seed: int = 0) -> FeatureStore:
    """IEMOCAP's shape with IS13 (6373-d) and BERT (768-d) vectors and attributes."""
    rng = np.random.default_rng(seed)
    manifest = synthetic_manifest(rng)
    labels = class_index(manifest)
    codes = [str(c) for c in manifest.column("label")]
    values = np.array([MEANS[c] for c in codes]) + rng.normal(0, 0.5, size=(len(codes), 3))
    columns = manifest.columns()
    for i, name in enumerate(("arousal", "valence", "dominance")):
        columns[name] = np.clip(values[:, i], 1, 5)
    store = FeatureStore.create(path, Manifest.from_columns(columns))
    ones = np.ones(len(codes), dtype=np.int64)
    for name, dim, signal, dtype in (
        ("is13", 6373, 0.05, "float32"),
        ("bert", 768, 0.04, "float16"),
    ):
        rows = signal_rows(labels, ones, dim, signal, rng, dtype)
        add_feature_set(store, name, attrs_of(name, "audio" if name == "is13" else "text",
                                              "utterance", dim, dtype), rows)  # fmt: skip
    return store


def one(store: str, out: str, model: str, target: str, epochs: int) -> dict[str, Any]:
    """One configuration in this process: its steady epoch, peak RSS, scores."""
    config = TrainConfig(store=store, out=out, target=target, protocol="session5", classes="4",
                         seeds=3, epochs=epochs, batch_size=32, device="cpu",
                         name=f"{model.split()[0]}_{target}", **MODELS[model])  # fmt: skip
    clock = Clock()
    record = train(config, clock)
    steady = sum(float(np.median(g[1:] or g)) for g in clock.groups if g)
    summary = record.summary or {}
    return {
        "model": model,
        "target": target,
        "steady_epoch_s": round(steady, 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "ua": summary.get("ua"),
        "ccc_mean": summary.get("ccc_mean"),
    }


def peak_rss_mib() -> float:
    """This process's own high-water mark: `ru_maxrss` would count the parent's peak (the
    store it built) in a child's."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def cost(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "iemocap.zarr"
        iemocap_store(store)
        rows = []
        for model in MODELS:
            for target in TARGETS:
                cmd = [sys.executable, __file__, "one", "--store", str(store), "--out", tmp,
                       "--model", model, "--target", target,
                       "--epochs", str(args.epochs)]  # fmt: skip
                done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["target"] == "emotion")
        row["epoch_ratio"] = round(row["steady_epoch_s"] / base["steady_epoch_s"], 3)
        row["rss_ratio"] = round(row["peak_rss_mib"] / base["peak_rss_mib"], 3)
    return {"cost": rows}


def weight(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("emotion", None), ("attributes", None)]
        runs += [("emotion+attributes", float(w)) for w in args.weights.split(",")]
        for target, w in runs:
            sets = tuple(args.features.split("+"))
            config = TrainConfig(store=args.store, out=tmp, features=sets,
                                 model=ModelConfig(fusion="none"), target=target,
                                 attribute_weight=w, protocol="session5", classes="4",
                                 seeds=3, epochs=args.epochs, device="cpu")  # fmt: skip
            summary = train(config, Clock()).summary or {}
            row = {"target": target, "weight": w}
            for key in ("ua", "ua_std", "ccc_mean", "ccc_mean_std"):
                row[key] = None if summary.get(key) is None else round(summary[key], 3)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return {"weight": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["cost", "weight", "one"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--store", help="weight: the store; one: its store")
    parser.add_argument("--features", default="is13", help="weight: the sets (A+B)")
    parser.add_argument("--weights", default="0.25,0.5,1,2,4")
    parser.add_argument("--out", help="one: the runs' folder")
    parser.add_argument("--model", choices=list(MODELS))
    parser.add_argument("--target", choices=TARGETS)
    args = parser.parse_args()
    if args.part == "one":
        print(json.dumps(one(args.store, args.out, args.model, args.target, args.epochs)))
        return
    print(json.dumps(cost(args) if args.part == "cost" else weight(args)))


if __name__ == "__main__":
    main()
