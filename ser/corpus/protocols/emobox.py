"""``emobox[:K]``: EmoBox's folds exactly as its files list them (the `emobox` kind
keeps fold k's side of each utterance in group `fold_<k>`: train, valid, test, or ""
for none). Fold k tests its test file's utterances and trains on its train file's; K
alone runs fold K only.

Validation: the fold's valid file where the corpus ships one (M3ED, MELD, MSP-Podcast;
`val_groups` says `valid`), else a stratified 10 % of the training side (`random10`'s
carving, whatever `--val` names); ``--val none`` validates on nothing and trains on the
valid file too. A fold is speaker-independent when no speaker of its test side is on its
training or validation side; otherwise the fold names them (an unnamed speaker,
`Unknown`, on both sides makes it speaker-dependent too).

>>> sides = np.array(["train", "train", "valid", "test", "test", ""])
>>> data = FoldData(np.zeros(6, np.int64), np.array(list("aabccd")), {"fold_1": sides})
>>> (split,) = EmoBoxFolds("emobox").splits(data, "next-group", 0)
>>> split.train.tolist(), split.val.tolist(), split.test.tolist(), split.shared_speakers
([0, 1], [2], [3, 4], ())
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ser.corpus.protocols.folds import FoldData, Protocol, Split, held_out
from ser.errors import ConfigError

FOLD = re.compile(r"fold_(\d+)")
VALID_FILE = (
    "EmoBox's valid file where the corpus has one (each fold's val_groups: valid), else 10 % "
    "of the training side held out; best validation epoch tested"
)
NO_FOLDS = (
    "no EmoBox folds (fold_<k> groups) in this corpus: a folder <EmoBox>/data/<name> read "
    "with --corpus emobox has them; a track2 file is a test set without folds"
)


def fold_groups(names: Sequence[str]) -> list[str]:
    """The `fold_<k>` groups among `names`, by k."""
    return sorted((n for n in names if FOLD.fullmatch(n)), key=lambda n: int(n[5:]))


@dataclass(frozen=True)
class EmoBoxFolds(Protocol):
    """EmoBox's folds (module doc); `fold`: only that one (None: every fold)."""

    spec: str
    fold: int | None = None
    name = "emobox"
    usage = "emobox[:K]"
    validations = held_out(VALID_FILE, none="none: the train and valid files trained on")

    @classmethod
    def parse(cls, spec: str, options: str) -> EmoBoxFolds:
        if options and not options.isdigit():
            raise ConfigError(f"protocol {spec!r}: write {cls.usage}, K a fold's number")
        return cls(spec, int(options) if options else None)

    def fold_count(self, columns: Mapping[str, np.ndarray]) -> int:
        return len(self._chosen(fold_groups(list(columns))))

    def splits(self, data: FoldData, val: str, seed: int) -> list[Split]:
        return [
            self._split(data, group, val) for group in self._chosen(fold_groups(list(data.groups)))
        ]

    def _chosen(self, groups: list[str]) -> list[str]:
        if not groups:
            raise ConfigError(f"protocol {self.spec!r}: {NO_FOLDS}")
        if self.fold is None:
            return groups
        if f"fold_{self.fold}" not in groups:
            raise ConfigError(
                f"protocol {self.spec!r}: no fold {self.fold}; the corpus has {', '.join(groups)}"
            )
        return [f"fold_{self.fold}"]

    def _split(self, data: FoldData, group: str, val: str) -> Split:
        side = data.group(group).astype(str)
        rows = np.arange(len(side), dtype=np.int64)
        train, valid, test = (rows[side == s] for s in ("train", "valid", "test"))
        for name, found in (("train", train), ("test", test)):
            if len(found) == 0:
                raise ConfigError(
                    f"{group}: its {name} file lists none of the class set's utterances"
                )
        held: np.ndarray | None = valid
        if val == "none":
            train, held = np.sort(np.concatenate([train, valid])), rows[:0]
        elif len(valid) == 0:
            held = None  # carved from the training side
        trained = np.concatenate([train, valid])
        shared = sorted(set(data.speakers[test].tolist()) & set(data.speakers[trained].tolist()))
        held_groups = ("valid",) if held is not None and len(held) else ()
        return Split(
            group,
            train,
            held,
            test,
            (),
            held_groups,
            not shared,
            shared_speakers=tuple(map(str, shared)),
        )
