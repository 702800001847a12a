"""Training speed of stacked runs: K (seed, fold) models trained as one against the same
K trained one after another, measured side by side in one run.

Synthetic feature stores of IEMOCAP's shape (5531 labelled utterances in 151 dialogs, the
4-class set's per-session counts, IEMOCAP-like durations; random features with some class
signal; nothing of IEMOCAP itself) feed `ser.train.run.train`, the library entry point of
`ser train`, loading included. Scenarios:

- ``msmser``: MSMSER, LOSO x `--seeds` (5 members a seed). `--size demo` is the demo's
  model (d 64, 4 heads, L 8, 20-d features over `--utterances` utterances), `--size
  paper` the paper's (d 768, 8 heads, L 30, HuBERT-base-shaped 768-d frames at 50/s and
  MPNet-shaped tokens over all 5531 utterances). Prints member-epochs/s stacked and, with
  `--sequential`, one after another (`--members-at-once 1`); on CUDA also utterances/s,
  peak GPU memory, achieved TFLOP/s (FLOPs of one training step counted by
  `torch.utils.flop_counter`) and the extrapolation to 100 epochs; with `--cuda-graphs`
  also the same stacked run with its steps replayed from CUDA graphs (`ser train
  --cuda-graphs`), its steps' counts (eager, captured, replayed) and memory.
- ``dialog``: the fusion study's default run (logits ADD + perspective loss, session5,
  150 epochs) with `--seeds` repeats, stacked against one after another; with
  `--baseline DIR` also against `ser train` of another checkout (e.g. a worktree of the
  commit before stacking: "today's fastest path", its C kernels included), in a new
  process each. `--audio-dim 6373` gives the audio set the IS13 functionals' width
  (the published code fed 100-d vectors), which shows the vector tables' memory.

    .venv/bin/python benchmarks/bench_train.py msmser --size demo --seeds 3 --sequential
    .venv/bin/python benchmarks/bench_train.py dialog --seeds 20 --sequential --baseline ../old
    .venv/bin/python benchmarks/bench_train.py msmser --size paper --device cuda --seeds 1
    .venv/bin/python benchmarks/bench_train.py msmser --size paper --device cuda --seeds 1 \
        --epochs 3 --cuda-graphs   # eager stacked against steps replayed from CUDA graphs

Figures and commands: benchmarks/README.md.
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

from ser.runtime.allocator import tune_heap
from ser.runtime.threads import brief_waits

# As the `ser` command does, before torch loads OpenMP (which reads its wait setting once).
brief_waits()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ser.cache import FeatureStore  # noqa: E402
from ser.cache.manifest import Manifest  # noqa: E402
from ser.cache.testing import example_columns  # noqa: E402
from ser.corpus.labels import get_label_set  # noqa: E402
from ser.train.models import ModelConfig  # noqa: E402
from ser.train.run import Progress, TrainConfig, train  # noqa: E402

SESSION_UTTERANCES = (1085, 1023, 1151, 1031, 1241)  # IEMOCAP 4-class set, 5531 in all
SESSION_DIALOGS = (28, 30, 32, 30, 31)  # 151 dialogs
CLASS_COUNTS = {"neu": 1708, "hap": 595, "exc": 1041, "sad": 1084, "ang": 1103}
FRAME_RATE = 50  # HuBERT frames per second
FOLD1 = {"train": 1151 + 1031 + 1241, "val": 1023}  # LOSO fold 1: test 1, validate 2
WORKERS = 4
PAPER_EPOCHS = 150


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


MSMSER_SIZES = {
    "demo": {"d_model": 64, "heads": 4, "queries": 8},
    "paper": {},  # the paper's defaults
}


class Clock(Progress):
    """Wall-clock time at the end of each epoch of the (stacked) training."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        self.marks.append(time.perf_counter())


def run_train(config: TrainConfig) -> dict[str, Any]:
    clock = Clock()
    start = time.perf_counter()
    record = train(config, clock)
    wall = time.perf_counter() - start
    epochs = np.diff([start, *clock.marks])
    return {
        "wall": wall,
        "epoch_seconds": [round(float(e), 3) for e in epochs],
        "ua": record["summary"]["ua"],
        "members": len(record["folds"]),
        "train_losses": [f["curves"]["train_loss"] for f in record["folds"]],
    }


class _Counted(Exception):
    """Stops `step_flops`' run after its one counted step."""


def step_flops(store: Path, config: TrainConfig) -> float:
    """FLOPs of one stacked training step (forward + backward) of `config`'s members."""
    from torch.utils.flop_counter import FlopCounterMode

    from ser.train import loop

    counted: list[float] = []
    original = loop.train_epoch

    class FirstStep:
        def __init__(self, sides):  # type: ignore[no-untyped-def]
            self.sides = sides

        def epoch(self, active):  # type: ignore[no-untyped-def]
            yield next(iter(self.sides.epoch(active)))

    def one_step(  # type: ignore[no-untyped-def]
        model, sides, active, optimizer, streams, precision="fp32", graphs=None, on_step=None
    ):
        original(model, FirstStep(sides), active, optimizer, streams, precision)  # warm-up
        with FlopCounterMode(display=False) as counter:
            original(model, FirstStep(sides), active, optimizer, streams, precision)
        counted.append(float(counter.get_total_flops()))
        raise _Counted

    loop.train_epoch = one_step  # type: ignore[assignment]
    try:
        train(TrainConfig(**{**config.__dict__, "epochs": 1, "name": "flops", "overwrite": True}))
    except _Counted:
        pass
    finally:
        loop.train_epoch = original  # type: ignore[assignment]
    return counted[0]


def bench_msmser(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    n = 5531 if args.size == "paper" else args.utterances
    dim = 768 if args.size == "paper" else 20
    store = tmp / "msmser.h5"
    msmser_store(store, n, rng, dim=dim)
    model = ModelConfig(fusion="mit", **MSMSER_SIZES[args.size])
    base = TrainConfig(
        store=str(store), features=("hubert.L12", "mpnet"), model=model, protocol="loso",
        seeds=args.seeds, epochs=args.epochs, device=args.device, threads=args.threads,
        out=str(tmp / "runs"), overwrite=True,
    )  # fmt: skip
    out: dict[str, Any] = {"scenario": f"msmser {args.size}", "utterances": n}
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stacked = run_train(TrainConfig(**{**base.__dict__, "name": "stacked"}))
    out["stacked"] = stacked
    if args.device == "cuda":
        out["gpu_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out.update(_gpu_figures(store, base, stacked, n))
    if args.cuda_graphs:
        out["graphs"] = _with_graphs(base, store, n)
        out["graphs_speedup"] = stacked["wall"] / out["graphs"]["wall"]
        out["graphs_max_train_loss_gap"] = _graphs_gap(out["graphs"], stacked)
    if args.sequential:
        one = TrainConfig(**{**base.__dict__, "name": "sequential", "members_at_once": 1})
        out["sequential"] = run_train(one)
        out["speedup"] = out["sequential"]["wall"] / stacked["wall"]
    out["member_epochs_per_s"] = stacked["members"] * args.epochs / stacked["wall"]
    return out


def _with_graphs(base: TrainConfig, store: Path, n: int) -> dict[str, Any]:
    """The same stacked run with its steps replayed from CUDA graphs (`--cuda-graphs`),
    and how its steps ran (eager: a signature's first, or no plan; captured; replayed)."""
    from ser.train import capture

    made: list[capture.StepGraphs] = []
    original = capture.StepGraphs.__init__

    def spy(self: capture.StepGraphs, *args: Any) -> None:
        original(self, *args)
        made.append(self)

    capture.StepGraphs.__init__ = spy  # type: ignore[method-assign]
    torch.cuda.reset_peak_memory_stats()
    try:
        run = run_train(TrainConfig(**{**base.__dict__, "name": "graphs", "cuda_graphs": True}))
    finally:
        capture.StepGraphs.__init__ = original  # type: ignore[method-assign]
    run["steps"] = made[-1].counts
    run["graphs"] = len(made[-1].replays.graphs)
    run["gpu_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    run["estimated_100_epochs_min"] = _gpu_figures(store, base, run, n, flops=False)[
        "estimated_100_epochs_min"
    ]
    return run


def _graphs_gap(graphs: dict[str, Any], eager: dict[str, Any]) -> float:
    """The largest gap between two runs' per-epoch training losses (the same run either
    way, up to float rounding and padding)."""
    pairs = zip(graphs["train_losses"], eager["train_losses"], strict=True)
    return max(float(np.abs(np.subtract(a, b)).max()) for a, b in pairs)


def _gpu_figures(
    store: Path, base: TrainConfig, stacked: dict[str, Any], n: int, flops: bool = True
) -> dict[str, Any]:
    """Steady epoch time (the last epoch), utterances/s, TFLOP/s, 100-epoch estimate."""
    epoch = stacked["epoch_seconds"][-1]
    members = stacked["members"]
    train_utts = members * n * 3 / 5  # LOSO: about 3 of 5 sessions train, 1 validates
    out = {
        "steady_epoch_s": epoch,
        "train_utts_per_s_incl_val": train_utts / epoch,
        "estimated_100_epochs_min": (stacked["wall"] - sum(stacked["epoch_seconds"]) + 100 * epoch)
        / 60,
    }
    if flops:
        step = step_flops(store, base)
        out["step_gflop"] = step / 1e9
        out["achieved_tflops_est"] = step / (8 * members) * train_utts / epoch / 1e12
    return out


def bench_dialog(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    store = tmp / "dialog.h5"
    dialog_store(store, np.random.default_rng(0), args.audio_dim)
    model = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
    base = TrainConfig(
        store=str(store), features=("is13", "bert"), model=model, seeds=args.seeds,
        epochs=args.epochs, threads=args.threads, device=args.device, out=str(tmp / "runs"),
        overwrite=True,
    )  # fmt: skip
    out: dict[str, Any] = {"scenario": "dialog", "seeds": args.seeds, "audio_dim": args.audio_dim}
    out["stacked"] = run_train(TrainConfig(**{**base.__dict__, "name": "stacked"}))
    # The process's peak so far: the store's making, then the stacked run.
    out["stacked"]["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if args.cuda_graphs:
        out["graphs"] = run_train(TrainConfig(**{**base.__dict__, "name": "graphs",
                                                 "cuda_graphs": True}))  # fmt: skip
        out["graphs_speedup"] = out["stacked"]["wall"] / out["graphs"]["wall"]
        out["graphs_max_train_loss_gap"] = _graphs_gap(out["graphs"], out["stacked"])
    if args.sequential:
        one = TrainConfig(**{**base.__dict__, "name": "sequential", "members_at_once": 1})
        out["sequential"] = run_train(one)
        out["speedup_vs_sequential"] = out["sequential"]["wall"] / out["stacked"]["wall"]
    if args.baseline:
        out["baseline_wall"] = _baseline(args, store, tmp)
        out["speedup_vs_baseline"] = out["baseline_wall"] / out["stacked"]["wall"]
    return out


def _baseline(args: argparse.Namespace, store: Path, tmp: Path) -> float:
    """`ser train` of the checkout `args.baseline` on the same store, in a new process."""
    command = [
        sys.executable, "-m", "ser.cli", "train", "--store", str(store), "--features",
        "is13+bert", "--fusion", "add", "--fusion-at", "logits", "--loss", "perspective",
        "--seeds", str(args.seeds), "--epochs", str(args.epochs), "--out", str(tmp / "old"),
        "--device", args.device, "--overwrite", "--json",
    ]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["msmser", "dialog"])
    parser.add_argument("--size", choices=["demo", "paper"], default="demo")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="[msmser 3, dialog 150]")
    parser.add_argument("--utterances", type=int, default=413, help="msmser demo size")
    parser.add_argument(
        "--audio-dim", type=int, default=100, help="dialog: the audio vectors' width [100]"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sequential", action="store_true", help="also one after another")
    parser.add_argument("--baseline", default=None, help="dialog: another checkout to time")
    parser.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="on CUDA: also the stacked run with its steps replayed from CUDA graphs",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--glibc-heap",
        action="store_true",
        help="keep glibc's heap defaults (`ser` tunes them: ser/runtime/allocator.py)",
    )
    args = parser.parse_args()
    if args.cuda_graphs and args.device != "cuda":
        parser.error("--cuda-graphs replays steps on a GPU: give --device cuda")
    heap_tuned = False if args.glibc_heap else tune_heap()
    if args.epochs is None:
        args.epochs = 3 if args.scenario == "msmser" else 150
    with tempfile.TemporaryDirectory() as tmp:
        bench = bench_msmser if args.scenario == "msmser" else bench_dialog
        result = bench(args, Path(tmp))
    result.update(
        load_average=os.getloadavg(), threads=torch.get_num_threads(), device=args.device,
        epochs=args.epochs, heap_tuned=heap_tuned,
    )  # fmt: skip
    if args.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
