"""WebVTT subtitles of a segmented prediction (`--vtt`): one cue per segment, its class
and probability, so the labels play along with the recording in a media player."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class Segment(Protocol):
    path: str
    label: str | None
    probabilities: dict[str, float]
    start: float | None
    end: float | None


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
        if p.label is None or p.start is None or p.end is None:
            continue
        text = f"{p.label} {p.probabilities[p.label]:.2f}"
        if len(files) > 1:
            text = f"{Path(p.path).name}: {text}"
        lines += [f"{timestamp(p.start)} --> {timestamp(p.end)}", text, ""]
    return "\n".join(lines)
