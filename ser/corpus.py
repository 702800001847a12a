"""IEMOCAP corpus reader: an `IEMOCAP_full_release` folder -> utterance records.

CONTRACT (fixed; the reader itself is being written): `Utterance` below and
`read_corpus(root, classes="all") -> CorpusReading`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Utterance:
    """One labelled turn of IEMOCAP, everything the later stages need about it."""

    utt_id: str  # e.g. Ses01F_impro01_F000
    session: int  # 1..5
    dialog: str  # utt_id minus its last 5 characters
    speaker: str  # session + real speaker's gender, e.g. "Ses01F" (10 in all)
    gender: str  # "F" | "M": the letter before the 3 digits, not the dialog's
    kind: str  # "impro" | "script"
    order: int  # 0-based rank by start time within its dialog (all labelled turns)
    start: float  # seconds in the dialog recording
    end: float
    duration: float  # end - start
    label: str  # consensus code: neu hap exc sad ang fru sur fea dis oth xxx
    valence: float  # 1..5
    arousal: float
    dominance: float
    transcript_raw: str  # as in transcriptions/, tags included
    transcript: str  # tags like [LAUGHTER] removed, whitespace collapsed
    wav_path: Path | None  # sentences/wav/<dialog>/<utt_id>.wav, None when missing


@dataclass(frozen=True)
class Problem:
    """Something wrong with one utterance (or file) that did not stop the read."""

    utt_id: str
    problem: str


@dataclass(frozen=True)
class CorpusReading:
    """What `read_corpus` found: the utterances (sorted by session, dialog, order)."""

    root: Path
    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...]
