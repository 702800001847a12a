"""``cross``: train on one corpus, test on another (`ser train --test-store`): one fold
whose training side is every utterance of the training corpus and whose test side is
every utterance of the test corpus, the two told apart by the `FoldData` group
`corpus` (`TRAIN` / `TEST`). No corpus offers it by `--protocol`; the trainer makes it
when a run has a test store.

Validation is carved from the training corpus alone, as EmoBox's cross-corpus track
trains on the whole source corpus: `--val next-group` (there is no next group when the
whole corpus trains) and `random10` hold out a stratified 10 % of it (whole dialogs for
a dialog-context model), `none` trains on all of it for the fixed epochs. Speakers of
two corpora are different people: the fold is speaker-independent by construction
(the trainer refuses a store tested on itself).

>>> data = FoldData(np.array([0, 1] * 10 + [0, 1]), np.array(["a"] * 20 + ["b"] * 2),
...                 {"corpus": np.array([TRAIN] * 20 + [TEST] * 2)})
>>> fold = CrossCorpus("cross", "IEMOCAP", "MELD").folds(data, "next-group", seed=0)[0]
>>> fold.describe()
'cross: train 18, val 2 (IEMOCAP), test 2 (MELD); speaker-independent'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ser.corpus.protocols.folds import FoldData, Protocol, Split, held_out

GROUP = "corpus"  # the FoldData group that tells the two corpora's rows apart
TRAIN, TEST = "train", "test"
HELD_OUT = (
    "10 % of the training corpus held out (stratified; whole dialogs for a dialog-context "
    "model); best validation epoch tested on the test corpus"
)


@dataclass(frozen=True)
class CrossCorpus(Protocol):
    """One fold: all of corpus `train` trains (less its validation), all of `test` tests;
    `train` and `test` name them (titles, for descriptions)."""

    spec: str
    train: str = ""
    test: str = ""
    name = "cross"
    usage = "cross (ser train --test-store)"
    validations = held_out(HELD_OUT, none="none: all of the training corpus")

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return 1

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        side = data.group(GROUP)
        train = np.flatnonzero(side == TRAIN).astype(np.int64)
        test = np.flatnonzero(side == TEST).astype(np.int64)
        held = np.zeros(0, dtype=np.int64) if val == "none" else None  # None: carved
        named = (self.train,) if held is None and self.train else ()
        tested = (self.test,) if self.test else ()
        return [Split("cross", train, held, test, tested, named, True)]
