"""MELD's sentiment (negative, neutral, positive) per utterance, a categorical head beside
the emotion (`--target emotion+sentiment`).

Its gold is the manifest's ``sentiment`` column (MELD's `Sentiment`, kept as a group by
`ser.corpus.kinds.meld`); a store without that column has no sentiment to train on.
Validation selects on weighted F1, the score MELD's papers report (UA, WA and macro F1
beside it). CMU-MOSI/MOSEI's `sentiment` column is a score (-3..3), not these classes:
`--target sentiment` on a store of theirs means the score head (`sentiment_score`; the
kind's `ser.corpus.kind.CorpusKind.spelled`), and this head, given one, finds no value
it reads and is refused so.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ser.errors import ConfigError
from ser.heads.base import GoldSource
from ser.heads.categorical import CategoricalHead, class_gold

#: The manifest's column of it, and its classes in the corpus's spelling.
COLUMN = "sentiment"
CLASSES = ("negative", "neutral", "positive")


class SentimentHead(CategoricalHead):
    name: ClassVar[str] = "sentiment"
    score_key: ClassVar[str | None] = "wf1"
    score_name: ClassVar[str] = "WF1"
    classes: tuple[str, ...] = CLASSES

    def gold(self, source: GoldSource) -> np.ndarray:
        manifest = source.store.manifest
        if COLUMN not in manifest.names:
            raise ConfigError(
                f"--target {self.name}: the manifest of {source.store.path} has no "
                f"{COLUMN} column (MELD's stores have one)"
            )
        values = np.asarray(manifest.column(COLUMN)).astype(str)
        return class_gold([v.lower() for v in values], _index)


def _index(value: str) -> int | None:
    return CLASSES.index(value) if value in CLASSES else None


HEAD = SentimentHead  # what ser.heads registers
