"""`ser predict`: a trained run's checkpoints applied to new recordings.

The run's feature sets are re-extracted as recorded (`features.py`), text comes from
--text, the CSV or Whisper, and the checkpoints' class probabilities are averaged. A file
that cannot be predicted gets its own error and the others are still predicted; what a
prediction is not is said in notes (`notes.py`). Contract: docs/CONTRACTS.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.cache.model_names import missing_folder
from ser.corpus.audio import audio_info
from ser.errors import ConfigError, FingerprintMismatch
from ser.extract.plan import DEFAULT_BATCH_SECONDS as BATCH_SECONDS
from ser.predict.ensemble import ensemble, memory_data
from ser.predict.features import BATCH_SIZE, Recreated, extract_all, extractors_for
from ser.predict.inputs import Item, attach_timed, load_waves, read_inputs
from ser.predict.longest import run_limit
from ser.predict.notes import SEGMENT_TURNS, context_lost, corpus_note, dialog_level, run_notes
from ser.predict.segments import Segmenter, groups, parse_segment, segment_items
from ser.predict.vad import VadOptions
from ser.runtime.device import pick_device
from ser.train.checkpoint import Checkpoint, load_run_checkpoints

#: Segments decoded and predicted together (--segment): about 10 minutes of 5 s windows,
#: and at most `SECONDS_AT_ONCE` of audio (longer windows).
SEGMENTS_AT_ONCE = 128
SECONDS_AT_ONCE = 640.0

NO_TEXT = (
    "no transcript for this run's text features: give --text, a 'transcript' column in "
    "the CSV, or --asr MODEL"
)


@dataclass(frozen=True)
class PredictConfig:
    """What `ser predict` is asked to do."""

    run: str
    inputs: tuple[str, ...]
    text: str | None = None  # transcript of every input (--text)
    transcript: str | None = None  # the one input's SRT/WebVTT file (--transcript)
    asr: str | None = None  # Whisper id or folder for inputs without a transcript
    asr_max_new_tokens: int = 128
    checkpoint: str = "folds"  # "folds" (ensemble), "final" or one key
    device: str = "auto"
    batch_size: int = BATCH_SIZE
    encoders: tuple[str, ...] = ()  # model folders standing in for moved ones (--encoder)
    segment: str | None = None  # "fixed:SECONDS[:HOP]" or "vad": each file in segments
    vad: VadOptions | None = None  # --segment vad's options (None: their defaults)


@dataclass
class Prediction:
    """One input's outcome: its class probabilities, or why there are none."""

    path: str
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    transcript: str | None = None
    transcript_source: str | None = None  # "given" | "timed" (SRT/WebVTT) | "asr"
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    dialog: str | None = None  # its conversation and turn, when the CSV gave them
    order: int | None = None
    start: float | None = None  # the segment's span in its file (seconds), with --segment
    end: float | None = None
    # A run trained on attributes: each one on the corpus's scale (arousal, ...: value).
    attributes: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictResult:
    classes: tuple[str, ...]
    checkpoints: tuple[str, ...]
    predictions: list[Prediction]
    notes: tuple[str, ...] = ()  # about the whole prediction (`ser.predict.notes`)
    # dialog-level models given an input without its conversation (no dialog column)
    dialog_context_lost: bool = False
    attributes: tuple[str, ...] = ()  # what a run trained on attributes predicts of them

    @property
    def categorical(self) -> bool:
        """Whether the run predicts a class (a run on attributes alone has no classes)."""
        return bool(self.classes)

    @property
    def failed(self) -> int:
        return sum(p.error is not None for p in self.predictions)


def predict(
    config: PredictConfig,
    message: Callable[[str], None] = lambda _: None,
    check: Callable[[PredictResult], None] | None = None,
) -> PredictResult:
    """The run's predictions of the inputs; `check` sees what the run predicts (a result
    without predictions) before anything is decoded, to refuse what asks the run for what
    it cannot give."""
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {config.batch_size}")
    windows = parse_segment(config.segment, config.vad)
    device = pick_device(config.device)
    ckpts = load_run_checkpoints(Path(config.run), config.checkpoint)
    if check is not None:
        check(PredictResult(ckpts[0].classes, (), [], attributes=ckpts[0].targets.attributes))
    features = _features_of(ckpts)
    items = _items(config, windows, ckpts, features)
    recreated = extractors_for(features, device, config.encoders)
    message(f"{len(ckpts)} checkpoint(s), features {', '.join(features)}, {len(items)} input(s)")
    for r in recreated:
        if r.encoder is not None:
            message(f"{', '.join(r.names)}: encoder from {r.encoder} (weights match the run's)")
    # Segments are decoded a group at a time, so a long recording is never held whole.
    size, seconds = (SEGMENTS_AT_ONCE, SECONDS_AT_ONCE) if windows else (len(items), math.inf)
    predictions: list[Prediction] = []
    asr: dict[str, Any] = {}  # the Whisper model, loaded at the first group that needs it
    damaged: set[Path] = set()  # recordings whose audio stopped decoding
    for group in groups(items, max(size, 1), seconds):
        chunk = [item for item in group if item.path not in damaged]
        made = _predict_items(chunk, ckpts, features, recreated, config, device, message, asr)
        predictions += _up_to_damage(chunk, made, damaged) if windows else made
    keys = tuple(c.key for c in ckpts)
    dialogs = [item.dialog for item in items]
    cut = [p.dialog for p in predictions if p.error is not None and p.dialog is not None]
    notes = tuple(run_notes(ckpts, dialogs, cut))
    if windows is not None and dialog_level(ckpts):
        minutes = round(SECONDS_AT_ONCE / 60)
        notes += (SEGMENT_TURNS.format(segments=SEGMENTS_AT_ONCE, minutes=minutes),)
    classes = ckpts[0].classes  # () for a run without the category
    attributes = ckpts[0].targets.attributes
    lost = context_lost(ckpts, dialogs)
    return PredictResult(classes, keys, predictions, notes, lost, attributes)


def _items(
    config: PredictConfig,
    windows: Segmenter | None,
    ckpts: list[Checkpoint],
    features: dict[str, dict[str, Any]],
) -> list[Item]:
    """The inputs, with their timed transcripts where the run reads text, as segments
    (or whole, refused when far longer than the run's utterances)."""
    items = read_inputs(list(config.inputs), config.text)
    if _reads_text(features):
        attach_timed(items, config.transcript)
    elif config.transcript is not None:
        raise ConfigError("--transcript: this run has no text features, it reads no transcript")
    limit = run_limit(Path(config.run)) if windows is None else None  # only whole files
    return segment_items(items, windows, limit, dialogs=dialog_level(ckpts))


def _reads_text(features: dict[str, dict[str, Any]]) -> bool:
    """Whether the run reads a text feature (its inputs need transcripts)."""
    return any(info["attrs"]["modality"] == "text" for info in features.values())


def _up_to_damage(
    items: list[Item], made: list[Prediction], damaged: set[Path]
) -> list[Prediction]:
    """The segments of each recording up to the first that did not decode (a damaged
    or cut short tail), that one standing for the rest of the file; `damaged` grows."""
    kept = []
    for item, p in zip(items, made, strict=True):
        if item.path in damaged:
            continue
        if item.undecoded and item.clip is not None:
            damaged.add(item.path)
            p.end = (item.info or audio_info(item.path)).seconds
            p.error = f"audio stops decoding at {p.start:.2f} s, the rest not predicted ({p.error})"
        kept.append(p)
    return kept


def _predict_items(
    items: list[Item],
    ckpts: list[Checkpoint],
    features: dict[str, dict[str, Any]],
    recreated: list[Recreated],
    config: PredictConfig,
    device: torch.device,
    message: Callable[[str], None],
    asr: dict[str, Any],
) -> list[Prediction]:
    rates = dict.fromkeys(r.extractor.sample_rate for r in recreated)
    waves = {rate: load_waves(items, rate) for rate in rates if rate is not None}
    if not waves:  # text features only: a file that cannot be read is still an error
        load_waves(items, None)
    if _reads_text(features):
        _transcripts(items, config, device, message, run_asr(features), asr)
    failed = {i: item.error for i, item in enumerate(items) if item.error is not None}
    outputs: dict[str, list[Any]] = {}
    for r in recreated:
        audio = r.extractor.sample_rate
        inputs: list[Any] = waves[audio] if audio else [item.transcript for item in items]
        budget = BATCH_SECONDS[device.type] * audio if audio else None
        rows = extract_all(r.extractor, inputs, failed, device, config.batch_size, budget)
        for name, made in r.names.items():
            outputs[name] = [row[made] if row is not None else None for row in rows]
    for item in items:
        if (note := corpus_note(item.path, ckpts)) is not None:
            item.notes.append(note)
    return _score(ckpts, items, outputs, failed, device)


def _features_of(ckpts: list[Checkpoint]) -> dict[str, dict[str, Any]]:
    features: dict[str, dict[str, Any]] = {}
    for ckpt in ckpts:
        for name, info in ckpt.features.items():
            if name in features and features[name]["fingerprint"] != info["fingerprint"]:
                raise FingerprintMismatch(
                    f"checkpoints of this run were trained on different {name} features"
                )
            features[name] = info
    return features


def run_asr(features: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The ASR provenance (`asr_*` keys) of a run trained on ASR-text sets, else None."""
    recorded = {
        name: {k: v for k, v in info["attrs"].items() if k.startswith("asr_")}
        for name, info in features.items()
        if info["attrs"].get("text_source") == "asr"
    }
    distinct = {repr(sorted(r.items())) for r in recorded.values()}
    if len(distinct) > 1:
        raise ConfigError(
            f"the run's text sets come from different ASR transcripts ({', '.join(recorded)}); "
            "ser predict cannot transcribe for both"
        )
    return next(iter(recorded.values()), None)


def _transcripts(
    items: list[Item],
    config: PredictConfig,
    device: torch.device,
    message: Callable[[str], None],
    recorded: dict[str, Any] | None = None,
    loaded: dict[str, Any] | None = None,
) -> None:
    """Fill `item.transcript` (ASR where none is given) or fail items without text. A run
    trained on ASR text (`recorded`) transcribes with its own recogniser unless --asr
    names another of the same weights and decoding. `loaded` keeps the recogniser for
    the next call (segments come in groups)."""
    loaded = {} if loaded is None else loaded
    missing = [i for i, item in enumerate(items) if item.transcript is None and item.error is None]
    model = config.asr or (recorded or {}).get("asr_model")
    if missing and model:
        from ser.extract.asr import SAMPLE_RATE, AsrOptions, WhisperAsr

        if config.asr is None and missing_folder(str(model)):
            raise ConfigError(
                f"the run's text features come from transcripts by the Whisper folder "
                f"{model}, which does not exist (moved, or named relative to the directory "
                "`ser extract` ran in): give it with --asr FOLDER (same weights)"
            )
        if "asr" not in loaded:
            tokens = (recorded or {}).get("asr_max_new_tokens", config.asr_max_new_tokens)
            loaded["asr"] = WhisperAsr(AsrOptions(str(model), max_new_tokens=int(tokens)))
            loaded["asr"].load(device)
            if recorded is not None:
                _check_asr(recorded, loaded["asr"].provenance())
        asr = loaded["asr"]
        message(f"transcribing {len(missing)} input(s) with {model}")
        waves = load_waves([items[i] for i in missing], SAMPLE_RATE)
        ok = [(i, w) for i, w in zip(missing, waves, strict=True) if w is not None]
        for start in range(0, len(ok), config.batch_size):
            chunk = ok[start : start + config.batch_size]
            for (i, _), text in zip(chunk, asr.transcribe([w for _, w in chunk]), strict=True):
                items[i].transcript = text
                items[i].by_asr = True
    for item in items:
        if item.error is not None:
            continue
        if item.transcript is None:
            item.error = NO_TEXT
        elif not item.transcript.strip():
            item.error = _empty(item)


def _empty(item: Item) -> str:
    if item.by_asr:
        return "the ASR transcript is empty"
    if item.timed is not None:
        return f"no word of {item.timed.path.name} is timed within it"
    return "the transcript is empty"


def _check_asr(recorded: dict[str, Any], here: dict[str, Any]) -> None:
    # The model's id or folder may be spelt otherwise; its weights checksum decides.
    keys = sorted(k for k in recorded if k != "asr_model")
    diffs = [f"{k}: {recorded[k]!r} -> {here.get(k)!r}" for k in keys if recorded[k] != here.get(k)]
    if diffs:
        raise FingerprintMismatch(
            "the run's text features come from other ASR transcripts than --asr gives: "
            + "; ".join(diffs)
            + " (recorded -> here)"
        )


def _score(
    ckpts: list[Checkpoint],
    items: list[Item],
    outputs: dict[str, list[Any]],
    failed: dict[int, str],
    device: torch.device,
) -> list[Prediction]:
    classes = ckpts[0].classes  # () for a run without the category
    names = ckpts[0].targets.attributes
    ok = [i for i in range(len(items)) if i not in failed]
    probs: dict[int, np.ndarray] = {}  # input -> [C]
    values: dict[int, np.ndarray] = {}  # input -> [A], on the corpus's scale
    if ok:
        arrays = {name: [rows[i] for i in ok] for name, rows in outputs.items()}
        turns = [(items[i].dialog, items[i].order) for i in ok]  # conversations, if given
        data = memory_data(ckpts[0], arrays, device, turns)
        mean_probs, mean_values = ensemble(ckpts, data, device)
        probs = dict(zip(ok, mean_probs, strict=True))
        values = dict(zip(ok, mean_values, strict=True))
    predictions = []
    for i, item in enumerate(items):
        p = Prediction(str(item.path), transcript=item.transcript, notes=list(item.notes))
        p.dialog, p.order = item.dialog, item.order
        if item.clip is not None:
            p.start, p.end = item.clip.start, item.clip.end
        if item.by_asr:
            p.transcript_source = "asr"
        elif item.timed is not None:
            p.transcript_source = "timed"
        elif item.transcript is not None:
            p.transcript_source = "given"
        if i in failed:
            p.error = failed[i]
        else:
            row = probs[i]
            if classes:
                p.label = classes[int(row.argmax())]
                p.probabilities = {c: float(v) for c, v in zip(classes, row, strict=True)}
            p.attributes = {a: float(v) for a, v in zip(names, values[i], strict=True)}
        predictions.append(p)
    return predictions
