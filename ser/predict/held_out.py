"""Inputs that are utterances of the run's own store, and which of its models saw each:
a fold model trained (or chose its epoch) on every utterance of the run but those its
test side held. An input is known by its path against the store's manifest (its ``wav``
under the corpus root the store records, or the same folders and file name under a
corpus moved since); each fold checkpoint's sidecar lists its test side's manifest rows.
`Origin` says it of one input; `--checkpoint held-out` (`checkpoint="held-out"`)
predicts each input with the fold models whose test side held it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.cache import FeatureStore
from ser.errors import SerError
from ser.runs.record import RECORD, read
from ser.train.checkpoint import FINAL, Checkpoint

#: `--checkpoint`'s value that predicts each input with the models that held it out.
HELD_OUT = "held-out"
#: The least folders-and-file of a manifest's wav a moved corpus's input is known by
#: (a file name alone could be anyone's).
TAIL = 2


@dataclass(frozen=True)
class Origin:
    """An input that is utterance `utterance` of the run's store: the checkpoints that
    held it out (`held_out_by`: their test side held it; every one for an utterance
    outside the run's class set) and those that trained on it (`seen_by`: on their
    training or validation side)."""

    utterance: str
    held_out_by: tuple[str, ...]
    seen_by: tuple[str, ...]

    def note(self) -> str | None:
        """What a prediction of it by all the models averaged is not (None: no model saw
        it)."""
        if not self.seen_by:
            return None
        which = ", ".join(self.seen_by)
        offer = (
            f"--checkpoint={HELD_OUT} predicts it with "
            f"{', '.join(self.held_out_by)} alone, whose test side held it"
            if self.held_out_by
            else "no model of the run held it out (no fold's test side holds it)"
        )
        return (
            f"utterance {self.utterance} of the run's store: {which} trained on it, so a "
            f"prediction by them is not a held-out one; {offer}"
        )


def held_out_note(origin: Origin) -> str:
    """What a held-out prediction of `origin` is."""
    return (
        f"utterance {origin.utterance} of the run's store: predicted by "
        f"{', '.join(origin.held_out_by)} alone, whose test side held it "
        f"({', '.join(origin.seen_by)} trained on it)"
    )


@dataclass(frozen=True)
class RunCorpus:
    """The run's store's utterances, as inputs are known by (`origin`)."""

    store: Path
    ids: np.ndarray  # [N] utterance ids, manifest order
    exact: dict[Path, int]  # each wav's absolute path under the recorded root -> its row
    tails: dict[tuple[str, ...], int]  # each wav's relative parts (TAIL or more) -> row
    used: np.ndarray | None  # [N] bool: in the run's class set (None: unknown, all)
    tested: dict[str, frozenset[int]]  # a fold checkpoint's key -> its test side's rows
    lengths: tuple[int, ...] = ()  # the tails' lengths, longest first

    def row_of(self, path: Path) -> int | None:
        """The manifest row `path` is the wav of (None: none)."""
        absolute = Path(path).absolute()
        for candidate in (absolute, absolute.resolve()):
            if candidate in self.exact:
                return self.exact[candidate]
        parts = absolute.parts
        found = (self.tails[parts[-n:]] for n in self.lengths if parts[-n:] in self.tails)
        return next(found, None)

    def origin(self, path: Path, ckpts: Sequence[Checkpoint]) -> Origin | None:
        """Which of `ckpts` held the utterance `path` is out, and which saw it (None: no
        utterance of the store)."""
        row = self.row_of(path)
        if row is None:
            return None
        if self.used is not None and not self.used[row]:  # outside the run: no model saw it
            return Origin(str(self.ids[row]), tuple(c.key for c in ckpts), ())
        held = tuple(c.key for c in ckpts if row in self.tested.get(c.key, ()))
        return Origin(str(self.ids[row]), held, tuple(c.key for c in ckpts if c.key not in held))


def run_corpus(run_dir: Path, ckpts: Sequence[Checkpoint]) -> RunCorpus | None:
    """The store `run_dir`'s record names, read for its manifest (None: a cross-corpus
    run, whose test rows are another store's, or a record or store that cannot be read:
    its inputs are then known by none)."""
    try:
        record = read(Path(run_dir) / RECORD)
        if record.cross is not None or not record.store:
            return None
        store = FeatureStore.open(record.store)
        manifest = store.manifest
    except (SerError, OSError):
        return None
    wavs = [str(w) for w in manifest.column("wav")]
    root = store.attrs.get("corpus_root")
    exact, tails = {}, {}
    for row, wav in enumerate(wavs):
        if not wav:
            continue
        where = Path(wav) if root is None else Path(str(root)) / wav
        exact[where.absolute()] = row
        if not Path(wav).is_absolute() and len(Path(wav).parts) >= TAIL:
            tails[Path(wav).parts] = row
    tested = {c.key: frozenset(_test_rows(c)) for c in ckpts if c.key != FINAL}
    # A run without the category trains on what its other heads' gold holds: not known here.
    labels, classes = manifest.column("label"), record.config.get("classes")
    used = _in_class_set(store, labels, classes) if record.classes else None
    lengths = tuple(sorted({len(t) for t in tails}, reverse=True))
    return RunCorpus(store.path, manifest.utt_ids, exact, tails, used, tested, lengths)


def _test_rows(ckpt: Checkpoint) -> list[int]:
    test = ckpt.meta.get("test")
    rows = test.get("rows", []) if isinstance(test, dict) else []
    return [int(r) for r in rows]


def _in_class_set(store: FeatureStore, labels: np.ndarray, classes: object) -> np.ndarray | None:
    """Which utterances the run's class set holds (None: not known, taken as all)."""
    try:
        label_set = store.corpus.label_set(str(classes or store.corpus.kind.classes))
    except (SerError, KeyError, ValueError):
        return None
    return np.array([label_set.class_of(str(code)) is not None for code in labels], dtype=bool)
