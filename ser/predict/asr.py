"""Text for a run's text features: the transcript given, timed, or Whisper's.

Inputs without a transcript are transcribed by `--asr`, or by the recogniser a run
trained on ASR text recorded (same weights and decoding, else refused); an input left
without text, or with an empty one, fails alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from ser.cache.model_names import missing_folder
from ser.errors import ConfigError, FingerprintMismatch
from ser.predict.inputs import Item, load_waves


class AsrAsked(Protocol):
    """What a prediction asks of ASR (`PredictConfig`'s fields)."""

    @property
    def asr(self) -> str | None: ...
    @property
    def asr_max_new_tokens(self) -> int: ...
    @property
    def batch_size(self) -> int: ...


NO_TEXT = (
    "no transcript for this run's text features: give --text, a 'transcript' column in "
    "the CSV, or --asr MODEL"
)


def reads_text(features: dict[str, dict[str, Any]]) -> bool:
    """Whether the run reads a text feature (its inputs need transcripts)."""
    return any(info["attrs"]["modality"] == "text" for info in features.values())


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


def transcripts(
    items: list[Item],
    config: AsrAsked,
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
