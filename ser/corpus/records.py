"""The records every corpus kind reads into: an `Utterance` per labelled utterance, the
`Problem`s met on the way, and the `CorpusReading` holding both.

One record shape serves every corpus. What only some corpora have is optional (a
dialog and its order, a transcript, the attributes, the annotators' votes, a part of a
longer file), and what a corpus groups its utterances by (IEMOCAP's sessions, MELD's
splits and seasons, CREMA-D's sentences) is a `groups` mapping, not a field of its own.

>>> u = Utterance("a", None, "neu", "spk1", groups=(("split", "dev"),))
>>> u.dialog, u.group("split"), u.attributes
('a', 'dev', (nan, nan, nan))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

NAN = math.nan
#: The emotion attributes (dimensions) a corpus may rate, in this order everywhere: the
#: manifest's columns of these names, `Utterance.attributes`, a run's attribute targets.
ATTRIBUTES = ("arousal", "valence", "dominance")
#: A group's value: text, or an integer (IEMOCAP's session numbers).
GroupValue = str | int


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance, everything the later stages need about it.

    `start`, `end`: seconds of the utterance in the recording it was cut from (IEMOCAP:
    its dialog's), or in its own file (0 and its length). `span`: the part of `wav_path`
    that is this utterance, when the file holds more than it (None: the whole file).
    `votes`: (annotator, code) pairs, one per category an annotator chose, where the
    corpus ships them. `groups`: (name, value) pairs sorted by name, each a column of the
    store's manifest (what `logo:<group>` folds over and the summary counts by).
    `scores`: (name, value) pairs of numeric labels beyond the attributes (CMU-MOSEI's
    sentiment score and emotion intensities), each a float column of the manifest.
    """

    utt_id: str
    wav_path: Path | None  # the audio file; None when missing
    label: str  # the consensus code (IEMOCAP's three letters, a corpus's own)
    speaker: str
    gender: str = ""  # "F" | "M" | "" (unknown)
    dialog: str = ""  # the conversation it is a turn of; "" -> a dialog of its own
    order: int = 0  # 0-based rank by time within its dialog
    start: float = 0.0
    end: float = 0.0
    duration: float = 0.0  # end - start
    transcript: str = ""  # clean text (tags removed, whitespace collapsed)
    transcript_raw: str = ""  # as the corpus ships it
    valence: float = NAN  # the corpus's own scale (IEMOCAP 1-5, MSP-Podcast 1-7)
    arousal: float = NAN
    dominance: float = NAN
    votes: tuple[tuple[str, str], ...] = ()
    groups: tuple[tuple[str, GroupValue], ...] = ()
    scores: tuple[tuple[str, float], ...] = ()
    span: tuple[float, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.dialog:
            object.__setattr__(self, "dialog", self.utt_id)
        object.__setattr__(self, "groups", tuple(sorted(self.groups)))

    @property
    def attributes(self) -> tuple[float, float, float]:
        """(arousal, valence, dominance); NaN where the corpus has none."""
        return (self.arousal, self.valence, self.dominance)

    def group(self, name: str) -> GroupValue | None:
        """The value of group `name`, None when this utterance has none."""
        return dict(self.groups).get(name)


@dataclass(frozen=True)
class Problem:
    """Something wrong with one utterance (or file) that did not stop the read."""

    utt_id: str
    problem: str


@dataclass(frozen=True)
class CorpusReading:
    """What a corpus kind read: the utterances (sorted as the kind sorts them) and the
    problems. `root` is the folder wav paths are relative to; `source` what the user
    named when that is not `root` (a manifest file)."""

    root: Path
    utterances: tuple[Utterance, ...]
    problems: tuple[Problem, ...]
    source: Path | None = None
