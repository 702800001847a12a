"""Peak resident memory of `ser extract` on one long recording: a synthetic wav of N
minutes (16 kHz, 16-bit, written block by block in a temporary folder), a one-row
manifest naming it, and `ser extract --features KIND` run as a child process; its peak
RSS (the kernel's, for the child and what it waited on) and wall time are printed.

    python benchmarks/bench_long_audio.py --minutes 120              # log-mel, 2 hours
    python benchmarks/bench_long_audio.py --minutes 10 --features is13
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
BLOCK_SECONDS = 60


def write_recording(path: Path, minutes: float, seed: int = 0) -> None:
    """A wav of `minutes` of tones in noise, written a minute at a time (never whole)."""
    rng = np.random.default_rng(seed)
    total = round(minutes * 60 * RATE)
    with soundfile.SoundFile(path, "w", RATE, 1, "PCM_16") as out:
        for start in range(0, total, BLOCK_SECONDS * RATE):
            n = min(BLOCK_SECONDS * RATE, total - start)
            t = (start + np.arange(n)) / RATE
            tone = 0.3 * np.sin(2 * np.pi * (220 + 40 * np.sin(t / 7)) * t)
            out.write((tone + 0.05 * rng.standard_normal(n)).astype(np.float32))


def write_manifest(folder: Path, wav: Path) -> Path:
    manifest = folder / "manifest.csv"
    manifest.write_text(f"utt_id,wav,label,speaker\nlong_001,{wav.name},neu,spk1\n")
    return manifest


def measure(minutes: float, features: str, work: Path) -> dict[str, object]:
    wav = work / "long.wav"
    write_recording(wav, minutes)
    manifest = write_manifest(work, wav)
    command = [
        sys.executable, "-m", "ser.cli", "extract", str(manifest), "--corpus", "manifest",
        "--store", str(work / "store.zarr"), "--features", features, "--device", "cpu", "-q",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ser extract failed ({done.returncode}): {done.stderr.strip()}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {
        "minutes": minutes,
        "features": features,
        "wav_mib": round(wav.stat().st_size / 2**20, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--features", default="logmel")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        print(json.dumps(measure(args.minutes, args.features, args.workdir)))
        return
    with tempfile.TemporaryDirectory(prefix="ser-long-") as work:
        print(json.dumps(measure(args.minutes, args.features, Path(work))))


if __name__ == "__main__":
    main()
