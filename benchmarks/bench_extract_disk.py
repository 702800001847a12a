"""Bytes written and peak disk of `ser extract` of a frame set: rows placed straight into
the store (`ser.cache.scattered`) against staged shards laid out after (the path a set
takes when a row count cannot be known before extracting, and every set's before).

Builds a synthetic corpus, then extracts log-mel (a frame set) in a fresh process per
path: the bytes its write calls passed (/proc/self/io `wchar`: every file, the
manifest, staging, records and store alike), the disk beside the store (staging
included) sampled while it runs, and CPU time.

    python benchmarks/bench_extract_disk.py                 # ~320 utterances, ~12 MB of rows
    python benchmarks/bench_extract_disk.py --dialogs 8
    python benchmarks/bench_extract_disk.py --format hdf5   # an HDF5 store (one file)
    python benchmarks/bench_extract_disk.py --fail          # one utterance fails (NaN audio)

With `--fail` one utterance's audio holds a NaN sample: it fails, its place stays empty,
and the placed set is measured both as it is sealed (compacted in place) and laid out
anew beside its rows (`anew`, the path before compaction).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.cache import FeatureStore, scattered
from ser.cache.backend import folder_bytes
from ser.extract.run import ExtractConfig, extract_features
from ser.synth.corpus import SynthConfig, write_corpus


def measure(corpus: Path, store: Path, path: str) -> dict[str, float]:
    """One extraction, in this process: bytes written, peak disk, CPU seconds."""
    if path == "staged":  # every set's shards staged, then laid out in manifest order
        FeatureStore.scattered_writer = lambda self, name, counts: None  # type: ignore[method-assign,assignment]
    if path == "anew":  # placed, but a set with failures laid out anew beside its rows
        scattered.compactable = lambda writer, placed: False
    beside = [store, store.with_name(store.name + ".staging")]
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], sum(_bytes(p) for p in beside))

    sampler = threading.Thread(target=sample, daemon=True)
    config = ExtractConfig(features=("logmel",), device="cpu", shard_size=64, progress=False)
    sampler.start()
    written, cpu = _wchar(), time.process_time()
    extract_features(corpus, store, config)
    written, cpu = _wchar() - written, time.process_time() - cpu
    done.set()
    sampler.join()
    rows = FeatureStore.open(store).info("logmel80").bytes
    return {"written": written, "peak_disk": peak[0], "cpu_s": cpu, "set_bytes": rows}


def _bytes(path: Path) -> int:
    """A store's bytes (a Zarr folder or an HDF5 file) or a staging folder's; 0 if none."""
    try:
        return path.stat().st_size if path.is_file() else folder_bytes(path)
    except FileNotFoundError:  # gone between the look and the count
        return 0


def _fail_one(corpus: Path) -> None:
    """A NaN sample in the middle of the corpus's middle utterance: its header still
    counts its rows, its output fails."""
    wavs = sorted(corpus.rglob("*_F00*.wav"))
    audio, rate = sf.read(wavs[len(wavs) // 2], dtype="float32")
    audio[len(audio) // 2] = np.nan
    sf.write(wavs[len(wavs) // 2], audio, rate, subtype="FLOAT")


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogs", type=int, default=2, help="dialogs a session")
    parser.add_argument("--format", choices=["zarr", "hdf5"], default="zarr", help="the store's")
    parser.add_argument("--fail", action="store_true", help="one utterance fails (NaN audio)")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # corpus store path
    args = parser.parse_args()
    if args.one:
        corpus, store, path = args.one
        print(json.dumps(measure(Path(corpus), Path(store), path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "IEMOCAP_full_release"
        write_corpus(corpus, SynthConfig(dialogs_per_session=args.dialogs))
        if args.fail:
            _fail_one(corpus)
        for path in ("staged", "anew", "placed") if args.fail else ("staged", "placed"):
            suffix = ".zarr" if args.format == "zarr" else ".h5"
            child = [sys.executable, __file__, "--one", str(corpus), f"{tmp}/{path}{suffix}", path]
            out = json.loads(subprocess.run(child, capture_output=True, check=True).stdout)
            size, peak = out["set_bytes"], out["peak_disk"]
            print(
                f"{path}: wrote {out['written'] / 2**20:6.1f} MiB for a {size / 2**20:.1f} MiB "
                f"set ({out['written'] / size:.2f}x), peak disk {peak / 2**20:6.1f} MiB "
                f"({peak / size:.2f}x), cpu {out['cpu_s']:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
