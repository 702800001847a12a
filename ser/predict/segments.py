"""Long recordings predicted segment by segment (`--segment fixed:SECONDS[:HOP]` or
`--segment vad`).

A file is cut into windows of its own time line, or into its stretches of speech
(`vad.py`), each predicted as an utterance; only a segment's frames are decoded (`Clip`),
so a recording of hours is never held whole. A file
far longer than an utterance, given without `--segment`, is refused (`too_long`): a model
trained on utterances of seconds says nothing useful about an hour averaged into one row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ser.corpus.audio import AudioError, Clip, audio_info
from ser.errors import ConfigError
from ser.predict.inputs import Item
from ser.predict.vad import SileroVad, VadOptions

#: Longest file predicted as one utterance without --segment (seconds). The run records
#: no utterance lengths, so this is fixed: well above any corpus's (IEMOCAP's: ~35 s).
LONGEST_UTTERANCE = 60.0
#: A last window shorter than this share of a window joins the one before it.
SHORTEST_TAIL = 0.5


NO_SPEECH = "no speech found (--segment vad): nothing to predict"


class Segmenter(Protocol):
    def cut(self, path: Path, duration: float) -> list[tuple[float, float]]: ...


@dataclass(frozen=True)
class FixedWindows:
    """Windows of `seconds`, one every `hop` seconds (`--segment fixed:SECONDS[:HOP]`)."""

    seconds: float
    hop: float

    def cut(self, path: Path, duration: float) -> list[tuple[float, float]]:
        return self.spans(duration)

    def spans(self, duration: float) -> list[tuple[float, float]]:
        """(start, end) seconds of the windows over `duration`; a file shorter than a
        window is one segment of its length, and a short tail joins the last window."""
        spans: list[tuple[float, float]] = []
        start = 0.0
        while not spans or spans[-1][1] < duration:
            spans.append((start, min(start + self.seconds, duration)))
            start = round(start + self.hop, 6)
        if len(spans) > 1 and spans[-1][1] - spans[-1][0] < SHORTEST_TAIL * self.seconds:
            spans.pop()
            spans[-1] = (spans[-1][0], duration)
        return spans


def parse_segment(text: str | None, vad: VadOptions | None = None) -> Segmenter | None:
    """`--segment`'s value: None for none, `vad` (with `vad`'s options), else
    `fixed:SECONDS[:HOP]` (HOP: SECONDS)."""
    if text is None:
        if vad is not None:
            raise ConfigError("--min-segment, --max-segment, --merge-gap, --pad need --segment vad")
        return None
    if text == "vad":
        options = vad or VadOptions()
        options.check()
        return SileroVad(options)
    if vad is not None:
        raise ConfigError("--min-segment, --max-segment, --merge-gap, --pad need --segment vad")
    kind, _, rest = text.partition(":")
    numbers = rest.split(":") if rest else []
    if kind != "fixed" or not 1 <= len(numbers) <= 2:
        raise ConfigError(f"--segment {text!r}: expected vad, fixed:SECONDS or fixed:SECONDS:HOP")
    try:
        seconds, hop = float(numbers[0]), float(numbers[-1])
    except ValueError:
        raise ConfigError(f"--segment {text!r}: SECONDS and HOP must be numbers") from None
    if not 0 < hop <= seconds:
        raise ConfigError(f"--segment {text!r}: need 0 < HOP <= SECONDS (seconds)")
    return FixedWindows(seconds, hop)


def segment_items(items: list[Item], windows: Segmenter | None) -> list[Item]:
    """Each item as its windows (`windows`), or as itself refused when too long for one
    utterance (None: no --segment)."""
    if windows is not None and any(item.dialog is not None for item in items):
        raise ConfigError(
            "--segment cuts files into windows: a CSV's dialog columns cannot go with it"
        )
    return [part for item in items for part in _parts(item, windows)]


def _parts(item: Item, windows: Segmenter | None) -> list[Item]:
    """An item's segments; the item itself, failed or refused, when it has none."""
    try:
        duration = audio_info(item.path).seconds
        spans = windows.cut(item.path, duration) if windows is not None else None
    except AudioError as err:
        item.error = str(err)
        return [item]
    if spans is None:
        if duration > LONGEST_UTTERANCE:
            item.error = too_long(duration)
        return [item]
    if not spans:
        item.error = NO_SPEECH
        return [item]
    return [replace(item, clip=Clip(item.path, a, b), notes=[]) for a, b in spans]


def too_long(duration: float) -> str:
    return (
        f"{duration:.0f} s is far longer than an utterance (over {LONGEST_UTTERANCE:.0f} s): "
        f"predict it in windows with --segment fixed:SECONDS (e.g. fixed:5)"
    )
