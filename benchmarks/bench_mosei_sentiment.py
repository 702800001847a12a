"""Do the `mosei-sentiment` preset's text, audio and fused runs beat a constant predictor
on the synthetic CMU-MOSEI corpus?

1. corpus: `ser.synth.cmu` in the SDK's layout, VIDEOS videos of the standard folds
   (train, valid, test), each segment's score carried by its speech and its text;
2. features: IS13 (audio) and the tiny random BERT's last layer (text; its token
   vectors keep the words' identity, so the text's cue words), extracted by `ser
   extract` (no downloads: `ser.synth.tiny` builds the model);
3. `ser sweep mosei-sentiment --set audio=is13 --set text=tiny-bert` (3 seeds), then
   `ser claims --sentiment` (claim (d): each row against the training median on Acc-2
   and MAE, by the claims' rule) and `ser report` (ours beside the published rows). Each
   row trains at the preset's rate (the MLPs' 1e-3, MSMSER's
   `ser.sweep.sentiment.FUSED_LR`); `--lr` fixes every row's.

Run:
    .venv/bin/python benchmarks/bench_mosei_sentiment.py --workdir /tmp/bms    # ~7 min
    .venv/bin/python benchmarks/bench_mosei_sentiment.py --workdir /tmp/bms --lr 1e-3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ser.cache import FeatureStore
from ser.synth.cmu import CmuConfig, write_cmu

SER = (sys.executable, "-m", "ser.cli")


def ser(*args: str | Path) -> str:
    """One `ser` command's stdout (its stderr shown when it fails)."""
    done = subprocess.run([*SER, *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ser {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--videos", default="60,15,20", help="train,valid,test videos")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--lr", type=float, help="every row's (default: the preset's)")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    videos = tuple(int(v) for v in args.videos.split(","))
    store = work / "mosei.zarr"
    if not store.exists():  # a second run (other epochs) reuses the corpus and its store
        write_cmu(work / "MOSEI", CmuConfig(videos=(videos[0], videos[1], videos[2])))
        models = work / "models"
        subprocess.run([sys.executable, "-m", "ser.synth.tiny", str(models)], check=True)
        ser("extract", work / "MOSEI", "--store", store, "--features", "is13,bert",
            "--bert-model", models / "tiny-bert", "--layers", "last", "--quiet")  # fmt: skip
    rate = () if args.lr is None else ("--fix", f"lr={args.lr}")
    out = work / f"sweep-e{args.epochs}-lr{'preset' if args.lr is None else f'{args.lr:g}'}"
    ser("sweep", "mosei-sentiment", "--store", store, "--out", out, "--set", "audio=is13",
        "--set", "text=tiny-bert", "--fix", f"epochs={args.epochs}", *rate,
        "--fix", "d_model=64")  # fmt: skip
    print(f"{len(FeatureStore.open(store).manifest)} segments, {sum(videos)} videos")
    print(ser("claims", "--sentiment", out))
    print(ser("report", out))
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
