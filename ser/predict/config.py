"""What `ser predict` is asked (`PredictConfig`) and what it gives (`Prediction`,
`PredictResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ser.predict.features import BATCH_SIZE
from ser.predict.vad import VadOptions

#: `--runtime` values: torch (ser's own code) or onnxruntime on an export's graphs.
RUNTIMES = ("torch", "onnx")


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
    model: str | None = None  # an exported folder (`ser export`) instead of `run`
    runtime: str = "torch"  # or "onnx": the exported folder's ONNX graphs on onnxruntime


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
    # A run's further heads' fields (`ser.heads.base.Head.fields`: MELD's sentiment, ...).
    heads: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictResult:
    classes: tuple[str, ...]
    checkpoints: tuple[str, ...]
    predictions: list[Prediction]
    notes: tuple[str, ...] = ()  # about the whole prediction (`ser.predict.notes`)
    # dialog-level models given an input without its conversation (no dialog column)
    dialog_context_lost: bool = False
    attributes: tuple[str, ...] = ()  # what a run trained on attributes predicts of them
    heads: tuple[str, ...] = ()  # the run's further heads (`ser.heads.registry`)

    @property
    def categorical(self) -> bool:
        """Whether the run predicts a class (a run on attributes alone has no classes)."""
        return bool(self.classes)

    @property
    def failed(self) -> int:
        return sum(p.error is not None for p in self.predictions)
