"""How long `ser sweep cross-corpus` takes over three corpora, against its own estimate.

Three synthetic stores of different corpus kinds (nothing of any corpus itself), each
holding one pooled 768-d layer set (`synthetic-base.L12.mean`, fp16, one row an
utterance, as `ser extract --layers 12 --pool mean --pooled-only` writes it, the same
provenance in all three so the cross cells may read it):

- IEMOCAP's shape (`bench_train.synthetic_manifest`: 5531 labelled utterances, the
  4-class set's per-session counts, 10 speakers, excited among them);
- a CREMA-D kind store of `--utterances` clips of 6 emotions over 60 actors;
- a MELD kind store of `--utterances` turns of its 7 emotions (neutral about half, as
  MELD's), with sentiment codes (`hap.pos`), dialogs and train/dev/test splits.

Features: each EMOTION's centre in a 32-d subspace (the same for every corpus, so the
emotions transfer) times `--signal`, plus a per-corpus offset (a domain shift of
`--shift`), a per-speaker offset and unit noise.

It first asks the sweep for its estimate (`ser.sweep.estimate.estimate_sweep` under the
execution `ser sweep` would choose: the figure it prints before it trains; uncalibrated,
no cell has trained in the folder), then runs ``ser sweep cross-corpus --store A --store
B --store C --set audio=synthetic-base.L12.mean --fix epochs=10 --fix seeds=2`` in a new
process (imports and start-up included), timed. One JSON object: the estimate and the
wall time side by side (their ratio), each cell's estimated and measured seconds (its
record's fold seconds plus its load) and UA, the calibration a sweep resumed in the
folder would apply (measured over estimated seconds), CPU time, and the load average
before and after (the machine may be shared: other processes slow the wall time, not the
estimate).

    .venv/bin/python benchmarks/bench_cross_corpus.py                  # 5531 + 2 x 3000
    .venv/bin/python benchmarks/bench_cross_corpus.py --utterances 600 --fix epochs=3
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
from bench_train import add_feature_set, synthetic_manifest
from checkout import checkout_path

from ser.cache import FeatureStore
from ser.cache.manifest import Manifest
from ser.corpus.emotions import EMOTIONS, emotion
from ser.corpus.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]
SET = "synthetic-base.L12.mean"
MELD_SHARE = {"neu": 0.47, "hap": 0.17, "sur": 0.12, "ang": 0.11, "sad": 0.07,
              "fea": 0.03, "dis": 0.03}  # fmt: skip
SENTIMENT = {"neu": "neu", "hap": "pos", "sur": "pos", "ang": "neg", "sad": "neg",
             "fea": "neg", "dis": "neg"}  # fmt: skip


def acted_manifest(n: int, rng: np.random.Generator) -> Manifest:
    """`n` CREMA-D-like clips: 6 emotions, 60 actors, one utterance a dialog."""
    codes = rng.choice(["neu", "hap", "sad", "ang", "fea", "dis"], size=n)
    ids = [f"{1001 + i % 60}_S{i:05d}_{c.upper()}_XX" for i, c in enumerate(codes)]
    return Manifest.from_columns(_columns(ids, [i.split("_")[0] for i in ids], codes, ids))


def talk_manifest(n: int, rng: np.random.Generator) -> Manifest:
    """`n` MELD-like turns: its emotion shares, sentiment codes, dialogs of ~10 turns over
    30 speakers, train / dev / test by dialog."""
    emotions = rng.choice(list(MELD_SHARE), size=n, p=list(MELD_SHARE.values()))
    codes = [f"{e}.{SENTIMENT[e]}" for e in emotions]
    dialogs = [f"train_dia{i // 10}" for i in range(n)]
    ids = [f"{d}_utt{i % 10}" for i, d in enumerate(dialogs)]
    speakers = [f"speaker{int(rng.integers(30))}" for _ in range(n)]
    cols = _columns(ids, speakers, codes, dialogs)
    split = [("train", "train", "train", "train", "dev", "test")[(i // 10) % 6] for i in range(n)]
    return Manifest.from_columns({**cols, "split": split, "order": [i % 10 for i in range(n)]})


def _columns(ids: list[str], speakers: list[str], codes: Any, dialogs: list[str]) -> dict[str, Any]:
    n = len(ids)
    return {
        "utt_id": ids, "dialog": dialogs, "speaker": speakers, "gender": ["F"] * n,
        "order": [0] * n, "start": [0.0] * n, "end": [2.0] * n, "duration": [2.0] * n,
        "label": list(codes), "valence": [np.nan] * n, "arousal": [np.nan] * n,
        "dominance": [np.nan] * n, "transcript": [""] * n, "transcript_raw": [""] * n,
        "wav": [f"{i}.wav" for i in ids],
    }  # fmt: skip


def build_store(
    path: Path, kind: str, manifest: Manifest, seed: int, dim: int, signal: float, shift: float
) -> None:
    """The store of one corpus (module docstring); the same bytes for the same arguments."""
    rng = np.random.default_rng(seed)
    store = FeatureStore.create(path, manifest, KINDS[kind].attrs())
    shared = np.random.default_rng(0)  # the emotions' centres: one for every corpus
    basis = np.linalg.qr(shared.normal(size=(dim, 32)))[0].T  # [32, dim]
    centres = shared.normal(size=(len(EMOTIONS), 32)) @ basis * np.sqrt(dim / 32)  # [E, dim]
    names = [emotion(str(c).split(".")[0]) or "other" for c in manifest.column("label")]
    labels = np.array([EMOTIONS.index(e) for e in names])
    speakers = np.unique(manifest.column("speaker"), return_inverse=True)[1]
    offsets = rng.normal(size=(speakers.max() + 1, dim)) * 0.3
    domain = rng.normal(size=dim) * shift
    x = centres[labels] * signal + offsets[speakers] + domain + rng.normal(size=(len(labels), dim))
    attrs = {"extractor": "speech", "modality": "audio", "level": "utterance", "dim": dim,
             "dtype": "float16", "model": "synthetic-base", "layer": 12, "pool": "mean",
             "source": "benchmarks/bench_cross_corpus.py (random)"}  # fmt: skip
    add_feature_set(store, SET, attrs, list(x.astype(np.float16)[:, None, :]), shard=1000)


def estimated(stores: list[str], out: Path, fixes: dict[str, str]) -> dict[str, Any]:
    """What `ser sweep` estimates before it trains (its own calls, in this process)."""
    from ser.commands.sweep import sweep_execution
    from ser.sweep.cells import resolve_cells
    from ser.sweep.cross import cross_table
    from ser.sweep.estimate import estimate_sweep
    from ser.sweep.spec import load_spec

    made = cross_table(stores)
    spec = load_spec("cross-corpus", params={"audio": SET}, fixed=fixes, made=made)
    cells = resolve_cells(spec.cells, stores, out)
    execution = sweep_execution(cells, None, None, None)
    plan = estimate_sweep(cells, out, execution)
    return {
        "seconds": round(plan.seconds, 1),
        "execution": execution.describe(),
        "cells": {c.cell.cell.label: round(c.seconds, 1) for c in plan.cells},
        "keys": {c.cell.key: c.cell.cell.label for c in plan.cells},
    }


def ser_sweep(stores: list[str], out: Path, fixes: dict[str, str]) -> dict[str, Any]:
    """`ser sweep cross-corpus` in a new process: its wall and CPU time."""
    cmd = [sys.executable, "-c", "from ser.cli import main; main()", "sweep", "cross-corpus",
           "--out", str(out), "--set", f"audio={SET}", "--json"]  # fmt: skip
    for store in stores:
        cmd += ["--store", store]
    for key, value in fixes.items():
        cmd += ["--fix", f"{key}={value}"]
    env = {**os.environ, "PYTHONPATH": checkout_path(ROOT)}
    before, start = os.getloadavg()[0], time.perf_counter()
    used = _cpu()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ser sweep failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round(_cpu() - used, 1),
            "load_before": before, "load_after": os.getloadavg()[0]}  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(out: Path, keys: dict[str, str]) -> dict[str, dict[str, float]]:
    """Each cell's seconds (its folds' plus its load, as its record says) and UA."""
    cells = {}
    for key, label in keys.items():
        record = json.loads((out / "cells" / key / "run.json").read_text())
        seconds = sum(f["seconds"] for f in record["folds"]) + record["timings"].get("load", 0)
        cells[label] = {"seconds": round(seconds, 1), "ua": round(record["summary"]["ua"], 2)}
    return cells


def phase(stores: list[str], out: Path, fixes: dict[str, str]) -> dict[str, Any]:
    """The sweep's estimate, then the sweep, side by side."""
    estimate = estimated(stores, out, fixes)
    run = ser_sweep(stores, out, fixes)
    cells = measured(out, estimate.pop("keys"))
    return {
        "fixes": fixes,
        "estimate_s": estimate["seconds"],
        **run,
        "wall_over_estimate": round(run["wall_s"] / max(estimate["seconds"], 1e-9), 2),
        "execution": estimate["execution"],
        "cells": {
            label: {"estimate_s": estimate["cells"][label], **cells[label]} for label in cells
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=3000, help="CREMA-D's and MELD's")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--signal", type=float, default=0.12)
    parser.add_argument("--shift", type=float, default=0.5, help="each corpus's offset")
    parser.add_argument("--fix", action="append", default=[], help="KEY=VALUE, to the sweep")
    args = parser.parse_args()
    fixes = {"epochs": "10", "seeds": "2"}
    fixes.update(dict(f.split("=", 1) for f in args.fix))
    with tempfile.TemporaryDirectory(prefix="bench_cross_") as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        built = {
            "iemocap": synthetic_manifest(rng),
            "crema-d": acted_manifest(args.utterances, rng),
            "meld": talk_manifest(args.utterances, rng),
        }
        stores = []
        for seed, (kind, manifest) in enumerate(built.items()):
            path = root / f"{kind}.zarr"
            build_store(path, kind, manifest, seed, args.dim, args.signal, args.shift)
            stores.append(str(path))
        result = phase(stores, root / "sweep", fixes)
        measured_s = sum(c["seconds"] for c in result["cells"].values())
        estimate_s = sum(c["estimate_s"] for c in result["cells"].values())
        result = {
            "utterances": {k: len(m) for k, m in built.items()},
            **result,
            # what a sweep resumed in this folder scales its estimates by (its cells'
            # measured over estimated seconds: `ser.sweep.estimate`'s calibration)
            "calibration": round(measured_s / max(estimate_s, 1e-9), 1),
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
