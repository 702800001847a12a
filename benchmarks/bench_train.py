"""Training speed: `ser train`'s default way on the device against K (seed, fold) models
trained as one `Ensemble` (torch.func's model ensembling, `ser.train.engine.ensemble`) and the
same K trained one after another, each step eager.

Synthetic feature stores of IEMOCAP's shape (5531 labelled utterances in 151 dialogs, the
4-class set's per-session counts, IEMOCAP-like durations; random features with some class
signal; nothing of IEMOCAP itself) feed `ser.train.recipe.train`, the library entry point of
`ser train`, loading included. Scenarios:

- ``msmser``: MSMSER, LOSO x `--seeds` (5 members a seed). `--size demo` is the demo's
  model (d 64, 4 heads, L 8, 20-d features over 413 utterances), `--size paper` the
  paper's (d 768, 8 heads, L 30, HuBERT-base-shaped 768-d frames at 50/s and MPNet-shaped
  tokens over all 5531 utterances); `--utterances N` draws N of the 5531 instead (an
  epoch's time follows N: a short GPU lease measures a fifth and scales it).
- ``dialog``: the fusion study's default run (logits ADD + perspective loss, session5,
  150 epochs) with `--seeds` repeats. `--audio-dim 6373` gives the audio set the IS13
  functionals' width (the published code fed 100-d vectors).

Every scenario times the default run (what `ser train` chooses on the device: on a GPU
MSMSER's steps compiled, members one at a time; elsewhere `ser/runtime/execution.py`'s
rule); with `--stacked` also every member that can share an ensemble stacked, eagerly;
with `--sequential` the members one after another, eagerly (`--members-at-once 1 --step
eager`: the GPU's default before compiled steps). `--step` and `--members-at-once` set the
default run's own.

Each run reports its wall time (loading included), seconds per epoch (per group of
members trained together), the steady epoch (each group's median epoch after its first,
summed over groups: one epoch of all members, validation included), training
utterances/s over it, the 100-epoch extrapolation (the run's wall time plus 100 - epochs
steady epochs: loading, set-up, compilation and testing counted once) and on CUDA the
peak GPU memory; the comparisons give the speedups and the largest gap between two runs'
per-epoch training losses (with dropout and RMM on, runs draw other random numbers:
`--no-randomness` sets dropout 0 and RMM off, where the gap is float rounding). On CUDA
(or with `--flops`) the FLOPs of one training step (`torch.utils.flop_counter`, eager)
give an estimate of the TFLOP/s achieved and, on a card of known peak, the MFU.
`--baseline DIR` also times `ser train` of another checkout (e.g. a worktree of the
commit before a change) and of this one on the same store, each in a new process
(imports and start-up included) with its own defaults (`--members-at-once` too).

    .venv/bin/python benchmarks/bench_train.py msmser --size demo --seeds 3 --sequential
    .venv/bin/python benchmarks/bench_train.py msmser --seeds 3 --baseline ../old
    .venv/bin/python benchmarks/bench_train.py dialog --seeds 20 --sequential --baseline ../old
    .venv/bin/python benchmarks/bench_train.py msmser --size paper --device cuda --seeds 1 \
        --epochs 3 --stacked   # compiled one at a time (the default), eager stacked

Progress lines go to stderr; the result is one JSON object on stdout. Figures and
commands: benchmarks/README.md.
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
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from checkout import checkout_path

from ser.runtime.threads import brief_waits

# As the `ser` command does, before torch loads OpenMP (which reads its wait setting once).
brief_waits()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ser.cache import FeatureStore  # noqa: E402
from ser.cache.manifest import Manifest  # noqa: E402
from ser.corpus.labels import get_label_set  # noqa: E402
from ser.models import ModelConfig  # noqa: E402
from ser.synth.manifest import example_columns  # noqa: E402
from ser.train.recipe import Progress, TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALL = 1_000_000  # --members-at-once: every member that can share an ensemble
SESSION_UTTERANCES = (1085, 1023, 1151, 1031, 1241)  # IEMOCAP 4-class set, 5531 in all
SESSION_DIALOGS = (28, 30, 32, 30, 31)  # 151 dialogs
CLASS_COUNTS = {"neu": 1708, "hap": 595, "exc": 1041, "sad": 1084, "ang": 1103}
FRAME_RATE = 50  # HuBERT frames per second


def synthetic_manifest(rng: np.random.Generator) -> Manifest:
    """151 dialogs, 5531 labelled utterances, IEMOCAP-like durations (mean ~4.5 s)."""
    ids: list[str] = []
    orders: list[int] = []
    for session, (n_utts, n_dialogs) in enumerate(
        zip(SESSION_UTTERANCES, SESSION_DIALOGS, strict=True), 1
    ):
        sizes = rng.multinomial(n_utts - 10 * n_dialogs, np.ones(n_dialogs) / n_dialogs) + 10
        for d, size in enumerate(sizes):
            dialog = f"Ses{session:02d}{'FM'[d % 2]}_impro{d:02d}"
            ids += [f"{dialog}_{'FM'[u % 2]}{u:03d}" for u in range(size)]
            orders += list(range(size))
    cols = example_columns(ids)
    codes = np.repeat(list(CLASS_COUNTS), list(CLASS_COUNTS.values()))
    durations = np.clip(rng.lognormal(np.log(3.7), 0.6, size=len(ids)), 0.6, 34.0)
    cols.update(label=rng.permutation(codes).tolist(), order=orders, duration=durations.tolist())
    return Manifest.from_columns(cols)


def class_index(manifest: Manifest) -> np.ndarray:
    label_set = get_label_set("4")
    return np.array([label_set.index_of(str(c)) for c in manifest.column("label")])


def add_feature_set(
    store: Any, name: str, attrs: dict[str, Any], rows: list[np.ndarray], shard: int = 500
) -> None:
    """Write `rows` (one array per manifest row) as a complete feature set."""
    store.begin_feature_set(name, attrs)
    writer = store.shard_writer(name)
    n_shards = 0
    for shard_id, start in enumerate(range(0, len(rows), shard)):
        part = {i: rows[i] for i in range(start, min(start + shard, len(rows)))}
        writer.write(shard_id, part, {})
        n_shards += 1
    store.consolidate(name, n_shards)


def signal_rows(
    labels: np.ndarray,
    lengths: np.ndarray,
    dim: int,
    signal: float,
    rng: np.random.Generator,
    dtype: str,
) -> list[np.ndarray]:
    """Per-utterance [length, dim] rows: a class centre times `signal` plus unit noise."""
    centres = rng.normal(size=(labels.max() + 1, dim)).astype(np.float32)
    return [
        (centres[y] * signal + rng.normal(size=(n, dim))).astype(dtype)
        for y, n in zip(labels, lengths, strict=True)
    ]


def attrs_of(extractor: str, modality: str, level: str, dim: int, dtype: str) -> dict[str, Any]:
    return {
        "extractor": extractor,
        "modality": modality,
        "level": level,
        "dim": dim,
        "dtype": dtype,
        "source": "benchmarks/bench_train.py (random)",
    }


def fusion_store(path: Path, rng: np.random.Generator, audio_dim: int = 100) -> FeatureStore:
    """The fusion study's shape: one 100-d audio (the published code's; 6373 for the IS13
    functionals themselves) and one 768-d text vector per utterance."""
    manifest = synthetic_manifest(rng)
    store = FeatureStore.create(path, manifest)
    labels, ones = class_index(manifest), np.ones(len(manifest), dtype=np.int64)
    add_feature_set(
        store,
        "is13",
        attrs_of("is13", "audio", "utterance", audio_dim, "float32"),
        signal_rows(labels, ones, audio_dim, 0.12, rng, "float32"),
    )
    add_feature_set(
        store,
        "bert",
        attrs_of("bert", "text", "utterance", 768, "float16"),
        signal_rows(labels, ones, 768, 0.04, rng, "float16"),
    )
    return store


def msmser_store(path: Path, n: int, rng: np.random.Generator, dim: int = 768) -> FeatureStore:
    """`n` utterances drawn from the synthetic corpus: HuBERT frames and MPNet tokens, `dim`-d."""
    full = synthetic_manifest(rng)
    rows = np.sort(rng.choice(len(full), size=n, replace=False))
    manifest = Manifest.from_columns({k: v[rows] for k, v in full.columns().items()})
    store = FeatureStore.create(path, manifest)
    labels = class_index(manifest)
    duration = np.asarray(manifest.column("duration"))
    frames = np.maximum(1, (duration * FRAME_RATE).astype(np.int64))
    tokens = np.clip((duration * 3.0).astype(np.int64), 3, 80)  # ~2.3 words/s, + specials
    add_feature_set(
        store,
        "hubert.L12",
        attrs_of("hubert", "audio", "frame", dim, "float16"),
        signal_rows(labels, frames, dim, 0.1, rng, "float16"),
        shard=64,
    )
    add_feature_set(
        store,
        "mpnet",
        attrs_of("mpnet", "text", "token", dim, "float16"),
        signal_rows(labels, tokens, dim, 0.1, rng, "float16"),
        shard=64,
    )
    return store


def dialog_store(path: Path, rng: np.random.Generator, audio_dim: int = 100) -> FeatureStore:
    return fusion_store(path, rng, audio_dim)


MSMSER_SIZES: dict[str, dict[str, Any]] = {
    "demo": {"d_model": 64, "heads": 4, "queries": 8},
    "paper": {},  # the paper's defaults
}


class Clock(Progress):
    """Seconds of each epoch, per group of members trained together (`fold_start` begins
    a group; its first epoch includes building the members)."""

    def __init__(self) -> None:
        self.groups: list[list[float]] = []
        self.last = time.perf_counter()

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.groups.append([])
        self.last = time.perf_counter()

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        now = time.perf_counter()
        self.groups[-1].append(now - self.last)
        self.last = now
        # As it goes: a run cut off by a time limit (gpu_figures.py) still tells how long
        # its first epochs (compilation, graph capture) and the steady ones took.
        seconds = [[round(s, 2) for s in group] for group in self.groups]
        print(f"epochs_so_far: {json.dumps({'seconds': seconds})}", file=sys.stderr, flush=True)


def run_train(config: TrainConfig, label: str) -> dict[str, Any]:
    """One `train` of `config`, timed (module docstring: what each figure means)."""
    cuda = config.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    clock = Clock()
    start = time.perf_counter()
    record = train(config, clock)
    wall = time.perf_counter() - start
    folds = sorted(record.folds, key=lambda f: f.key)
    groups = [g for g in clock.groups if g]
    # One epoch of every member: each group's median epoch after its first (which builds
    # the members, plans kernels, compiles), summed over groups.
    # None where the members trained on worker processes (a CPU's default for a run big
    # enough): their epochs are said there, not to this process's `clock`.
    steady = sum(float(np.median(g[1:] or g)) for g in groups) if groups else None
    epochs = max((len(g) for g in groups), default=0)
    train_utts = sum(f.sizes.train for f in folds if f.sizes)  # every member's, one epoch
    out: dict[str, Any] = {
        "wall": round(wall, 2),
        "members": len(folds),
        "groups": len(groups),
        "epoch_seconds": [[round(s, 3) for s in g] for g in groups],
        "steady_epoch_s": None if steady is None else round(steady, 3),
        "train_utts_per_s_incl_val": None if steady is None else round(train_utts / steady, 1),
        "estimated_100_epochs_min": (
            None if steady is None else round((wall + (100 - epochs) * steady) / 60, 2)
        ),
        "ua": record.summary["ua"],
        "train_losses": [f.curves["train_loss"] for f in folds],  # by (seed, fold)
    }
    if cuda:
        out["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    shown = {k: v for k, v in out.items() if k not in ("epoch_seconds", "train_losses")}
    print(f"{label}: {json.dumps(shown)}", file=sys.stderr, flush=True)
    return out


def loss_gap(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest gap between two runs' per-epoch training losses, member by member."""
    pairs = zip(a["train_losses"], b["train_losses"], strict=True)
    return max(float(np.abs(np.subtract(x, y)).max()) for x, y in pairs)


def compare(runs: dict[str, Any], new: str, old: str) -> dict[str, float]:
    """How run `new` fares against run `old` (>1: `new` is faster)."""
    a, b = runs[new], runs[old]
    return {
        "wall_speedup": round(b["wall"] / a["wall"], 3),
        "steady_epoch_speedup": round(b["steady_epoch_s"] / a["steady_epoch_s"], 3),
        "max_train_loss_gap": loss_gap(a, b),
    }


class _Counted(Exception):
    """Stops `step_flops`' run after its one counted step."""


class _FirstStep:
    """A side of one step: the first of `sides`' epoch."""

    def __init__(self, sides: Any) -> None:
        self.sides = sides

    def __len__(self) -> int:
        return 1

    def epoch(self) -> Iterator[Any]:
        yield next(iter(self.sides.epoch()))


def step_flops(config: TrainConfig) -> tuple[float, int]:
    """FLOPs of one training step (forward + backward) of `config`'s first member, eager,
    and its batch's utterances (counted by `FlopCounterMode` on the second step: the
    first warms up)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ser.train.engine import loop

    counted: list[tuple[float, int]] = []
    original = loop.train_epoch

    def one_step(ensemble: Any, sides: Any, optimizer: Any, scaler: Any, *rest: Any) -> list[float]:
        first: Any = _FirstStep(sides)  # a stand-in for the epoch's `StackedSides`
        original(ensemble, first, optimizer, scaler, *rest[:1])  # warm-up
        with FlopCounterMode(display=False) as counter:
            original(ensemble, first, optimizer, scaler, *rest[:1])
        rows = int((next(iter(sides.epoch()))[1].labels != -100).sum())
        counted.append((float(counter.get_total_flops()), rows))
        raise _Counted

    loop.train_epoch = one_step
    eager = replace(config, epochs=1, name="flops", overwrite=True, members_at_once=1)
    try:
        train(replace(eager, step="eager"))
    except _Counted:
        pass
    finally:
        loop.train_epoch = original
    return counted[0]


# Dense bf16 tensor-core peaks (FLOP/s, no sparsity) of the cards MFU is reported on.
PEAKS = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def flop_figures(config: TrainConfig, run: dict[str, Any], device: str) -> dict[str, Any]:
    """FLOPs of one step, and the TFLOP/s and MFU the run's steady epoch achieved (an
    underestimate: the epoch includes validation, counted as no work)."""
    flops, rows = step_flops(config)
    achieved = flops / rows * run["train_utts_per_s_incl_val"]
    out = {"step_gflop": round(flops / 1e9, 2), "step_utterances": rows,
           "achieved_tflops_est": round(achieved / 1e12, 3)}  # fmt: skip
    if device == "cuda":
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAKS.items() if k in name), None)
        if peak is not None:
            out.update(peak_tflops=peak / 1e12, mfu=round(achieved / peak, 4))
    return out


def bench_runs(args: argparse.Namespace, base: TrainConfig) -> dict[str, Any]:
    """The default run, and the stacked and sequential runs asked for, with their
    comparisons (each run's figures reach stderr as it ends: a run cut off by a time
    limit leaves the ones it finished)."""
    runs: dict[str, Any] = {}
    default = replace(base, name="default", members_at_once=args.members_at_once, step=args.step)
    runs["default"] = run_train(default, "default")
    out: dict[str, Any] = {}
    if args.device == "cuda" or args.flops:
        out.update(flop_figures(default, runs["default"], args.device))
        print(f"flops: {json.dumps(out)}", file=sys.stderr, flush=True)
    if args.stacked:
        stacked = replace(base, name="stacked", members_at_once=ALL, step="eager")
        runs["stacked"] = run_train(stacked, "stacked")
        out["default_vs_stacked"] = compare(runs, "default", "stacked")
    if args.sequential:
        one = replace(base, name="sequential", members_at_once=1, step="eager")
        runs["sequential"] = run_train(one, "sequential")
        out["default_vs_sequential"] = compare(runs, "default", "sequential")
        if "stacked" in runs:
            out["stacked_vs_sequential"] = compare(runs, "stacked", "sequential")
    return {**runs, **out}


def bench_msmser(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n = args.utterances or (5531 if args.size == "paper" else 413)
    dim = 768 if args.size == "paper" else 20
    store = tmp / "msmser.h5"
    msmser_store(store, n, rng, dim=dim)
    options: dict[str, Any] = dict(MSMSER_SIZES[args.size])
    if args.no_randomness:
        options.update(dropout=0.0, rmm=False)
    model = ModelConfig(fusion="mit", **options)
    base = TrainConfig(
        store=str(store), features=("hubert.L12", "mpnet"), model=model, protocol="loso",
        seeds=args.seeds, epochs=args.epochs, device=args.device, threads=args.threads,
        out=str(tmp / "runs"), overwrite=True,
    )  # fmt: skip
    out: dict[str, Any] = {"scenario": f"msmser {args.size}", "utterances": n}
    out.update(bench_runs(args, base))
    if args.baseline:
        cli = ["--features", "hubert.L12+mpnet", "--fusion", "mit", "--protocol", "loso"]
        for name, value in options.items():
            cli += [f"--{name.replace('_', '-')}", str(value)] if name != "rmm" else ["--no-rmm"]
        out.update(baseline(args, store, tmp, cli))
    return out


def bench_dialog(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    store = tmp / "dialog.h5"
    dialog_store(store, np.random.default_rng(0), args.audio_dim)
    options: dict[str, Any] = {"dropout": 0.0} if args.no_randomness else {}
    model = ModelConfig(fusion="add", fusion_at="logits", loss="perspective", **options)
    base = TrainConfig(
        store=str(store), features=("is13", "bert"), model=model, seeds=args.seeds,
        epochs=args.epochs, threads=args.threads, device=args.device, out=str(tmp / "runs"),
        overwrite=True,
    )  # fmt: skip
    out: dict[str, Any] = {"scenario": "dialog", "seeds": args.seeds, "audio_dim": args.audio_dim}
    out.update(bench_runs(args, base))
    # The process's peak so far: the store's making, then the runs.
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if args.baseline:
        cli = ["--features", "is13+bert", "--fusion", "add", "--fusion-at", "logits",
               "--loss", "perspective"]  # fmt: skip
        if args.no_randomness:
            cli += ["--dropout", "0.0"]
        out.update(baseline(args, store, tmp, cli))
    return out


def baseline(args: argparse.Namespace, store: Path, tmp: Path, cli: list[str]) -> dict[str, Any]:
    """`ser train` of this checkout and of `args.baseline` on the same store with the
    same options, each in a new process; >1 in `cli_vs_baseline`: this one is slower."""
    common = [
        "--store", str(store), "--seeds", str(args.seeds), "--epochs", str(args.epochs),
        "--device", args.device, "--overwrite", "--json", *cli,
    ]  # fmt: skip
    if args.threads:
        common += ["--threads", str(args.threads)]
    walls = {}
    old = (Path(args.baseline).resolve(), args.baseline_python or sys.executable)
    for name, (checkout, python) in (("cli_wall", (ROOT, sys.executable)), ("baseline_wall", old)):
        command = [python, "-m", "ser.cli", "train", *common, "--out", str(tmp / name)]
        env = {
            **os.environ,
            "PYTHONPATH": checkout_path(checkout),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=checkout)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        walls[name] = round(time.perf_counter() - start, 2)
        print(f"{name}: {walls[name]} s ({checkout})", file=sys.stderr, flush=True)
    return {**walls, "cli_vs_baseline": round(walls["cli_wall"] / walls["baseline_wall"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["msmser", "dialog"])
    parser.add_argument("--size", choices=["demo", "paper"], default="demo")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="[msmser 3, dialog 150]")
    parser.add_argument(
        "--utterances", type=int, default=None, help="msmser: of the 5531 [paper all, demo 413]"
    )
    parser.add_argument(
        "--audio-dim", type=int, default=100, help="dialog: the audio vectors' width [100]"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sequential", action="store_true", help="also one after another")
    parser.add_argument("--stacked", action="store_true", help="also every member stacked")
    parser.add_argument(
        "--step", choices=["eager", "graphed", "compiled"], help="the default run's step"
    )
    parser.add_argument("--members-at-once", type=int, help="the default run's stacking")
    parser.add_argument(
        "--no-randomness", action="store_true", help="dropout 0 and RMM off: runs comparable"
    )
    parser.add_argument("--flops", action="store_true", help="count a step's FLOPs on the CPU too")
    parser.add_argument("--baseline", default=None, help="another checkout's `ser train` to time")
    parser.add_argument(
        "--baseline-python", default=None, help="the baseline's interpreter [this one]"
    )
    parser.add_argument("--json", action="store_true", help="the result on one line")
    args = parser.parse_args()
    if args.step == "compiled" and args.scenario == "dialog":
        # Measured (CPU, torch 2.13): the Bi-GRU's loop over a dialog's utterances unrolls
        # into the graph, so every new dialog length compiles anew (~75 s each here)
        # until dynamo's recompile limit (8) leaves the rest eager.
        parser.error("--step compiled: the dialog models' GRU loop recompiles per dialog length")
    if args.epochs is None:
        args.epochs = 3 if args.scenario == "msmser" else 150
    with tempfile.TemporaryDirectory() as tmp:
        bench = bench_msmser if args.scenario == "msmser" else bench_dialog
        result = bench(args, Path(tmp))
    result.update(
        load_average=os.getloadavg(), threads=torch.get_num_threads(), device=args.device,
        epochs=args.epochs, torch=torch.__version__,
    )  # fmt: skip
    if args.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
