"""MSMSER and the fusion study on a synthetic MELD layout against IEMOCAP's at the same size.

Writes a synthetic IEMOCAP corpus (`SynthConfig`, the demo's: ~410 utterances in the
4-class set) and a synthetic MELD layout (`write_meld`) of about as many utterances in
its 7-class set (`TalkConfig(seconds=(1.0, 4.0), dialogs=10, turns=(6, 10))`: 50 dialogs,
the same duration range as IEMOCAP's), builds the tiny encoders, extracts the same feature
sets into a store each (`ser extract --features hubert,mpnet,is13`), then times
`ser train` in a fresh process each (CLI, 1 seed, the default threads):

- MSMSER: `--features hubert+mpnet --fusion mit --rmm` at the demo's sizes (d-model 64,
  4 heads, 8 queries, batches of 16, lr 5e-4), `--msmser-epochs` epochs;
- the fusion study's dialog-context model (Bi-GRU over each dialog): `--features
  is13+mpnet --fusion add --fusion-at logits --loss perspective`, `--fusion-epochs`.

Each corpus trains under its own protocol: IEMOCAP `session5` (train sessions 1-4 less
the validation session), MELD `official` (train split; dev validates). The runs go
A B B A A B B A per model (A IEMOCAP, B MELD) so that load falls on both alike. For each
run: the process's wall time and CPU seconds, the run record's training seconds
(`run.json` `seconds`), training utterances, epochs, and seconds per epoch per 1000
training utterances (the like-for-like figure); then per model MELD / IEMOCAP of the
means and of each back-to-back pair (on a shared machine the load can swing several-fold
within minutes: the pairs' median is the steadier figure). One JSON object.

    .venv/bin/python benchmarks/bench_corpora.py               # ~4 min on 2 idle cores
    .venv/bin/python benchmarks/bench_corpora.py --repeats 2   # A B B A
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SER = [sys.executable, "-c", "from ser.cli import main; main()"]

MSMSER = ["--features", "hubert+mpnet", "--fusion", "mit", "--rmm", "--d-model", "64",
          "--heads", "4", "--queries", "8", "--batch-size", "16", "--lr", "5e-4"]  # fmt: skip
FUSION = ["--features", "is13+mpnet", "--fusion", "add", "--fusion-at", "logits",
          "--loss", "perspective"]  # fmt: skip

#: Each corpus's class set and protocol: IEMOCAP's 4 classes (the papers'), MELD's own 7.
CORPORA = {
    "iemocap": ["--classes", "4", "--protocol", "session5"],
    "meld": ["--classes", "7", "--protocol", "official"],
}


def ser(*args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """`ser ARGS` in a new process; RuntimeError for an exit status not in `ok`."""
    done = subprocess.run([*SER, *args], capture_output=True, text=True)
    if done.returncode not in ok:
        raise RuntimeError(f"ser {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def build(work: Path, dialogs_per_session: int, meld_dialogs: int) -> dict[str, Any]:
    """The two corpora, the tiny models and a store each; what was built and how long."""
    from ser.synth.corpus import write_corpus
    from ser.synth.plan import SynthConfig
    from ser.synth.talk import TalkConfig, write_meld
    from ser.synth.tiny import build_tiny_models

    started = time.perf_counter()
    iemocap = SynthConfig(dialogs_per_session=dialogs_per_session, duration_range=(1.0, 4.0))
    write_corpus(work / "iemocap", iemocap)
    talk = TalkConfig(speakers=4, seconds=(1.0, 4.0), dialogs=meld_dialogs, turns=(6, 10))
    meld = write_meld(work / "meld", talk)
    models = build_tiny_models(work / "models")
    written = time.perf_counter() - started
    built: dict[str, Any] = {"written_s": round(written, 1), "extract_s": {}, "stores": {}}
    for corpus in CORPORA:
        started = time.perf_counter()
        classes = ["--classes", "4"] if corpus == "iemocap" else []
        # MELD's layout lacks one wav on purpose (as the release does): exit 1, store complete.
        ser("extract", str(work / corpus), "--store", str(work / f"{corpus}.zarr"),
            "--features", "hubert,mpnet,is13", "--hubert-model", str(models.hubert),
            "--mpnet-model", str(models.mpnet), "--layers", "last", *classes,
            ok=(0, 1))  # fmt: skip
        built["extract_s"][corpus] = round(time.perf_counter() - started, 1)
        built["stores"][corpus] = store_facts(work / f"{corpus}.zarr")
    built["meld_config"] = {"seconds": talk.seconds, "dialogs": talk.dialogs, "turns": talk.turns}
    built["meld_dialogs"] = 5 * talk.dialogs
    built["meld_utterances_written"] = len(meld.files)
    built["iemocap_config"] = {
        "dialogs_per_session": iemocap.dialogs_per_session,
        "utterances_per_dialog": iemocap.utterances_per_dialog,
        "duration_range": iemocap.duration_range,
    }
    return built


def store_facts(store: Path) -> dict[str, Any]:
    """What each store holds: utterances, dialogs, their lengths and durations."""
    from ser.cache.store import FeatureStore

    manifest = FeatureStore.open(store).manifest
    duration = manifest.column("duration").astype(float)
    dialogs = manifest.column("dialog").tolist()
    per_dialog = [dialogs.count(d) for d in sorted(set(dialogs))]
    return {
        "utterances": len(manifest),
        "hours": round(float(duration.sum()) / 3600, 3),
        "duration_s": [round(float(duration.min()), 2), round(float(duration.mean()), 2),
                       round(float(duration.max()), 2)],
        "dialogs": len(per_dialog),
        "utterances_per_dialog": [min(per_dialog), round(statistics.mean(per_dialog), 1),
                                  max(per_dialog)],
    }  # fmt: skip


def train(work: Path, corpus: str, model: str, epochs: int, name: str) -> dict[str, Any]:
    options = MSMSER if model == "msmser" else FUSION
    load = os.getloadavg()[0]
    cpu = _children_cpu()
    started = time.perf_counter()
    ser("train", "--store", str(work / f"{corpus}.zarr"), "--out", str(work / "runs"),
        *CORPORA[corpus], *options, "--epochs", str(epochs), "--seed", "0", "--seeds", "1",
        "--name", name, "--overwrite")  # fmt: skip
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    record = json.loads((work / "runs" / name / "run.json").read_text())
    sizes = [fold["sizes"] for fold in record["folds"]]
    train_n = statistics.mean(size["train"] for size in sizes)
    epochs_run = statistics.mean(len(fold["curves"]["epoch"]) for fold in record["folds"])
    return {
        "corpus": corpus,
        "model": model,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "train_s": round(record["seconds"], 2),
        "protocol": record["protocol"],
        "classes": len(record["classes"]),
        "folds": len(sizes),
        "train_utterances": train_n,
        "val_utterances": statistics.mean(size["val"] for size in sizes),
        "test_utterances": statistics.mean(size["test"] for size in sizes),
        "epochs": epochs_run,
        "s_per_epoch_per_1000": round(record["seconds"] / epochs_run / train_n * 1000, 3),
        "ua": round(record["summary"]["ua"], 1),
        "load_before": round(load, 2),
    }


def cpu_model() -> str:
    """The CPU's model name, as `lscpu` gives it (Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes: less swayed by other
    work on the machine than wall time (a process waiting for a core uses none)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ratios(runs: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """MELD / IEMOCAP of the means, and of each adjacent pair (the two runs of one A B or
    B A, trained back to back under about the same load), for each timing."""
    keys = ("wall_s", "cpu_s", "train_s", "s_per_epoch_per_1000")
    mine = [run for run in runs if run["model"] == model]
    mean = {
        corpus: {
            key: statistics.mean(r[key] for r in mine if r["corpus"] == corpus) for key in keys
        }
        for corpus in CORPORA
    }
    pairs = [mine[i : i + 2] for i in range(0, len(mine) - 1, 2)]
    by_pair = {
        key: [
            round(next(r[key] for r in pair if r["corpus"] == "meld")
                  / next(r[key] for r in pair if r["corpus"] == "iemocap"), 3)
            for pair in pairs
        ]
        for key in keys
    }  # fmt: skip
    return {
        "of_means": {key: round(mean["meld"][key] / mean["iemocap"][key], 3) for key in keys},
        "by_pair": by_pair,
        "median_of_pairs": {key: round(statistics.median(v), 3) for key, v in by_pair.items()},
        "mean": {c: {k: round(v, 3) for k, v in m.items()} for c, m in mean.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogs-per-session", type=int, default=4, help="IEMOCAP's")
    parser.add_argument("--meld-dialogs", type=int, default=10, help="dev's and test's")
    parser.add_argument("--msmser-epochs", type=int, default=10)
    parser.add_argument("--fusion-epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=4, help="4: A B B A A B B A; 1: A B")
    parser.add_argument("--keep", type=Path, help="build here and keep it (else a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        loads = [round(os.getloadavg()[0], 2)]
        built = build(work, args.dialogs_per_session, args.meld_dialogs)
        runs = []
        order = (["iemocap", "meld"], ["meld", "iemocap"])
        for model, epochs in (("msmser", args.msmser_epochs), ("fusion", args.fusion_epochs)):
            for r in range(args.repeats):
                for corpus in order[r % 2]:
                    name = f"{model}_{corpus}_{r}"
                    runs.append(train(work, corpus, model, epochs, name))
        loads.append(round(os.getloadavg()[0], 2))
        out = {
            "machine": cpu_model(),
            "cores": os.cpu_count(),
            "built": built,
            "runs": runs,
            "meld_over_iemocap": {model: ratios(runs, model) for model in ("msmser", "fusion")},
            "load_average": loads,
        }
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
