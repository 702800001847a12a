"""The protocols every corpus kind offers, over its speakers or any group of it.

- ``speaker-kfold[:K[:SEED]]``: the speakers, in sorted order, permuted by
  `numpy.random.default_rng(SEED)` (default 0, whatever `--seed`) and cut into K groups
  (default 5) by `numpy.array_split`; fold k tests group k. The same spec gives the same
  folds on every run; each fold's speakers are in the run record.
- ``logo:<group>``: leave one group out over any group of the corpus (`logo:speaker`,
  `logo:sentence`, `logo:session`); speaker-independent when every speaker is in one group.

Validation (`val`): ``next-group`` holds out the next group (cyclically), ``random10``
a stratified 10 % of the training side, ``none`` nothing.

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


def _held_out(
    name: str,
    groups: np.ndarray,
    test: int,
    val_group: int,
    val: str,
    test_groups: tuple[str, ...],
    val_groups: tuple[str, ...],
) -> Split:
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
