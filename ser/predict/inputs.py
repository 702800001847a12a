"""What `ser predict` is given: audio files, folders of them (by suffix, recursively), or
CSV lists of ``path[,transcript]`` lines (a first line naming a known column, or no audio
file, is a header, which must name a ``path`` column and no unknown one; paths relative
to the CSV). A missing, corrupt or cut short file fails alone. A header
with ``dialog`` and ``order`` columns gives whole conversations: each line's dialog and
its integer turn within it (an empty dialog cell: the line stands alone), which a
dialog-context run predicts in context. A timed transcript (SRT/WebVTT: --transcript, or
beside the audio with its stem) is attached to inputs without another (`attach_timed`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

from ser.corpus.audio import (
    AudioError,
    AudioInfo,
    AudioSource,
    Clip,
    audio_info,
    load_audio,
    source_path,
)
from ser.errors import ConfigError
from ser.predict.transcripts import FORMATS, TimedTranscript, read_timed

#: Suffixes a folder is searched for.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".mp4", ".m4a")
#: The rate of audio an `Item` holds in memory.
HELD_RATE = 16000
#: The columns a CSV list's header may name.
COLUMNS = ("path", "transcript", "dialog", "order")


@dataclass
class Item:
    """One file to predict, its transcript (None: none given) and notes about it."""

    path: Path
    transcript: str | None = None
    by_asr: bool = False  # the transcript is Whisper's
    notes: list[str] = field(default_factory=list)  # e.g. "resampled 44100 -> 16000 Hz"
    error: str | None = None  # set when the file cannot be predicted
    dialog: str | None = None  # its conversation (a CSV's dialog column), None: alone
    order: int | None = None  # its turn in the dialog (the order column)
    clip: Clip | None = None  # the window of the file it is (--segment), None: the whole
    timed: TimedTranscript | None = None  # its SRT/WebVTT words, cut to `clip` (segments.py)
    undecoded: bool = False  # its audio failed to decode (`error` says why)
    info: AudioInfo | None = None  # its file's header, once probed (a segment's: its file's)
    wave: np.ndarray | None = None  # its audio in memory (16 kHz mono float32: a stream's)

    @property
    def source(self) -> AudioSource:
        return self.clip or self.path


def read_inputs(args: list[str], text: str | None = None) -> list[Item]:
    """Items from files, folders and CSV lists; `text` (``--text``) is every item's
    transcript unless a CSV gives one."""
    items: list[Item] = []
    for arg in args:
        path = Path(arg)
        if path.suffix.lower() == ".csv" and path.is_file():
            items.extend(_read_csv(path, text))
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise ConfigError(
                    f"folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})"
                )
            items.extend(Item(p, text) for p in found)
        else:
            items.append(Item(path, text))
    if not items:
        raise ConfigError("give at least one audio file, folder or CSV list to predict")
    return items


def _read_csv(path: Path, text: str | None) -> list[Item]:
    # utf-8-sig: a spreadsheet's byte order mark is not part of the first path.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = [(n, row) for n, row in enumerate(csv.reader(handle), 1) if any(row)]
    if not lines:
        raise ConfigError(f"{path}: the CSV list holds no lines (path[,transcript])")
    columns = _header(path, *lines[0])
    if columns is None:
        columns = ["path", "transcript"]
    else:
        lines = lines[1:]
    if ("dialog" in columns) != ("order" in columns):
        raise ConfigError(f"{path}: a dialog column needs an order column, and the other way")
    items = []
    for n, row in lines:
        if len(row) > len(columns):
            raise ConfigError(
                f"{path}: line {n} has {len(row)} fields, expected path[,transcript] "
                "(put a transcript holding commas in double quotes)"
            )
        fields = dict(zip(columns, row, strict=False))
        audio = Path(fields["path"].strip())
        audio = audio if audio.is_absolute() else path.parent / audio
        item = Item(audio, fields.get("transcript", text))
        item.dialog, item.order = _turn(path, n, fields)
        items.append(item)
    _check_turns(path, [n for n, _ in lines], items)
    return items


def _header(path: Path, n: int, row: list[str]) -> list[str] | None:
    """The columns a CSV list's first line names (lower case); None when it is a line
    like the others, a file and its transcript. A line that names no audio file and
    no known column is a header too, which names no path column: refused, not read as
    a file that is not there."""
    cells = [cell.strip() for cell in row]
    names = [cell.lower() for cell in cells]
    if not set(names) & set(COLUMNS) and _names_audio(path, cells[0]):
        return None
    known = ", ".join(COLUMNS)
    if "path" not in names:
        raise ConfigError(
            f"{path}: line {n} ({','.join(cells)}) names no audio file, and as a header no "
            f"path column: name the columns from {known} (path first), or leave the header out"
        )
    unknown = [cell for cell, name in zip(cells, names, strict=True) if name not in COLUMNS]
    if any(unknown):
        raise ConfigError(
            f"{path}: its header names column(s) ser does not read: "
            f"{', '.join(c for c in unknown if c)} (known: {known})"
        )
    return names


def _names_audio(path: Path, cell: str) -> bool:
    """Whether a CSV list's cell names an audio file: by its suffix, or a file there."""
    audio = Path(cell)
    return audio.suffix.lower() in AUDIO_SUFFIXES or (path.parent / audio).is_file()


def _turn(path: Path, n: int, fields: dict[str, str]) -> tuple[str | None, int | None]:
    """A line's (dialog, order); (None, None) without a dialog."""
    dialog = fields.get("dialog", "").strip()
    if not dialog:
        return None, None
    try:
        return dialog, int(fields.get("order", "").strip())
    except ValueError:
        raise ConfigError(
            f"{path}: line {n}: order {fields.get('order')!r} is not an integer turn"
        ) from None


def _check_turns(path: Path, numbers: list[int], items: list[Item]) -> None:
    """No two lines may be the same turn of one dialog."""
    seen: dict[tuple[str, int], int] = {}
    for n, item in zip(numbers, items, strict=True):
        if item.dialog is None or item.order is None:
            continue
        key = (item.dialog, item.order)
        if key in seen:
            raise ConfigError(
                f"{path}: lines {seen[key]} and {n} are both turn {item.order} of dialog "
                f"{item.dialog!r}"
            )
        seen[key] = n


def attach_timed(items: list[Item], transcript: str | None) -> None:
    """Give items without a transcript their timed one: `transcript` (--transcript, one
    input only), else `<stem>.srt` or `<stem>.vtt` beside the audio where there is one."""
    if transcript is not None:
        if len(items) != 1 or items[0].transcript is not None:
            raise ConfigError(
                "--transcript is one recording's: give it with one audio file and no --text "
                "(or put NAME.srt / NAME.vtt beside each NAME.wav)"
            )
        items[0].timed = read_timed(Path(transcript))
        return
    for item in items:
        if item.transcript is not None:
            continue
        found = [p for p in map(item.path.with_suffix, FORMATS) if p.is_file()]
        if len(found) > 1:
            raise ConfigError(
                f"{item.path}: two timed transcripts beside it ({found[0].name}, "
                f"{found[1].name}); keep one"
            )
        if found:
            item.timed = read_timed(found[0])


def load_waves(items: list[Item], sample_rate: int | None) -> list[np.ndarray | None]:
    """Each item's audio as float32 mono at `sample_rate` (None: its own rate, to refuse
    unreadable files in a text-only run), None for a failed one; conversions noted."""
    return [_load(item, sample_rate) for item in items]


def _load(item: Item, sample_rate: int | None) -> np.ndarray | None:
    if item.error is not None:
        return None
    if item.wave is not None:  # a stream's segment, decoded already at the stream's rate
        rate = sample_rate or HELD_RATE
        return item.wave if rate == HELD_RATE else soxr.resample(item.wave, HELD_RATE, rate)
    try:
        wave, info = _decode(item.source, sample_rate, item.info)
    except AudioError as err:
        item.error, item.undecoded = str(err), True
        return None
    if sample_rate is not None:
        for changed, note in (
            (info.rate != sample_rate, f"resampled {info.rate} Hz -> {sample_rate} Hz"),
            (info.channels != 1, f"{info.channels} channels averaged to mono"),
        ):
            if changed and note not in item.notes:
                item.notes.append(note)
    return wave


def _decode(
    source: AudioSource, sample_rate: int | None, info: AudioInfo | None
) -> tuple[np.ndarray, AudioInfo]:
    """The audio and its file's header (`info`: probed already, as a segment's file is)."""
    path = source_path(source)
    info = info or audio_info(path)  # AudioError saying why: missing, empty, unreadable
    return load_audio(source, sample_rate or info.rate), info
