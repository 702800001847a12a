"""What every evaluation protocol shares: the `Protocol` a corpus kind offers, the
`FoldData` it cuts, the `Fold`s it makes, and the leakage check every fold passes.

A protocol parses its own options once (`parse`: `speaker-kfold:5:1` -> K 5, seed 1),
knows how many folds it makes of a corpus (`fold_count`), and makes them (`folds`):
its `splits` decide the sides, validation carved from the training side by `val`
(`next-group`: the next group held out; `random10`: a stratified 10 % slice, made here;
`none`: nothing, fixed epochs and the last one tested, the papers' training sets), and
every fold passes `check_no_leakage` before it is returned.

>>> labels = np.array([0, 1, 0, 1])
>>> fold = Fold("f", np.array([0, 1]), np.array([], np.int64), np.array([2, 3]), True,
...             validated=False)
>>> fold.describe()
'f: train 2, no validation (fixed epochs, last epoch tested), test 2; speaker-independent'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ser.corpus.protocols.carve import stratified_slice
from ser.errors import ConfigError, SerError

VAL_MODES = ("next-group", "random10", "none")
#: `--val`'s old spellings: `session` held out the next group of any protocol's groups.
VAL_ALIASES = {"session": "next-group"}
#: How run records write a mode: `next-group` under its old name, so that the records,
#: resumes and sweep cell keys of runs made before the rename still match.
RECORDED_VAL = {new: old for old, new in VAL_ALIASES.items()}
NO_VAL = "no validation (fixed epochs, last epoch tested)"
# How a run selected its epoch, as records and reports name it (`Protocol.validation`).
VALIDATION = {
    "next-group": "the next group of the training side held out; best validation epoch tested",
    "random10": "10 % of the training side held out; best validation epoch tested",
    "none": "none: every training group, fixed epochs, last epoch tested",
}


def held_out(text: str, none: str) -> dict[str, str]:
    """A protocol's `validations`: `text` for each --val mode that holds a side out; for
    --val none, `none` (what trains) and that the last of the fixed epochs is tested."""
    return {
        **dict.fromkeys(VAL_MODES[:2], text),
        "none": f"{none}, fixed epochs, last epoch tested",
    }


class LeakageError(SerError):
    """A fold's test utterances or speakers also appear in its training or validation."""


@dataclass(frozen=True)
class FoldData:
    """The rows a protocol cuts, one entry per row in every array: class indices, speakers,
    each group of the corpus (`groups`: name -> values), and the dialogs of a
    dialog-context model (None otherwise), which must stay whole on one side."""

    labels: np.ndarray  # [n] int64
    speakers: np.ndarray  # [n] str
    groups: Mapping[str, np.ndarray] = field(default_factory=dict)
    dialogs: np.ndarray | None = None  # [n] str

    def group(self, name: str) -> np.ndarray:
        """Group `name`'s values ("speaker": the speakers); `ConfigError` naming the
        groups there are when the corpus has no such group."""
        if name == "speaker":
            return self.speakers
        if name not in self.groups:
            have = ", ".join(["speaker", *self.groups])
            raise ConfigError(f"no group {name!r} in this corpus: it has {have}")
        return np.asarray(self.groups[name])


@dataclass(frozen=True, eq=False)
class Split:
    """One fold's sides before its checks: sorted rows; `val` None: carved by `val`."""

    name: str
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    test_groups: tuple[Any, ...]
    val_groups: tuple[Any, ...]
    speaker_independent: bool
    left_out: tuple[str, ...] = ()  # official: the partitions no side holds
    shared_speakers: tuple[str, ...] = ()  # official: speakers in test and train or dev


@dataclass(frozen=True, eq=False)
class Fold:
    """One train/val/test split, as sorted int64 row indices into the caller's arrays;
    `test_groups` / `val_groups` the values of the group each side holds (sessions,
    speakers, a column's values, `test`), `unit` the group's name where the description
    names it ("session")."""

    name: str  # "fold1".."fold5" (loso, by test session), "session5", "random", ...
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    speaker_independent: bool
    validated: bool = True  # False for val "none": an empty validation side by design
    test_groups: tuple[Any, ...] = ()
    val_groups: tuple[Any, ...] = ()
    unit: str = ""
    left_out: tuple[str, ...] = ()  # official: partitions on no side (MSP-Podcast's test2)
    shared_speakers: tuple[str, ...] = ()  # official: why a fold is speaker-dependent

    def describe(self) -> str:
        """One line for logs: ``fold1: train 3449, val 1023 (session 2), test 1085 (session 1);
        speaker-independent``."""
        kind = "speaker-independent" if self.speaker_independent else "speaker-dependent"
        if self.shared_speakers:
            names = ", ".join(self.shared_speakers[:5])
            extra = len(self.shared_speakers) - 5
            more = f" and {extra} more" if extra > 0 else ""
            kind += f" (speakers in test and training: {names}{more})"
        if self.left_out:
            kind += f"; left out: {', '.join(self.left_out)}"
        val = f"val {len(self.val)}{self._named(self.val_groups)}" if len(self.val) else NO_VAL
        tested = self._named(self.test_groups)
        return f"{self.name}: train {len(self.train)}, {val}, test {len(self.test)}{tested}; {kind}"

    def _named(self, groups: tuple[Any, ...]) -> str:
        if not groups:
            return ""
        values = ", ".join(map(str, groups))
        if not self.unit:
            return f" ({values})"
        return f" ({self.unit}{'s' if len(groups) > 1 else ''} {values})"


class Protocol(ABC):
    """An evaluation protocol: `spec` as the user wrote it (records keep it), the options
    it parsed, and the folds it makes. Subclasses are frozen dataclasses whose first
    field is `spec`."""

    name: ClassVar[str]  # what a spec starts with: "loso", "speaker-kfold", ...
    usage: ClassVar[str]  # e.g. "speaker-kfold[:K[:SEED]]", for messages and help
    unit: ClassVar[str] = ""  # the group a fold's description names with its values
    # How a run under it selected its epoch, by --val mode, as records and reports say it.
    validations: ClassVar[Mapping[str, str]] = VALIDATION
    spec: str

    @classmethod
    def parse(cls, spec: str, options: str) -> Protocol:
        """The protocol `spec` names, `options` the text after its name and a colon;
        `ConfigError` for options it does not take (by default: any)."""
        if options:
            raise ConfigError(f"protocol {spec!r}: {cls.name} takes no options")
        return cls(spec)  # type: ignore[call-arg]  # a dataclass whose one field is spec

    @abstractmethod
    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        """How many folds it makes of a corpus whose `speaker` and group columns these are."""

    @abstractmethod
    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        """Each fold's sides (validation None: a `random10` slice the caller carves);
        `seed`: the run's first seed, for a protocol that draws."""

    def validation(self, val: str) -> str:
        """How a run under this protocol selected its epoch with `--val val` (records)."""
        return self.validations.get(val, val)

    def folds(self, data: FoldData, val: str, seed: int) -> list[Fold]:
        """The checked folds of `data` (`seed`: a random10 slice's draw)."""
        if val not in VAL_MODES:
            raise ConfigError(
                f"unknown validation mode {val!r}: choose one of {', '.join(VAL_MODES)}"
            )
        if len(data.labels) == 0:
            raise ConfigError("no utterances to split: the class set selected none")
        folds = [self._fold(s, data, val, seed) for s in self.splits(data, val, seed)]
        for fold in folds:
            check_no_leakage(fold, data.speakers, data.dialogs)
        return folds

    def _fold(self, split: Split, data: FoldData, val: str, seed: int) -> Fold:
        train, held = split.train, split.val
        if held is None:  # random10: carved from the training side
            train, held = stratified_slice(train, data.labels, data.dialogs, 0.1, seed)
        return Fold(
            split.name,
            train,
            held,
            split.test,
            split.speaker_independent,
            validated=val != "none",
            test_groups=split.test_groups,
            val_groups=split.val_groups,
            unit=self.unit,
            left_out=split.left_out,
            shared_speakers=split.shared_speakers,
        )

    def __str__(self) -> str:
        return self.spec


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


def parse_protocol(spec: str, offered: Sequence[type[Protocol]], corpus: str) -> Protocol:
    """The protocol `spec` names (`name[:options]`) among those `corpus` offers;
    `ConfigError` naming them for another."""
    head, _, options = spec.partition(":")
    for protocol in offered:
        if protocol.name == head:
            return protocol.parse(spec, options)
    choices = ", ".join(p.usage for p in offered)
    raise ConfigError(f"{corpus} has no protocol {spec!r}: choose {choices}")
