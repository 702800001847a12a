"""A feature store opened from Python (`open_store`): its sets, its utterances (their
metadata as a table: `ser.api.manifest`) and one utterance's features as a numpy array,
read through `ser.cache.FeatureStore` (docs/python.md):
an utterance's rows alone, found by its set's row index (the offsets) and read from the
chunks that hold them, never the whole set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser.api.manifest import UtteranceTable
from ser.cache import FeatureStore
from ser.errors import StoreError

if TYPE_CHECKING:
    from ser.corpus.labels import LabelSet
    from ser.train.data import TrainData


@dataclass(frozen=True)
class SetInfo:
    """One feature set of a store: its `level` ("frame", "token" or "utterance"), `dim`
    (columns), `rows` (over all utterances), `dtype`, `modality` ("audio" or "text"),
    whether it is `complete`, and its `provenance` (the attributes it was extracted with:
    extractor, model, layer, weights' checksum, ...)."""

    name: str
    level: str
    dim: int
    rows: int
    dtype: str
    modality: str
    complete: bool
    provenance: Mapping[str, Any] = field(repr=False)


class Store:
    """A feature store opened for reading (`open_store`); `feature_store` is ser's own
    `FeatureStore`, for what this class does not say."""

    def __init__(self, feature_store: FeatureStore) -> None:
        self.feature_store = feature_store
        # Each set's offsets [N + 1] and level, read once, when it is first asked.
        self._index: dict[str, tuple[np.ndarray, str]] = {}
        # The kept utterances' row index by (class set, features), read once for every
        # fold and dataset made on this store (`ser.api.splits.labelled_layout`).
        self.layouts: dict[tuple[str, str | None], tuple[TrainData, LabelSet]] = {}

    @property
    def path(self) -> Path:
        return self.feature_store.path

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}: {len(self.utterances)} utterances)"

    @property
    def sets(self) -> dict[str, SetInfo]:
        """The feature sets by name (complete or still being extracted), in store order."""
        return {name: self._info(name) for name in self.feature_store.feature_sets()}

    @property
    def utterances(self) -> tuple[str, ...]:
        """Every utterance id of the store's manifest, in manifest order."""
        return tuple(str(u) for u in self.feature_store.manifest.utt_ids)

    @property
    def manifest(self) -> UtteranceTable:
        """The utterances' metadata as a table, one row per utterance in manifest order:
        `utt_id`, `label`, `speaker`, `dialog`, `transcript`, `wav` (its full path), ...
        and the corpus's groups (IEMOCAP's `session`); `to_pandas()` for a DataFrame."""
        return UtteranceTable(self.feature_store.manifest, self.corpus_root)

    @property
    def corpus_root(self) -> Path | None:
        """Where the corpus was when the store was extracted (None: not recorded)."""
        root = self.feature_store.attrs.get("corpus_root")
        return Path(root) if root else None

    @property
    def corpus(self) -> str:
        """The corpus kind the store was extracted from ("iemocap", "meld", ...)."""
        return self.feature_store.corpus.kind.name

    def read(self, set_name: str, utt_id: str) -> np.ndarray:
        """The features set `set_name` holds for utterance `utt_id`, in its stored dtype:
        [frames, dim] (a frame- or token-level set) or [dim] (an utterance-level one),
        an array of its own (read from the chunks that hold its rows, found by the set's
        offsets). `StoreError` for a set or an utterance the store does not have, or an
        utterance whose extraction failed."""
        manifest = self.feature_store.manifest
        if utt_id not in manifest:
            raise StoreError(f"{self.path}: no utterance {utt_id!r} in the store's manifest")
        offsets, level = self._row_index(set_name)
        at = manifest.index(utt_id)
        start, stop = int(offsets[at]), int(offsets[at + 1])
        if stop == start:
            why = dict(self.feature_store.failures(set_name)).get(utt_id, "no rows")
            raise StoreError(f"{self.path}: {set_name} has no features of {utt_id} ({why})")
        rows = self.feature_store.read_rows(set_name, start, stop)
        return rows[0] if level == "utterance" else rows

    def _row_index(self, set_name: str) -> tuple[np.ndarray, str]:
        """Set `set_name`'s offsets and level (read at its first utterance)."""
        if set_name not in self._index:
            if set_name not in self.feature_store.feature_sets():
                have = ", ".join(self.feature_store.feature_sets()) or "none"
                raise StoreError(f"{self.path}: no feature set {set_name!r} (it has: {have})")
            level = str(self.feature_store.info(set_name).level)
            self._index[set_name] = (self.feature_store.offsets(set_name), level)
        return self._index[set_name]

    def _info(self, name: str) -> SetInfo:
        info = self.feature_store.info(name)
        return SetInfo(
            name=name,
            level=info.level,
            dim=info.dim,
            rows=info.rows,
            dtype=info.dtype,
            modality=info.modality,
            complete=info.complete,
            provenance=dict(info.attrs),
        )


def open_store(path: str | Path) -> Store:
    """The feature store at `path` (a ``.zarr`` folder or an ``.h5`` file), read only;
    `StoreError` when there is none."""
    return Store(FeatureStore.open(path))


def as_store(store: Store | str | Path) -> Store:
    """`store`, opened when it is a path."""
    return store if isinstance(store, Store) else open_store(store)
