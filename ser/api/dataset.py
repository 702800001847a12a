"""Cached features and their labels as a `torch.utils.data.Dataset` (`FeatureDataset`),
for a model of one's own trained on a store and a protocol's folds; its `collate` pads a
batch as ser's trainer does (zeros after each utterance's rows, a mask of the real ones),
and `batches` orders an epoch by the trainer's seeded block shuffle (docs/python.md).

A dataset holds the rows of its own utterances only: in memory where they fit its memory
budget, else read from the store a chunk at a time through the trainer's chunk cache and
reader threads (`ser.api.rows`). Its items are the same either way. A DataLoader's worker
(forked or spawned) makes its streams anew, with its share of the cache.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from ser.api.arguments import DATA_FLAGS, feature_names, python_named, utterance_ids
from ser.api.batches import BlockBatches
from ser.api.rows import (
    Streamed,
    blocks_of,
    dataset_budget,
    fitted,
    placed_rows,
    reopened,
    without_streams,
)
from ser.api.splits import labelled_layout
from ser.api.store import Store, as_store
from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.models.batch import InputSpec
from ser.models.losses import balanced_weights
from ser.train.data import FeatureTable, TrainData, ZScore, fit_zscore

#: What `FeatureDataset`'s `normalize` takes: "train" (fitted on its own rows), a dataset
#: made so (its statistics) or such statistics by set name; None: raw features.
Normalize: TypeAlias = "str | FeatureDataset | Mapping[str, ZScore] | None"


@dataclass(frozen=True)
class Item:
    """One utterance: its id, class index (into `FeatureDataset.classes`) and features
    by set name ([frames, dim] float32, or [dim] for an utterance-level set)."""

    utt_id: str
    label: int
    features: dict[str, torch.Tensor]
    position: int  # its index in the dataset


@dataclass
class FeatureBatch:
    """Items collated: `x[set]` [B, T, dim] float32 zero-padded (an utterance-level set's
    [B, dim]), `mask[set]` [B, T] bool, True on real frames (sequence sets only),
    `labels` [B] long and the `utt_ids`."""

    x: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    labels: torch.Tensor
    utt_ids: list[str]

    def to(self, device: torch.device | str) -> FeatureBatch:
        """The batch's tensors on `device`."""
        return FeatureBatch(
            {k: v.to(device) for k, v in self.x.items()},
            {k: v.to(device) for k, v in self.mask.items()},
            self.labels.to(device),
            self.utt_ids,
        )


class FeatureDataset(Dataset[Item]):
    """The utterances of `store` that `ser train --features FEATURES --classes CLASSES`
    keeps (a label in the class set, rows in every set), or those of them in `ids` (a
    fold's side), in that order; `ConfigError` for an id that is not among them. Sets
    are named as `--features` names them ("logmel80+tiny-mpnet", "hubert+mpnet");
    `sets` holds their stored names, the keys of an item's features.

    Only these utterances' rows are read: held in memory when they fit `memory_budget`
    (a size such as "384MB", or bytes; None: `ser train`'s default, half the available
    RAM), else the sets that do not fit (`streamed`) read from the store a chunk at a
    time through a cache within the budget; `budget` holds its bytes, `budget_source`
    where they came from. `progress`: a bar on stderr (plain lines when it is no
    terminal) while the rows are read.

    `normalize="train"`: each set z-scored per column with the mean and standard deviation
    of this dataset's own rows (a fold's training side), fitted by the trainer's
    `fit_zscore` (streamed sets in one pass over their rows); `zscore` holds them. Another
    side takes them as `normalize=<that dataset>` (or its `zscore`)."""

    @python_named(DATA_FLAGS)
    def __init__(
        self,
        store: Store | str | Path,
        features: str | Sequence[str],
        ids: Iterable[str] | None = None,
        classes: str | int | None = None,
        *,
        memory_budget: str | int | None = None,
        progress: bool = False,
        normalize: Normalize = None,
    ) -> None:
        opened = as_store(store)
        features, listed = feature_names(features), utterance_ids(ids)  # ids read once
        classes = None if classes is None else str(classes)  # 4: "4", as the command line reads it
        budget, self.budget_source = dataset_budget(memory_budget)
        layout, label_set = labelled_layout(opened, classes, features)
        kept = layout.utt_ids.tolist()
        positions = np.asarray(_positions(kept, listed, opened, label_set.name), dtype=np.int64)
        tables, streamed = placed_rows(opened.feature_store, layout, positions, budget, progress)
        self.blocks = blocks_of(layout, positions)  # [n] each item's block
        self.data = _subset(layout, positions, tables)
        self._streamed: dict[str, Streamed] = streamed
        self.budget = budget
        self.path = opened.path
        self._pid: int | None = os.getpid()  # the process its streams read in
        self.classes: tuple[str, ...] = self.data.classes
        self.sets: tuple[str, ...] = tuple(self.data.features)
        self.specs = _input_specs(self.data)
        self.zscore: dict[str, ZScore] | None = self._statistics(normalize)

    def __repr__(self) -> str:
        streamed = f", streamed={list(self.streamed)}" if self.streamed else ""
        return f"FeatureDataset({len(self)} utterances, sets={list(self.sets)}{streamed})"

    @property
    def dims(self) -> dict[str, int]:
        """Each set's feature dimension: the last axis of its item (`shapes`)."""
        return {spec.name: spec.dim for spec in self.specs}

    @property
    def shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Each set's item shape, None for its frames (or tokens), which differ by item:
        (None, dim) for a sequence, (dim,) for an utterance-level set, and a layered
        input's layers before the last axis: (None, L, dim), (L, dim)."""
        shapes: dict[str, tuple[int | None, ...]] = {}
        for spec in self.specs:
            layers = (spec.layers,) if spec.layers > 1 else ()
            frames = (None,) if spec.view == "sequence" else ()
            shapes[spec.name] = (*frames, *layers, spec.dim)
        return shapes

    @property
    def streamed(self) -> tuple[str, ...]:
        """The sets read from the store as items are asked (the others are held)."""
        return tuple(self._streamed)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Item:
        index = self._position(index)
        tables = self._tables()
        features = {}
        for spec in self.specs:
            table = tables[spec.name]
            start, count = int(table.starts[index]), int(table.lengths_np[index])
            rows = self._normed(spec.name, table.rows(torch.arange(start, start + count)))
            features[spec.name] = rows[0] if spec.view == "vector" else rows
        return self._item(index, features)

    def __getitems__(self, indices: Sequence[int]) -> list[Item]:
        """The items of a DataLoader's batch, the chunks of its streamed rows read at once
        on the reader threads, each item's rows written once, straight into the padded
        batch that `collate` then gives (the items are views of it): a batch costs one
        batch's memory, not its items' and then the batch's."""
        at = np.asarray([self._position(int(i)) for i in indices], dtype=np.int64)
        if not len(at):
            return []
        tables = self._tables()
        for name in self._streamed:
            tables[name].prefetch(at)
        x, mask, lengths = {}, {}, {}
        for spec in self.specs:
            x[spec.name], lengths[spec.name] = self._padded(tables[spec.name], spec, at)
            if spec.view != "vector":
                mask[spec.name] = _mask(x[spec.name], lengths[spec.name])
        items = [self._item(int(i), _unpadded(x, mask, lengths, j)) for j, i in enumerate(at)]
        labels = torch.tensor([item.label for item in items], dtype=torch.long)
        return _BatchItems(items, FeatureBatch(x, mask, labels, [i.utt_id for i in items]))

    def collate(self, items: Sequence[Item]) -> FeatureBatch:
        """`items` as one padded batch (a DataLoader's ``collate_fn``); a DataLoader's
        batch (`__getitems__`) comes padded already, its items views of it: that batch."""
        if isinstance(items, _BatchItems):
            return items.batch  # built padded by `__getitems__`: the same tensors
        if not len(items):
            raise ValueError("collate takes at least one item: a batch of none has no shape")
        x, mask = {}, {}
        for spec in self.specs:
            rows = [item.features[spec.name] for item in items]
            if spec.view == "vector":
                x[spec.name] = torch.stack(rows)  # [B, D] or [B, L, D]
                continue
            x[spec.name] = pad_sequence(rows, batch_first=True)  # [B, T, D] or [B, T, L, D]
            mask[spec.name] = _mask(x[spec.name], torch.tensor([len(r) for r in rows]))
        labels = torch.tensor([item.label for item in items], dtype=torch.long)
        return FeatureBatch(x, mask, labels, [item.utt_id for item in items])

    def _position(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)}")
        return index % len(self)

    def _item(self, index: int, features: dict[str, torch.Tensor]) -> Item:
        utt_id, label = str(self.data.utt_ids[index]), int(self.data.labels[index])
        return Item(utt_id, label, features, index)

    def _padded(
        self, table: FeatureTable, spec: InputSpec, at: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Set `spec`'s rows of the items at `at`, float32 and z-scored as `_normed` makes
        an item's, zero-padded: [B, T, ...] (an utterance-level set's [B, ...]), and
        each item's rows [B]."""
        starts, counts = table.starts[at].tolist(), torch.from_numpy(table.lengths_np[at])
        vector, z = spec.view == "vector", (self.zscore or {}).get(spec.name)
        out: torch.Tensor | None = None
        for j, (start, count) in enumerate(zip(starts, counts.tolist(), strict=True)):
            rows = table.rows(torch.arange(start, start + count))  # [count, ...]
            if out is None:  # the first item's rows give the batch's shape
                longest = 1 if vector else int(counts.max())
                out = torch.zeros((len(at), longest, *rows.shape[1:]), dtype=torch.float32)
            place = out[j, :count]
            place.copy_(rows)
            if z is not None:  # in place, the same arithmetic as `_normed`'s
                place.sub_(z.mean).div_(z.std)
        if out is None:
            raise ValueError("a batch of no items has no shape")
        return (out[:, 0] if vector else out), counts

    def batches(self, batch_size: int, seed: int | None = None) -> BlockBatches:
        """A DataLoader's ``batch_sampler``: the items in `batch_size` batches as `ser
        train` orders a streamed side (the trainer's block shuffle), each epoch anew from
        `seed` (None: store order, unshuffled), whether the rows are held or streamed.
        A streamed set's cache then leaves room in the budget for these batches (three of
        `batch_size` of the longest items: `ser.api.rows.fitted`)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if self._streamed:  # the streams' caches leave room for these batches
            self._streamed = fitted(self._tables(), self._streamed, self.budget, batch_size)
        lengths = {
            s.name: self.data.features[s.name].lengths_np
            for s in self.specs
            if s.view == "sequence"
        }
        return BlockBatches(self.blocks, lengths, batch_size, seed)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """`X` [n, columns] float32, each utterance's vectors of every set side by side in
        `sets` order (`dims` wide each; a layered input's layers one after another),
        z-scored as its items are; and `y` [n] int64, the class indices: what scikit-learn's
        `fit(X, y)` takes. `ValueError` for a frame- or token-level set, which has no one
        vector an utterance."""
        frames = [t.feature for t in self.data.features.values() if t.feature.level != "utterance"]
        if frames:
            raise ValueError(
                f"arrays() takes utterance-level sets; {frames[0].name} is {frames[0].level}-"
                "level (rows of its own an utterance): pool them, or batch them with collate"
            )
        tables, columns = self._tables(), []
        for spec in self.specs:
            table = tables[spec.name]
            vectors = self._normed(spec.name, table.rows(table.starts))  # [n, D] or [n, L, D]
            columns.append(vectors.reshape(len(self), -1).numpy())
        x = np.concatenate(columns, axis=1) if columns else np.zeros((len(self), 0), np.float32)
        return x, self.data.labels.astype(np.int64)

    def class_weights(self) -> torch.Tensor:
        """[C] float32, the weights `ser train --class-weights balanced` gives the classes
        of a training side of these labels (the trainer's `balanced_weights`: n / (C n_c),
        0 for a class it lacks), in `classes` order; a loss's ``weight``."""
        weights = balanced_weights(self.data.labels, len(self.classes))
        return torch.as_tensor(weights, dtype=torch.float32)

    def _statistics(self, normalize: Normalize) -> dict[str, ZScore] | None:
        """The z-scores `normalize` asks for: fitted on this dataset's rows ("train"), or
        another's, checked against its sets (None: none)."""
        if normalize is None:
            return None
        if isinstance(normalize, str):
            if normalize != "train":
                raise ConfigError(
                    "normalize takes 'train', a dataset made with it or its zscore; "
                    f"got {normalize!r}"
                )
            if not len(self):
                raise ConfigError("normalize='train' fits on the dataset's own rows: it has none")
            return fit_zscore(self.data, np.arange(len(self)), sets=self.sets)
        given = normalize.zscore if isinstance(normalize, FeatureDataset) else normalize
        if isinstance(normalize, FeatureDataset) and given is None:
            raise ConfigError("normalize: the dataset given was made without normalize='train'")
        if not isinstance(given, Mapping):
            raise TypeError(
                f"normalize takes 'train', a FeatureDataset or its zscore; got {normalize!r}"
            )
        return _checked(given, self.dims)

    def _normed(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        """`rows` [..., D] as float32, z-scored where the dataset normalizes."""
        rows = rows.float()
        if self.zscore is None:
            return rows
        z = self.zscore[name]
        return (rows - z.mean) / z.std

    def _tables(self) -> dict[str, FeatureTable]:
        """The sets' tables, the streamed ones' made anew in a process other than the one
        that made them (a DataLoader's worker)."""
        if self._streamed and self._pid != os.getpid():
            store = FeatureStore.open(self.path)
            self.data.features = reopened(self.data.features, self._streamed, store)
            self._pid = os.getpid()
        return self.data.features

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its streams (a spawned worker makes its own)."""
        state = dict(self.__dict__)
        # A shallow copy: the same tensors, alive while the workers start (a spawned
        # worker's tensors are passed as the file descriptors of their memory).
        state["data"] = data = copy.copy(self.data)
        data.features = without_streams(self.data.features, self._streamed)
        state["_pid"] = None
        return state


def _mask(padded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: True on each item's real rows of `padded` [B, T, ...]."""
    return torch.arange(padded.shape[1]) < lengths.unsqueeze(1)


class _BatchItems(list[Item]):
    """A DataLoader batch's items (`FeatureDataset.__getitems__`), each item's features
    views of `batch`, which `collate` gives as it is; a collate of one's own sees items."""

    def __init__(self, items: list[Item], batch: FeatureBatch) -> None:
        super().__init__(items)
        self.batch = batch


def _unpadded(
    x: Mapping[str, torch.Tensor],
    mask: Mapping[str, torch.Tensor],
    lengths: Mapping[str, torch.Tensor],
    j: int,
) -> dict[str, torch.Tensor]:
    """Item j's features in a padded batch, views of it: [T_j, ...] a sequence set's (one
    with a mask), [...] an utterance-level set's."""
    return {
        name: rows[j, : int(lengths[name][j])] if name in mask else rows[j]
        for name, rows in x.items()
    }


def _checked(zscore: Mapping[str, ZScore], dims: Mapping[str, int]) -> dict[str, ZScore]:
    """Another dataset's `zscore`, for these sets of these `dims`."""
    missing = [name for name in dims if name not in zscore]
    if missing:
        have = ", ".join(zscore) or "none"
        raise ConfigError(f"normalize holds no statistics of set {missing[0]} (it has: {have})")
    for name, dim in dims.items():
        if not isinstance(zscore[name], ZScore):
            raise TypeError(
                f"normalize's statistics of {name} must be a ZScore (a dataset's zscore), "
                f"got {type(zscore[name]).__name__}"
            )
        if zscore[name].mean.shape[-1] != dim:
            shape = tuple(zscore[name].mean.shape)
            raise ConfigError(f"normalize's statistics of {name} are {shape}, its columns {dim}")
    return {name: zscore[name] for name in dims}


def _input_specs(data: TrainData) -> list[InputSpec]:
    """Each set's input as a model of ser's would take it (a vector or a sequence)."""
    return [
        InputSpec(
            t.feature.name,
            "text" if t.feature.modality == "text" else "audio",
            t.feature.dim,
            "vector" if t.feature.level == "utterance" else "sequence",
            layers=len(t.feature.sets) or 1,
        )
        for t in data.features.values()
    ]


def _subset(layout: TrainData, positions: np.ndarray, tables: dict[str, FeatureTable]) -> TrainData:
    """`layout`'s utterances at `positions`, in that order, with `tables` (theirs)."""
    pick = lambda a: None if a is None else a[positions]  # noqa: E731
    return replace(
        layout,
        manifest_rows=layout.manifest_rows[positions],
        utt_ids=layout.utt_ids[positions],
        speakers=layout.speakers[positions],
        dialogs=layout.dialogs[positions],
        orders=layout.orders[positions],
        labels=layout.labels[positions],
        features=tables,
        targets=pick(layout.targets),
        soft=pick(layout.soft),
        gold={name: g[positions] for name, g in layout.gold.items()},
        placement=None,
    )


def _positions(kept: list[str], ids: list[str] | None, store: Store, classes: str) -> list[int]:
    """The rows of `ids` among the `kept` utterances (None: all of them)."""
    if ids is None:
        return list(range(len(kept)))
    row = {utt: i for i, utt in enumerate(kept)}
    missing = [utt for utt in ids if utt not in row]
    if missing:
        raise ConfigError(
            f"{len(missing)} of the ids are not utterances ser train keeps of {store.path} "
            f"with classes {classes} and these sets (first: {missing[0]}): outside the class "
            "set, without rows in a set, or not in the store"
        )
    return [row[utt] for utt in ids]
