"""Fidelity to the fusion study's published code: ser against
Wu, Lu & Dai's own training script on the same arrays.

One command (a) generates a deterministic corpus of IEMOCAP's 4-class dialog shape with
100-d audio and 768-d text utterance vectors that carry the class with noise, (b) trains
ser's fusion-study model on it (`ser train --fusion add --fusion-at logits --loss
perspective --protocol session5 --val none`, sessions 1-4 against 5, the last epoch
tested) for `--seeds` seeds, and (c) with `--published DIR` runs the authors' `main.py`
(github.com/Luyizhe/SpeechEmotion, a checkout outside this project whose `LoadData.py`
reads the pickle named by the FIDELITY_PKL environment variable) once per seed on the
same arrays, written in the pickle layout its loader reads. It prints each side's test
UA per seed, mean ± std, and the difference of the means.

    .venv/bin/python benchmarks/bench_fidelity.py --seeds 5 --published ../SpeechEmotion

Corpus: 151 dialogs in IEMOCAP's per-session counts (28, 30, 32, 30, 31), dialog
lengths spread like the real 4-class dialogs (5-110 utterances, mean ~37), labels a
Markov chain per dialog (the next utterance keeps the label with p 0.73, as in the real
corpus; else a draw from the class prior), two speakers taking turns. `--metadata CSV`
(columns utt_id, dialog, session, order, label: e.g. an IEMOCAP metadata file) takes
the dialogs, their order and the labels from a CSV instead. Nothing of IEMOCAP is part
of the project. Features: per class a centre in each modality, audio confusing happy
with neutral, text confusing angry with neutral (the paper's Table 3 pattern), a
speaker offset in the audio, Gaussian noise; no normalisation (the published code does
none), so ser's store imports them as plain arrays.

Figures and command: benchmarks/README.md, "Does ser match the fusion study's published code?".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("hap", "sad", "neu", "ang")  # the published code's label order
PRIOR = np.array([1636, 1084, 1708, 1103]) / 5531  # IEMOCAP 4-class counts (hap + exc)
SESSION_DIALOGS = (28, 30, 32, 30, 31)
PERSIST = 0.73  # P(next utterance keeps the label) in the real 4-class dialogs
AUDIO_DIM, TEXT_DIM = 100, 768


@dataclass(frozen=True)
class Corpus:
    """Utterances in dialog order: ids, dialog, session, speaker gender, order, class."""

    utt_ids: list[str]
    dialogs: list[str]
    sessions: np.ndarray
    genders: list[str]
    orders: np.ndarray
    labels: np.ndarray  # index into CLASSES


def synthetic_corpus(rng: np.random.Generator) -> Corpus:
    ids, dialogs, sessions, genders, orders, labels = [], [], [], [], [], []
    for session, n_dialogs in enumerate(SESSION_DIALOGS, 1):
        sizes = np.clip(np.round(rng.gamma(4.9, 7.5, size=n_dialogs)), 5, 110).astype(int)
        for d, size in enumerate(sizes):
            dialog = f"Ses{session:02d}{'FM'[d % 2]}_impro{d:02d}"
            label = int(rng.choice(4, p=PRIOR))
            for u in range(size):
                if u and rng.random() > PERSIST:
                    label = int(rng.choice(4, p=PRIOR))
                gender = "FM"[(u + int(rng.random() < 0.2)) % 2]
                ids.append(f"{dialog}_{gender}{u:03d}")
                dialogs.append(dialog)
                sessions.append(session)
                genders.append(gender)
                orders.append(u)
                labels.append(label)
    return Corpus(ids, dialogs, np.array(sessions), genders, np.array(orders), np.array(labels))


def metadata_corpus(path: Path) -> Corpus:
    """The 4-class utterances of a metadata CSV (exc counted as hap), in dialog order."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["label"] in {*CLASSES, "exc"}]
    rows.sort(key=lambda r: (r["dialog"], int(r["order"])))
    code = {c: i for i, c in enumerate(CLASSES)} | {"exc": 0}
    return Corpus(
        [r["utt_id"] for r in rows],
        [r["dialog"] for r in rows],
        np.array([int(r["session"]) for r in rows]),
        [r["utt_id"][-4] for r in rows],
        np.arange(len(rows)),  # dialog order is row order within each dialog
        np.array([code[r["label"]] for r in rows]),
    )


def features(corpus: Corpus, rng: np.random.Generator, signal: float) -> tuple[np.ndarray, ...]:
    """(audio [N, 100], text [N, 768]) float32: class centres + speaker offset + noise."""
    n = len(corpus.labels)
    audio_c = rng.normal(size=(4, AUDIO_DIM))
    audio_c[0] = audio_c[2] + 0.35 * rng.normal(size=AUDIO_DIM)  # happy ~ neutral in audio
    text_c = rng.normal(size=(4, TEXT_DIM))
    text_c[3] = text_c[2] + 0.35 * rng.normal(size=TEXT_DIM)  # angry ~ neutral in text
    speakers = sorted({f"{d[:5]}{g}" for d, g in zip(corpus.dialogs, corpus.genders, strict=True)})
    offsets = {s: 0.6 * rng.normal(size=AUDIO_DIM) for s in speakers}
    speaker = [f"{d[:5]}{g}" for d, g in zip(corpus.dialogs, corpus.genders, strict=True)]
    audio = (
        signal * 0.11 * audio_c[corpus.labels]
        + np.stack([offsets[s] for s in speaker])
        + rng.normal(size=(n, AUDIO_DIM))
    )
    base = 0.3 * rng.normal(size=TEXT_DIM)  # what every BERT mean vector shares
    text = base + 0.3 * (signal * 0.045 * text_c[corpus.labels] + rng.normal(size=(n, TEXT_DIM)))
    return audio.astype(np.float32), text.astype(np.float32)


def write_pickle(path: Path, corpus: Corpus, audio: np.ndarray, text: np.ndarray) -> None:
    """The nine objects the published LoadData.py unpickles (dicts keyed by dialog)."""
    rows: dict[str, list[int]] = {}
    for i, dialog in enumerate(corpus.dialogs):
        rows.setdefault(dialog, []).append(i)
    for dialog in rows:
        rows[dialog].sort(key=lambda i: corpus.orders[i])
    ids = {d: [corpus.utt_ids[i] for i in r] for d, r in rows.items()}
    speakers = {d: [corpus.genders[i] for i in r] for d, r in rows.items()}
    labels = {d: [int(corpus.labels[i]) for i in r] for d, r in rows.items()}
    text_d = {d: text[r] for d, r in rows.items()}
    audio_d = {d: audio[r] for d, r in rows.items()}
    visual = {d: np.zeros((len(r), 1), np.float32) for d, r in rows.items()}
    sentence = {d: [""] * len(r) for d, r in rows.items()}
    session = {d: int(corpus.sessions[r[0]]) for d, r in rows.items()}
    train = sorted(d for d in rows if session[d] != 5)
    test = sorted(d for d in rows if session[d] == 5)
    objects = (ids, speakers, labels, text_d, audio_d, visual, sentence, train, test)
    with path.open("wb") as handle:
        pickle.dump(objects, handle, protocol=4)


def write_store(path: Path, corpus: Corpus, audio: np.ndarray, text: np.ndarray) -> None:
    """A ser feature store holding the corpus's manifest and both sets, imported from npz."""
    from ser.cache import FeatureStore
    from ser.cache.importer import ImportConfig, import_npz
    from ser.cache.manifest import Manifest
    from ser.synth.manifest import example_columns

    columns = example_columns(corpus.utt_ids)
    columns.update(
        order=corpus.orders.tolist(),
        label=[CLASSES[i] for i in corpus.labels],
        transcript=[""] * len(corpus.utt_ids),
        transcript_raw=[""] * len(corpus.utt_ids),
    )
    store = FeatureStore.create(path, Manifest.from_columns(columns))
    for name, modality, array in (("audio100", "audio", audio), ("text768", "text", text)):
        npz = path.parent / f"{name}.npz"
        np.savez(npz, **dict(zip(corpus.utt_ids, array, strict=True)))
        import_npz(store, npz, ImportConfig(name, modality, "utterance", dtype="float32"))


def run_ser(store: Path, out: Path, seeds: int, epochs: int, threads: int) -> list[float]:
    """`ser train` of the fusion study's best cell; each seed's test UA (%)."""
    command = [
        sys.executable, "-c", "from ser.cli import main; main()", "train",
        "--store", str(store), "--features", "audio100+text768",
        "--fusion", "add", "--fusion-at", "logits", "--loss", "perspective",
        "--protocol", "session5", "--val", "none", "--classes", "4",
        "--epochs", str(epochs), "--seed", "0", "--seeds", str(seeds),
        "--device", "cpu", "--threads", str(threads), "--out", str(out), "--name", "ser",
        "--json",
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    record = json.loads((out / "ser" / "run.json").read_text())
    return [e["metrics"]["ua"] for e in sorted(record["folds"], key=lambda e: e["seed"])]


def run_published(checkout: Path, pickle_path: Path, seeds: int, epochs: int) -> list[float]:
    """The authors' main.py (ADD at logits, perspective loss) per seed; last-epoch UA (%).

    Its per-epoch "WA" is class-balanced accuracy (`weighted_accuracy` weighs each
    utterance by 1 / its class count), i.e. UA."""
    out = []
    for seed in range(seeds):
        # One thread: ~6x faster than torch's default on a small shared CPU.
        env = {**os.environ, "FIDELITY_PKL": str(pickle_path), "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "main.py", "--fusion", "ADD", "--loss_num", "3"]
        command += ["--seed", str(seed), "--epochs", str(epochs)]
        done = subprocess.run(
            command, cwd=checkout, env=env, check=True, capture_output=True, text=True
        )
        last = re.findall(r"WA: ([\d.]+)%; AudioWA", done.stdout)[-1]
        out.append(float(last))
    return out


def summary(name: str, uas: list[float]) -> str:
    shown = ", ".join(f"{u:.1f}" for u in uas)
    std = float(np.std(uas, ddof=1)) if len(uas) > 1 else 0.0  # over seeds, as ser reports
    return f"{name:>9}: UA {np.mean(uas):.2f} ± {std:.2f} over {len(uas)} seeds ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--published", type=Path, help="checkout of Luyizhe/SpeechEmotion")
    parser.add_argument("--metadata", type=Path, help="dialogs and labels from this CSV")
    parser.add_argument("--signal", type=float, default=1.4, help="class signal scale")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, help="keep the arrays and runs here")
    parser.add_argument("--skip-ser", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fidelity-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.data_seed)
    corpus = metadata_corpus(args.metadata) if args.metadata else synthetic_corpus(rng)
    audio, text = features(corpus, rng, args.signal)
    pkl, store = work / "fidelity.pkl", work / "features.zarr"
    if not pkl.exists():
        write_pickle(pkl, corpus, audio, text)
    if not store.exists():
        write_store(store, corpus, audio, text)
    print(f"{len(corpus.labels)} utterances in {len(set(corpus.dialogs))} dialogs; data in {work}")
    results = {}
    if not args.skip_ser:
        start = time.perf_counter()
        results["ser"] = run_ser(store, work / "runs", args.seeds, args.epochs, args.threads)
        print(summary("ser", results["ser"]), f"[{time.perf_counter() - start:.0f} s]")
    if args.published:
        start = time.perf_counter()
        results["published"] = run_published(args.published, pkl, args.seeds, args.epochs)
        print(summary("published", results["published"]), f"[{time.perf_counter() - start:.0f} s]")
    if len(results) == 2:
        diff = np.mean(results["ser"]) - np.mean(results["published"])
        print(f"ser - published: {diff:+.2f} UA points")
    (work / "fidelity.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
