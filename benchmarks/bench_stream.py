"""`ser predict --stream -`: the delay of a segment's line after its end, and memory over
an hour of input (CPU).

Setup (bench_predict's, as `make demo` does): the demo corpus, tiny models and store, an
audio-only MSMSER at the demo's settings (its `audio_only` run), and the demo's
recording (`ser demo-corpus --layout recording`: 3 min of two synthetic speakers).

- delay: the recording written into the command's stdin at real time (0.1 s blocks,
  paced by the clock, once the command has loaded its model); each line's delay is the
  time it arrived on stdout less the time the block holding the segment's end sample was
  written: the wait for the silence that closes it (--merge-gap, --pad), the queue and
  the prediction. Median, 95th percentile and maximum.
- memory: an hour of input (the recording 20 times over) written as fast as the command
  reads it (the reader's bounded queue holds the writer back), the command's RSS polled
  every 0.2 s: its peak, and its RSS after 5, 30 and 60 minutes of input.

Run:
    .venv/bin/python benchmarks/bench_stream.py --workdir /tmp/bp   # ~5 min
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import SER, setup, sh

RATE = 16000
BLOCK = 1600  # 0.1 s


def audio_run(work: Path, epochs: int) -> Path:
    run = work / "runs" / "audio_only"
    if not (run / "checkpoints").exists():
        sh(*SER, "train", "--store", work / "features.zarr", "--out", work / "runs",
           "--classes", "4", "--protocol", "session5", "--features", "hubert", "--fusion",
           "mit", "--d-model", "64", "--heads", "4", "--queries", "8", "--epochs", str(epochs),
           "--batch-size", "16", "--name", "audio_only", "--overwrite")  # fmt: skip
    return run


def recording(work: Path) -> np.ndarray:
    path = work / "recording" / "recording.wav"
    if not path.exists():
        sh(*SER, "demo-corpus", work / "recording", "--layout", "recording")
    return soundfile.read(path, dtype="int16")[0]


def start(run: Path, threads: int) -> tuple[subprocess.Popen[bytes], threading.Event]:
    """The streaming command, and an event set once it reads its stream."""
    command = [*SER, "predict", "--run", str(run), "--stream", "-", "--threads", str(threads)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    ready = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if b"reading 16 kHz PCM" in line:
                ready.set()
            elif b"error" in line:
                sys.stderr.write(line.decode())

    threading.Thread(target=watch, daemon=True).start()
    return proc, ready


def delays(run: Path, samples: np.ndarray, threads: int) -> list[float]:
    proc, ready = start(run, threads)
    ready.wait(120)
    arrived: list[tuple[float, float]] = []  # (segment end in seconds, arrival time)

    def read() -> None:
        assert proc.stdout is not None
        import json

        for line in proc.stdout:
            arrived.append((json.loads(line)["end"], time.monotonic()))

    reader = threading.Thread(target=read)
    reader.start()
    written = []  # per block: the time its samples were written
    assert proc.stdin is not None
    begin = time.monotonic()
    for k in range(0, len(samples), BLOCK):
        time.sleep(max(0.0, begin + k / RATE - time.monotonic()))
        proc.stdin.write(samples[k : k + BLOCK].tobytes())
        proc.stdin.flush()
        written.append(time.monotonic())
    proc.stdin.close()
    reader.join()
    proc.wait()
    last = len(written) - 1
    # The flushed last segment closes with the stream, not by silence: left out.
    return [at - written[min(int(end * RATE) // BLOCK, last)] for end, at in arrived[:-1]]


def memory(run: Path, samples: np.ndarray, threads: int, minutes: float) -> dict[str, float]:
    proc, ready = start(run, threads)
    ready.wait(120)
    watched = psutil.Process(proc.pid)
    fed = [0.0]
    marks: dict[str, float] = {}
    peak = [0.0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            rss = watched.memory_info().rss / 2**20
            peak[0] = max(peak[0], rss)
            for mark in (5, 30, 60):
                if fed[0] >= mark * 60 and f"rss_at_{mark}_min" not in marks:
                    marks[f"rss_at_{mark}_min"] = rss
            time.sleep(0.2)

    threading.Thread(target=poll, daemon=True).start()
    threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
    assert proc.stdin is not None
    total = int(minutes * 60 * RATE)
    started = time.monotonic()
    while fed[0] * RATE < total:
        proc.stdin.write(samples.tobytes())
        fed[0] += len(samples) / RATE
    proc.stdin.close()
    proc.wait()
    done.set()
    return {
        "input_min": fed[0] / 60,
        "wall_s": time.monotonic() - started,
        "peak_rss_mib": peak[0],
        **marks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_stream"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    setup(args.workdir, epochs=2)
    run = audio_run(args.workdir, epochs=2)
    samples = recording(args.workdir)
    found = np.array(delays(run, samples, args.threads))
    print(f"delay over {len(found)} segments of {len(samples) / RATE:.0f} s fed in real time: "
          f"median {np.median(found):.3f} s, p95 {np.percentile(found, 95):.3f} s, "
          f"max {found.max():.3f} s")  # fmt: skip
    print(
        f"memory over {args.minutes:.0f} min fed as fast as read:",
        memory(run, samples, args.threads, args.minutes),
    )


if __name__ == "__main__":
    main()
