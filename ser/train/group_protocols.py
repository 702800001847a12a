"""The protocols that belong to a corpus rather than to IEMOCAP's sessions; each returns
`Split`s that `ser.train.protocols.make_folds` turns into checked folds.

- ``speaker-kfold[:K[:SEED]]`` (CREMA-D, RAVDESS, manifests): the speakers, in sorted
  order, permuted by `numpy.random.default_rng(SEED)` (default 0, whatever `--seed`) and
  cut into K groups (default 5) by `numpy.array_split`; fold k tests group k. The same
  spec gives the same folds on every run; each fold's speakers are in the run record.
- ``logo:<column>``: leave one group out over any manifest column (`logo:speaker`,
  `logo:sentence`, `logo:session`); speaker-independent when every speaker is in one group.
- ``official[:PARTITION]``: the manifest's `split` column, `train` / `dev` / `test`: dev
  validates, `test` (or PARTITION: MSP-Podcast's `test2`) tests; any other partition is
  left out, and the fold says which. Speakers on both sides (MELD's recurring characters,
  MSP-Podcast's `Unknown`) make the fold speaker-dependent, the fold naming them.

Validation (`val`): ``session`` holds out the next group (cyclically; official: dev),
``random10`` a stratified 10 % of the training side (left to the caller), ``none``
nothing (official: dev joins train).

>>> speakers = np.array(["a", "a", "b", "b", "c", "c"])
>>> [s.test_groups for s in speaker_kfold(speakers, 3, 0, "session")]
[('c',), ('a',), ('b',)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.errors import ConfigError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True, eq=False)
class Split:
    """One fold's sides before its checks: sorted rows; `val` None: the caller carves it."""

    name: str
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    test_groups: tuple[str, ...]
    val_groups: tuple[str, ...]
    speaker_independent: bool
    left_out: tuple[str, ...] = ()  # official: the partitions no side holds
    shared_speakers: tuple[str, ...] = ()  # official: speakers in test and train or dev


@dataclass(frozen=True)
class GroupProtocol:
    """A parsed protocol spec: `kind` speaker-kfold | logo | official, and its parameters."""

    kind: str
    column: str = "speaker"
    k: int = 5
    seed: int = 0
    test: str = "test"  # official: the partition tested


def parse_protocol(name: str) -> GroupProtocol | None:
    """The group protocol `name` spells; None for another name; ConfigError for a bad one."""
    head, _, rest = name.partition(":")
    if head == "official":
        if rest in ("train", "dev") or ":" in rest:
            raise ConfigError(f"protocol {name!r}: write official[:PARTITION], e.g. official:test2")
        return GroupProtocol("official", "split", test=rest or "test")
    if head == "logo":
        if not rest:
            raise ConfigError("protocol logo needs a column: logo:<column>, e.g. logo:speaker")
        return GroupProtocol("logo", rest)
    if head != "speaker-kfold":
        return None
    try:
        numbers = [int(part) for part in rest.split(":")] if rest else []
    except ValueError:
        numbers = [0, 0, 0]
    if len(numbers) > 2 or (numbers and numbers[0] < 2):
        raise ConfigError(f"protocol {name!r}: write speaker-kfold[:K[:SEED]] with K >= 2")
    k, seed = (numbers[0] if numbers else 5), (numbers[1] if len(numbers) > 1 else 0)
    return GroupProtocol("speaker-kfold", "speaker", k=k, seed=seed)


def speaker_kfold(speakers: np.ndarray, k: int, seed: int, val: str) -> list[Split]:
    """K speaker-disjoint folds (module doc)."""
    found = sorted(set(speakers.tolist()))
    if len(found) < k:
        raise ConfigError(f"speaker-kfold:{k} needs {k} speakers; the data has {len(found)}")
    if k < 3 and val == "session":
        raise ConfigError(f"speaker-kfold:{k} with val='session' needs K >= 3 (a group each side)")
    order = np.random.default_rng(seed).permutation(np.array(found, dtype=object))
    groups = [tuple(sorted(str(s) for s in g)) for g in np.array_split(order, k)]
    of_row = {s: i for i, g in enumerate(groups) for s in g}
    labels = np.array([of_row[s] for s in speakers.tolist()], dtype=np.int64)
    return [
        _group_split(f"fold{i + 1}", labels, i, (i + 1) % k, val, groups[i], groups[(i + 1) % k])
        for i in range(k)
    ]


def leave_one_group_out(
    values: np.ndarray, speakers: np.ndarray, column: str, val: str
) -> list[Split]:
    """A fold per value of `column` (module doc)."""
    found = sorted(set(values.tolist()))
    needed = 3 if val == "session" else 2
    if len(found) < needed:
        raise ConfigError(
            f"logo:{column} with val={val!r} needs {needed} groups; the data has {len(found)}"
        )
    index = {v: i for i, v in enumerate(found)}
    labels = np.array([index[v] for v in values.tolist()], dtype=np.int64)
    nested = all(len(set(values[speakers == s].tolist())) == 1 for s in set(speakers.tolist()))
    splits = []
    for i, value in enumerate(found):
        j = (i + 1) % len(found)
        split = _group_split(f"{column}={value}", labels, i, j, val, (value,), (found[j],))
        splits.append(Split(**{**split.__dict__, "speaker_independent": nested}))
    return splits


def official(split: np.ndarray, speakers: np.ndarray, val: str, test: str = "test") -> list[Split]:
    """The manifest's train / dev / `test` partitions (module doc)."""
    values = set(split.tolist())
    if not {"train", test} <= values or "" in values:
        raise ConfigError(
            f"protocol official needs the manifest's split column with train and {test} "
            f"(and dev) rows; the data has {', '.join(sorted(map(repr, values)))}"
        )
    rows = np.arange(len(split), dtype=np.int64)
    train, dev, tested = (rows[split == name] for name in ("train", "dev", test))
    if val == "none" or len(dev) == 0:
        train, dev = np.sort(np.concatenate([train, dev])), (rows[:0] if val == "none" else None)
    trained = rows[np.isin(split, ["train", "dev"])]
    shared = sorted(set(speakers[tested].tolist()) & set(speakers[trained].tolist()))
    return [
        Split(
            "official", train, dev, tested, (test,), ("dev",) if dev is not None else (),
            not shared, tuple(sorted(values - {"train", "dev", test})), tuple(map(str, shared)),
        )
    ]  # fmt: skip


def _group_split(
    name: str, groups: np.ndarray, test: int, val_group: int, val: str,
    test_groups: tuple[str, ...], val_groups: tuple[str, ...],
) -> Split:  # fmt: skip
    rows = np.arange(len(groups), dtype=np.int64)
    test_rows, rest = rows[groups == test], rows[groups != test]
    if val == "session":
        held = rest[groups[rest] == val_group]
        return Split(
            name, rest[groups[rest] != val_group], held, test_rows, test_groups, val_groups, True
        )
    carved = None if val == "random10" else rows[:0]
    return Split(name, rest, carved, test_rows, test_groups, (), True)
