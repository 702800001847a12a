"""`ser predict --segment fixed:5` on a 10-minute and a 60-minute recording (CPU, or a
GPU with --device cuda): wall time and peak memory, to show that memory does not grow
with the recording's length.

Setup as benchmarks/bench_predict.py (the demo corpus, tiny models, HuBERT + MPNet, a
small MIT run), then a long recording of the demo's utterances one after another with a
1 s pause between them (written a block at a time), and one whole `ser predict` command
per length, its peak resident memory from the operating system (`os.wait4`).

Run:
    .venv/bin/python benchmarks/bench_segments.py --workdir /tmp/bp      # ~5 min
    python benchmarks/bench_segments.py --workdir /tmp/bp --device cuda  # a GPU's figure
(`--run RUN` skips the setup and predicts with that run; the setup itself is on the CPU.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
from bench_predict import setup

RATE = 16000


def long_recording(path: Path, wavs: list[str], minutes: float) -> None:
    """`minutes` of the utterances in turn, each followed by a second of silence."""
    pause = np.zeros(RATE, np.float32)
    written, i = 0, 0
    with soundfile.SoundFile(path, "w", RATE, 1) as out:
        while written < minutes * 60 * RATE:
            wave, _ = soundfile.read(wavs[i % len(wavs)], dtype="float32")
            out.write(wave)
            out.write(pause)
            written += len(wave) + len(pause)
            i += 1


def command(run: Path, path: Path, window: str, device: str) -> list[str]:
    """The `ser predict` command timed: this checkout's ser, whether installed or not."""
    return [
        sys.executable, "-m", "ser.cli", "predict", "--run", str(run), str(path),
        "--text", "hi", "--segment", window, "--device", device, "--json",
    ]  # fmt: skip


def timed(args: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one command (its stderr in `log`)."""
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    t0 = time.perf_counter()
    with log.open("w") as err:
        child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"failed: {' '.join(args)}\n{log.read_text()}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_predict"))
    parser.add_argument("--minutes", default="10,60")
    parser.add_argument("--window", default="fixed:5")
    parser.add_argument("--device", default="cpu", help="ser predict's --device (cpu, cuda)")
    parser.add_argument("--run", type=Path, help="a trained run to use instead of the setup's")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    run, listing = setup(args.workdir, 3)
    run = args.run or run
    wavs = [line.split(",")[0] for line in listing.read_text().splitlines()[1:]]
    print(f"run {run}, --segment {args.window}, {args.device}, {os.cpu_count()} cores")
    for minutes in map(float, args.minutes.split(",")):
        path = args.workdir / f"talk{minutes:g}.wav"
        if not path.exists():
            long_recording(path, wavs, minutes)
        log = args.workdir / f"talk{minutes:g}.{args.device}.log"
        wall, rss = timed(command(run, path, args.window, args.device), log)
        print(f"  {minutes:5g} min  {wall:7.1f} s  {rss:7.0f} MiB peak RSS  "
              f"({minutes * 60 / wall:.0f}x real time)")  # fmt: skip


if __name__ == "__main__":
    main()
