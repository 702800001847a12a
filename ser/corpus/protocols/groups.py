"""The protocols every corpus kind offers, over its speakers or any group of it.

- ``speaker-kfold[:K[:SEED]]``: the speakers, in sorted order, permuted by
  `numpy.random.default_rng(SEED)` (default 0, whatever `--seed`) and cut into K groups
  (default 5) by `numpy.array_split`; fold k tests group k. The same spec gives the same
  folds on every run; each fold's speakers are in the run record.
- ``logo:<group>``: leave one group out over any group of the corpus (`logo:speaker`,
  `logo:sentence`, `logo:session`); speaker-independent when every speaker is in one group.
- ``official[:PARTITION]``: the `split` group, `train` / `dev` / `test`: dev validates,
  `test` (or PARTITION: MSP-Podcast's `test2`) tests; any other partition is left out,
  and the fold says which. ``official:dev`` tests the dev partition (where a
  challenge's test labels are not released), validated on a `random10` slice of train
  (or none). Speakers on both sides (MELD's recurring characters,
  MSP-Podcast's `Unknown`) make the fold speaker-dependent, the fold naming them.

Validation (`val`): ``next-group`` holds out the next group (cyclically; official: dev),
``random10`` a stratified 10 % of the training side, ``none`` nothing (official: dev
joins train).

>>> speakers = np.array(["a", "a", "b", "b", "c", "c"])
>>> data = FoldData(np.zeros(6, np.int64), speakers)
>>> [s.test_groups for s in SpeakerKFold("speaker-kfold:3", k=3).splits(data, "next-group", 0)]
[('c',), ('a',), ('b',)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ser.corpus.protocols.folds import FoldData, Protocol, Split
from ser.errors import ConfigError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class SpeakerKFold(Protocol):
    """K speaker-disjoint folds (module doc)."""

    spec: str
    k: int = 5
    seed: int = 0
    name = "speaker-kfold"
    usage = "speaker-kfold[:K[:SEED]]"

    @classmethod
    def parse(cls, spec: str, options: str) -> SpeakerKFold:
        try:
            numbers = [int(part) for part in options.split(":")] if options else []
        except ValueError:
            numbers = [0, 0, 0]
        if len(numbers) > 2 or (numbers and numbers[0] < 2):
            raise ConfigError(f"protocol {spec!r}: write {cls.usage} with K >= 2")
        return cls(spec, *numbers)

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return self.k

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        k, speakers = self.k, data.speakers
        found = sorted(set(speakers.tolist()))
        if len(found) < k:
            raise ConfigError(f"speaker-kfold:{k} needs {k} speakers; the data has {len(found)}")
        if k < 3 and val == "next-group":
            raise ConfigError(
                f"speaker-kfold:{k} with val='next-group' needs K >= 3 (a group each side)"
            )
        order = np.random.default_rng(self.seed).permutation(np.array(found, dtype=object))
        groups = [tuple(sorted(str(s) for s in g)) for g in np.array_split(order, k)]
        of_row = {s: i for i, g in enumerate(groups) for s in g}
        index = np.array([of_row[s] for s in speakers.tolist()], dtype=np.int64)
        return [
            _held_out(f"fold{i + 1}", index, i, (i + 1) % k, val, groups[i], groups[(i + 1) % k])
            for i in range(k)
        ]


@dataclass(frozen=True)
class LeaveOneGroupOut(Protocol):
    """A fold per value of a group (module doc)."""

    spec: str
    column: str
    name = "logo"
    usage = "logo:<group>"

    @classmethod
    def parse(cls, spec: str, options: str) -> LeaveOneGroupOut:
        if not options:
            raise ConfigError("protocol logo needs a group: logo:<group>, e.g. logo:speaker")
        return cls(spec, options)

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        if self.column not in columns:
            have = ", ".join(columns)
            raise ConfigError(f"protocol {self.spec!r}: no group {self.column!r} (has {have})")
        return len(np.unique(np.asarray(columns[self.column]).astype(str)))

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        values, speakers, column = data.group(self.column).astype(str), data.speakers, self.column
        found = sorted(set(values.tolist()))
        needed = 3 if val == "next-group" else 2
        if len(found) < needed:
            raise ConfigError(
                f"logo:{column} with val={val!r} needs {needed} groups; the data has {len(found)}"
            )
        index = {v: i for i, v in enumerate(found)}
        of_row = np.array([index[v] for v in values.tolist()], dtype=np.int64)
        nested = all(len(set(values[speakers == s].tolist())) == 1 for s in set(speakers.tolist()))
        splits = []
        for i, value in enumerate(found):
            j = (i + 1) % len(found)
            split = _held_out(f"{column}={value}", of_row, i, j, val, (value,), (found[j],))
            splits.append(Split(**{**split.__dict__, "speaker_independent": nested}))
        return splits


@dataclass(frozen=True)
class Official(Protocol):
    """The corpus's own train / dev / `test` partitions (module doc)."""

    spec: str
    test: str = "test"
    name = "official"
    usage = "official[:PARTITION]"

    @classmethod
    def parse(cls, spec: str, options: str) -> Official:
        if options == "train" or ":" in options:
            raise ConfigError(f"protocol {spec!r}: write official[:PARTITION], e.g. official:test2")
        return cls(spec, options or "test")

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return 1

    def validation(self, val: str) -> str:
        return {
            "next-group": "the official dev partition; best validation epoch tested",
            "none": "none: train and dev trained on, fixed epochs, last epoch tested",
        }.get(val, super().validation(val))

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        split, speakers, test = data.group("split").astype(str), data.speakers, self.test
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
                "official", train, held, tested, (test,),
                (held_out,) if held is not None and test != "dev" else (),
                not shared, tuple(sorted(values - {"train", "dev", test})), tuple(map(str, shared)),
            )
        ]  # fmt: skip


def _held_out(
    name: str, groups: np.ndarray, test: int, val_group: int, val: str,
    test_groups: tuple[str, ...], val_groups: tuple[str, ...],
) -> Split:  # fmt: skip
    """Group `test`'s rows tested; `val_group`'s held out for validation `next-group`."""
    rows = np.arange(len(groups), dtype=np.int64)
    test_rows, rest = rows[groups == test], rows[groups != test]
    if val == "next-group":
        held = rest[groups[rest] == val_group]
        return Split(
            name, rest[groups[rest] != val_group], held, test_rows, test_groups, val_groups, True
        )
    carved = None if val == "random10" else rows[:0]
    return Split(name, rest, carved, test_rows, test_groups, (), True)
