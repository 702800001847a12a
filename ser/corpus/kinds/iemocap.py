"""IEMOCAP: today's reader (`ser.corpus.reader`), its class sets and its summary by
session, unchanged."""

from __future__ import annotations

from pathlib import Path

from ser.corpus import reader
from ser.corpus.labels import LABEL_SETS

__all__ = ["LABEL_SETS", "detect", "read", "signature", "summarize"]


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


# The reader checks the class set itself (`get_label_set`): nothing to add around it.
read = reader.read_corpus
summarize = reader.summarize
