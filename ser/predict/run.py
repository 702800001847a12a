"""`ser predict`: a trained run's checkpoints applied to new recordings.

The run's feature sets are re-extracted as recorded (`features.py`), text comes from
--text, the CSV or Whisper, and the checkpoints' class probabilities are averaged. A file
that cannot be predicted gets its own error and the others are still predicted; what a
prediction is not is said in notes (`notes.py`). Contract: docs/dev/predict.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ser.corpus.audio import audio_info
from ser.errors import ConfigError
from ser.export.folder import Exported
from ser.predict.asr import NO_TEXT, reads_text, run_asr
from ser.predict.asr import transcripts as _transcripts
from ser.predict.config import Output, PredictConfig, Prediction, PredictResult, outputs_of
from ser.predict.inputs import Item, attach_timed, read_inputs
from ser.predict.longest import Limit, limit_of, run_limit
from ser.predict.notes import SEGMENT_TURNS, context_lost, dialog_level, run_notes
from ser.predict.scoring import (
    Model,
    features_of,
    load_model,
    open_checkpoints,
    passes,
    predict_items,
)
from ser.predict.segments import Segmenter, groups, parse_segment, segment_items
from ser.runtime.device import pick_device
from ser.runtime.progress import Counter, Tally
from ser.train.checkpoint import Checkpoint

# The names this module gave before its parts moved (tests and scripts import them here).
__all__ = [
    "NO_TEXT",
    "PredictConfig",
    "PredictResult",
    "Prediction",
    "_transcripts",
    "predict",
    "run_asr",
]

#: Segments decoded and predicted together (--segment): about 10 minutes of 5 s windows,
#: and at most `SECONDS_AT_ONCE` of audio (longer windows).
SEGMENTS_AT_ONCE = 128
SECONDS_AT_ONCE = 640.0


def predict(
    config: PredictConfig,
    message: Callable[[str], None] = lambda _: None,
    check: Callable[[PredictResult], None] | None = None,
    opened: Predictor | None = None,
    bar: Counter | None = None,
) -> PredictResult:
    """The run's predictions of the inputs; `check` sees what the run predicts (a result
    without predictions) before anything is decoded, to refuse what asks the run for what
    it cannot give; `opened`: the run as `open_predictor(config)` opened it, its model
    loaded by the first call and kept for the next (the inputs, text and segments may
    differ between calls, not the run, device, runtime or encoders). `bar`: where the
    inputs each encoder has done are shown (`ser.runtime.progress.task_bar`)."""
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {config.batch_size}")
    windows = parse_segment(config.segment, config.vad)
    opened = opened or open_predictor(config)
    ckpts, exported, device = opened.ckpts, opened.exported, opened.device
    if check is not None:
        check(PredictResult(ckpts[0].classes, (), [], heads=_outputs(ckpts[0])))
    features = features_of(ckpts)
    limit = limit_of(exported.longest, "store") if exported else run_limit(Path(config.run))
    items = _items(config, windows, ckpts, features, limit)
    if opened.model is None:
        opened.model = load_model(config, ckpts, exported, device, message)
    model = opened.model
    message(f"{len(ckpts)} checkpoint(s), features {', '.join(features)}, {len(items)} input(s)")
    # Inputs are decoded a group at a time: neither a long recording nor many files are
    # held whole, and the bar moves as each group is done. Whole files that are a dialog
    # run's turns stay one group: its conversations are not cut.
    whole_turns = windows is None and dialog_level(ckpts)
    size, seconds = (len(items), math.inf) if whole_turns else (SEGMENTS_AT_ONCE, SECONDS_AT_ONCE)
    predictions: list[Prediction] = []
    damaged: set[Path] = set()  # recordings whose audio stopped decoding
    tally = Tally(bar, "predict", len(items) * passes(model), "inputs") if bar is not None else None
    advance = tally.advance if tally is not None else None
    for group in groups(items, max(size, 1), seconds):
        chunk = [item for item in group if item.path not in damaged]
        made = predict_items(chunk, model, config, message, advance)
        predictions += _up_to_damage(chunk, made, damaged) if windows else made
    if tally is not None:
        tally.finish()  # inputs that failed before an encoder, or cut short by damage
    keys = tuple(c.key for c in ckpts)
    dialogs = [item.dialog for item in items]
    cut = [p.dialog for p in predictions if p.error is not None and p.dialog is not None]
    notes = tuple(run_notes(ckpts, dialogs, cut, averaged=not model.held_out))
    if windows is not None and dialog_level(ckpts):
        minutes = round(SECONDS_AT_ONCE / 60)
        notes += (SEGMENT_TURNS.format(segments=SEGMENTS_AT_ONCE, minutes=minutes),)
    lost = context_lost(ckpts, dialogs)
    return PredictResult(ckpts[0].classes, keys, predictions, notes, lost, _outputs(ckpts[0]))


@dataclass
class Predictor:
    """A run's (or exported folder's) checkpoints, opened once, and their model, loaded
    at the first prediction (`predict`'s `opened`)."""

    ckpts: list[Checkpoint]
    exported: Exported | None
    device: torch.device
    model: Model | None = None


def open_predictor(config: PredictConfig) -> Predictor:
    """The checkpoints `config` names (`--run` or `--model`, `--checkpoint`) on its
    device."""
    device = pick_device(config.device)
    ckpts, exported = open_checkpoints(config)
    return Predictor(ckpts, exported, device)


def _outputs(ckpt: Checkpoint) -> tuple[Output, ...]:
    """The heads the run's outputs show (`outputs_of`)."""
    return outputs_of(ckpt.targets.heads, ckpt.classes)


def _items(
    config: PredictConfig,
    windows: Segmenter | None,
    ckpts: list[Checkpoint],
    features: dict[str, dict[str, Any]],
    limit: Limit,
) -> list[Item]:
    """The inputs, with their timed transcripts where the run reads text, as segments
    (or whole, refused when far longer than the run's utterances)."""
    items = read_inputs(list(config.inputs), config.text)
    if reads_text(features):
        attach_timed(items, config.transcript)
    elif config.transcript is not None:
        raise ConfigError("--transcript: this run has no text features, it reads no transcript")
    return segment_items(
        items, windows, limit if windows is None else None, dialogs=dialog_level(ckpts)
    )


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
