"""The extraction runner vs a naive loop: real-size HuBERT-base on CPU.

Both run a HuBERT-base built from `HubertConfig()` defaults (random weights, seeded, no
download) over the same wav files: an IEMOCAP-layout corpus of 16 kHz utterances whose
durations follow IEMOCAP's (log-normal, median 3.7 s, mean ~4.5 s, clipped to 0.6-34 s).

- naive: what a researcher typically writes: model loaded once, then per utterance
  soundfile read, resample when needed, the feature extractor's normalisation and
  `model(wav, output_hidden_states=True)` under `torch.no_grad()`, one utterance per
  call, keeping `hidden_states[layer]`.
- runner: ser's extractor over the runner's plan (length-sorted batches of at most
  `--batch-seconds` padded seconds, inference mode, the encoder stopped at the layer
  asked for), and `extract_features` end to end (plus corpus reading, decoding in a
  background thread, shards, consolidation). Its compute rows are its default precision
  ("auto": bf16 autocast on CPUs with native bf16, else fp32) and `--precision fp32`.

Figures are real-time factors (RTF: seconds of compute per second of audio; lower is
faster) and their ratio. Shared CPUs make single timings swing several-fold, so compute
is timed per unit of work (an utterance of the naive loop, a batch of the runner) as the
best of `--repeats` runs, summed; the end-to-end figures are the best of `--repeats`
interleaved runs. Model loading is timed apart. Run:

    .venv/bin/python benchmarks/bench_extract.py                 # ~150 s of audio, ~5 min
    .venv/bin/python benchmarks/bench_extract.py --ablations     # + one factor at a time
    .venv/bin/python benchmarks/bench_extract.py --threads 1     # steadier on a busy machine
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import soundfile
import soxr
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor
from transformers.utils import logging as hf_logging

from ser.corpus.audio import load_audio
from ser.extract.plan import DEFAULT_BATCH_SECONDS, plan_shards
from ser.extract.registry import build_extractor
from ser.extract.run import ExtractConfig, extract_features
from ser.runtime.precision import resolve_precision
from ser.synth.corpus import write_corpus_from_metadata

RATE = 16000
# IEMOCAP's utterance durations are close to log-normal with these parameters (fitted on
# log seconds of all 10,039 utterances; min 0.58 s, max 34.1 s, mean 4.46 s).
LOG_MEAN, LOG_STD = 1.30, 0.61
CPU = torch.device("cpu")


# --- the data and the model ----------------------------------------------------------


def durations(total_seconds: float) -> list[float]:
    """Deterministic durations of IEMOCAP's shape: evenly spaced log-normal quantiles,
    as many as fill `total_seconds`, in a shuffled (corpus-like) order."""
    n = max(4, round(total_seconds / 4.46))
    quantiles = [NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)]
    seconds = np.clip(np.exp(LOG_MEAN + LOG_STD * np.asarray(quantiles)), 0.6, 34.0)
    return [float(s) for s in np.random.default_rng(0).permutation(seconds)]


def write_corpus(root: Path, seconds: list[float]) -> list[Path]:
    """An IEMOCAP-layout corpus whose wavs have these durations (16 kHz mono), in
    manifest order."""
    meta = root.parent / "metadata.csv"
    with meta.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "dialog", "session", "speaker_gender", "kind", "order",
                         "start", "end", "label"])  # fmt: skip
        start = 1.0
        for i, length in enumerate(seconds):
            gender = "FM"[i % 2]
            utt = f"Ses01F_impro01_{gender}{i // 2:03d}"
            writer.writerow([utt, "Ses01F_impro01", 1, gender, "impro", i, f"{start:.4f}",
                             f"{start + length:.4f}", "neu"])  # fmt: skip
            start += length + 0.5
    truth = write_corpus_from_metadata(root, meta)
    rng = np.random.default_rng(1)
    paths = []
    for utt in truth.utterances:
        assert utt.wav_path is not None
        n = round(utt.duration * RATE)
        # noise with a syllable-rate envelope: content does not change the compute
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
        samples = (0.1 * rng.standard_normal(n) * envelope).astype(np.float32)
        soundfile.write(utt.wav_path, samples, RATE)
        paths.append(utt.wav_path)
    return paths


def save_hubert_base(folder: Path) -> Path:
    """HuBERT-base (94 M parameters) with random weights, saved like the real one."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = HubertModel(HubertConfig()).eval()
    model.save_pretrained(folder)
    # facebook/hubert-base-ls960's preprocessing: 16 kHz, per-utterance normalisation.
    Wav2Vec2FeatureExtractor(sampling_rate=RATE, do_normalize=True).save_pretrained(folder)
    return folder


# --- timing ----------------------------------------------------------------------------


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box = [0.0]
    started = time.perf_counter()
    yield box
    box[0] = time.perf_counter() - started


def best_totals(cases: dict[str, Sequence[Callable[[], Any]]], repeats: int) -> dict[str, float]:
    """Per case, the sum over its units of work of each unit's best time.

    Rounds are interleaved (every unit of every case once per round), so that a long
    busy spell on a shared machine slows all cases of a round alike, and the best of
    `repeats` rounds picks each unit's quiet run.
    """
    best: dict[str, list[float]] = {label: [np.inf] * len(units) for label, units in cases.items()}
    for _ in range(repeats):
        for label, units in cases.items():
            for i, unit in enumerate(units):
                with timer() as spent:
                    unit()
                best[label][i] = min(best[label][i], spent[0])
    return {label: float(sum(times)) for label, times in best.items()}


# --- the two contestants ---------------------------------------------------------------


def naive_units(
    model_dir: Path,
    paths: list[Path],
    layer: int,
    *,
    grad_mode: Callable[[], contextlib.AbstractContextManager] = torch.no_grad,
    attention: str | None = None,
    keep_layers: int | None = None,
    out: list[np.ndarray] | None = None,
) -> list[Callable[[], None]]:
    """The typical loop, one unit per utterance: read, resample, normalise, forward.

    `keep_layers` truncates the encoder (what stopping at the highest requested layer,
    as the runner does, saves); `attention` picks the attention implementation
    (default: transformers').
    """
    kwargs = {"attn_implementation": attention} if attention else {}
    model = HubertModel.from_pretrained(model_dir, **kwargs).eval()
    processor = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    if keep_layers is not None:
        model.encoder.layers = model.encoder.layers[:keep_layers]

    def one(path: Path, index: int) -> None:
        wav, rate = soundfile.read(path, dtype="float32")
        if wav.ndim > 1:
            wav = wav.mean(axis=1)
        if rate != RATE:
            wav = soxr.resample(wav, rate, RATE)
        inputs = processor(wav, sampling_rate=RATE, return_tensors="pt")
        with grad_mode():
            hidden = model(inputs.input_values, output_hidden_states=True).hidden_states
        if out is not None:
            out[index] = hidden[layer][0].numpy()

    return [lambda p=path, i=i: one(p, i) for i, path in enumerate(paths)]


def runner_units(
    model_dir: Path,
    waves: list[np.ndarray],
    layer: int,
    budget: float,
    *,
    precision: str = "auto",
    out: list[np.ndarray] | None = None,
) -> list[Callable[[], Any]]:
    """ser's extractor over the runner's plan: one unit per batch (decoding excluded: the
    runner does it in a background thread, see "decoding alone"). As it ships: the
    encoder stops at `layer`, and `precision` "auto" is bf16 autocast on CPUs with native
    bf16, else fp32."""
    extractor = build_extractor(
        "hubert", model=str(model_dir), layers=str(layer), precision=precision
    )
    extractor.load(CPU)
    plan = plan_shards([len(w) / RATE for w in waves], budget, shard_size=len(waves))
    name = extractor.specs()[0].name

    def one(batch: tuple[int, ...]) -> None:
        results = extractor.extract([waves[i] for i in batch])
        if out is not None:
            for i, result in zip(batch, results, strict=True):
                out[i] = result[name]

    return [lambda b=batch: one(b) for batch in plan.shards[0].batches]


def deviation(ours: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """How far features are from fp32 ones: max |diff| over the largest magnitude, and
    the lowest cosine similarity of any frame."""
    if all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True)):
        return "identical"
    worst = max(float(np.abs(a - b).max()) for a, b in zip(ours, reference, strict=True))
    scale = max(float(np.abs(b).max()) for b in reference)
    cosine = min(
        float(((a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))).min())
        for a, b in zip(ours, reference, strict=True)
    )
    return f"max |diff| {worst / scale:.1e} of the range, min frame cosine {cosine:.5f}"


def end_to_end(root: Path, model_dir: Path, store: Path, layer: int) -> float:
    """Seconds of `extract_features` (corpus read, checksum, model load, run, store)."""
    config = ExtractConfig(
        features=("hubert",), options={"hubert": {"model": str(model_dir), "layers": str(layer)}},
        device="cpu", progress=False,
    )  # fmt: skip
    shutil.rmtree(store, ignore_errors=True)
    with timer() as wall:
        report = extract_features(root, store, config)
    assert report.exit_code == 0 and report.extracted, report
    return wall[0]


def naive_end_to_end(model_dir: Path, paths: list[Path], layer: int) -> float:
    """Seconds of the naive script: load the model, then loop."""
    with timer() as wall:
        for unit in naive_units(model_dir, paths, layer):
            unit()
    return wall[0]


def relative_difference(store: Path, name: str, naive: list[np.ndarray]) -> float:
    """Largest |runner - naive| over the features' largest magnitude: both compute the
    same thing (the runner stores float16)."""
    from ser.cache import FeatureStore

    data = FeatureStore.open(store).read(name)
    worst = max(
        float(np.abs(data.utterance(i).astype(np.float32) - ref).max())
        for i, ref in enumerate(naive)
    )
    return worst / max(float(np.abs(ref).max()) for ref in naive)


# --- report ------------------------------------------------------------------------------


def compare(model_dir: Path, paths: list[Path], layers: list[int], repeats: int) -> None:
    audio = sum(soundfile.info(p).duration for p in paths)
    waves = [load_audio(p, RATE) for p in paths]
    budget = DEFAULT_BATCH_SECONDS["cpu"]
    auto = resolve_precision("auto", CPU, "extract")
    naive = "naive loop, any layer (computes all 12)"
    cases: dict[str, Sequence[Callable[[], Any]]] = {
        naive: naive_units(model_dir, paths, max(layers))
    }
    outputs: dict[str, list[np.ndarray]] = {}
    pairs = []  # (layer, fp32 label, auto label) per layer
    for layer in layers:
        shipped = f"runner, layer {layer} (default: precision auto = {auto})"
        fp32 = f"runner, layer {layer}, --precision fp32"
        pairs.append((layer, fp32, shipped))
        for label, precision in ((shipped, "auto"), (fp32, "fp32")):
            outputs[label] = [np.empty(0)] * len(waves)
            cases[label] = runner_units(
                model_dir, waves, layer, budget, precision=precision, out=outputs[label]
            )
    spent = best_totals(cases, repeats)
    print(f"compute, best of {repeats} interleaved rounds per unit (RTF; x = naive / runner):")
    for label, seconds in spent.items():
        ratio = "" if label == naive else f"  {spent[naive] / seconds:4.2f}x"
        print(f"  {label:<52} RTF {seconds / audio:.3f}{ratio}")
    for layer, fp32, shipped in pairs:
        print(f"  layer {layer}, {auto} vs fp32 features: "
              f"{deviation(outputs[shipped], outputs[fp32])}")  # fmt: skip


def compare_end_to_end(
    root: Path, model_dir: Path, paths: list[Path], layers: list[int], repeats: int, work: Path
) -> None:
    audio = sum(soundfile.info(p).duration for p in paths)
    naive, ours = [], {layer: [] for layer in layers}
    for _ in range(repeats):  # interleaved: load from elsewhere hits both alike
        naive.append(naive_end_to_end(model_dir, paths, max(layers)))
        for layer in layers:
            ours[layer].append(end_to_end(root, model_dir, work / f"L{layer}.zarr", layer))
    print(f"end to end incl. model load, best of {repeats} interleaved runs (wall s):")
    print(f"  naive script                                  {min(naive):6.1f} s  "
          f"RTF {min(naive) / audio:.3f}")  # fmt: skip
    for layer in layers:
        best = min(ours[layer])
        print(f"  ser extract, layer {layer:>2} (precision auto)       {best:6.1f} s  "
              f"RTF {best / audio:.3f}  {min(naive) / best:4.2f}x")  # fmt: skip
    with timer() as setup:
        extractor = build_extractor("hubert", model=str(model_dir), layers="12")
        extractor.specs()  # config + weights checksum: what a no-op re-run pays
    print(f"  (of which config + weights checksum: {setup[0]:.1f} s)")
    reference: list[np.ndarray] = [np.empty(0)] * len(paths)
    for unit in naive_units(model_dir, paths, max(layers), out=reference):
        unit()
    diff = relative_difference(
        work / f"L{max(layers)}.zarr", f"hubert-base-random.L{max(layers)}", reference
    )
    print(f"  runner vs naive features: max |diff| = {diff:.1e} of their largest magnitude")


def ablations(model_dir: Path, paths: list[Path], repeats: int) -> None:
    """One factor at a time over the same audio (compute only)."""
    audio = sum(soundfile.info(p).duration for p in paths)
    waves = [load_audio(p, RATE) for p in paths]
    threads = torch.get_num_threads()

    def single_thread() -> list[Callable[[], None]]:
        units = naive_units(model_dir, paths, 12)

        def with_one_thread(unit: Callable[[], None]) -> None:
            torch.set_num_threads(1)
            try:
                unit()
            finally:
                torch.set_num_threads(threads)

        return [lambda u=unit: with_one_thread(u) for unit in units]

    cases: list[tuple[str, Sequence[Callable[[], Any]]]] = [
        ("naive loop (no_grad, sdpa, 1 per call)", naive_units(model_dir, paths, 12)),
        ("  inference_mode instead of no_grad",
         naive_units(model_dir, paths, 12, grad_mode=torch.inference_mode)),
        ("  eager attention instead of sdpa", naive_units(model_dir, paths, 12, attention="eager")),
        ("  encoder stopped after layer 9", naive_units(model_dir, paths, 9, keep_layers=9)),
        *([(f"  1 torch thread instead of {threads}", single_thread())] if threads > 1 else []),
        ("decoding alone (soundfile + soxr)", [lambda p=p: load_audio(p, RATE) for p in paths]),
        ("ser extractor, one utterance per call", runner_units(model_dir, waves, 12, 1e-9)),
    ]  # fmt: skip
    cases += [
        (f"ser extractor, batches <= {budget:.0f} s padded",
         runner_units(model_dir, waves, 12, budget))
        for budget in (20.0, 60.0, 120.0, 240.0)
    ]  # fmt: skip
    spent = best_totals(dict(cases), repeats)
    base = spent[cases[0][0]]
    print(f"\nablations over {audio:.0f} s of audio (compute, best of {repeats} rounds per unit):")
    for label, seconds in spent.items():
        print(f"  {label:<44} RTF {seconds / audio:6.3f}  ({base / seconds:5.2f}x the naive loop)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="total audio")
    parser.add_argument("--layers", default="12,9", help="layers to compare")
    parser.add_argument("--repeats", type=int, default=2, help="best of N")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--ablations", action="store_true", help="one factor at a time")
    parser.add_argument("--ablation-seconds", type=float, default=60.0)
    parser.add_argument("--no-end-to-end", action="store_true", help="compute figures only")
    parser.add_argument("--workdir", type=Path, help="keep corpus, model and stores here")
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_extract_"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "hubert-base-random"
    if not (model_dir / "config.json").exists():
        save_hubert_base(model_dir)
    root = work / "IEMOCAP_full_release"
    shutil.rmtree(root, ignore_errors=True)
    paths = write_corpus(root, durations(args.seconds))
    lengths = [soundfile.info(p).duration for p in paths]
    with torch.device("meta"):
        n_params = sum(p.numel() for p in HubertModel(HubertConfig()).parameters())
    print(f"HuBERT-base (random weights, {n_params / 1e6:.0f} M parameters) on CPU, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"audio: {len(paths)} utterances, {sum(lengths):.1f} s (min {min(lengths):.1f}, "
          f"median {np.median(lengths):.1f}, mean {np.mean(lengths):.1f}, "
          f"max {max(lengths):.1f} s); runner batches <= "
          f"{DEFAULT_BATCH_SECONDS['cpu']:.0f} s padded\n")  # fmt: skip
    layers = [int(x) for x in args.layers.split(",")]
    compare(model_dir, paths, layers, args.repeats)
    if not args.no_end_to_end:
        compare_end_to_end(root, model_dir, paths, layers, args.repeats, work)
    if args.ablations:
        subset, total = [], 0.0
        for path, seconds in zip(paths, lengths, strict=True):
            if total < args.ablation_seconds:
                subset.append(path)
                total += seconds
        ablations(model_dir, subset, args.repeats)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
