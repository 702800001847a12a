"""Word error rate of ASR transcripts against the corpus's gold transcripts (jiwer).

Both sides are normalised first, so that Whisper's casing and punctuation are not
counted as errors. Utterances whose gold transcript has no words are left out; an empty
ASR transcript (a failed or silent utterance) counts as deleting every gold word. The
WER is the corpus-level one. Torch-free: `ser report` and `ser store info` use it.

>>> wer = word_error_rate(["a b c d"], ["A, x c."])
>>> wer.wer, wer.substitutions, wer.deletions, wer.insertions, wer.words
(0.5, 1, 1, 0, 4)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # a type only: the votes' module reads the corpus registry
    from ser.corpus.votes import Columns

_NOT_WORD = re.compile(r"[^\w\s]|_")


class Transcribed(Protocol):
    """A transcript set (`ser.cache.transcripts.TranscriptSet`): row i's text."""

    @property
    def texts(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class WordErrorRate:
    wer: float
    substitutions: int
    deletions: int
    insertions: int
    words: int
    utterances: int


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, other punctuation a space, whitespace collapsed.

    >>> normalise("  Don't -- STOP! [LAUGHTER] ")
    'dont stop laughter'
    """
    return " ".join(_NOT_WORD.sub(" ", text.replace("'", "").lower()).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> WordErrorRate:
    """WER of `hypotheses` against `references` (pairs in the same order); ValueError
    when the lengths differ or no reference has words."""
    import jiwer  # imported here: `ser report` without ASR runs never pays for it

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(normalise(r), normalise(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        raise ValueError("no reference transcript has words: the WER is undefined")
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    return WordErrorRate(
        wer=float(out.wer),
        substitutions=int(out.substitutions),
        deletions=int(out.deletions),
        insertions=int(out.insertions),
        words=int(out.hits + out.substitutions + out.deletions),
        utterances=len(pairs),
    )


def transcripts_wer(
    manifest: Columns, stored: Transcribed, rows: Sequence[int] | None = None
) -> WordErrorRate:
    """WER of a transcript set as read (`read_transcripts`) against the manifest's gold
    transcripts, over manifest `rows` (None: every utterance). ValueError when no gold one
    has words."""
    gold = manifest.column("transcript").tolist()  # manifest text columns are str
    picked = range(len(gold)) if rows is None else rows
    return word_error_rate([gold[i] for i in picked], [stored.texts[i] for i in picked])
