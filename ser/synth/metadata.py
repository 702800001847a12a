"""The utterance metadata CSV behind `ser demo-corpus --from-metadata`: columns and checks.

One row per utterance, and optionally its raw `text` (else composed from the label);
`order` is the order of the transcription lines. Every row is checked against its id.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ser.corpus.kinds.iemocap import UTT_ID
from ser.corpus.labels import LABEL_CODES
from ser.errors import CorpusError

METADATA_COLUMNS: tuple[str, ...] = ("utt_id", "dialog", "session", "speaker_gender", "kind")
METADATA_COLUMNS += ("order", "start", "end", "label")


def read_metadata(path: Path) -> list[dict[str, str]]:
    """The rows of a metadata CSV; `CorpusError` naming the file and line of a bad one."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in METADATA_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CorpusError(f"{path}: missing columns {', '.join(missing)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"cannot read metadata {path}: {error}") from error
    if not rows:
        raise CorpusError(f"{path}: no utterances")
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        problem = metadata_problem(row, seen)
        if problem:
            raise CorpusError(f"{path}:{line}: {problem}")
        seen.add(row["utt_id"])
    return rows


def metadata_problem(row: dict[str, str], seen: set[str]) -> str:
    """What is wrong with one row ("" if nothing): id, its parts, label, times."""
    utt_id = row["utt_id"] or ""
    if not UTT_ID.match(utt_id):
        return f"not an utterance id: {utt_id!r}"
    if utt_id in seen:
        return f"duplicate utterance {utt_id}"
    expected = {
        "dialog": utt_id[:-5],
        "session": str(int(utt_id[3:5])),
        "speaker_gender": utt_id[-4],
        "kind": "impro" if "_impro" in utt_id else "script",
    }
    for column, value in expected.items():
        if (row[column] or "").strip() != value:
            return f"{column} {row[column]!r} does not match {utt_id} (expected {value!r})"
    if row["label"] not in LABEL_CODES:
        return f"unknown label code {row['label']!r}"
    try:
        start, end, _ = float(row["start"]), float(row["end"]), int(row["order"])
    except (TypeError, ValueError):
        return "start, end and order must be numbers"
    if not 0 <= start < end:
        return f"bad times {start} - {end}"
    return ""
