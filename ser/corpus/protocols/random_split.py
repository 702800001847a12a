"""``random``: a stratified 70/20/10 train/val/test split over utterances (Zhou et al.),
speaker-dependent; its 20 % slice is the validation side (`val` ignored). Given the
dialogs of a dialog-context model it moves whole dialogs (`ser.corpus.protocols.carve`).

>>> data = FoldData(np.repeat([0, 1], 10), np.zeros(20).astype(str))
>>> split = RandomSplit("random").splits(data, "none", seed=0)[0]
>>> len(split.train), len(split.val), len(split.test)
(14, 4, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ser.corpus.protocols.carve import group_parts, stratified_parts
from ser.corpus.protocols.folds import VAL_MODES, FoldData, Protocol, Split

SHARES = (0.2, 0.1)  # validation, test; the rest trains


@dataclass(frozen=True)
class RandomSplit(Protocol):
    """One random fold, drawn from the run's first seed."""

    spec: str
    name = "random"
    usage = "random"
    # Its 20 % slice validates whatever --val says.
    validations = dict.fromkeys(
        VAL_MODES, "20 % of the utterances held out at random; best validation epoch tested"
    )

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return 1

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        rows = np.arange(len(data.labels), dtype=np.int64)
        if data.dialogs is not None:
            parts = group_parts(rows, data.labels, data.dialogs, seed)
            test, held, train = parts[0], np.concatenate(parts[1:3]), np.concatenate(parts[3:])
        else:
            train, held, test = stratified_parts(rows, data.labels, SHARES, seed)
        sides = (np.sort(train), np.sort(held), np.sort(test))
        return [Split("random", sides[0], sides[1], sides[2], (), (), False)]
