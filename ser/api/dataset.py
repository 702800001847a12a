"""Cached features and their labels as a `torch.utils.data.Dataset` (`FeatureDataset`),
for a model of one's own trained on a store and a protocol's folds; its `collate` pads a
batch as ser's trainer does (`ser.train.gather`; docs/python.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ser.api.splits import labelled_data
from ser.api.store import Store, as_store
from ser.errors import ConfigError
from ser.models.batch import InputSpec
from ser.train.gather import gather


@dataclass(frozen=True)
class Item:
    """One utterance: its id, class index (into `FeatureDataset.classes`) and features
    by set name ([frames, dim] float32, or [dim] for an utterance-level set)."""

    utt_id: str
    label: int
    features: dict[str, torch.Tensor]
    position: int  # its row in the dataset's tables, which `collate` gathers


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
    are named as `--features` names them ("logmel80+tiny-mpnet", "hubert+mpnet"), read
    once into memory; `sets` holds their stored names, the keys of an item's features."""

    def __init__(
        self,
        store: Store | str | Path,
        features: str,
        ids: Sequence[str] | None = None,
        classes: str | None = None,
    ) -> None:
        opened = as_store(store)
        self.data, label_set = labelled_data(opened, classes, features)
        self.classes: tuple[str, ...] = self.data.classes
        self.sets: tuple[str, ...] = tuple(self.data.features)
        self.positions = _positions(self.data.utt_ids.tolist(), ids, opened, label_set.name)
        self.specs = [
            InputSpec(
                t.feature.name,
                "text" if t.feature.modality == "text" else "audio",
                t.feature.dim,
                "vector" if t.feature.level == "utterance" else "sequence",
                layers=len(t.feature.sets) or 1,
            )
            for t in self.data.features.values()
        ]

    @property
    def dims(self) -> dict[str, int]:
        """Each set's feature dimension."""
        return {spec.name: spec.dim for spec in self.specs}

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> Item:
        at = self.positions[index]
        features = {}
        for spec in self.specs:
            table = self.data.features[spec.name]
            start, count = int(table.starts[at]), int(table.lengths_np[at])
            rows = table.flat[start : start + count].float()
            features[spec.name] = rows[0] if spec.view == "vector" else rows
        utt_id, label = str(self.data.utt_ids[at]), int(self.data.labels[at])
        return Item(utt_id, label, features, at)

    def collate(self, items: Sequence[Item]) -> FeatureBatch:
        """`items` as one padded batch (a DataLoader's ``collate_fn``)."""
        pos = torch.tensor([item.position for item in items], dtype=torch.long)
        lengths = {
            s.name: int(self.data.features[s.name].lengths_np[pos.numpy()].max())
            for s in self.specs
            if s.view == "sequence"
        }
        batch = gather(self.data, self.specs, "utterance", pos, lengths, {})
        return FeatureBatch(batch.x, batch.mask, batch.labels, [i.utt_id for i in items])


def _positions(kept: list[str], ids: Sequence[str] | None, store: Store, classes: str) -> list[int]:
    """The rows of `ids` among the `kept` utterances (None: all of them)."""
    if ids is None:
        return list(range(len(kept)))
    if isinstance(ids, str):
        raise ConfigError("ids: give a list of utterance ids, not one id")
    row = {utt: i for i, utt in enumerate(kept)}
    missing = [utt for utt in ids if utt not in row]
    if missing:
        raise ConfigError(
            f"{len(missing)} of the ids are not utterances ser train keeps of {store.path} "
            f"with classes {classes} and these sets (first: {missing[0]}): outside the class "
            "set, without rows in a set, or not in the store"
        )
    return [row[utt] for utt in ids]
