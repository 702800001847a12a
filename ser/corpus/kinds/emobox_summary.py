"""`ser corpus summary` of an EmoBox corpus folder or track2 file (`ser.corpus.kinds.emobox`):
counts per side of its one fold, or per speaker, and lines under the table (`notes`):
the corpus's title and language, where its speakers come from, each fold's sizes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ser.corpus.kinds.emobox_corpora import SIDES, UNKNOWN, corpus_of, label_sets
from ser.corpus.kinds.flat import pick, summarize_by
from ser.corpus.records import CorpusReading, Utterance


def summarize(reading: CorpusReading, classes: str) -> dict[str, Any]:
    """`ser corpus summary`'s JSON: counts per side of the one fold (or per speaker), the
    corpus's title and language, where its speakers come from (`speakers`: "unknown" when
    no one names them), each fold's sizes, and `notes`, the lines said under the table."""
    utterances = reading.utterances
    label_set = pick(label_sets([u.label for u in utterances]), classes, "EmoBox")
    folds = [g for g, _ in utterances[0].groups if g.startswith("fold_")] if utterances else []
    by = folds[0] if len(folds) == 1 else "speaker"
    result = summarize_by(reading, label_set, by)
    if by != "speaker":
        result[f"per_{by}"] = {k or "none": v for k, v in result[f"per_{by}"].items()}
    name = str(utterances[0].group("dataset")) if utterances else (reading.source or Path()).name
    corpus = corpus_of(name)
    track2 = reading.source is not None and reading.source.is_file()
    source = "the track2 file" if track2 else corpus.source
    if all(u.speaker == UNKNOWN for u in utterances):
        result["speakers"] = "unknown"
    sizes = {f: _sizes(utterances, f) for f in sorted(folds, key=lambda f: int(f[5:]))}
    shown = "; ".join(
        f"{f} " + ", ".join(f"{s} {n}" for s, n in c.items()) for f, c in sizes.items()
    )
    result.update(
        corpus=name,
        title=corpus.title,
        language=corpus.language,
        speaker_source=source,
        folds=sizes,
    )
    result["notes"] = [
        f"EmoBox {corpus.title} ({corpus.language}); speakers: {source}",
        f"folds: {shown}" if sizes else "no folds (a test set: --protocol emobox has none)",
    ]
    return result


def _sizes(utterances: Sequence[Utterance], fold: str) -> dict[str, int]:
    """Utterances on each side of `fold` (`none`: on no side)."""
    counts = dict.fromkeys((*SIDES, "none"), 0)
    for u in utterances:
        counts[str(u.group(fold)) or "none"] += 1
    return {side: n for side, n in counts.items() if n or side in ("train", "test")}
