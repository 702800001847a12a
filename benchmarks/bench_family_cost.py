"""What a model family costs to train on this CPU, measured the way the execution policy
reads it: the `FamilyCost(...)` line its author pastes beside the family's declaration
(`ser/runtime/cost.py`; docs/dev/add-family.md, "How to add a model family").

Every figure comes from one `ser train` command (a new process each, as
`bench_execution.py` times them; its wall time and its record's training seconds,
`timings.folds`) on a small synthetic store of `--utterances` utterances drawn from
`bench_train.synthetic_manifest` (IEMOCAP's shape), session 5 tested, `--val none`,
`--members` seeds (one fold each), after a warm-up command; one process has 2 threads
(the 2-core CPU the policy's figures are for):

- ``stack_width``: at each `--widths` (the audio set's dims, plus the text set's when the
  family takes two sets), `--epochs` epochs of every member stacked in one model
  (`--members-at-once M`) against one after another: the widest width up to which the
  stack trained faster at every width (0: slower at the narrowest; the widest of
  `--widths` only says it is at least that: widen them);
- ``rate``: at the narrowest and the widest width, the seconds that 3 x `--epochs`
  epochs one after another take over `--epochs` (building, testing and start-up cancel
  out), per utterance-epoch: a + b x width;
- ``thread_gain``: at the widest width, those 3 x `--epochs` epochs against the same on
  two one-thread processes side by side (`--processes 2 --threads 1`): a member's
  training seconds on 1 thread over 2;
- ``min_seconds``: the wall seconds the two processes add beyond their training (their
  start-up: imports, the data read again) over what a second process saves of a run's
  training, 1 - thread_gain / 2: start-up / (1 - thread_gain / 2); none (one process)
  where the gain is 2 or more;
- ``cell_per_process``: whether a second process is worth more than a second thread
  (thread_gain < 2), which is what sweep cells one per process need (`bench_sweep.py
  throughput` measures a sweep itself).

GPU placement (``gpu_alone``, ``gpu_step``) is not measured here: `bench_train.py
--device cuda` compares a GPU's ways. `--family` picks a registered family; its `ser
train` options and the store's shape come from `RUNS`, or for a family of your own from
`--options` (e.g. ``fusion=sum-logits,hidden=8``), `--sets` and `--level`.

    .venv/bin/python benchmarks/bench_family_cost.py --family unimodal
    .venv/bin/python benchmarks/bench_family_cost.py --family dialog --widths 100,1024,6373

Progress on stderr; the measurements as JSON and the `FamilyCost(...)` line on stdout.
Figures: benchmarks/README.md, "What does a model family cost to train?".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import (
    FRAME_RATE,
    add_feature_set,
    attrs_of,
    class_index,
    signal_rows,
    synthetic_manifest,
)
from checkout import checkout_path

from ser.cache import FeatureStore
from ser.cache.manifest import Manifest

ROOT = Path(__file__).resolve().parents[1]
SESSION5 = {"protocol": "session5", "val": "none", "classes": "4", "device": "cpu"}


@dataclass(frozen=True)
class Run:
    """How a family trains here: its `ser train` options, its sets (1: audio alone, 2:
    audio + text) and their level ("utterance": vectors, "frame": frames and tokens)."""

    options: dict[str, Any]
    sets: int = 2
    level: str = "utterance"


RUNS = {
    "dialog": Run({"fusion": "add", "fusion_at": "logits", "loss": "perspective"}),
    "unimodal": Run({"fusion": "none"}, sets=1),
    "msmser": Run({"fusion": "mit", "d_model": 64, "heads": 4, "queries": 8}, level="frame"),
    "late_prob": Run({"fusion": "late-prob"}, level="frame"),
}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_store(path: Path, args: argparse.Namespace, run: Run, width: int) -> tuple[list[str], int]:
    """A store of about `args.utterances` utterances with a `width`-d audio set (and a
    text set of `args.text_dim`), random features with some class signal; its sets' names
    and its utterances."""
    rng = np.random.default_rng(0)
    full = synthetic_manifest(rng)
    rows = whole_dialogs(full, args.utterances)
    manifest = Manifest.from_columns({k: v[rows] for k, v in full.columns().items()})
    store = FeatureStore.create(path, manifest)
    labels = class_index(manifest)
    duration = np.asarray(manifest.column("duration"))
    frame = run.level == "frame"
    lengths = {
        "audio": np.maximum(1, (duration * FRAME_RATE).astype(np.int64)) if frame else None,
        "text": np.clip((duration * 3.0).astype(np.int64), 3, 80) if frame else None,
    }
    sets = [("is13", "hubert.L12", "audio", width), ("bert", "mpnet", "text", args.text_dim)]
    names = []
    for plain, framed, modality, dim in sets[: run.sets]:
        name = framed if frame else plain
        extractor = name.split(".")[0]
        level = ("frame" if modality == "audio" else "token") if frame else "utterance"
        counts = lengths[modality] if frame else np.ones(len(manifest), dtype=np.int64)
        add_feature_set(
            store,
            name,
            attrs_of(extractor, modality, level, dim, "float32"),
            signal_rows(labels, counts, dim, 0.1, rng, "float32"),
            shard=64,
        )
        names.append(name)
    return names, len(manifest)


def whole_dialogs(manifest: Manifest, utterances: int) -> np.ndarray:
    """Rows of whole dialogs, the sessions taken in turn, until `utterances` are reached:
    a dialog model's cost follows its dialogs, and session 5 tests."""
    dialogs = np.asarray(manifest.column("dialog")).astype(str)
    sessions = np.asarray(manifest.column("session")).tolist()
    place: dict[str, tuple[int, int]] = {}  # dialog -> (its place in its session, session)
    for dialog, session in zip(dialogs.tolist(), sessions, strict=True):
        if dialog not in place:
            place[dialog] = (sum(s == session for _, s in place.values()), session)
    sizes = Counter(dialogs.tolist())
    taken: list[str] = []
    for dialog in sorted(place, key=place.__getitem__):
        if sum(sizes[d] for d in taken) >= utterances:
            break
        taken.append(dialog)
    return np.flatnonzero(np.isin(dialogs, taken))


def train(options: dict[str, Any], out: Path) -> tuple[float, float]:
    """Wall seconds of one `ser train` and its training seconds (`timings.folds`)."""
    flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    command = [sys.executable, "-m", "ser.cli", "train", *flags, "--out", str(out),
               "--name", "run", "--overwrite"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": checkout_path(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    record = json.loads((out / "run" / "run.json").read_text())
    return wall, float(record["timings"]["folds"])


def measure(args: argparse.Namespace, run: Run, work: Path) -> dict[str, Any]:
    """Every run the cost is read from, timed (module docstring)."""
    m, e = args.members, args.epochs
    base = {**SESSION5, **run.options, "seeds": m, "members_at_once": 1}
    widths = sorted(int(w) for w in args.widths.split(","))
    text = args.text_dim if run.sets == 2 else 0
    found: dict[str, Any] = {"warm-up": {}, "one": {}, "stacked": {}, "long": {}}
    for width in widths:
        store = work / f"store{width}.zarr"
        names, utterances = make_store(store, args, run, width)
        here = {**base, "store": store, "features": "+".join(names), "processes": 1,
                "threads": 2}  # fmt: skip
        ways = [("one", e, 1), ("stacked", e, m)]
        if width == widths[0]:  # the first command pays cold file caches: not counted
            ways.insert(0, ("warm-up", 1, 1))
        if width in (widths[0], widths[-1]):
            ways.append(("long", 3 * e, 1))  # the rate: the epochs' own seconds
        for way, epochs, at_once in ways:
            options = {**here, "epochs": epochs, "members_at_once": at_once}
            wall, folds = train(options, work / f"{way}{width}")
            found[way][width + text] = (round(wall, 2), round(folds, 2))
            say(f"{width + text}-d members, {epochs} epochs {way}: {wall:.1f} s "
                f"({folds:.1f} s training)")  # fmt: skip
        if width == widths[-1]:
            sides = {**here, "epochs": 3 * e, "processes": 2, "threads": 1}
            found["processes"] = train(sides, work / "processes")
            say(
                f"{width + text}-d members, {3 * e} epochs on two one-thread processes: "
                f"{found['processes'][0]:.1f} s ({found['processes'][1]:.1f} s training)"
            )
    found["utterance_epochs"] = m * 2 * e * utterances  # the long runs' more
    return found


def cost(found: dict[str, Any]) -> dict[str, Any]:
    """The `FamilyCost` fields the runs give (module docstring)."""
    stack_width = 0
    for width in sorted(found["one"]):
        if found["stacked"][width][1] >= found["one"][width][1]:
            break
        stack_width = width
    per = found["utterance_epochs"]
    (w1, r1), (w2, r2) = [
        (w, (found["long"][w][1] - found["one"][w][1]) / per) for w in sorted(found["long"])
    ]
    b = max(0.0, (r2 - r1) / (w2 - w1)) if w2 > w1 else 0.0
    a = max(0.0, r1 - b * w1)
    wall_one, one = found["long"][w2]  # one process of 2 threads, members one after another
    wall_two, two = found["processes"]  # two of 1 thread: `two` sums both processes' seconds
    gain = two / max(one, 1e-9)
    spawn = max(0.0, (wall_two - two / 2) - (wall_one - one))  # the processes' start-up
    min_seconds = spawn / (1 - gain / 2) if gain < 2 else None
    return {
        "stack_width": stack_width,
        "rate": (float(f"{a:.2g}"), float(f"{b:.2g}")),
        "min_seconds": None if min_seconds is None else round(min_seconds),
        "thread_gain": round(gain, 2),
        "cell_per_process": gain < 2,
        "startup_s": round(spawn, 1),
    }


def cost_line(fields: dict[str, Any]) -> str:
    """The line to paste (with the start-up it was derived from as a comment)."""
    shown = {k: v for k, v in fields.items() if k != "startup_s"}
    if shown["min_seconds"] is None:  # processes never paid: unmeasured, one process
        shown = {k: v for k, v in shown.items() if k not in ("min_seconds",)}
    body = ", ".join(f"{k}={v!r}" for k, v in shown.items())
    return f"COST = FamilyCost({body})  # start-up {fields['startup_s']} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", required=True, help="a registered family's name")
    parser.add_argument("--options", default="", help="ser train options, k=v,... [RUNS']")
    parser.add_argument("--sets", type=int, choices=(1, 2), help="[RUNS', else 2]")
    parser.add_argument("--level", choices=("utterance", "frame"), help="[RUNS', else utterance]")
    parser.add_argument("--widths", default="32,256,1024", help="the audio set's dims")
    parser.add_argument("--text-dim", type=int, default=32)
    parser.add_argument("--members", type=int, default=4, help="seeds; even: no queue waits")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=400)
    parser.add_argument("--workdir", type=Path, help="keep the stores and runs here")
    args = parser.parse_args()
    if len(set(args.widths.split(","))) < 2:
        parser.error("--widths needs at least two widths (the rate's slope)")
    known = RUNS.get(args.family)
    if known is None and not args.options:
        raise SystemExit(f"{args.family} has no run in RUNS: give --options fusion=...,...")
    given = dict(kv.split("=", 1) for kv in args.options.split(",") if kv)
    run = Run(
        {**(known.options if known else {}), **given},
        args.sets or (known.sets if known else 2),
        args.level or (known.level if known else "utterance"),
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        found = measure(args, run, work)
    fields = cost(found)
    if fields["stack_width"] == max(found["one"]):
        say("the stack won at every width: its width is at least that (widen --widths)")
    loadavg = round(os.getloadavg()[0], 2)
    runs = found
    print(json.dumps({"family": args.family, **fields, "load": loadavg, "runs": runs},
                     default=str))  # fmt: skip
    print(cost_line(fields))


if __name__ == "__main__":
    main()
