"""`ser predict` batched vs once per file, on the demo corpus with a demo run (CPU).

Setup (as `make demo` does, timed apart): the demo corpus (413 utterances), the tiny
models, `ser extract` of HuBERT + MPNet, and a small MSMSER run (session5, its MIT
settings, few epochs) with checkpoints. Then:

- batched: one `ser predict --run RUN LIST.csv` over all 413 utterances (the CSV gives
  the gold transcripts), timed as a whole command (process start included) and
  in-process (`ser.predict.run.predict`);
- once per file: `predict` called per file in-process, as a script calling it per
  recording would (checkpoints and extractors loaded per call), on a sample of files,
  extrapolated per utterance; plus a few whole `ser predict FILE` commands (process
  start included), the honest "shell loop" baseline.

Run:
    .venv/bin/python benchmarks/bench_predict.py --workdir /tmp/bp      # ~3 min
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

# `ser` as this checkout runs it, installed or not (a GPU image has no venv of ours).
SER = (sys.executable, "-m", "ser.cli")


def sh(*args: str) -> None:
    """Run a setup step; its output only when it fails (then on stderr)."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"setup step failed ({done.returncode}): {' '.join(map(str, args))}")


def setup(work: Path, epochs: int) -> tuple[Path, Path]:
    corpus, store, runs = work / "IEMOCAP_full_release", work / "features.zarr", work / "runs"
    if not corpus.exists():
        sh(*SER, "demo-corpus", corpus, "--seed", "0")
    if not (work / "models").exists():
        sh(sys.executable, "-m", "ser.synth.tiny", work / "models")
    if not store.exists():
        sh(*SER, "extract", corpus, "--store", store, "--features", "hubert,mpnet",
           "--hubert-model", work / "models/tiny-hubert", "--mpnet-model",
           work / "models/tiny-mpnet", "--layers", "last", "--classes", "4")  # fmt: skip
    run = runs / "mit"
    if not (run / "checkpoints").exists():
        sh(*SER, "train", "--store", store, "--out", runs, "--classes", "4",
           "--protocol", "session5", "--features", "hubert+mpnet", "--fusion", "mit",
           "--d-model", "64", "--heads", "4", "--queries", "8", "--epochs", str(epochs),
           "--batch-size", "16", "--threads", "1", "--name", "mit", "--overwrite")  # fmt: skip
    from ser.cache import FeatureStore

    manifest = FeatureStore.open(store).manifest
    listing = work / "all.csv"
    with listing.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "transcript"])
        for wav, text in zip(manifest.column("wav"), manifest.column("transcript"), strict=True):
            writer.writerow([corpus / wav, text if str(text).strip() else "(silence)"])
    return run, listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_predict"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=20, help="files timed once per file")
    parser.add_argument("--commands", type=int, default=3, help="whole per-file commands")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the per-file commands too
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run, listing = setup(args.workdir, args.epochs)
    print(f"setup (corpus, models, extract, train): {time.perf_counter() - t0:.1f} s")

    from ser.predict.run import PredictConfig, predict

    rows = list(csv.DictReader(listing.open()))
    n = len(rows)
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    predict(PredictConfig(str(run), (rows[0]["path"],), text="warm up", device="cpu"))
    t0 = time.perf_counter()
    subprocess.run([*SER, "predict", "--run", str(run), str(listing), "--json",
                    "--device", "cpu"], check=True, capture_output=True, env=env)  # fmt: skip
    command = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = predict(PredictConfig(str(run), (str(listing),), device="cpu"))
    batched = time.perf_counter() - t0
    assert result.failed == 0, [p.error for p in result.predictions if p.error][:3]

    sample = rows[:: max(1, n // args.sample)][: args.sample]
    t0 = time.perf_counter()
    for row in sample:
        predict(PredictConfig(str(run), (row["path"],), text=row["transcript"], device="cpu"))
    per_file = (time.perf_counter() - t0) / len(sample)
    t0 = time.perf_counter()
    for row in sample[: args.commands]:
        subprocess.run([*SER, "predict", "--run", str(run), row["path"], "--text",
                        row["transcript"], "--device", "cpu", "--json"],
                       check=True, capture_output=True, env=env)  # fmt: skip
    per_command = (time.perf_counter() - t0) / max(1, args.commands)

    print(f"{n} utterances, run {run.name} (1 checkpoint), CPU, {os.cpu_count()} cores")
    print(f"  batched, one command      {command:7.2f} s  {n / command:7.1f} utt/s")
    print(f"  batched, in-process       {batched:7.2f} s  {n / batched:7.1f} utt/s")
    print(f"  once per file, in-process {per_file * n:7.2f} s  {1 / per_file:7.1f} utt/s"
          f"  (mean of {len(sample)} files, x{n})  batched is "
          f"{per_file * n / batched:.1f}x faster")  # fmt: skip
    print(f"  once per file, commands   {per_command * n:7.2f} s  {1 / per_command:7.1f} utt/s"
          f"  (mean of {args.commands}, x{n})  one batched command is "
          f"{per_command * n / command:.1f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
