"""What `ser predict` is asked (`PredictConfig`) and what it gives (`Prediction`,
`PredictResult`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ser.heads.attributes import AttributeHead
from ser.heads.base import Head
from ser.heads.emotion import EmotionHead
from ser.heads.predicted import Part
from ser.heads.recorded import BUILT_IN
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
    # "folds" (ensemble), "final", "held-out" (each input of the run's store by the folds
    # that held it out: `ser.predict.held_out`) or keys, comma-separated
    checkpoint: str = "folds"
    device: str = "auto"
    batch_size: int = BATCH_SIZE
    encoders: tuple[str, ...] = ()  # model folders standing in for moved ones (--encoder)
    segment: str | None = None  # "fixed:SECONDS[:HOP]" or "vad": each file in segments
    vad: VadOptions | None = None  # --segment vad's options (None: their defaults)
    model: str | None = None  # an exported folder (`ser export`) instead of `run`
    runtime: str = "torch"  # or "onnx": the exported folder's ONNX graphs on onnxruntime


@dataclass(frozen=True)
class Output:
    """One head of the run as `ser predict` writes it: the head and its outputs' names
    (`ser.heads.base.Head.names` of the run's classes)."""

    head: Head
    names: tuple[str, ...]


@dataclass
class Prediction:
    """One input's outcome: each head's predictions, or why there are none."""

    path: str
    transcript: str | None = None
    transcript_source: str | None = None  # "given" | "timed" (SRT/WebVTT) | "asr"
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    dialog: str | None = None  # its conversation and turn, when the CSV gave them
    order: int | None = None
    start: float | None = None  # the segment's span in its file (seconds), with --segment
    end: float | None = None
    # Each head's predictions by the head's name, in the run's head order ({}: it failed).
    heads: dict[str, Part] = field(default_factory=dict)
    # An utterance of the run's own store (`ser.predict.held_out.Origin`): its id, the
    # checkpoints whose test side held it and those that trained on it (None, (): not one).
    utterance: str | None = None
    held_out_by: tuple[str, ...] = ()
    seen_by: tuple[str, ...] = ()

    def of(self, name: str) -> dict[str, float]:
        """The head `name`'s outputs by name ({}: none, or the input failed)."""
        part = self.heads.get(name)
        return {} if part is None else part.named()

    @property
    def probabilities(self) -> dict[str, float]:
        """The category's class probabilities ({}: none), as scripts read them."""
        return self.of(EmotionHead.name)

    @property
    def label(self) -> str | None:
        """The category's most probable class (None: none)."""
        probs = self.probabilities
        return max(probs, key=probs.__getitem__) if probs else None

    @property
    def attributes(self) -> dict[str, float]:
        """The attributes on the corpus's scale ({}: none), as scripts read them."""
        return self.of(AttributeHead.name)


@dataclass(frozen=True)
class PredictResult:
    classes: tuple[str, ...]  # the run's class set (() for a run without the category)
    checkpoints: tuple[str, ...]
    predictions: list[Prediction]
    notes: tuple[str, ...] = ()  # about the whole prediction (`ser.predict.notes`)
    # dialog-level models given an input without its conversation (no dialog column)
    dialog_context_lost: bool = False
    # The heads its outputs show, in the run's order (`outputs_of`).
    heads: tuple[Output, ...] = ()

    @property
    def categorical(self) -> bool:
        """Whether the run predicts a class (a run on attributes alone has no classes)."""
        return bool(self.classes)

    @property
    def attributes(self) -> tuple[str, ...]:
        """What a run trained on attributes predicts of them (() for none)."""
        return next((o.names for o in self.heads if o.head.name == AttributeHead.name), ())

    @property
    def failed(self) -> int:
        return sum(p.error is not None for p in self.predictions)


def outputs_of(heads: Sequence[Head], classes: Sequence[str]) -> tuple[Output, ...]:
    """The run's `heads` as its outputs show them, after the heads every output shows
    (`Reported.always_shown`: the category's, with no classes in a run without it)."""
    have = {h.name for h in heads}
    shown = [k() for k in BUILT_IN if issubclass(k, Head) and k.always_shown and k.name not in have]
    return tuple(Output(h, h.names(classes)) for h in [*shown, *heads])
