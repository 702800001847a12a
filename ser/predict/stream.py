"""`ser predict --stream SOURCE`: live prediction, one JSON line per closed segment.

The stream (`pcm.py`) is cut by `--segment vad`'s detector as it arrives
(`stream_vad.py`); each segment, once closed, is predicted as `ser predict --segment vad`
predicts one (the run's features re-created from its audio, the members' average, torch
or onnxruntime) and printed at once: its start and end in seconds from the stream's
start, then each head's keys (`ser.heads.predicted.Predicted.stream_json`: the class and
its probabilities, the attributes, the further heads' fields). The end of
the stream predicts the segment still open; a broken stream stops with one line, after
the segments it closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ser.errors import ConfigError
from ser.heads.predicted import joined
from ser.predict.asr import reads_text, run_asr
from ser.predict.config import PredictConfig, Prediction
from ser.predict.inputs import Item
from ser.predict.pcm import PcmSource
from ser.predict.scoring import Model, load_model, open_checkpoints, predict_items
from ser.predict.stream_vad import OnlineVad, Segment
from ser.predict.vad import VadOptions
from ser.runtime.device import pick_device

NO_TEXT = (
    "--stream: this run reads text features ({sets}) and a stream has no transcript: "
    "give --asr MODEL (a Whisper id or folder) to transcribe each segment"
)


def stream(
    config: PredictConfig,
    source: PcmSource,
    emit: Callable[[dict[str, Any]], None],
    message: Callable[[str], None] = lambda _: None,
) -> int:
    """Predict the stream's segments, `emit`ting each line; the segments predicted."""
    (config.vad or VadOptions()).check()
    ckpts, exported = open_checkpoints(config)
    texts = [n for n, f in ckpts[0].features.items() if f["attrs"].get("modality") == "text"]
    if texts and config.asr is None and run_asr(ckpts[0].features) is None:
        raise ConfigError(NO_TEXT.format(sets=", ".join(texts)))
    model = load_model(config, ckpts, exported, pick_device(config.device), message)
    message(f"{len(ckpts)} checkpoint(s); reading 16 kHz PCM from {source.name}")
    vad = OnlineVad(config.vad or VadOptions())
    count = 0
    for block in source.blocks():
        count += _predict(vad.feed(block), model, config, source, emit, message)
    return count + _predict(vad.close(), model, config, source, emit, message)


def _predict(
    segments: Iterable[Segment],
    model: Model,
    config: PredictConfig,
    source: PcmSource,
    emit: Callable[[dict[str, Any]], None],
    message: Callable[[str], None],
) -> int:
    closed = list(segments)
    items = [Item(Path(source.name), wave=s.wave) for s in closed]
    if not items:
        return 0
    made = predict_items(items, model, config, message)
    for segment, p in zip(closed, made, strict=True):
        p.start, p.end = segment.seconds
        emit(line(p, model))
    return len(items)


def line(p: Prediction, model: Model) -> dict[str, Any]:
    """A segment's JSON line."""
    out: dict[str, Any] = {
        "start": round(float(p.start or 0.0), 3),
        "end": round(float(p.end or 0.0), 3),
    }
    ckpt = model.ckpts[0]
    named = zip(ckpt.targets.heads, ckpt.targets.names(ckpt.classes), strict=True)
    out |= joined([h.stream_json(p.heads.get(h.name), n) for h, n in named])
    if p.transcript_source == "asr" or reads_text(model.features):
        out["transcript"] = p.transcript
    if p.error is not None:
        out["error"] = p.error
    return out
