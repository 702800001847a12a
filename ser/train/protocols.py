"""Evaluation protocols: which utterances a model trains, selects and is tested on.

- ``loso``: leave-one-session-out, fold ``foldS`` tests session S; speaker-independent
  (a session holds two speakers).
- ``session5``: sessions 1-4 train, session 5 tests (Wu et al.); speaker-independent.
- ``random``: a stratified 70/20/10 train/val/test split over utterances (Zhou et al.);
  speaker-dependent, its 20 % slice the validation set (``val`` ignored).

Validation is carved from the training side: ``val="session"`` (default) holds out the
session after the test session, cyclically (test 5 -> val 1); ``"random10"`` a stratified
10 %; ``"none"`` nothing: fixed epochs, the last tested (the papers' training sets).

A random slice takes round(share x n_c) utterances of each class c (the training side the
rest), drawn with `numpy.random.default_rng(seed)`; given ``dialogs`` it moves whole
dialogs (sklearn's ``StratifiedGroupKFold``, parts of 10 %; sizes approximate), so a
dialog-context model never sees a test utterance's dialog in training. Every fold passes
`check_no_leakage` before `make_folds` returns it.

The corpus protocols (``speaker-kfold[:K[:SEED]]``, ``logo:<column>``, ``official``;
`ser.train.group_protocols`) fold by speakers, any manifest column or the `split` column;
`make_folds` takes the columns they read in `columns`.

>>> import numpy as np
>>> sessions = np.repeat([1, 2, 3, 4, 5], 4)
>>> speakers = np.array([f"Ses0{s}{g}" for s in range(1, 6) for g in "FFMM"])
>>> labels = np.tile([0, 1, 0, 1], 5)
>>> folds = make_folds(ProtocolConfig("loso"), sessions, speakers, labels)
>>> [(f.name, f.test_sessions, f.val_sessions) for f in folds][:2]
[('fold1', (1,), (2,)), ('fold2', (2,), (3,))]
>>> folds[0].test.tolist(), folds[0].val.tolist()
([0, 1, 2, 3], [4, 5, 6, 7])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.errors import ConfigError, SerError
from ser.train.group_protocols import (
    Split,
    leave_one_group_out,
    official,
    parse_protocol,
    speaker_kfold,
)

PROTOCOLS = ("loso", "session5", "random")
VAL_MODES = ("session", "random10", "none")


NO_VAL = "no validation (fixed epochs, last epoch tested)"


class LeakageError(SerError):
    """A fold's test utterances or speakers also appear in its training or validation."""


@dataclass(frozen=True)
class ProtocolConfig:
    """Which protocol, how validation is carved, and the seed of any random split."""

    name: str = "loso"  # one of PROTOCOLS
    val: str = "session"  # one of VAL_MODES; ignored by "random"
    seed: int = 0  # random splits only (sklearn random_state)

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS and parse_protocol(self.name) is None:
            raise ConfigError(
                f"unknown protocol {self.name!r}: choose one of {', '.join(PROTOCOLS)}, "
                "speaker-kfold[:K[:SEED]], logo:<column> or official"
            )
        if self.val not in VAL_MODES:
            raise ConfigError(
                f"unknown validation mode {self.val!r}: choose one of {', '.join(VAL_MODES)}"
            )


@dataclass(frozen=True, eq=False)
class Fold:
    """One train/val/test split, as sorted int64 row indices into the caller's arrays."""

    name: str  # "fold1".."fold5" (loso, by test session), "session5" or "random"
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_sessions: tuple[int, ...]
    val_sessions: tuple[int, ...]  # empty when validation is a random slice
    speaker_independent: bool
    validated: bool = True  # False for val "none": an empty validation side by design
    test_groups: tuple[str, ...] = ()  # the corpus protocols': speakers, values, "test"
    val_groups: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()  # official: partitions on no side (MSP-Podcast's test2)
    shared_speakers: tuple[str, ...] = ()  # official: why a fold is speaker-dependent

    def describe(self) -> str:
        """One line for logs: ``fold1: train 3449, val 1023 (session 2), test 1085 (session 1);
        speaker-independent``."""

        def where(sessions: tuple[int, ...]) -> str:
            if not sessions:
                return ""
            word = "session" if len(sessions) == 1 else "sessions"
            return f" ({word} {', '.join(map(str, sessions))})"

        def named(groups: tuple[str, ...]) -> str:
            return f" ({', '.join(groups)})" if groups else ""

        kind = "speaker-independent" if self.speaker_independent else "speaker-dependent"
        if self.shared_speakers:
            names = ", ".join(self.shared_speakers[:5])
            more = (
                f" and {len(self.shared_speakers) - 5} more"
                if len(self.shared_speakers) > 5
                else ""
            )
            kind += f" (speakers in test and training: {names}{more})"
        if self.left_out:
            kind += f"; left out: {', '.join(self.left_out)}"
        held = f"{where(self.val_sessions)}{named(self.val_groups)}"
        val = f"val {len(self.val)}{held}" if len(self.val) else NO_VAL
        tested = f"{where(self.test_sessions)}{named(self.test_groups)}"
        return f"{self.name}: train {len(self.train)}, {val}, test {len(self.test)}{tested}; {kind}"


def make_folds(
    config: ProtocolConfig,
    sessions: np.ndarray,
    speakers: np.ndarray,
    labels: np.ndarray,
    dialogs: np.ndarray | None = None,
    columns: Mapping[str, np.ndarray] | None = None,
) -> list[Fold]:
    """The folds of `config.name` over the rows the parallel arrays describe (`columns`:
    the manifest columns a corpus protocol groups by, one entry per row)."""
    sessions = np.asarray(sessions).astype(np.int64)
    speakers = np.asarray(speakers)
    labels = np.asarray(labels).astype(np.int64)
    n = len(sessions)
    if len(speakers) != n or len(labels) != n or (dialogs is not None and len(dialogs) != n):
        raise ValueError("sessions, speakers, labels and dialogs must have one entry per row")
    if n == 0:
        raise ConfigError("no utterances to split: the class set selected none")
    groups = None if dialogs is None else np.asarray(dialogs)
    grouped = parse_protocol(config.name)
    if grouped is not None:
        splits = _splits(config, grouped, speakers, columns or {})
        folds = [_checked_fold(config, s, labels, groups) for s in splits]
    elif config.name == "random":
        folds = [_random_fold(labels, groups, config.seed)]
    else:
        present = sorted(int(s) for s in np.unique(sessions))
        tests = present if config.name == "loso" else [5]
        folds = [_session_fold(config, sessions, labels, groups, present, t) for t in tests]
    for fold in folds:
        check_no_leakage(fold, speakers, groups)
    return folds


def _splits(
    config: ProtocolConfig, grouped: Any, speakers: np.ndarray, columns: Mapping[str, np.ndarray]
) -> list[Split]:
    if grouped.kind == "speaker-kfold":
        return speaker_kfold(speakers, grouped.k, grouped.seed, config.val)
    column = grouped.column
    if column == "speaker":
        values = speakers
    elif column in columns:
        values = np.asarray(columns[column]).astype(str)
    else:
        raise ConfigError(f"protocol {config.name!r} needs the manifest column {column!r}")
    if grouped.kind == "official":
        return official(values, speakers, config.val, grouped.test)
    return leave_one_group_out(values, speakers, column, config.val)


def _checked_fold(
    config: ProtocolConfig, split: Split, labels: np.ndarray, groups: np.ndarray | None
) -> Fold:
    train, val = split.train, split.val
    if val is None:  # random10: carved from the training side
        train, val = _stratified_slice(train, labels, groups, 0.1, config.seed)
    return Fold(
        split.name, train, val, split.test, (), (), split.speaker_independent,
        validated=config.val != "none", test_groups=split.test_groups, val_groups=split.val_groups,
        left_out=split.left_out, shared_speakers=split.shared_speakers,
    )  # fmt: skip


def _session_fold(
    config: ProtocolConfig,
    sessions: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    present: list[int],
    test_session: int,
) -> Fold:
    needed = 3 if config.val == "session" else 2
    if test_session not in present or len(present) < needed:
        raise ConfigError(
            f"protocol {config.name!r} with val={config.val!r} needs session {test_session} "
            f"and {needed} sessions in all; the data has sessions {present}"
        )
    rows = np.arange(len(sessions), dtype=np.int64)  # filtered: every side stays sorted
    test = rows[sessions == test_session]
    rest = rows[sessions != test_session]
    if config.val == "session":
        val_session = present[(present.index(test_session) + 1) % len(present)]
        val, train = rest[sessions[rest] == val_session], rest[sessions[rest] != val_session]
        val_sessions: tuple[int, ...] = (val_session,)
    elif config.val == "none":  # the papers' training set: nothing held out, nothing selected
        train, val, val_sessions = rest, rest[:0], ()
    else:
        train, val = _stratified_slice(rest, labels, groups, 0.1, config.seed)
        val_sessions = ()
    name = f"fold{test_session}" if config.name == "loso" else "session5"
    return Fold(
        name, train, val, test, (test_session,), val_sessions, True, validated=config.val != "none"
    )


def _random_fold(labels: np.ndarray, groups: np.ndarray | None, seed: int) -> Fold:
    rows = np.arange(len(labels), dtype=np.int64)
    if groups is not None:
        parts = _group_folds(rows, labels, groups, seed)
        test, val, train = parts[0], np.concatenate(parts[1:3]), np.concatenate(parts[3:])
    else:
        train, val, test = _stratified_parts(rows, labels, (0.2, 0.1), seed)
    return Fold("random", np.sort(train), np.sort(val), np.sort(test), (), (), False)


def _stratified_slice(
    rows: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, slice), each sorted: a stratified `fraction` of `rows` (whole groups when
    given)."""
    if groups is not None:
        parts = _group_folds(rows, labels, groups, seed, n_splits=round(1 / fraction))
        kept, out = np.concatenate(parts[1:]), parts[0]
    else:
        kept, out = _stratified_parts(rows, labels, (fraction,), seed)
    return np.sort(kept), np.sort(out)


def _stratified_parts(
    rows: np.ndarray, labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """[rest, part_1, ...]: part_i takes round(fraction_i * n_c) rows of each class c.

    Rounding per class keeps every part, the rest included, within one utterance per
    class of its share; sklearn's two chained train_test_split calls can miss the rest by
    more, because the rest inherits both roundings.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels[rows]):
        members = rng.permutation(rows[labels[rows] == c])
        cuts = np.cumsum([round(f * len(members)) for f in fractions])
        pieces = np.split(members, cuts)
        for part, piece in zip(parts, [pieces[-1], *pieces[:-1]], strict=True):
            part.append(piece)
    out = [np.concatenate(p) for p in parts]
    if any(len(p) == 0 for p in out):
        raise ConfigError(
            f"cannot carve a {' / '.join(f'{f:.0%}' for f in fractions)} stratified split "
            f"from {len(rows)} utterances: a part would be empty"
        )
    return out


def _group_folds(
    rows: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int, n_splits: int = 10
) -> list[np.ndarray]:
    """`rows` cut into `n_splits` dialog-disjoint, roughly stratified parts."""
    n_groups = len(np.unique(groups[rows]))
    problem = (
        f"a random split for a dialog-context model moves whole dialogs, in {n_splits} parts "
        f"of 1/{n_splits}"
    )
    if n_groups < n_splits:
        raise ConfigError(f"{problem}: needs {n_splits} dialogs, the data has {n_groups}")
    from sklearn.model_selection import StratifiedGroupKFold  # ~1 s to import: only here

    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    parts = [rows[part] for _, part in splitter.split(rows, labels[rows], groups[rows])]
    if any(len(part) == 0 for part in parts):
        raise ConfigError(f"{problem}: the {n_groups} dialogs left a part empty")
    return parts


def check_no_leakage(
    fold: Fold, speakers: np.ndarray | Sequence[str], dialogs: np.ndarray | None = None
) -> None:
    """Raise `LeakageError` unless train, val and test are disjoint, non-empty index sets,
    for a speaker-independent fold no test speaker is in train or val, and, given the
    `dialogs` a dialog-context model reads, no test dialog is in train or val."""
    speakers = np.asarray(speakers)
    sides = {"train": fold.train, "val": fold.val, "test": fold.test}
    for side, rows in sides.items():
        if len(rows) == 0 and side == "val" and not fold.validated:
            continue
        if len(rows) == 0:
            raise LeakageError(f"{fold.name}: the {side} set is empty")
        if len(np.unique(rows)) != len(rows):
            raise LeakageError(f"{fold.name}: the {side} set lists an utterance twice")
        if rows.min() < 0 or rows.max() >= len(speakers):
            raise LeakageError(f"{fold.name}: the {side} set indexes rows outside the data")
    for a, b in (("test", "train"), ("test", "val"), ("val", "train")):
        shared = np.intersect1d(sides[a], sides[b])
        if len(shared):
            raise LeakageError(
                f"{fold.name}: {len(shared)} {a} utterance(s) also in {b}"
                f" (rows {shared[:5].tolist()})"
            )
    if fold.speaker_independent:
        for side, common in _shared_with_test(fold, speakers, sides):
            raise LeakageError(
                f"{fold.name}: test speaker(s) {', '.join(map(str, common))} also in {side}"
                " of a speaker-independent fold"
            )
    if dialogs is not None:
        for side, common in _shared_with_test(fold, np.asarray(dialogs), sides):
            raise LeakageError(
                f"{fold.name}: test dialog(s) {', '.join(map(str, common[:5]))} also in {side}: "
                "a dialog-context model would read test utterances' context in training; "
                "choose a protocol whose groups hold whole dialogs"
            )


def _shared_with_test(
    fold: Fold, values: np.ndarray, sides: dict[str, np.ndarray]
) -> Iterator[tuple[str, list[Any]]]:
    """(side, sorted values of `values` its rows share with the test rows), for train and
    val where they share any: a speaker or a dialog on both sides of the fold."""
    tested = set(values[fold.test].tolist())
    for side in ("train", "val"):
        shared = sorted(tested & set(values[sides[side]].tolist()))
        if shared:
            yield side, shared
