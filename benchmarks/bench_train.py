"""Training speed: ser's in-memory data path against the fusion study's published one.

Wu et al.'s code trains its default configuration (logits fusion, ADD, perspective loss,
150 epochs, 20 dialogs per batch, sessions 1-4 -> 5) from a torch DataLoader with 4 worker
processes over pickled per-dialog samples, rebuilt every epoch. This script

1. builds a synthetic feature store of IEMOCAP's shape with the store API: 151 dialogs,
   5531 utterances in the 4-class set's per-session proportions, a 100-d audio vector
   ("is13", z-normalized like openSMILE functionals) and a 768-d text vector ("bert") per
   utterance, random features with some class signal;
2. times `ser.train.run.train` (the library entry point of `ser train`) on that
   configuration, loading included (issue 4 asks for under 15 s on a 2-core CPU), and
   once the whole `ser train ... --seeds 1` command in a new process, as `time` would
   (interpreter start, imports and exit included, which the baseline's figure is not);
   with `--compare-mkl`, also with oneDNN switched off (float32 products on MKL, as in
   stock PyTorch; see ser/train/models/linear.py), with `--compare-native` also without
   the C kernels (ser/train/models/native.py), runs interleaved;
3. times a re-creation of the baseline (per-epoch DataLoader, 4 workers, pickled dialogs,
   pad_sequence collation, plain Adam) driving the same architecture on the stock PyTorch
   modules the published code uses (`nn.GRU` over packed sequences,
   `nn.MultiheadAttention`; ser's own model runs a lockstep GRU instead, see
   ser/train/models/gru.py) on the same train/validation dialogs for a few epochs, and
   extrapolates to 150 epochs;
4. measures MSMSER on CPU at paper size (d 768, 8 heads, L 30) and at a reduced size:
   training and evaluation utterances per second on HuBERT-shaped frame sequences
   (768-d, 50 frames/s, IEMOCAP-like durations) and MPNet-shaped token sequences, and
   the seconds of one epoch of LOSO fold 1 (train 3423, validate 1023 utterances)
   extrapolated from them.

    .venv/bin/python benchmarks/bench_train.py            # all of it, ~1-2 minutes
    .venv/bin/python benchmarks/bench_train.py --skip-msmser --json
    .venv/bin/python benchmarks/bench_train.py --threads 1 --skip-msmser --skip-baseline

On a shared 2-core machine, time when it is otherwise idle (the load average is printed):
with 2 threads, another busy process stalls every parallel region of PyTorch's OpenMP.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader, Dataset

from ser.allocator import tune_heap
from ser.cache import FeatureStore
from ser.cache.manifest import Manifest
from ser.cache.testing import example_columns
from ser.labels import get_label_set
from ser.precision import resolve_precision
from ser.train.batch import Batch, Unit
from ser.train.data import Batches, load_data
from ser.train.features import resolve_features
from ser.train.loop import evaluate, train_epoch
from ser.train.models import ModelConfig, build_model, native, plan_inputs
from ser.train.models.base import ModelOutput
from ser.train.models.config import FeatureInfo
from ser.train.models.dialog import DialogModel
from ser.train.run import TrainConfig, train

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


def fusion_store(path: Path, rng: np.random.Generator) -> FeatureStore:
    """The fusion study's shape: one 100-d audio and one 768-d text vector per utterance."""
    manifest = synthetic_manifest(rng)
    store = FeatureStore.create(path, manifest)
    labels, ones = class_index(manifest), np.ones(len(manifest), dtype=np.int64)
    add_feature_set(
        store,
        "is13",
        attrs_of("is13", "audio", "utterance", 100, "float32"),
        signal_rows(labels, ones, 100, 0.12, rng, "float32"),
    )
    add_feature_set(
        store,
        "bert",
        attrs_of("bert", "text", "utterance", 768, "float16"),
        signal_rows(labels, ones, 768, 0.04, rng, "float16"),
    )
    return store


# -- ser ------------------------------------------------------------------------------
FUSION = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")


def time_ser(store_path: Path, out: Path, device: str, precision: str = "auto") -> dict[str, Any]:
    config = TrainConfig(
        store=str(store_path),
        features=("is13", "bert"),
        model=FUSION,
        protocol="session5",
        seeds=1,
        device=device,
        precision=precision,
        out=str(out),
        name="bench",
    )
    start, cpu, load = time.perf_counter(), _cpu_seconds(), os.getloadavg()[0]
    record = train(config)
    seconds = time.perf_counter() - start
    fold = record["folds"][0]
    return {
        # Other processes' load slows a 2-core machine down: 1-minute load averages
        # before and after (about 1 with this process alone).
        "load_average": [load, os.getloadavg()[0]],
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu,
        "load_seconds": record["timings"]["load"],
        "epochs": record["config"]["epochs"],
        "per_epoch": fold["seconds"] / record["config"]["epochs"],
        "test_ua": fold["metrics"]["ua"],
        "sizes": fold["sizes"],
        "precision": record["config"]["precision"],
    }


@contextmanager
def mkldnn_enabled(enabled: bool) -> Iterator[None]:
    """PyTorch's oneDNN switch, without the warning it prints about Intel GPUs."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration")
        with torch.backends.mkldnn.flags(enabled=enabled):
            yield


def time_cli(
    store_path: Path, out: Path, precision: str, threads: int | None, glibc_defaults: bool
) -> float:
    """Wall seconds of the `ser train` command for the same run, in a new process."""
    command = [sys.executable, "-m", "ser.cli", "train", "--store", str(store_path)]
    command += ["--features", "is13+bert", "--fusion", "add", "--fusion-at", "logits"]
    command += ["--loss", "perspective", "--protocol", "session5", "--seeds", "1"]
    command += ["--precision", precision, "--out", str(out), "--json"]
    if threads:
        command += ["--threads", str(threads)]
    env = dict(os.environ)
    if glibc_defaults:
        env["SER_TUNE_HEAP"] = "0"
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


# -- the baseline's data path ---------------------------------------------------------
class PickledDialogs(Dataset):
    """Per-dialog samples kept pickled, unpickled and tensorised on every access."""

    def __init__(self, blobs: list[bytes]) -> None:
        self.blobs = blobs

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sample = pickle.loads(self.blobs[i])
        return (
            torch.FloatTensor(sample["audio"]),
            torch.FloatTensor(sample["text"]),
            torch.LongTensor(sample["labels"]),
        )


def collate(samples: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    audio, text, labels = zip(*samples, strict=True)
    return (
        pad_sequence(list(audio), batch_first=True),
        pad_sequence(list(text), batch_first=True),
        pad_sequence(list(labels), batch_first=True, padding_value=-100),
    )


def dialog_blobs(store: FeatureStore, rows_by_dialog: list[np.ndarray]) -> list[bytes]:
    audio = np.asarray(store.read("is13").data, dtype=np.float32)
    text = np.asarray(store.read("bert").data, dtype=np.float32)
    # The baseline's audio vectors come z-normalized from its feature file.
    audio = (audio - audio.mean(0)) / (audio.std(0) + 1e-6)
    labels = class_index(store.manifest)
    return [
        pickle.dumps({"audio": audio[r], "text": text[r], "labels": labels[r]})
        for r in rows_by_dialog
    ]


class StockDialogModel(nn.Module):
    """ser's logits-ADD model run on the stock modules the published code uses: per
    modality FC + ReLU, `nn.GRU` over packed sequences, dropout, `nn.MultiheadAttention`
    with a key padding mask, dropout, FC (ser's forward before its lockstep GRU).
    Parameters are those of a ser `DialogModel`."""

    def __init__(self, model: DialogModel) -> None:
        super().__init__()
        self.model = model
        self.p = float(model.config.dropout or 0.0)

    def set_epoch(self, epoch: int, total: int) -> None:
        self.model.set_epoch(epoch, total)

    def forward(self, batch: Batch) -> ModelOutput:
        mask = batch.utt_mask
        assert mask is not None
        lengths = mask.sum(dim=1).clamp(min=1).cpu()  # real utterances lead every dialog
        logits = {}
        for m in self.model.modalities:
            fc, bigru, attention, classifier = cast(Any, self.model.branches[m])
            x = torch.relu(fc.fc(batch.x[self.model.spec(m).name]))
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, _ = pad_packed_sequence(bigru.gru(packed)[0], True, total_length=x.shape[1])
            y = F.dropout(y, self.p, self.training)
            y = attention.attn(y, y, y, key_padding_mask=~mask, need_weights=False)[0]
            y = F.dropout(y.masked_fill(~mask.unsqueeze(-1), 0.0), self.p, self.training)
            logits[m] = classifier.fc(y).masked_fill(~mask.unsqueeze(-1), 0.0)
        return ModelOutput(logits["audio"] + logits["text"], logits)

    def loss(self, out: ModelOutput, batch: Batch) -> torch.Tensor:
        return self.model.loss(out, batch)


def baseline_epoch(
    model: Any, optimizer: Any, train_set: Dataset, eval_set: Dataset, device: torch.device
) -> None:
    model.train()
    model.set_epoch(0, PAPER_EPOCHS)
    loader = DataLoader(
        train_set, batch_size=20, shuffle=True, num_workers=WORKERS, collate_fn=collate
    )
    for batch in loader:
        optimizer.zero_grad()
        b = _as_batch(batch, device)
        model.loss(model(b), b).backward()
        optimizer.step()
    model.eval()
    loader = DataLoader(
        eval_set, batch_size=20, shuffle=False, num_workers=WORKERS, collate_fn=collate
    )
    with torch.no_grad():
        for batch in loader:
            model(_as_batch(batch, device)).logits.argmax(-1).cpu()


def _as_batch(batch: tuple[torch.Tensor, ...], device: torch.device) -> Batch:
    audio, text, labels = (t.to(device) for t in batch)  # the per-step host -> device copy
    mask = labels != -100
    return Batch(
        x={"is13": audio, "bert": text},
        mask={},
        labels=labels,
        index=torch.zeros_like(labels),
        utt_mask=mask,
    )


def time_baseline(
    store: FeatureStore, device: torch.device, epochs: int, sizes: dict[str, int]
) -> dict[str, Any]:
    manifest = store.manifest
    sessions = np.asarray(manifest.column("session"))
    dialogs = np.asarray(manifest.column("dialog"))
    # The same sides as ser's session5 run: train sessions 2-4, validate on session 1.
    sides = {"train": (2, 3, 4), "val": (1,)}
    blobs = {}
    for side, chosen in sides.items():
        rows = np.flatnonzero(np.isin(sessions, chosen))
        blobs[side] = dialog_blobs(
            store, [rows[dialogs[rows] == d] for d in np.unique(dialogs[rows])]
        )
    assert sum(np.isin(sessions, sides["train"])) == sizes["train"]
    torch.manual_seed(0)
    _, specs = plan_inputs(
        FUSION,
        [
            FeatureInfo("is13", "audio", "utterance", 100),
            FeatureInfo("bert", "text", "utterance", 768),
        ],
    )
    model = StockDialogModel(cast(DialogModel, build_model(FUSION, specs, 4))).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    times = []
    cpu = _cpu_seconds()
    for _ in range(epochs):
        start = time.perf_counter()
        baseline_epoch(
            model, optimizer, PickledDialogs(blobs["train"]), PickledDialogs(blobs["val"]), device
        )
        times.append(time.perf_counter() - start)
    per_epoch = float(np.mean(times))
    return {
        "epochs_timed": epochs,
        "per_epoch": per_epoch,
        "extrapolated": per_epoch * PAPER_EPOCHS,
        "cpu_extrapolated": (_cpu_seconds() - cpu) / epochs * PAPER_EPOCHS,
    }


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the loaders' workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- MSMSER -----------------------------------------------------------------------------
def msmser_store(path: Path, n: int, rng: np.random.Generator) -> FeatureStore:
    """`n` utterances drawn from the synthetic corpus: HuBERT frames and MPNet tokens, 768-d."""
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
        attrs_of("hubert", "audio", "frame", 768, "float16"),
        signal_rows(labels, frames, 768, 0.1, rng, "float16"),
        shard=64,
    )
    add_feature_set(
        store,
        "mpnet",
        attrs_of("mpnet", "text", "token", 768, "float16"),
        signal_rows(labels, tokens, 768, 0.1, rng, "float16"),
        shard=64,
    )
    return store


def time_msmser(
    store: FeatureStore, config: ModelConfig, device: torch.device, precision: str
) -> dict[str, Any]:
    features = resolve_features(store, ["hubert", "mpnet"])
    data = load_data(store, features, get_label_set("4"), device)
    infos = [FeatureInfo(f.name, f.modality, f.level, f.dim) for f in features]
    planned_unit, specs = plan_inputs(config, infos)
    unit = cast(Unit, planned_unit)
    torch.manual_seed(0)
    model = build_model(config, specs, 4).to(device)
    model.set_epoch(0, 100)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    everything = np.arange(len(data))
    # A first epoch over the same utterances, timed apart: on a GPU it pays one-time costs
    # for each new sequence length (kernel selection, plans), ~3 s here, more with cuDNN's
    # attention (msmser.py).
    seconds = []
    for _ in range(2):
        batches = Batches(data, everything, specs, unit, 8, shuffle=True)
        start = time.perf_counter()
        train_epoch(model, batches, optimizer, scaler, precision)
        seconds.append(time.perf_counter() - start)
    train_rate = len(data) / seconds[1]
    evaluate(model, Batches(data, everything, specs, unit, 8), data.classes, precision)
    start = time.perf_counter()
    evaluate(model, Batches(data, everything, specs, unit, 8), data.classes, precision)
    eval_rate = len(data) / (time.perf_counter() - start)
    epoch = FOLD1["train"] / train_rate + FOLD1["val"] / eval_rate
    frames = data.features[features[0].name].lengths_np
    return {
        "utterances_timed": len(data),
        "first_epoch_seconds": seconds[0],
        "mean_frames": float(frames.mean()),
        "train_utt_per_s": train_rate,
        "eval_utt_per_s": eval_rate,
        "epoch_seconds": epoch,
        "precision": precision,
    }


SIZES = {
    "paper (d 768, 8 heads, L 30)": ModelConfig(fusion="mit"),
    "reduced (d 128, 4 heads, L 8, 1 layer)": ModelConfig(
        fusion="mit", d_model=128, heads=4, queries=8, layers=1, decoder_layers=1
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--baseline-epochs", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--repeats", type=int, default=2, help="ser runs, best of N")
    parser.add_argument(
        "--precision",
        default="auto",
        help="ser train --precision, or a comma list to compare (e.g. auto,fp32); the first "
        "is compared with the baseline",
    )
    parser.add_argument("--msmser-utterances", type=int, default=48, help="timed at paper size")
    parser.add_argument("--skip-msmser", action="store_true")
    parser.add_argument("--skip-cli", action="store_true", help="no `ser train` subprocess run")
    parser.add_argument(
        "--glibc-defaults",
        action="store_true",
        help="keep glibc's heap settings instead of tuning them as `ser` does (the command "
        "run is then given glibc's defaults too)",
    )
    parser.add_argument(
        "--compare-mkl",
        action="store_true",
        help="also time each precision with oneDNN switched off, so that float32 products "
        "run on MKL as in stock PyTorch (ser/train/models/linear.py), runs interleaved",
    )
    parser.add_argument(
        "--compare-native",
        action="store_true",
        help="also time each precision with the C kernels switched off (the dialog models' "
        "Bi-GRU and attention on PyTorch's ops; ser/train/models/native.py), runs interleaved",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--json", action="store_true", help="print all figures as JSON")
    args = parser.parse_args()
    # As the `ser` command does, before anything big is allocated (ser/allocator.py).
    heap_tuned = False if args.glibc_defaults else tune_heap()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "heap_tuned": heap_tuned,
        "c_kernels": native.kernels() is not None,
    }
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        rng = np.random.default_rng(0)
        store = fusion_store(Path(tmp) / "fusion.zarr", rng)
        # Best of N whole runs (as timeit advises for noisy machines), precisions
        # interleaved; all runs are printed.
        precisions = args.precision.split(",")
        # (label, precision, oneDNN on, C kernels on)
        variants = [(p, p, True, True) for p in precisions]
        if args.compare_mkl:
            variants += [(f"{p}, MKL products", p, False, True) for p in precisions]
        if args.compare_native:
            variants += [(f"{p}, PyTorch ops (no C kernels)", p, True, False) for p in precisions]
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in variants}
        for i in range(args.repeats):
            for j, (label, p, onednn, kernels_on) in enumerate(variants):
                out = Path(tmp) / f"runs-{j}-{i}"
                with mkldnn_enabled(onednn), nullcontext() if kernels_on else native.disabled():
                    runs[label].append(time_ser(Path(tmp) / "fusion.zarr", out, args.device, p))
        results["ser_runs"] = {}  # by variant: precision, MKL products, no C kernels
        for label, timed in runs.items():
            best = min(timed, key=lambda r: r["seconds"])
            best["all_seconds"] = [r["seconds"] for r in timed]
            results["ser_runs"][label] = best
        results["ser"] = results["ser_runs"][precisions[0]]
        if not args.skip_cli:
            results["cli_seconds"] = time_cli(
                Path(tmp) / "fusion.zarr",
                Path(tmp) / "cli",
                precisions[0],
                args.threads,
                args.glibc_defaults,
            )
        if not args.skip_baseline:
            results["baseline"] = time_baseline(
                store, device, args.baseline_epochs, results["ser"]["sizes"]
            )
            results["speedup"] = results["baseline"]["extrapolated"] / results["ser"]["seconds"]
        if not args.skip_msmser:
            results["msmser"] = {}
            precision = resolve_precision(precisions[0], device, cpu_bf16=False)
            for label, config in SIZES.items():
                n = args.msmser_utterances if config.d_model is None else 4 * args.msmser_utterances
                sample = msmser_store(Path(tmp) / f"msmser{n}.zarr", n, np.random.default_rng(1))
                results["msmser"][label] = time_msmser(sample, config, device, precision)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        _print(results)


def _print(r: dict[str, Any]) -> None:
    ser_ = r["ser"]
    load = ", ".join(f"{v:.2f}" for v in r["ser"]["load_average"])
    heap = "tuned as by `ser`" if r["heap_tuned"] else "glibc's defaults"
    print(f"device {r['device']}, {r['threads']} torch threads, heap {heap}, load average {load}")
    kernels = "built (AVX-512)" if r["c_kernels"] else "not available: PyTorch's ops"
    print(f"C kernels for the dialog models' Bi-GRU and attention: {kernels}")
    sizes = ser_["sizes"]
    print(
        f"fusion study default run ({ser_['epochs']} epochs, logits ADD, perspective loss, "
        f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']} utterances):"
    )
    for requested, run in r["ser_runs"].items():
        print(
            f"  ser train --precision {requested} (= {run['precision']}), best: "
            f"{run['seconds']:.1f} s  (CPU {run['cpu_seconds']:.1f} s; load "
            f"{run['load_seconds']:.2f} s, {1000 * run['per_epoch']:.0f} ms/epoch, "
            f"test UA {run['test_ua']:.1f})"
        )
        if len(run["all_seconds"]) > 1:
            print("    every run: " + ", ".join(f"{v:.1f} s" for v in run["all_seconds"]))
    if "cli_seconds" in r:
        print(f"  `ser train ... --seeds 1` as a command: {r['cli_seconds']:.1f} s wall")
    if "baseline" in r:
        base = r["baseline"]
        print(
            f"  baseline (stock):     {base['extrapolated']:7.1f} s  "
            f"(CPU {base['cpu_extrapolated']:.1f} s; {base['per_epoch']:.2f} s/epoch "
            f"over {base['epochs_timed']} epochs, x{PAPER_EPOCHS})"
        )
        print(f"  speed-up:             {r['speedup']:7.1f} x")
    for label, m in r.get("msmser", {}).items():
        print(
            f"MSMSER {label}, {m['precision']}, {m['utterances_timed']} utterances timed "
            f"({m['mean_frames']:.0f} frames on average):"
        )
        print(
            f"  train {m['train_utt_per_s']:.1f} utt/s, eval {m['eval_utt_per_s']:.1f} utt/s "
            f"(after a first epoch over them: {m['first_epoch_seconds']:.1f} s); "
            f"one LOSO fold-1 epoch (train {FOLD1['train']}, val {FOLD1['val']}): "
            f"{m['epoch_seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
