"""Reading a corpus of MSP-Podcast's size and building its manifest: seconds and peak memory.

Writes a synthetic MSP-Podcast layout (`Labels/labels_consensus.csv` and `Audios/*.wav`,
no transcripts) of `--utterances` rows (MSP-Podcast 1.11: ~150k, ~230 h), every wav the
same 0.25 s of 16 kHz PCM: reading takes each file's length from its header
(`soundfile.info`), whose cost does not grow with the audio, so the figure holds for the
real corpus's files (on a local disk, page cache warm: the second of two runs). Then, in a
fresh process each, `ser.corpus.registry.read_corpus(root, "msp-podcast", "8")` and
`Manifest.from_utterances(...)`, timed, with the process's peak RSS before and after.
`--votes K` also writes `Labels/labels_detailed.csv`, K annotators' votes a file (the
release: ~650,000 rows for ~116,000 files), which reading then takes into every record.

    .venv/bin/python benchmarks/bench_corpus.py                      # 150,000 utterances
    .venv/bin/python benchmarks/bench_corpus.py --votes 5            # with the votes
    .venv/bin/python benchmarks/bench_corpus.py --utterances 20000   # quick
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

CODES = "ASHUFDCNOX"
SPLITS = ("Train",) * 6 + ("Development", "Test1", "Test2")


def write_layout(root: Path, n: int, seed: int = 0, votes: int = 0) -> None:
    """`n` rows of labels and `n` identical short wavs in MSP-Podcast's layout, and
    `votes` annotators' votes a file where above 0."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    samples = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    soundfile.write(buffer, samples, 16000, format="WAV", subtype="PCM_16")
    wav = buffer.getvalue()
    (root / "Labels").mkdir(parents=True)
    (root / "Audios").mkdir()
    with (root / "Labels" / "labels_consensus.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
        )
        for i in range(n):
            name = f"MSP-PODCAST_{i // 40:04d}_{i % 40:04d}.wav"
            (root / "Audios" / name).write_bytes(wav)
            speaker = "Unknown" if i % 11 == 0 else str(i // 90)
            a, v, d = (round(float(x), 1) for x in rng.uniform(1, 7, 3))
            row = [name, CODES[i % 10], a, v, d, speaker, "MF"[i % 2], SPLITS[i % 9]]
            writer.writerow(row)
    if votes:
        write_votes(root / "Labels" / "labels_detailed.csv", n, votes)


def write_votes(path: Path, n: int, votes: int) -> None:
    """The detailed file's `worker; primary; secondary; A; V; D` field, `votes` a file."""
    names = ("Angry", "Sad", "Happy", "Surprise", "Fear", "Disgust", "Contempt", "Neutral",
             "Other-Curious")  # fmt: skip
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["FileName", "Detailed"])
        for i in range(n):
            name = f"MSP-PODCAST_{i // 40:04d}_{i % 40:04d}.wav"
            for j in range(votes):
                worker, emotion = f"WORKER{(i * 7 + j) % 3000:05d}", names[(i + j) % 9]
                writer.writerow([name, f"{worker}; {emotion}; Concerned; A:4.0; V:3.0; D:4.0"])


CHILD = """
import json, resource, sys, time
from ser.cache.manifest import Manifest
from ser.corpus.registry import read_corpus
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
kind, reading = read_corpus(sys.argv[1], "msp-podcast", "8")
read_s = time.perf_counter() - started
started = time.perf_counter()
manifest = Manifest.from_utterances(reading.utterances, reading.root)
print(json.dumps({
    "read_s": read_s, "manifest_s": time.perf_counter() - started,
    "utterances": len(reading.utterances), "problems": len(reading.problems),
    "rss_before_mib": before / 1024,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def measure(root: Path, runs: int) -> list[dict[str, Any]]:
    """Each run in a fresh process: imports, then the timed read and manifest."""
    out = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True
        )
        out.append(json.loads(done.stdout))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--votes", type=int, default=0, help="annotators' votes a file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work) / "MSP-Podcast"
        started = time.perf_counter()
        write_layout(root, args.utterances, votes=args.votes)
        written = time.perf_counter() - started
        load = os.getloadavg()[0]
        runs = measure(root, args.runs)
        loads = [round(load, 2), round(os.getloadavg()[0], 2)]
        print(json.dumps({"written_s": written, "runs": runs, "load_average": loads}, indent=2))


if __name__ == "__main__":
    main()
