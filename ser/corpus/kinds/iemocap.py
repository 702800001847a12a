"""IEMOCAP: today's reader (`ser.corpus.reader`), its class sets and its summary by
session, unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ser.corpus import reader
from ser.corpus.labels import LABEL_SETS, LabelSet, get_label_set
from ser.corpus.reader import CorpusReading

__all__ = ["LABEL_SETS", "LabelSet", "detect", "read", "signature", "summarize"]


def detect(root: Path) -> bool:
    return any(
        (root / f"Session{s}" / "dialog" / "EmoEvaluation").is_dir() for s in reader.SESSIONS
    )


def signature(root: Path) -> list[Path]:
    """The label and transcription files and the wav folders (`ser extract`'s receipts)."""
    texts = [*root.glob("Session*/dialog/EmoEvaluation/*.txt")]
    texts += root.glob("Session*/dialog/transcriptions/*.txt")
    # A wav folder's mtime changes when a file in it is added, removed or renamed.
    return [*texts, *(p for p in root.glob("Session*/sentences/wav/*") if p.is_dir())]


def read(root: Path, classes: str) -> CorpusReading:
    get_label_set(classes)
    return reader.read_corpus(root, classes)


def summarize(reading: CorpusReading, classes: str) -> dict[str, Any]:
    return reader.summarize(reading, classes)
