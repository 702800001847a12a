"""WebVTT subtitles of a segmented prediction (`--vtt`): one cue per segment, its class
and probability (and, from a run trained on attributes, each one's initial and value on
the corpus's scale: "A 3.2 V 2.9 D 3.1"), so the labels play along with the recording
in a media player.

>>> from types import SimpleNamespace as S
>>> cue_text(S(label="hap", probabilities={"hap": 0.71}, attributes={"arousal": 3.24}))
'hap 0.71 A 3.2'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class Segment(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def label(self) -> str | None: ...
    @property
    def probabilities(self) -> dict[str, float]: ...
    @property
    def attributes(self) -> dict[str, float]: ...
    @property
    def start(self) -> float | None: ...
    @property
    def end(self) -> float | None: ...


def timestamp(seconds: float) -> str:
    """`HH:MM:SS.mmm`, as WebVTT cue timings are written."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def vtt_text(segments: Sequence[Segment]) -> str:
    """The cues of the predicted segments (failed ones have none); with segments of
    several files each cue names its file."""
    files = {p.path for p in segments}
    lines = ["WEBVTT", ""]
    for p in segments:
        if (p.label is None and not p.attributes) or p.start is None or p.end is None:
            continue
        text = cue_text(p)
        if len(files) > 1:
            text = f"{Path(p.path).name}: {text}"
        lines += [f"{timestamp(p.start)} --> {timestamp(p.end)}", text, ""]
    return "\n".join(lines)


def cue_text(p: Segment) -> str:
    """A cue's words: its class and probability, then each attribute's initial and value."""
    parts = [] if p.label is None else [f"{p.label} {p.probabilities[p.label]:.2f}"]
    parts += [f"{name[0].upper()} {value:.1f}" for name, value in p.attributes.items()]
    return " ".join(parts)
