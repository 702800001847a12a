"""What `ser predict` is given: audio files, folders of them, or CSV lists.

A CSV has a header with a ``path`` column and optionally a ``transcript`` column; relative
paths are relative to the CSV's folder. A folder contributes its audio files (by suffix,
sorted, recursively). Anything else is taken as an audio file, checked when it is read:
a missing or corrupt file fails alone, with its message, in `load_waves`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from ser.audio import AudioError, load_audio
from ser.errors import ConfigError

#: Suffixes a folder is searched for.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


@dataclass
class Item:
    """One file to predict, its transcript (None: none given) and notes about it."""

    path: Path
    transcript: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. "resampled 44100 -> 16000 Hz"
    error: str | None = None  # set when the file cannot be predicted


def read_inputs(args: list[str], text: str | None = None) -> list[Item]:
    """Items from files, folders and CSV lists; `text` (``--text``) is every item's
    transcript unless a CSV gives one."""
    items: list[Item] = []
    for arg in args:
        path = Path(arg)
        if path.suffix.lower() == ".csv" and path.is_file():
            items.extend(_read_csv(path))
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise ConfigError(
                    f"folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})"
                )
            items.extend(Item(p) for p in found)
        else:
            items.append(Item(path))
    if not items:
        raise ConfigError("give at least one audio file, folder or CSV list to predict")
    for item in items:
        if item.transcript is None:
            item.transcript = text
    return items


def _read_csv(path: Path) -> list[Item]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "path" not in columns:
            raise ConfigError(
                f"{path}: a CSV list needs a header with a 'path' column (and optionally "
                f"'transcript'); found {', '.join(columns) or 'no header'}"
            )
        rows = list(reader)
    items = []
    for row in rows:
        audio = Path(row["path"] or "")
        audio = audio if audio.is_absolute() else path.parent / audio
        transcript = row.get("transcript")
        items.append(Item(audio, transcript if "transcript" in columns else None))
    return items


def load_waves(items: list[Item], sample_rate: int) -> list[np.ndarray | None]:
    """Each item's audio as float32 mono at `sample_rate` (None for a failed item);
    conversions made (resampling, averaging channels) are noted on the item."""
    waves: list[np.ndarray | None] = []
    for item in items:
        if item.error is not None:
            waves.append(None)
            continue
        try:
            wave = load_audio(item.path, sample_rate)
            info = soundfile.info(str(item.path))  # decodable: load_audio read it
        except AudioError as err:
            item.error = str(err)
            waves.append(None)
            continue
        if info.samplerate != sample_rate:
            note = f"resampled {info.samplerate} Hz -> {sample_rate} Hz"
            if note not in item.notes:
                item.notes.append(note)
        if info.channels != 1:
            note = f"{info.channels} channels averaged to mono"
            if note not in item.notes:
                item.notes.append(note)
        waves.append(wave)
    return waves
