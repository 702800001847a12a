"""IEMOCAP's protocols, over its `session` group (two speakers of their own in each).

- ``loso``: leave-one-session-out, fold ``foldS`` tests session S; speaker-independent.
- ``session5``: sessions 1-4 train, session 5 tests (Wu et al.); speaker-independent.
- ``loso-script``, ``session5-script``: the same folds, less the scripted dialogs of the
  scripts the test session performs, on the training and validation sides. IEMOCAP's
  scripted dialogs are three scripts performed in every session: without this, a text
  model reads the test session's very lines in training (spoken by other actors).
  Improvised dialogs are kept; each fold says how many utterances it dropped.

Validation ``next-group`` holds out the session after the test session, cyclically (test 5
-> val 1); ``none`` trains on every other session (the papers' training sets).

>>> sessions = np.repeat([1, 2, 3, 4, 5], 2)
>>> data = FoldData(np.zeros(10, np.int64), np.arange(10).astype(str), {"session": sessions})
>>> [f.describe() for f in SessionHeldOut("session5").folds(data, "next-group", 0)]
['session5: train 6, val 2 (session 1), test 2 (session 5); speaker-independent']
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ser.corpus.protocols.folds import FoldData, Protocol, Split
from ser.errors import ConfigError

GROUP = "session"
_UTTERANCE = re.compile(r"^Ses(\d+)[FM]_")  # an utterance id: its session
_SESSION_FOLDER = re.compile(r"^Session(\d+)$")
_HELD_OUT = re.compile(r"^(?:fold|session)(\d+)$")  # the folds' names: their test session
VALIDATION = {
    "next-group": "one training session held out; best validation epoch tested",
    "random10": "10 % of the training side held out; best validation epoch tested",
    "none": "none: all training sessions, fixed epochs, last epoch tested (the papers' "
    "training set)",
}


@dataclass(frozen=True)
class _BySession(Protocol):
    """A fold per tested session (`tested`), named by `fold_name`."""

    spec: str
    unit = GROUP
    validations = VALIDATION

    @abstractmethod
    def tested(self, present: list[int]) -> list[int]:
        """The sessions tested, given those the data has."""

    @abstractmethod
    def fold_name(self, session: int) -> str:
        """The name of the fold testing `session`."""

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        sessions = data.group(GROUP).astype(np.int64)
        present = sorted(int(s) for s in np.unique(sessions))
        return [
            _split(self.spec, sessions, present, t, val, self.fold_name(t))
            for t in self.tested(present)
        ]


@dataclass(frozen=True)
class LeaveOneSessionOut(_BySession):
    """A fold per session present, testing it."""

    name = "loso"
    usage = "loso"

    def tested(self, present: list[int]) -> list[int]:
        return present

    def fold_name(self, session: int) -> str:
        return f"fold{session}"

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return len(np.unique(columns[GROUP]))


@dataclass(frozen=True)
class SessionHeldOut(_BySession):
    """Sessions 1-4 train, session 5 tests."""

    name = "session5"
    usage = "session5"

    def tested(self, present: list[int]) -> list[int]:
        return [5]

    def fold_name(self, session: int) -> str:
        return "session5"

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return 1


def _split(
    spec: str, sessions: np.ndarray, present: list[int], test_session: int, val: str, name: str
) -> Split:
    needed = 3 if val == "next-group" else 2
    if test_session not in present or len(present) < needed:
        raise ConfigError(
            f"protocol {spec!r} with val={val!r} needs session {test_session} "
            f"and {needed} sessions in all; the data has sessions {present}"
        )
    rows = np.arange(len(sessions), dtype=np.int64)  # filtered: every side stays sorted
    test, rest = rows[sessions == test_session], rows[sessions != test_session]
    if val == "next-group":
        held = present[(present.index(test_session) + 1) % len(present)]
        train, validation = rest[sessions[rest] != held], rest[sessions[rest] == held]
        return Split(name, train, validation, test, (test_session,), (held,), True)
    carved = None if val == "random10" else rest[:0]  # none: nothing held out
    return Split(name, rest, carved, test, (test_session,), (), True)


@dataclass(frozen=True)
class _ScriptFree(_BySession):
    """A protocol by session whose training and validation sides lose the scripted
    dialogs of the scripts its test session performs (the `script` and `kind` groups)."""

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        kinds, scripts = data.group("kind"), data.group("script")
        return [_without_scripts(s, kinds, scripts) for s in super().splits(data, val, seed)]


@dataclass(frozen=True)
class ScriptFreeLoso(_ScriptFree, LeaveOneSessionOut):
    """`loso` less the test session's scripts on the training side."""

    name = "loso-script"
    usage = "loso-script"


@dataclass(frozen=True)
class ScriptFreeSession5(_ScriptFree, SessionHeldOut):
    """`session5` less session 5's scripts on the training side."""

    name = "session5-script"
    usage = "session5-script"


def _without_scripts(split: Split, kinds: np.ndarray, scripts: np.ndarray) -> Split:
    """`split` with the training and validation rows of a scripted dialog whose script
    the test side performs dropped, and how many said (`left_out`)."""
    scripted = kinds == "script"
    tested = split.test[scripted[split.test]]
    performed = sorted(set(scripts[tested].tolist()))
    drop = scripted & np.isin(scripts, performed)  # [n]

    def kept(rows: np.ndarray) -> np.ndarray:
        return rows[~drop[rows]]

    sides = [split.train] + ([] if split.val is None else [split.val])
    dropped = sum(int(drop[rows].sum()) for rows in sides)
    named = ", ".join(performed) if performed else "none"
    note = f"{dropped} scripted utterance(s) of the test's scripts ({named}) off training"
    val = None if split.val is None else kept(split.val)
    return replace(split, train=kept(split.train), val=val, left_out=(*split.left_out, note))


def session_of_file(path: Path) -> str | None:
    """The session an input is recognisably from: its name an utterance id
    (``Ses03F_impro01_F000``) or a ``Session3`` folder above it; None when neither.

    >>> session_of_file(Path("x/Session2/y/a.wav")), session_of_file(Path("Ses03F_i_F000.wav"))
    ('2', '3')
    """
    found = _UTTERANCE.match(path.stem) or next(
        filter(None, map(_SESSION_FOLDER.match, reversed(path.parts[:-1]))), None
    )
    return None if found is None else str(int(found.group(1)))


def session_of_fold(name: str) -> str | None:
    """The session a fold of `loso` (``fold3``) or `session5` tests, by its name."""
    found = _HELD_OUT.match(name)
    return None if found is None else str(int(found.group(1)))
