"""Extraction's audio loading from MELD-like .mp4 clips, MP3 and Ogg against the same audio
as wavs: utterances per second and peak memory.

Writes `--utterances` clips of 2-8 s of the synthetic speech (`ser.synth.acted.speech`,
seeded) six ways: a 16 kHz mono PCM wav (what a user cut from a clip), the release's
48 kHz stereo AAC .mp4 (FFmpeg decodes it), the same 48 kHz stereo as a PCM wav
(libsndfile, resampled as the mp4 is: what the container costs beside the rate), and
libsndfile's MP3 (16 kHz mono), Ogg Vorbis (16 kHz mono) and Ogg Opus (48 kHz mono). Each
case runs in a fresh process, the cases in turn, `--runs` times: every file's header
(`audio_info`, what reading a corpus does), then every file decoded to 16 kHz mono
(`load_audio(path, 16000)`, what `ser extract` does per utterance), then counted
(`count_decoded`: decoded at its own rate, what gives a row count where the header
cannot), timed after one
untimed pass (page cache warm); the process's peak RSS after imports and at the end, and
the most one utterance's decoding holds at once (tracemalloc: Python's and numpy's
allocations, not FFmpeg's own buffers). A fourth case reads the 16 kHz wavs with PyAV
alone (its header, its frames, the same mean and soxr): what FFmpeg for every file,
libsndfile's included, would cost.

    .venv/bin/python benchmarks/bench_decode.py                    # 200 clips, 3 runs
    .venv/bin/python benchmarks/bench_decode.py --utterances 50 --runs 1   # quick
"""

from __future__ import annotations

import argparse
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
import soxr

from ser.synth import audio
from ser.synth.acted import speech, voice_of
from ser.synth.encode import write_encoded

CASES = (
    "wav16k-mono", "mp4-48k-stereo-aac", "wav48k-stereo",
    "mp3-16k-mono", "ogg-vorbis-16k-mono", "ogg-opus-48k-mono",
)  # fmt: skip
#: Each measured case: the folder it reads and how (ser's `load_audio`, or PyAV alone).
MEASURED = {**{case: (case, "ser") for case in CASES}, "wav16k-mono-by-ffmpeg": (CASES[0], "av")}


def write_clips(folder: Path, n: int, seed: int = 0) -> float:
    """`n` utterances of 2-8 s in each case's folder; their seconds in all."""
    for case in CASES:
        (folder / case).mkdir(parents=True)
    seconds = 0.0
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        mono = speech(rng, voice_of(seed, i % 6, "MF"[i % 2]), "hap", (2.0, 8.0)) / 32768
        seconds += len(mono) / audio.SAMPLE_RATE
        soundfile.write(folder / CASES[0] / f"u{i}.wav", mono, audio.SAMPLE_RATE, "PCM_16")
        high = soxr.resample(mono.astype(np.float32), audio.SAMPLE_RATE, 48000)
        stereo = np.stack([high, 0.8 * high], axis=1)  # [n, 2]
        write_encoded(folder / CASES[1] / f"u{i}.mp4", stereo, 48000)
        soundfile.write(folder / CASES[2] / f"u{i}.wav", stereo, 48000, "PCM_16")
        soundfile.write(folder / CASES[3] / f"u{i}.mp3", mono, audio.SAMPLE_RATE, format="MP3")
        soundfile.write(
            folder / CASES[4] / f"u{i}.ogg", mono, audio.SAMPLE_RATE, format="OGG", subtype="VORBIS"
        )
        soundfile.write(folder / CASES[5] / f"u{i}.ogg", high, 48000, format="OGG", subtype="OPUS")
    return seconds


CHILD = """
import json, sys, time, tracemalloc
from pathlib import Path
from ser.corpus.audio import audio_info, count_decoded, load_audio

def peak_rss_mib():  # this process's own high-water mark (ru_maxrss counts the parent's)
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024

if sys.argv[2] == "av":  # FFmpeg for a wav too: the choice ser.corpus.decode did not make
    import av, numpy as np, soxr

    def audio_info(path):
        with av.open(str(path)) as container:
            return container.streams.audio[0].duration

    def load_audio(path, rate):
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            channels, own = stream.codec_context.channels, stream.codec_context.sample_rate
            frames = [f.to_ndarray().reshape(-1, channels) for f in container.decode(stream)]
        mono = (np.concatenate(frames) / np.float32(32768)).mean(axis=1, dtype=np.float32)
        return mono if own == rate else soxr.resample(mono, own, rate, quality="HQ")

paths = sorted(Path(sys.argv[1]).iterdir())
rss = peak_rss_mib()
for path in paths:  # page cache warm; FFmpeg's first open
    load_audio(path, 16000)
started = time.perf_counter()
for path in paths:
    audio_info(path)
header_s = time.perf_counter() - started
started = time.perf_counter()
samples = sum(len(load_audio(path, 16000)) for path in paths)
decode_s = time.perf_counter() - started
started = time.perf_counter()
if sys.argv[2] == "ser":
    for path in paths:
        count_decoded(path)
count_s = time.perf_counter() - started
peak = peak_rss_mib()
tracemalloc.start()
traced = 0
for path in paths:  # what one utterance's decoding holds at its peak (numpy's arrays too)
    tracemalloc.reset_peak()
    load_audio(path, 16000)
    traced = max(traced, tracemalloc.get_traced_memory()[1])
print(json.dumps({
    "files": len(paths), "header_s": header_s, "decode_s": decode_s, "samples": samples,
    "count_s": count_s,
    "rss_after_imports_mib": rss, "peak_rss_mib": peak, "traced_peak_mib": traced / 2**20,
}))
"""


def measure(folder: Path, runs: int) -> dict[str, list[dict[str, Any]]]:
    """Each case in a fresh process, the cases in turn, `runs` times."""
    out: dict[str, list[dict[str, Any]]] = {case: [] for case in MEASURED}
    for _ in range(runs):
        for case, (files, how) in MEASURED.items():
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder / files), how],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            out[case].append(json.loads(done.stdout))
    return out


def summary(runs: dict[str, list[dict[str, Any]]], seconds: float) -> dict[str, Any]:
    """Per case, its fastest run: utterances and audio seconds per second, headers per
    second, and each against the 16 kHz wav's."""
    rows = {}
    for case, found in runs.items():
        # the fastest run: what a neighbour's load cannot make faster, only slower
        decode, header = min(r["decode_s"] for r in found), min(r["header_s"] for r in found)
        files = found[0]["files"]
        rows[case] = {
            "utt_per_s": round(files / decode, 1), "ms_per_utt": round(1000 * decode / files, 2),
            "count_ms_per_audio_s": round(1000 * min(r["count_s"] for r in found) / seconds, 3),
            "decode_ms_per_audio_s": round(1000 * decode / seconds, 3),
            "audio_x_realtime": round(seconds / decode, 1),
            "headers_per_s": round(files / header, 1),
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in found), 1),
            "rss_after_imports_mib": round(max(r["rss_after_imports_mib"] for r in found), 1),
            "one_utt_traced_peak_mib": round(max(r["traced_peak_mib"] for r in found), 2),
        }  # fmt: skip
    base = rows[CASES[0]]
    for row in rows.values():
        row["decode_cost_x_wav16k"] = round(base["utt_per_s"] / row["utt_per_s"], 2)
        row["header_cost_x_wav16k"] = round(base["headers_per_s"] / row["headers_per_s"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        started = time.perf_counter()
        seconds = write_clips(folder, args.utterances)
        written = time.perf_counter() - started
        load = os.getloadavg()[0]
        runs = measure(folder, args.runs)
        sizes = {c: sum(p.stat().st_size for p in (folder / c).iterdir()) for c in CASES}
        report = {
            "utterances": args.utterances, "audio_s": round(seconds, 1),
            "written_s": round(written, 1), "bytes": sizes,
            "fastest": summary(runs, seconds), "runs": runs,
            "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        }  # fmt: skip
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
