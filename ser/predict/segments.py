"""Long recordings predicted segment by segment (`--segment fixed:SECONDS[:HOP]` or
`--segment vad`).

A file is cut into windows of its own time line, or into its stretches of speech
(`vad.py`), each predicted as an utterance; only a segment's frames are decoded (`Clip`),
so a recording of hours is never held whole. A file
far longer than the run's utterances, given without `--segment`, is refused (`longest.py`):
a model trained on utterances of seconds says nothing useful about an hour averaged into
one row. A timed transcript (`transcripts.py`) gives each segment the words within it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ser.corpus.audio import AudioError, Clip, audio_info, cut_short
from ser.errors import ConfigError
from ser.predict.inputs import Item
from ser.predict.longest import Limit, too_short
from ser.predict.vad import SileroVad, VadOptions

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
    if vad is not None and text != "vad":
        raise ConfigError("--min-segment, --max-segment, --merge-gap, --pad need --segment vad")
    if text is None:
        return None
    if text == "vad":
        options = vad or VadOptions()
        options.check()
        return SileroVad(options)
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


def segment_items(
    items: list[Item],
    windows: Segmenter | None,
    limit: Limit | None,
    dialogs: bool = False,
) -> list[Item]:
    """Each item as its windows (`windows`), or (no --segment) as itself, refused when
    over `limit`; a timed transcript cut to each. `dialogs` (a dialog-context run): a
    recording's segments are one conversation's turns, in time order."""
    if windows is not None and any(item.dialog is not None for item in items):
        raise ConfigError(
            "--segment cuts files into windows: a CSV's dialog columns cannot go with it"
        )
    parts = [_parts(item, windows, limit) for item in items]
    if dialogs and windows is not None:
        names: dict[str, int] = {}
        for segments in parts:
            name = str(segments[0].path)
            names[name] = names.get(name, 0) + 1
            name += f" ({names[name]})" if names[name] > 1 else ""  # the same file again
            for order, part in enumerate(segments):
                part.dialog, part.order = name, order
    return [part for segments in parts for part in segments]


def _parts(item: Item, windows: Segmenter | None, limit: Limit | None) -> list[Item]:
    """An item's segments; the item itself, failed or refused, when it has none."""
    try:
        item.info = audio_info(item.path)  # probed once: its segments decode with it
        duration = item.info.seconds
        if (refusal := too_short(duration)) is not None:
            item.error = refusal
            return [item]
        spans = windows.cut(item.path, duration) if windows is not None else None
    except AudioError as err:
        item.error = str(err)
        return [item]
    if spans is None:
        if limit is not None and duration > limit.seconds:
            item.error = limit.refusal(duration)
        elif item.timed is not None:
            item.transcript = item.timed.text()
        return [item]
    if not spans:
        item.error = NO_SPEECH
        return [item]
    parts = [
        replace(item, clip=Clip(item.path, a, b), notes=[], transcript=_text(item, a, b))
        for a, b in spans
    ]
    if (problem := cut_short(item.path)) is not None:  # its segments end where its data does
        rest = f"{problem}: predicted up to {duration:.2f} s, the rest is missing"
        parts.append(replace(item, clip=Clip(item.path, duration, duration), error=rest))
    return parts


def _text(item: Item, start: float, end: float) -> str | None:
    return item.timed.text(start, end) if item.timed is not None else item.transcript


def groups(items: list[Item], size: int, seconds: float) -> Iterator[list[Item]]:
    """Consecutive items predicted together: at most `size` of them and `seconds` of
    segments' audio, so that a long recording is never held whole. A conversation (a
    recording's segments in a dialog-context run) that does not fit in what is left of a
    group starts one; one longer than a group is cut, its later parts named `dialog #2` ..."""
    count: dict[str | None, int] = {}
    held: dict[str | None, float] = {}
    for item in items:
        count[item.dialog] = count.get(item.dialog, 0) + 1
        held[item.dialog] = held.get(item.dialog, 0.0) + _seconds(item)
    group: list[Item] = []
    total, parts = 0.0, dict.fromkeys(count, 1)
    for item in items:
        length = _seconds(item)
        new = item.dialog is not None and (not group or group[-1].dialog != item.dialog)
        over = len(group) + 1 > size or total + length > seconds
        if new:  # a conversation starts a group unless it fits in what is left
            over = len(group) + count[item.dialog] > size or total + held[item.dialog] > seconds
        if group and over:
            yield group
            group, total = [], 0.0
            if item.dialog is not None and not new:
                parts[item.dialog] += 1
        if item.dialog is not None and parts[item.dialog] > 1:
            item.dialog = f"{item.dialog} #{parts[item.dialog]}"
        group.append(item)
        total += length
    if group:
        yield group


def _seconds(item: Item) -> float:
    """A segment's length, or a whole file's by its header (0: not probed, or failed)."""
    if item.clip is not None:
        return item.clip.end - item.clip.start
    return item.info.seconds if item.info is not None else 0.0
