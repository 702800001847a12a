"""Timed transcripts (SRT or WebVTT) of recordings: a segment's text is the words timed
within it (`--transcript FILE`, or `<stem>.srt` / `<stem>.vtt` beside the audio).

Subtitles time cues, not words: a cue's words are placed evenly over its time (word i of
n at `start + (i + 1/2) (end - start) / n`), and a segment `[start, end)` gets the words
placed within it. A cue straddling a segment's end is so shared out in proportion to time,
in word order; a segment never gets a word of speech outside it, as a cue's midpoint
rule would give for a long cue, and overlapping windows each get their words. webvtt-py
parses the cues; each cue block is parsed alone, so that a malformed one is named by
its file and line instead of being skipped.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from ser.errors import ConfigError

#: Timed transcript formats, by suffix.
FORMATS = {".srt": "srt", ".vtt": "vtt"}
#: WebVTT blocks that hold no cue.
_NOT_CUES = ("WEBVTT", "NOTE", "STYLE", "REGION")


@dataclass(frozen=True)
class TimedTranscript:
    """A file's words, each at its place in time (seconds), in time order."""

    path: Path
    times: tuple[float, ...]
    words: tuple[str, ...]

    def text(self, start: float = 0.0, end: float = float("inf")) -> str:
        """The words placed within `[start, end)` seconds, space-separated."""
        first, last = bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)
        return " ".join(self.words[first:last])


def read_timed(path: Path) -> TimedTranscript:
    """The words of an SRT or WebVTT file; `ConfigError` naming the file (and the line of
    a malformed cue)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: a timed transcript is .srt or .vtt")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: timed transcript not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the timed transcript ({err})") from None
    placed: list[tuple[float, int, str]] = []
    blocks = _blocks(text)
    if kind == "vtt" and (not blocks or not blocks[0][1][0].startswith("WEBVTT")):
        raise ConfigError(f"{path}:1: a WebVTT file starts with a WEBVTT line")
    for line, lines in blocks:
        if kind == "vtt" and lines[0].split(" ", 1)[0] in _NOT_CUES:
            continue
        start, end, words = _cue(path, line, kind, lines)
        step = (end - start) / max(len(words), 1)
        placed += [(start + (i + 0.5) * step, len(placed) + i, w) for i, w in enumerate(words)]
    placed.sort()  # by time; words of one time in file order
    return TimedTranscript(path, tuple(t for t, _, _ in placed), tuple(w for _, _, w in placed))


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """The blank-line-separated blocks of `text`: (first line's number, lines)."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not current:
                blocks.append((n, current))
            current.append(line.rstrip())
        else:
            current = []
    return [(n, lines) for n, lines in blocks if lines]


def _cue(path: Path, line: int, kind: str, lines: list[str]) -> tuple[float, float, list[str]]:
    """One cue block's (start, end) seconds and words, its tags dropped."""
    import webvtt

    head = ["WEBVTT", ""] if kind == "vtt" else []
    try:
        cues = webvtt.from_buffer([*head, *lines, ""], format=kind).captions
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError):
        cues = []
    if len(cues) != 1:
        shape = "NUMBER, then START --> END" if kind == "srt" else "[ID, then] START --> END"
        raise ConfigError(f"{path}:{line}: not a cue ({shape}, then its text): {lines[0]!r}")
    cue = cues[0]
    start, end = (t.in_milliseconds() / 1000 for t in (cue.start_time, cue.end_time))
    if end < start:
        raise ConfigError(f"{path}:{line}: the cue ends ({cue.end}) before it starts ({cue.start})")
    return start, end, cue.text.split()
