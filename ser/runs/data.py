"""What a run trained and tested on, as its record keeps it (`data`, `asr`): the
utterances read and those dropped, what its targets left out, its test text and audio
checked against its training side (`ser.train.text_overlap`, `ser.train.audio_overlap`)
and the WER of its ASR-text inputs (`ser.train.prepare`, `ser.corpus.wer`).

A key this version does not know stays in `extra` and is written back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ser.runs.codec import Json


@dataclass(frozen=True, kw_only=True)
class FoldSeen:
    """`seen` of a fold's `tested` test utterances were found on its training side."""

    seen: int
    tested: int
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TextSeen:
    """Test utterances whose transcript (`min_words`+ words, from `source`) appears word
    for word on their fold's training side: in all (`share` = seen / tested) and by fold."""

    seen: int
    tested: int
    share: float = 0.0
    min_words: int | None = None
    source: str | None = None
    folds: Mapping[str, FoldSeen] = field(default_factory=dict)
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AudioSeen:
    """Test utterances whose audio is a training utterance's, of those `tested` (`seen`
    None: a store had no prints, `unknown` says which); `unprinted`: test utterances
    without a print; `allowed`: a cross-corpus run's --allow-overlap where the share
    would have refused it."""

    ALWAYS = frozenset({"seen"})

    seen: int | None
    tested: int
    share: float | None = None
    unprinted: int | None = None
    folds: Mapping[str, FoldSeen] | None = None
    allowed: bool | None = None
    unknown: str | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Data:
    """The utterances a run read, those `dropped` by reason; with both a category and
    attributes, those `without_attribute` (trained on their class alone) by attribute;
    with soft labels, the `votes_fallback` (on their consensus label); `text_seen` and
    `audio_seen`."""

    utterances: int
    dropped: Mapping[str, int] = field(default_factory=dict)
    without_attribute: Mapping[str, int] | None = None
    votes_fallback: int | None = None
    text_seen: TextSeen | None = None
    audio_seen: AudioSeen | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AsrSet:
    """An ASR-text input's transcripts (`transcripts`, by `asr_model`) and their word
    error rate against the gold transcripts of the run's utterances (`ser.corpus.wer`'s
    counts; `wer` None with the `note` why where it could not be computed)."""

    ALWAYS = frozenset({"asr_model", "wer"})

    transcripts: str
    asr_model: str | None = None
    wer: float | None = None
    substitutions: int | None = None
    deletions: int | None = None
    insertions: int | None = None
    words: int | None = None
    utterances: int | None = None
    note: str | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)
