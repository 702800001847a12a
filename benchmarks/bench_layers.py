"""Every layer of an encoder: the disk bytes of every layer of a base-size encoder (frames
and the pooled views), and extraction throughput of HuBERT-base and a Whisper encoder.

disk: `ser extract --features speech --layers all --pool mean,meanstd` (the runner, as
it ships) over a few minutes of synthetic IEMOCAP-shaped audio (bench_extract's
log-normal durations) with a randomly initialised HuBERT-base (hidden 768, 12 layers:
13 hidden states); each set's bytes on disk are measured (allocated blocks, and the
files' sizes), and beside them the same arrays written as EmoBox lays them out (one .npy
file per utterance per layer, float32). Measured per layer-hour of audio, then scaled to
IEMOCAP's 4-class set (5531 utterances, ~7 h): 13 hidden states of a base model, 25 of a
large one (1024-d).

throughput: utterances/s of the speech kind's extractor over the runner's plan (what
`ser extract` computes per batch; decoding runs beside it in a thread) for a random
HuBERT-base and a random Whisper encoder (whisper-small's: 12 layers, 768-d, 80 mels),
all layers kept, fp16 autocast on CUDA. On the CPU (`--device cpu`, few utterances) it is
the same code path: what the test suite runs as the GPU step's dry run.

    .venv/bin/python benchmarks/bench_layers.py disk --seconds 240
    .venv/bin/python benchmarks/bench_layers.py throughput --device cuda --utterances 400
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_extract import durations, save_hubert_base, write_corpus

from ser.cache import FeatureStore
from ser.extract.plan import DEFAULT_BATCH_SECONDS, plan_shards
from ser.extract.registry import build_extractor
from ser.extract.run import ExtractConfig, extract_features

RATE = 16000
#: IEMOCAP's 4-class set (neutral, happy + excited, angry, sad): utterances and hours.
IEMOCAP_UTTERANCES, IEMOCAP_HOURS = 5531, 7.0
#: (hidden states, width) of a base and a large model.
SIZES = {"base": (13, 768), "large": (25, 1024)}


def on_disk(paths: list[Path]) -> tuple[int, int]:
    """(allocated bytes, file bytes) of the files under `paths`."""
    files = [p for path in paths for p in ([path] if path.is_file() else path.rglob("*"))]
    stats = [f.stat() for f in files if f.is_file()]
    return sum(s.st_blocks * 512 for s in stats), sum(s.st_size for s in stats)


def store_bytes(folder: Path) -> tuple[int, int, int]:
    """A set in a Zarr store: (its rows' chunk files, their bytes: they grow with the data,
    a 4-byte crc32c each included; everything else, allocated: metadata, offsets, failures,
    fixed per set; the number of chunk files)."""
    chunks = [p for p in (folder / "data" / "c").rglob("*") if p.is_file()]
    data = on_disk(chunks)[1]
    return data, on_disk([folder])[0] - on_disk(chunks)[0], len(chunks)


def npy_bytes(rows: np.ndarray, width: int, block: int) -> int:
    """Allocated bytes of one .npy file per utterance of `rows` rows x `width` float32
    (a 128-byte header, rounded up to whole filesystem blocks)."""
    sizes = 128 + rows.astype(np.int64) * width * 4
    return int((-(-sizes // block) * block).sum())


def measure_disk(seconds: float, work: Path, size: str = "base") -> dict[str, Any]:
    """Extract all layers (frames, mean, meanstd) of a random HuBERT-base; bytes of each
    set on disk and of the same arrays as per-utterance .npy files (float32, one file per
    utterance per layer, in a folder per layer as EmoBox writes them)."""
    write_corpus(work / "IEMOCAP_full_release", durations(seconds))
    model = speech_models(work, size)["hubert-base"]
    config = ExtractConfig(
        features=("speech",),
        options={"speech": {"model": str(model), "layers": "all", "pool": "mean,meanstd"}},
        device="cpu",
        progress=False,
    )
    started = time.perf_counter()
    extract_features(work / "IEMOCAP_full_release", work / "f.zarr", config, Console(quiet=True))
    took = time.perf_counter() - started
    store = FeatureStore.open(work / "f.zarr")
    n, first = len(store.manifest), store.info("hubert-base-random.L0")
    states, block = int(first.attrs["n_layers"]) + 1, os.statvfs(work).f_bsize
    views: dict[str, dict[str, float]] = {}
    for view in ("", ".mean", ".meanstd"):
        names = [f"hubert-base-random.L{layer}{view}" for layer in range(states)]
        parts = [store_bytes(work / "f.zarr" / name) for name in names]
        dump = work / f"npy{view or '.frames'}"
        for name in names:
            data, folder = store.read(name), dump / name
            folder.mkdir(parents=True)
            for i, utt in enumerate(store.manifest.utt_ids):
                np.save(folder / f"{utt}.npy", data.utterance(i).astype(np.float32))
        rows = np.diff(store.read(names[0]).offsets)
        views[view or "frames"] = {
            "store_data_per_layer": sum(d for d, _, _ in parts) / states,
            "store_fixed_per_layer": sum(f for _, f, _ in parts) / states,
            "store_chunks_per_layer": sum(c for _, _, c in parts) / states,
            "npy_per_layer": on_disk([dump])[0] / states,
            "npy_modelled_per_layer": npy_bytes(rows, store.info(names[0]).dim, block),
            "rows": rows.tolist(),
        }
    return {
        "utterances": n,
        "hours": float(sum(store.manifest.column("duration"))) / 3600,
        "dim": int(first.dim),
        "layers": states,
        "block": block,
        "extract_seconds": took,
        "views": views,
    }


def per_layer_hour(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Bytes per layer and hour of audio, as measured: frames by the measured hours; the
    pooled views by utterances, at IEMOCAP's rate of utterances per hour (5531 in 7 h).
    The store's fixed files per set (a few KiB) are left out: they do not grow with audio."""
    rate = IEMOCAP_UTTERANCES / IEMOCAP_HOURS
    out = {}
    for view, m in result["views"].items():
        per = result["hours"] if view == "frames" else result["utterances"] / rate
        out[view] = {"store": m["store_data_per_layer"] / per, "npy": m["npy_per_layer"] / per}
    return out


def iemocap_totals(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """All layers of IEMOCAP's 4-class set, scaled from the measured run: the utterances
    (IEMOCAP-shaped durations) repeated to 5531, the width to 768 (base) or 1024 (large);
    the store's rows by bytes, plus each set's fixed files as measured; the .npy files by
    `npy_bytes` (the measured dump's model, checked against it)."""
    totals: dict[str, dict[str, float]] = {}
    times = IEMOCAP_UTTERANCES / result["utterances"]
    for size, (layers, width) in SIZES.items():
        for view, m in result["views"].items():
            dim = width * (2 if view == ".meanstd" else 1)
            rows = np.asarray(m["rows"])
            data = m["store_data_per_layer"] * times * width / result["dim"]
            totals[f"{size} {view}"] = {
                "store": layers * (data + m["store_fixed_per_layer"]),
                "npy": layers * npy_bytes(rows, dim, result["block"]) * times,
                "files_npy": layers * IEMOCAP_UTTERANCES,
            }
    return totals


def save_whisper_encoder(folder: Path) -> Path:
    """A random Whisper with whisper-small's encoder (12 layers, 768-d, 80 mels) and a
    1-layer decoder (the speech kind keeps the encoder only), saved with its processor."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    config = WhisperConfig(
        d_model=768,
        encoder_layers=12,
        encoder_attention_heads=12,
        encoder_ffn_dim=3072,
        decoder_layers=1,
        decoder_attention_heads=12,
        decoder_ffn_dim=3072,
        num_mel_bins=80,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        WhisperModel(config).eval().save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


def speech_models(work: Path, size: str) -> dict[str, Path]:
    """The two encoders, random: base size (the figures) or tiny (the tests' dry run of
    the same code path)."""
    if size == "tiny":
        from ser.synth.tiny import save_tiny_hubert, save_tiny_whisper

        return {
            "hubert-base": save_tiny_hubert(work / "hubert-base-random"),
            "whisper-small-encoder": save_tiny_whisper(work / "whisper-small-random"),
        }
    return {
        "hubert-base": save_hubert_base(work / "hubert-base-random"),
        "whisper-small-encoder": save_whisper_encoder(work / "whisper-small-random"),
    }


def throughput(
    device: torch.device, n: int, work: Path, layers: str, size: str = "base"
) -> dict[str, Any]:
    """Utterances/s of the speech kind over the runner's plan for both encoders."""
    seconds = durations(n * 4.46)[:n]
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(round(s * RATE))).astype(np.float32) for s in seconds]
    precision = "fp16" if device.type == "cuda" else "fp32"
    budget = DEFAULT_BATCH_SECONDS[device.type]
    plan = plan_shards(seconds, budget, shard_size=len(waves))
    batches = [batch for shard in plan.shards for batch in shard.batches]
    results: dict[str, Any] = {"device": str(device), "precision": precision, "layers": layers}
    for label, folder in speech_models(work, size).items():
        extractor = build_extractor("speech", model=str(folder), layers=layers, precision=precision)
        extractor.load(device)
        extractor.extract([waves[i] for i in batches[0]])  # warm-up (kernels, allocator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for batch in batches:
            extractor.extract([waves[i] for i in batch])
        if device.type == "cuda":
            torch.cuda.synchronize()
        took = time.perf_counter() - started
        results[label] = {"utterances": n, "seconds": took, "utterances_per_s": n / took}
        print(f"{label}: {n / took:.1f} utterances/s ({n} in {took:.1f} s)", file=sys.stderr)
    results["audio_hours"] = sum(seconds) / 3600
    return results


def _print_disk(result: dict[str, Any]) -> None:
    mib = 2**20
    print(f"{result['utterances']} utterances, {result['hours'] * 60:.1f} min of audio, "
          f"{result['layers']} hidden states of {result['dim']}-d, extracted in "
          f"{result['extract_seconds']:.0f} s")  # fmt: skip
    print("| view | ser store, MiB per layer-hour | .npy dump, MiB per layer-hour | ratio |")
    print("|---|---|---|---|")
    for view, m in per_layer_hour(result).items():
        print(f"| {view} | {m['store'] / mib:.3f} | {m['npy'] / mib:.3f} "
              f"| {m['npy'] / m['store']:.1f}x |")  # fmt: skip
    for view, m in result["views"].items():  # the .npy model against the measured dump
        print(f"{view}: .npy measured {m['npy_per_layer']:,.0f} B a layer, "
              f"modelled {m['npy_modelled_per_layer']:,.0f} B")  # fmt: skip
    print("| IEMOCAP 4-class, all layers | ser store | .npy dump | .npy files |")
    print("|---|---|---|---|")
    for label, t in iemocap_totals(result).items():
        print(f"| {label} | {t['store'] / mib:,.1f} MiB | {t['npy'] / mib:,.1f} MiB "
              f"| {t['files_npy']:,} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figure", choices=["disk", "throughput"])
    parser.add_argument("--seconds", type=float, default=240.0, help="disk: seconds of audio")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--utterances", type=int, default=400, help="throughput: how many")
    parser.add_argument("--layers", default="all", help="throughput: --layers of the sets")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--size", choices=["base", "tiny"], default="base", help="tiny: a dry run's models"
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    with tempfile.TemporaryDirectory(prefix="ser-layers-") as tmp:
        if args.figure == "disk":
            result = measure_disk(args.seconds, Path(tmp), args.size)
            result["per_layer_hour"] = per_layer_hour(result)
            result["iemocap"] = iemocap_totals(result)
            _print_disk(result)
        else:
            device = torch.device(args.device)
            result = throughput(device, args.utterances, Path(tmp), args.layers, args.size)
            print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
