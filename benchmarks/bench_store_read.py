"""Read throughput of a whole feature set: Zarr store, HDF5 store, numpy memmap.

Builds a realistic frame-level set (default 1.3 M frames x 768 fp16, ~2 GB: HuBERT-base
on all of IEMOCAP) through the real write path (shards + consolidate), then times
`FeatureStore.read` on each backend against `np.array(np.load(..., mmap_mode="r"))` of
the same bytes, all with a warm page cache. Each backend is written twice: with per-chunk
checksums (what ser writes: Zarr crc32c, HDF5 Fletcher-32, and the content sha256
recorded at consolidation) and in the layout of stores written before them, so the cost
of checking every chunk on every read is measured side by side. Targets: each store
>= 80 % of the memmap's throughput, store size <= 1.05 x the raw bytes.

    python benchmarks/bench_store_read.py                  # full size, ~2 GB per copy
    python benchmarks/bench_store_read.py --frames 200000  # quick
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser.cache import FeatureStore, Manifest, backend
from ser.synth.manifest import example_columns

UTTERANCES_PER_SHARD = 256


def make_lengths(frames: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Utterance lengths (gamma-like, as speech turns are) summing exactly to ``frames``."""
    n = max(1, round(frames / mean))
    lengths = np.maximum(1, rng.gamma(2.0, mean / 2.0, n)).astype(np.int64)
    lengths = np.maximum(1, (lengths * frames / lengths.sum()).astype(np.int64))
    lengths[-1] += frames - lengths.sum()
    while lengths[-1] < 1:  # rounding pushed the last one below 1: borrow from others
        lengths[np.argmax(lengths)] -= 1
        lengths[-1] += 1
    return lengths


def make_data(frames: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    data = np.empty((frames, dim), np.float16)  # [frames, dim]
    for start in range(0, frames, 65536):
        block = data[start : start + 65536]
        block[...] = rng.standard_normal(block.shape, dtype=np.float32)
    return data


def build_store(path: Path, data: np.ndarray, lengths: np.ndarray) -> FeatureStore:
    ids = [f"Ses0{1 + i % 5}F_impro01_F{i:05d}" for i in range(len(lengths))]
    store = FeatureStore.create(path, Manifest.from_columns(example_columns(ids)))
    attrs = {"extractor": "bench", "modality": "audio", "level": "frame"}
    store.begin_feature_set("bench", {**attrs, "dim": data.shape[1], "dtype": "float16"})
    writer = store.shard_writer("bench")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n_shards = 0
    for n_shards, start in enumerate(range(0, len(lengths), UTTERANCES_PER_SHARD), 1):
        indices = range(start, min(start + UTTERANCES_PER_SHARD, len(lengths)))
        writer.write(n_shards - 1, {i: data[offsets[i] : offsets[i + 1]] for i in indices})
    store.consolidate("bench", n_shards)
    return store


def timed(read: Callable[[], np.ndarray], repeats: int) -> tuple[list[float], np.ndarray]:
    out = read()  # warm the page cache (and the allocator)
    times = []
    for _ in range(repeats):
        del out
        start = time.perf_counter()
        out = read()
        times.append(time.perf_counter() - start)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1_300_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--mean-frames", type=float, default=130.0, help="per utterance")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="bench_store_", dir=args.dir))
    try:
        lengths = make_lengths(args.frames, args.mean_frames, rng)
        data = make_data(args.frames, args.dim, rng)
        raw = data.nbytes
        print(
            f"{args.frames} frames x {args.dim} float16 = {raw / 1e9:.2f} GB raw, "
            f"{len(lengths)} utterances, warm cache, best / median of {args.repeats}"
        )
        np.save(work / "raw.npy", data)
        stores = {}
        for suffix in (".zarr", ".h5"):
            for checked in (True, False):
                backend.CHUNK_CHECKSUMS = checked  # False: the layout written before
                label = f"{suffix[1:]}{'' if checked else ' (no checksums)'}"
                start = time.perf_counter()
                path = work / f"features{'' if checked else '-old'}{suffix}"
                stores[label] = build_store(path, data, lengths)
                print(f"  wrote {label:20s} (shards + consolidate) in "
                      f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        backend.CHUNK_CHECKSUMS = True
        del data

        t_mm, reference = timed(
            lambda: np.array(np.load(work / "raw.npy", mmap_mode="r")), args.repeats
        )
        base = raw / min(t_mm) / 1e9
        print(
            f"  {'memmap':7s} {base:6.2f} GB/s  (median {raw / statistics.median(t_mm) / 1e9:.2f})"
        )
        t_np, _ = timed(lambda: np.load(work / "raw.npy"), args.repeats)
        print(f"  {'np.load':7s} {raw / min(t_np) / 1e9:6.2f} GB/s  (plain read, for reference)")
        speeds = {}
        for label, store in stores.items():
            times, got = timed(lambda s=store: s.read("bench").data, args.repeats)
            assert np.array_equal(got, reference), "store content differs from the source"
            del got
            speed, median = raw / min(times) / 1e9, raw / statistics.median(times) / 1e9
            speeds[label] = speed
            size = store.info("bench").bytes / raw
            print(
                f"  {label:20s} {speed:6.2f} GB/s  (median {median:.2f})"
                f"  = {speed / base:.0%} of memmap   size {size:.4f} x raw"
            )
        for fmt in ("zarr", "h5"):
            checked, plain = speeds[fmt], speeds[f"{fmt} (no checksums)"]
            print(f"  {fmt}: checksums cost {1 - checked / plain:.0%} of the read speed")
        start = time.perf_counter()
        stores["zarr"].verify()
        print(f"  zarr verify (every chunk, sha256): {time.perf_counter() - start:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
