"""What each training augmentation does to test UA: `ser train` with and without
`--sampler balanced`, `--augment mask` (its default masks), `--mixup 0.2` and `--views
all`, 3 seeds
(members of one run, seeds 0-2), session 5 tested; each configuration's UA mean ± std
over the seeds and its difference to the baseline, paired by seed (the same seed starts
from the same weights), with the spread of the per-seed differences.

Two datasets:

- ``demo``: the demo's store (`scripts/common.sh`'s `extract_demo_store`: `ser
  demo-corpus`, the tiny encoders of `python -m ser.synth.tiny`, `ser extract --features
  hubert,mpnet,bert,is13,logmel`), made once into the work folder unless `--store PATH`
  names one, and MSMSER as the demo trains it (`train_main_models`: hubert+mpnet, `--fusion
  mit --rmm`, d 64, 4 heads, 8 queries, 20 epochs, batch 16, lr 5e-4).
- ``fusion``: `bench_fidelity.py`'s generated corpus of IEMOCAP's dialog shape (5311
  utterances, 100-d audio and 768-d text vectors), with the fusion study's model (`--fusion
  add --fusion-at logits --loss perspective --val none`, as that benchmark trains it) and,
  since that dialog model takes none of the options, the utterance-level MLP on the audio
  vectors (`--fusion none --features audio100 --val none`), which takes two.
  `--fusion-dialogs N` keeps the first N dialogs of each session (their rows as
  generated): a small store for tests/benchmarks/test_bench_augment.py, not for figures.

A configuration ser refuses for a model (`ser train` exits 2: masks need sequence inputs,
mixup utterance vectors, the balanced sampler utterance batches) is "n/a", with ser's
reason; a model that takes no option has no baseline run.

Views: the demo store is extracted with `--augment speed=0.9,1.1 --augment noise=20`
(its audio sets' views; the clean sets are the demo's), and `--views all` reads each
training utterance from one of them or the clean set each epoch. The demo store also
trains the utterance-level MLP on IS13, which takes the sampler, mixup and views. The
fusion study's arrays have no audio, so no views.

    nice -n 5 .venv/bin/python benchmarks/bench_augment.py --json

Progress lines go to stderr; the result is one JSON object on stdout. Figures and command:
benchmarks/README.md, "What does each augmentation do to UA?".
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_fidelity import Corpus, features, synthetic_corpus, write_store

SER = (sys.executable, "-c", "from ser.cli import main; main()")
CONFIGS: dict[str, tuple[str, ...]] = {
    "baseline": (),
    "sampler balanced": ("--sampler", "balanced"),
    "augment mask": ("--augment", "mask"),
    "mixup 0.2": ("--mixup", "0.2"),
    "views": ("--views", "all"),
}
# The demo store's audio sets also extracted at 0.9x and 1.1x speed and with noise at
# 20 dB SNR, for `--views all`.
VIEWS_EXTRACT = ("--augment", "speed=0.9,1.1", "--augment", "noise=20")
DEMO_SETS = "hubert,mpnet,bert,is13,logmel"  # extract_demo_store's
FIDELITY_SIGNAL = 1.4  # bench_fidelity.py's default class signal


@dataclass(frozen=True)
class Model:
    """One model trained on one dataset: its `ser train` options besides the store's."""

    dataset: str
    name: str
    args: tuple[str, ...]


def models(args: argparse.Namespace) -> list[Model]:
    mit = ("--fusion", "mit", "--rmm", "--d-model", "64", "--heads", "4", "--queries", "8",
           "--batch-size", "16", "--lr", "5e-4", "--epochs", str(args.demo_epochs))  # fmt: skip
    dialog = ("--fusion", "add", "--fusion-at", "logits", "--loss", "perspective")
    fusion_epochs = ("--val", "none", "--epochs", str(args.fusion_epochs))
    mlp_epochs = ("--val", "none", "--epochs", str(args.mlp_epochs))
    every = [
        Model("demo", f"MSMSER {args.demo_features}", ("--features", args.demo_features, *mit)),
        Model("demo", "MLP on is13", ("--features", "is13", "--fusion", "none",
                                      "--epochs", str(args.demo_epochs))),
        Model("fusion", "fusion study (ADD at logits, perspective)",
              ("--features", "audio100+text768", *dialog, *fusion_epochs)),
        Model("fusion", "MLP on audio100", ("--features", "audio100", "--fusion", "none",
                                            *mlp_epochs)),
    ]  # fmt: skip
    return [m for m in every if m.dataset in args.datasets.split(",")]


def demo_store(work: Path) -> Path:
    """The demo's store made as `extract_demo_store` makes it, into `work`."""
    corpus, tiny, store = work / "IEMOCAP_full_release", work / "models", work / "features.zarr"
    hush = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*SER, "demo-corpus", str(corpus), "--seed", "0"], **hush)
    subprocess.run([sys.executable, "-m", "ser.synth.tiny", str(tiny)], **hush)
    subprocess.run(
        [*SER, "extract", str(corpus), "--store", str(store), "--features", DEMO_SETS,
         "--hubert-model", str(tiny / "tiny-hubert"), "--mpnet-model", str(tiny / "tiny-mpnet"),
         "--bert-model", str(tiny / "tiny-bert"), "--layers", "last", "--classes", "4",
         "--quiet", *VIEWS_EXTRACT],
        **hush,
    )  # fmt: skip
    return store


def fidelity_store(work: Path, dialogs: int | None = None) -> Path:
    """bench_fidelity.py's generated arrays (its default data seed and signal) as a store;
    `dialogs`: only the first that many dialogs of each session (their rows as generated)."""
    rng = np.random.default_rng(0)
    corpus = synthetic_corpus(rng)
    audio, text = features(corpus, rng, FIDELITY_SIGNAL)
    if dialogs is not None:
        corpus, rows = first_dialogs(corpus, dialogs)
        audio, text = audio[rows], text[rows]
    store = work / "fidelity.zarr"
    write_store(store, corpus, audio, text)
    return store


def first_dialogs(corpus: Corpus, dialogs: int) -> tuple[Corpus, np.ndarray]:
    """The utterances of the first `dialogs` dialogs of each session, and their rows."""
    kept: dict[str, None] = {}  # dialogs in order of appearance, per session
    for session in np.unique(corpus.sessions):
        names = [d for d, s in zip(corpus.dialogs, corpus.sessions, strict=True) if s == session]
        kept |= dict.fromkeys(list(dict.fromkeys(names))[:dialogs])
    rows = np.array([i for i, d in enumerate(corpus.dialogs) if d in kept])
    picked = Corpus(
        [corpus.utt_ids[i] for i in rows], [corpus.dialogs[i] for i in rows],
        corpus.sessions[rows], [corpus.genders[i] for i in rows], corpus.orders[rows],
        corpus.labels[rows],
    )  # fmt: skip
    return picked, rows


def train(store: Path, out: Path, model: Model, config: str, args: argparse.Namespace) -> dict:
    """One `ser train` run: each seed's test UA, or ser's reason for refusing it."""
    name = re.sub(r"\W+", "-", f"{model.name} {config}").strip("-")
    command = [*SER, "train", "--store", str(store), "--out", str(out), "--name", name,
               "--classes", "4", "--protocol", "session5", "--seed", "0",
               "--seeds", str(args.seeds), "--device", "cpu", "--overwrite", *model.args,
               *CONFIGS[config]]  # fmt: skip
    command += ["--threads", str(args.threads)] if args.threads else []
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 2:  # a SerError: ser refuses the option for this model
        return {"na": done.stderr.strip().splitlines()[-1].removeprefix("error: ")}
    if done.returncode:
        sys.exit(f"{' '.join(command[3:])} failed:\n{done.stderr[-3000:]}")
    record = json.loads((out / name / "run.json").read_text())
    folds = sorted(record["folds"], key=lambda e: e["seed"])
    uas = [round(e["metrics"]["ua"], 2) for e in folds]
    return {"ua": uas, "seconds": round(time.perf_counter() - start, 1)}


def spread(values: list[float]) -> float | None:
    """Standard deviation over seeds (ddof 1, as ser reports); None for one seed."""
    return round(float(np.std(values, ddof=1)), 2) if len(values) > 1 else None


def summarise(row: dict, base: dict | None) -> dict:
    """Mean ± std of a row's UA and, beside a baseline, the per-seed difference's."""
    if "ua" not in row:
        return row
    row |= {"ua_mean": round(float(np.mean(row["ua"])), 2), "ua_std": spread(row["ua"])}
    if base is not None and "ua" in base and row["config"] != "baseline":
        diffs = [a - b for a, b in zip(row["ua"], base["ua"], strict=True)]
        row |= {"delta": round(float(np.mean(diffs)), 2), "delta_std": spread(diffs)}
    return row


def measure(store: Path, out: Path, model: Model, args: argparse.Namespace) -> list[dict]:
    """Every configuration of one model; the baseline only where an option applies."""
    runs = {c: train(store, out, model, c, args) for c in CONFIGS if c != "baseline"}
    if any("ua" in r for r in runs.values()):
        runs = {"baseline": train(store, out, model, "baseline", args), **runs}
    else:
        runs = {"baseline": {"na": "no option applies to this model: not run"}, **runs}
    rows = []
    for config, run in runs.items():
        names = {"dataset": model.dataset, "model": model.name, "config": config}
        row = summarise({**names, "options": " ".join(CONFIGS[config]), **run}, runs["baseline"])
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def machine() -> str:
    """lscpu's model name (the CPU the figures come from)."""
    done = subprocess.run(["lscpu"], capture_output=True, text=True)
    names = [ln.split(":", 1)[1].strip() for ln in done.stdout.splitlines() if "Model name" in ln]
    return names[0] if names else "unknown"


def run(args: argparse.Namespace, work: Path) -> dict:
    start, rows, stores = time.perf_counter(), [], {}
    for model in models(args):
        if model.dataset not in stores:
            made = time.perf_counter()
            if model.dataset == "demo":
                stores["demo"] = Path(args.store) if args.store else demo_store(work)
            else:
                stores["fusion"] = fidelity_store(work, args.fusion_dialogs)
            print(f"{model.dataset} store: {time.perf_counter() - made:.0f} s", file=sys.stderr)
        rows += measure(stores[model.dataset], work / "runs", model, args)
    return {
        "machine": machine(),
        "seeds": args.seeds,
        "epochs": {"demo": args.demo_epochs, "fusion": args.fusion_epochs, "mlp": args.mlp_epochs},
        "fusion_dialogs": args.fusion_dialogs,  # None: every dialog, as the figures are made
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default="demo,fusion", help="demo, fusion or both")
    parser.add_argument("--store", help="the demo's store, already extracted")
    parser.add_argument("--demo-features", default="hubert+mpnet", help="MSMSER's sets")
    parser.add_argument("--demo-epochs", type=int, default=20, help="the demo's MSMSER epochs")
    parser.add_argument("--fusion-epochs", type=int, default=30, help="the fusion study's")
    parser.add_argument("--mlp-epochs", type=int, default=10, help="the MLP's")
    parser.add_argument("--fusion-dialogs", type=int, help="the first N of each session only "
                        "(a small store, for tests; the figures: every dialog)")  # fmt: skip
    parser.add_argument("--threads", type=int, help="each run's torch threads (ser's default)")
    parser.add_argument("--work", type=Path, help="keep the stores and runs here")
    parser.add_argument("--json", action="store_true", help="the result on one line")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        result = run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="augment-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
