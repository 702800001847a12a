"""Reading a CMU-MOSEI-sized corpus, and extracting spans against the same audio cut to files.

1. read: a layout of MOSEI's size in the SDK's shape (3,227 videos, the real fold ids,
   ~7 segments a video: ~23,000 segments; the wavs short noise, since reading decodes
   no audio, only headers), read by `ser corpus summary --json` in a fresh process: its
   wall time and peak memory (the child's maxrss), against the same command on the
   synthetic IEMOCAP demo corpus (413 utterances) per utterance.
2. spans: `ser extract --features logmel` over N segments read as spans of their
   videos' wavs, against a manifest corpus of the same samples cut to files: wall time
   of each command and whether the frames are equal.

Run:
    .venv/bin/python benchmarks/bench_cmu.py --workdir /tmp/bc        # ~3 min
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

from ser.corpus.kinds import cmu_sdk
from ser.corpus.kinds.cmu_mosei import AUDIO_DIR, TRANSCRIPT_DIR

SER = (sys.executable, "-m", "ser.cli")
# `ser` in a process that prints its own peak RSS (KiB) last on stderr as it exits.
PEAK = (
    sys.executable, "-c",
    "import atexit, resource, runpy, sys; sys.argv[0] = 'ser'; atexit.register(lambda: "
    "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); "
    "runpy.run_module('ser.cli', run_name='__main__')",
)  # fmt: skip
RATE = 16000


def timed(*args: str) -> tuple[float, float, str]:
    """(seconds, the command's peak RSS in MiB, stdout) of one `ser` command."""
    start = time.perf_counter()
    done = subprocess.run([*PEAK, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
    peak = int(done.stderr.strip().splitlines()[-1].split()[1])
    return seconds, peak / 1024, done.stdout


def write_mosei_sized(root: Path, segments: int, seed: int = 0) -> int:
    """The SDK's layout over every standard-fold video; returns the segments written."""
    rng = np.random.default_rng(seed)
    (root / AUDIO_DIR).mkdir(parents=True)
    (root / TRANSCRIPT_DIR).mkdir(parents=True)
    videos = [v for f in cmu_sdk.FOLDS for v in cmu_sdk.standard_folds("cmu-mosei").videos[f]]
    rows = []
    for video in videos:
        lines, at = [], 0.1
        for k in range(1, segments + 1):
            start, end = round(at, 3), round(at + 0.3, 3)
            lines.append(f"{video}___{k}___{start}___{end}___words of segment {k}")
            rows.append([video, start, end, *rng.uniform(-3, 3, 1), *rng.uniform(0, 3, 6)])
            at = end + 0.1
        noise = rng.normal(0, 0.01, round((at + 0.1) * RATE)).astype(np.float32)  # [n]
        soundfile.write(root / AUDIO_DIR / f"{video}.wav", noise, RATE)
        (root / TRANSCRIPT_DIR / f"{video}.txt").write_text("\n".join(lines) + "\n")
    with (root / "labels.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["video", "start", "end", *cmu_sdk.MOSEI_COLUMNS])
        writer.writerows(rows)
    return len(rows)


def bench_read(work: Path, segments: int) -> dict[str, float]:
    root = work / "mosei-sized"
    if not root.exists():
        n = write_mosei_sized(root, segments)
    else:
        n = sum(1 for _ in (root / "labels.csv").open()) - 1
    seconds, peak, _ = timed("corpus", "summary", str(root), "--json")
    demo = work / "iemocap"
    if not demo.exists():
        subprocess.run([*SER, "demo-corpus", str(demo)], check=True, capture_output=True)
    demo_seconds, demo_peak, out = timed("corpus", "summary", str(demo), "--json")
    demo_n = json.loads(out)["utterances"]
    return {
        "mosei_segments": n, "mosei_seconds": round(seconds, 2), "mosei_peak_mib": round(peak),
        "mosei_ms_per_segment": round(1000 * seconds / n, 3),
        "iemocap_utterances": demo_n, "iemocap_seconds": round(demo_seconds, 2),
        "iemocap_peak_mib": round(demo_peak),
        "iemocap_ms_per_utterance": round(1000 * demo_seconds / demo_n, 3),
    }  # fmt: skip


def bench_spans(work: Path, videos: int) -> dict[str, float | bool]:
    from ser.synth.cmu import CmuConfig, write_cmu

    for old in ("spans-corpus", "spans.zarr", "cut", "files.zarr"):
        shutil.rmtree(work / old, ignore_errors=True)
    truth = write_cmu(work / "spans-corpus", CmuConfig(videos=(videos, 0, 0), segments=(6, 8)))
    spans_store = work / "spans.zarr"
    t_spans, _, _ = timed("extract", str(truth.root), "--store", str(spans_store),
                          "--features", "logmel", "-q")  # fmt: skip
    from ser.cache import FeatureStore

    store = FeatureStore.open(spans_store)
    manifest = store.manifest.columns()
    cut = work / "cut"
    cut.mkdir()
    with (cut / "manifest.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["utt_id", "wav", "label", "speaker"])
        for n, utt_id in enumerate(manifest["utt_id"].tolist()):
            first, last = (round(manifest[c][n] * RATE) for c in ("span_start", "span_end"))
            wav = truth.root / str(manifest["wav"][n])
            samples, _ = soundfile.read(wav, start=first, stop=last, dtype="float32")
            soundfile.write(cut / f"{utt_id}.wav", samples, RATE)
            writer.writerow([utt_id, f"{utt_id}.wav", "neu", "s"])
    files_store = work / "files.zarr"
    t_files, _, _ = timed("extract", str(cut / "manifest.csv"), "--store", str(files_store),
                          "--features", "logmel", "-q")  # fmt: skip
    a, b = FeatureStore.open(spans_store), FeatureStore.open(files_store)
    (name,) = a.feature_sets()
    da, db = a.read(name), b.read(name)
    equal = all(
        np.array_equal(da.utterance(i), db.utterance(b.manifest.index(u)))
        for i, u in enumerate(manifest["utt_id"].tolist())
    )
    return {"segments": len(manifest["utt_id"]), "spans_seconds": round(t_spans, 2),
            "files_seconds": round(t_files, 2), "frames_equal": equal}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--segments", type=int, default=7, help="segments a video (read)")
    parser.add_argument("--videos", type=int, default=60, help="videos (spans)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"read": bench_read(args.workdir, args.segments),
                      "spans": bench_spans(args.workdir, args.videos)}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
