"""A protocol's folds over a store, as utterance ids (`folds`): the utterances `ser train`
keeps (those of the class set, with rows in every feature set named) cut by the same
protocol, validation carved the same way (docs/python.md). Which utterances have rows is
read from the sets' row index (their offsets, as the trainer reads a streamed set's:
`labelled_layout`), never from their rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.api.arguments import DATA_FLAGS, count, feature_names, python_named
from ser.api.store import Store, as_store
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import VAL_ALIASES
from ser.corpus.protocols.folds import Fold as RowFold
from ser.train.data import TrainData, load_data
from ser.train.features import ResolvedFeature, parse_feature_list, resolve_features
from ser.train.placement import Placement
from ser.train.prepare import fold_rows


@dataclass(frozen=True)
class Fold:
    """One fold: the utterance ids of its training, validation and test sides (sorted as
    the store's manifest), whether no speaker is on both sides, and `ser train`'s line
    that describes it."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    speaker_independent: bool
    description: str

    def __repr__(self) -> str:
        """Its name and its sides' sizes: the ids they hold are thousands."""
        sizes = f"train={len(self.train)}, val={len(self.val)}, test={len(self.test)}"
        return f"Fold({self.name!r}, {sizes}, speaker_independent={self.speaker_independent})"


@python_named(DATA_FLAGS)
def folds(
    store: Store | str | Path,
    protocol: str | None = None,
    classes: str | int | None = None,
    features: str | Sequence[str] | None = None,
    val: str = "next-group",
    seed: int = 0,
) -> list[Fold]:
    """The folds `ser train --protocol PROTOCOL --classes CLASSES --val VAL --seed SEED`
    makes on `store` (None: the corpus's default protocol and class set). With `features`
    ("logmel80+tiny-mpnet", as `--features` names them), utterances without rows in one
    of those sets are left out, as `ser train` leaves them out. `ConfigError` for a
    protocol, class set, validation mode or feature set that the store cannot give.
    `classes` may be a number, 4 for "4", as the command line reads one."""
    opened = as_store(store)
    classes = None if classes is None else str(classes)
    features = None if features is None else feature_names(features)
    seed = count(seed, "seed")
    data, _ = labelled_layout(opened, classes, features)
    kind = opened.feature_store.corpus.kind
    cut = kind.parse_protocol(protocol or kind.protocol)
    rows = fold_rows(opened.feature_store, data, dialog_model=False)
    made = cut.folds(rows, VAL_ALIASES.get(val, val), seed)
    return [_named(fold, data.utt_ids) for fold in made]


def labelled_layout(
    store: Store, classes: str | None, features: str | None
) -> tuple[TrainData, LabelSet]:
    """The utterances `ser train` keeps of `store` (`ser.train.data.load_data`) with the
    class set `classes` (None: the corpus's default) and rows in every set of `features`
    (None: no set), on the CPU, each set's rows left in the store: its table a
    `ser.train.stream.RowStream` of the kept utterances that has read nothing (only the
    sets' offsets are read, and its reader threads are stopped); and the class set. Read
    once per `store` object: its folds and datasets share it (`Store.layouts`)."""
    opened = store.feature_store
    label_set = opened.corpus.label_set(classes or opened.corpus.kind.classes)
    key = (label_set.name, features)
    if key not in store.layouts:
        resolved = resolve_features(opened, parse_feature_list(features)) if features else []
        data = load_data(opened, resolved, label_set, "cpu", placement=offsets_only(resolved))
        close_streams(data)  # the row index alone is wanted: readers open their own
        store.layouts[key] = (data, label_set)
    return store.layouts[key]


def offsets_only(features: list[ResolvedFeature]) -> Placement:
    """Every input "streamed" with the least chunk cache, so that `load_data` reads the
    sets' offsets and none of their rows."""
    names = [f.name for f in features]
    streamed = {name: "stream" for name in names}
    return Placement(0, "the row index", streamed, dict.fromkeys(names, 0), dict.fromkeys(names, 0))


def close_streams(data: TrainData) -> None:
    """Stop the reader threads of `data`'s streamed tables."""
    for table in data.features.values():
        for stream in table.streams:
            stream.close()


def _named(fold: RowFold, utt_ids: np.ndarray) -> Fold:
    """`fold`'s sides (rows of the data) as the utterance ids `utt_ids` holds there."""
    sides = (fold.train, fold.val, fold.test)
    train, val, test = (tuple(str(u) for u in utt_ids[rows]) for rows in sides)
    return Fold(fold.name, train, val, test, fold.speaker_independent, fold.describe())
