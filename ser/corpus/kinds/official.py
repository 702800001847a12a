"""``official[:PARTITION]``, the protocol of the kinds with official partitions (a `split`
group: MSP-Podcast, MELD, a manifest's `split` column): `train` / `dev` / `test`: dev
validates, `test` (or PARTITION: MSP-Podcast's `test2`) tests; any other partition is left
out, and the fold says which. ``official:dev`` tests the dev partition (where a
challenge's test labels are not released), validated on a `random10` slice of train (or
none). Speakers on both sides (MELD's recurring characters, MSP-Podcast's `Unknown`)
make the fold speaker-dependent, the fold naming them. Validation `next-group` holds out
dev; `none` trains on train and dev.

>>> split = np.array(["train", "train", "dev", "test"])
>>> data = FoldData(np.zeros(4, np.int64), np.array(["a", "b", "c", "d"]), {"split": split})
>>> (fold,) = Official("official").splits(data, "next-group", 0)
>>> fold.train.tolist(), fold.val.tolist(), fold.test.tolist()
([0, 1], [2], [3])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ser.corpus.protocols.folds import VALIDATION, FoldData, Protocol, Split
from ser.errors import ConfigError

#: The group that holds a kind's official partitions.
GROUP = "split"


@dataclass(frozen=True)
class Official(Protocol):
    """The corpus's own train / dev / `test` partitions (module doc)."""

    spec: str
    test: str = "test"
    name = "official"
    usage = "official[:PARTITION]"
    validations: ClassVar[Mapping[str, str]] = {
        **VALIDATION,
        "next-group": "the official dev partition; best validation epoch tested",
        "none": "none: train and dev trained on, fixed epochs, last epoch tested",
    }

    @classmethod
    def parse(cls, spec: str, options: str) -> Official:
        if options == "train" or ":" in options:
            raise ConfigError(f"protocol {spec!r}: write official[:PARTITION], e.g. official:test2")
        return cls(spec, options or "test")

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return 1

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        split, speakers, test = data.group(GROUP).astype(str), data.speakers, self.test
        values = set(split.tolist())
        if not {"train", test} <= values or "" in values:
            raise ConfigError(
                f"protocol official needs the split group with train and {test} (and dev) "
                f"rows; the data has {', '.join(sorted(map(repr, values)))}"
            )
        rows = np.arange(len(split), dtype=np.int64)
        if test == "dev" and val == "next-group":
            raise ConfigError(
                "protocol official:dev tests the dev partition, which then validates "
                "nothing: give --val random10 (or none)"
            )
        held_out = "dev" if test != "dev" else "(none)"  # official:dev holds nothing out
        train, dev, tested = (rows[split == name] for name in ("train", held_out, test))
        held: np.ndarray | None = dev
        if val == "none" or len(dev) == 0:
            train, held = np.sort(np.concatenate([train, dev])), rows[:0] if val == "none" else None
        trained = rows[np.isin(split, ["train", held_out])]
        shared = sorted(set(speakers[tested].tolist()) & set(speakers[trained].tolist()))
        return [
            Split(
                self.name,
                train,
                held,
                tested,
                (test,),
                (held_out,) if held is not None and test != "dev" else (),
                not shared,
                tuple(sorted(values - {"train", "dev", test})),
                tuple(map(str, shared)),
            )
        ]
