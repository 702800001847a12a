"""What a cross-corpus run's record keeps (`RunRecord.cross`, written by
`ser.train.cross`): both stores, the classes matched by emotion
(`ser.corpus.emotions.ClassMatch.record`) and what either side dropped.

A key this version does not know stays in `extra` and is written back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ser.runs.codec import Json


@dataclass(frozen=True, kw_only=True)
class CrossSide:
    """One store of the run: its path, corpus kind and title, manifest digest
    (`StoreCorpus.digest`), class set and EmoBox's name of its corpus (None: not one of
    EmoBox's), the utterances it gave and their classes; the training side the encoder
    of each input (None: no model, e.g. openSMILE), the test side each input's stored
    sets and their fingerprints."""

    ALWAYS = frozenset({"emobox"})

    store: str
    corpus: str
    title: str
    manifest: str
    classes: str
    emobox: str | None = None
    utterances: int
    per_class: Mapping[str, int] = field(default_factory=dict)
    encoders: Mapping[str, str | None] | None = None
    sets: Mapping[str, tuple[str, ...]] | None = None
    fingerprints: Mapping[str, str] | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Sides:
    """A count by class or label for each side."""

    train: Mapping[str, int] = field(default_factory=dict)
    test: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Cross:
    """Both sides, the class sets matched (`train_set`, `test_set`), the classes
    `shared` with their `emotions`, those of one side only, the utterances each side
    dropped of classes the other lacks (`unmatched`) and of labels outside its class set
    (`outside`)."""

    train: CrossSide
    test: CrossSide
    train_set: str
    test_set: str
    shared: tuple[str, ...] = ()
    emotions: Mapping[str, str] = field(default_factory=dict)
    train_only: tuple[str, ...] = ()
    test_only: tuple[str, ...] = ()
    unmatched: Sides = field(default_factory=Sides)
    outside: Sides = field(default_factory=Sides)
    extra: Mapping[str, Json] = field(default_factory=dict)

    def side(self, name: str) -> CrossSide:
        """ "train" or "test"'s side."""
        return self.train if name == "train" else self.test
