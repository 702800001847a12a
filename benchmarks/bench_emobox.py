"""Reading EmoBox's metadata for its largest corpus (MSP-Podcast: 73,042 lines and one
fold of train, valid and test files): seconds and peak memory.

Writes a synthetic `data/msppodcast/` of `--utterances` lines in EmoBox's shape (its
`msppodcast.jsonl`, `label_map.json` of ten codes, `data.seg.wrd.stm` naming 1,273
speakers, `fold_1/` with 2/3 of the lines in train, 1/9 in valid, 2/9 in test), then, in
a fresh process each: `read_corpus(folder, "emobox", "all")` (the JSONL, the stm, the
three fold files, a stat of each wav), `Manifest.from_utterances`, and protocol emobox's
folds over the manifest, each timed, with the peak RSS. Once with every wav missing (a
problem each) and once with every wav present (empty files: the reader takes each
length from its line and never opens a wav), and beside them the floor: `json.loads` of
every line of the four files, nothing else.

    .venv/bin/python benchmarks/bench_emobox.py                      # 73,042 lines
    .venv/bin/python benchmarks/bench_emobox.py --utterances 10000   # quick
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

CODES = "NHASUFDCOX"  # EmoBox's map for MSP-Podcast: N Neutral, H Happy, ... X No-agreement
NAMES = ("Neutral", "Happy", "Angry", "Sad", "Surprise", "Fear", "Disgust", "Contempt",
         "Other", "No-agreement")  # fmt: skip
SPEAKERS = 1273
SIDES = ("train",) * 6 + ("valid", "test", "test")


def write_folder(folder: Path, n: int) -> list[Path]:
    """`n` lines of EmoBox's MSP-Podcast shape and their fold; the wav paths (unwritten)."""
    folder.mkdir(parents=True)
    (folder / "label_map.json").write_text(json.dumps(dict(zip(CODES, NAMES, strict=True))))
    files = {s: (folder / "fold_1" / f"msppodcast_{s}_fold_1.jsonl") for s in set(SIDES)}
    files["train"].parent.mkdir()
    handles = {s: p.open("w") for s, p in files.items()}
    wavs = []
    with (
        (folder / "msppodcast.jsonl").open("w") as jsonl,
        (folder / "data.seg.wrd.stm").open("w") as stm,
    ):
        for i in range(n):
            stem = f"MSP-PODCAST_{i // 40:04d}_{i % 40:04d}"
            wav = f"downloads/msppodcast/Audio/{stem}.wav"
            line = json.dumps({
                "key": f"msppodcast-{stem}", "dataset": "msppodcast", "wav": wav, "type": "raw",
                "sample_rate": 16000, "num_frame": 16000 * (2 + i % 9), "task": "category",
                "length": float(2 + i % 9), "emo": CODES[i % 10], "channel": 1,
            }) + "\n"  # fmt: skip
            jsonl.write(line)
            handles[SIDES[i % 9]].write(line)
            speaker = "Unknown" if i % 11 == 0 else str(i % SPEAKERS)
            stm.write(f"msppodcast-{stem} 1 {speaker} 0 2.0 <id={stem},spk={speaker}> X\n")
            wavs.append(Path(wav))
    for handle in handles.values():
        handle.close()
    return wavs


CHILD = """
import json, resource, sys, time
from pathlib import Path
mode, folder = sys.argv[1], Path(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "floor":
    started = time.perf_counter()
    paths = [folder / "msppodcast.jsonl", *sorted((folder / "fold_1").glob("*.jsonl"))]
    rows = [json.loads(line) for p in paths for line in p.open()]
    out = {"read_s": time.perf_counter() - started, "lines": len(rows)}
else:
    import numpy as np
    from ser.cache.manifest import Manifest
    from ser.corpus.options import ReadOptions
    from ser.corpus.protocols.emobox import EmoBoxFolds
    from ser.corpus.protocols.folds import FoldData
    from ser.corpus.registry import read_corpus
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    kind, reading = read_corpus(folder, "emobox", "all", ReadOptions(folder.parent.parent))
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    manifest = Manifest.from_utterances(reading.utterances, reading.root)
    manifest_s = time.perf_counter() - started
    started = time.perf_counter()
    n = len(manifest)
    data = FoldData(np.zeros(n, np.int64), manifest.column("speaker"),
                    {"fold_1": manifest.column("fold_1")})
    (fold,) = EmoBoxFolds("emobox").folds(data, "next-group", 0)
    out = {"read_s": read_s, "manifest_s": manifest_s,
           "folds_s": time.perf_counter() - started, "utterances": n,
           "problems": len(reading.problems),
           "sizes": [len(fold.train), len(fold.val), len(fold.test)]}
out["rss_before_mib"] = before / 1024
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(mode: str, folder: Path, runs: int) -> list[dict[str, Any]]:
    """`runs` fresh processes of `mode` (floor, or ser's read, manifest and folds)."""
    out = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(folder)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        out.append(json.loads(done.stdout))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=73_042)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        checkout = Path(work) / "EmoBox"
        folder = checkout / "data" / "msppodcast"
        started = time.perf_counter()
        wavs = write_folder(folder, args.utterances)
        written = time.perf_counter() - started
        loads = [round(os.getloadavg()[0], 2)]
        result: dict[str, Any] = {
            "written_s": written,
            "floor": measure("floor", folder, args.runs),
        }
        result["wavs_missing"] = measure("ser", folder, args.runs)
        (checkout / wavs[0]).parent.mkdir(parents=True)
        for wav in wavs:
            (checkout / wav).touch()
        result["wavs_present"] = measure("ser", folder, args.runs)
        result["load_average"] = [*loads, round(os.getloadavg()[0], 2)]
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
