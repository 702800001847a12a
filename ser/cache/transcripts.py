"""Transcript sets: the text a speech recogniser produced for every utterance of a store.

Batches are staged as JSON files keyed by manifest row (temp file + ``os.replace``, the
set's fingerprint inside): a killed run keeps what it finished, a resumed one may batch
differently. The layout in the store is docs/CONTRACTS.md's.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.errors import StoreError


@dataclass(frozen=True)
class TranscriptSet:
    """A complete transcript set: ``texts[i]`` is manifest row i's transcript."""

    name: str
    texts: tuple[str, ...]
    failures: dict[int, str] = field(repr=False)  # manifest row -> reason ("" text)
    attrs: dict[str, Any] = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return str(self.attrs["fingerprint"])


@dataclass(frozen=True)
class StagedTranscripts:
    texts: dict[int, str]
    failures: dict[int, str]

    @property
    def done(self) -> set[int]:
        return set(self.texts) | set(self.failures)


def write_staged(
    directory: Path, fingerprint: str, texts: dict[int, str], failures: dict[int, str]
) -> None:
    """Commit one batch of transcripts (manifest row -> text or failure) atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "fingerprint": fingerprint,
        "texts": {str(i): t for i, t in texts.items()},
        "failures": {str(i): r for i, r in failures.items()},
    }
    name = uuid.uuid4().hex
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, directory / f"{name}.json")


def read_staged(directory: Path, fingerprint: str, n_rows: int) -> StagedTranscripts:
    """The staged transcripts of this fingerprint (files of another one are ignored: a
    set that was begun again with other settings never reuses them)."""
    texts: dict[int, str] = {}
    failures: dict[int, str] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise StoreError(f"{path}: unreadable staged transcripts ({err})") from None
        if payload.get("fingerprint") != fingerprint:
            continue
        for target, key in ((texts, "texts"), (failures, "failures")):
            for row, value in payload.get(key, {}).items():
                index = int(row)
                if not 0 <= index < n_rows:
                    raise StoreError(f"{path}: manifest row {index} out of range")
                target[index] = str(value)
    return StagedTranscripts(texts, failures)
