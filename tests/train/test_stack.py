"""Stacking the members' batches (ser.train.batches): each member's slot is its own batch,
and the members share one table of each vector view instead of a copy each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ser.cache import FeatureStore
from ser.corpus.labels import get_label_set
from ser.models.batch import InputSpec
from ser.train.batches import Batches, StackedSides
from ser.train.data import TrainData, fit_zscore, load_data
from ser.train.features import resolve_features

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
VECTORS = [InputSpec("is13", "audio", 7, "vector"), InputSpec("bert-tiny", "text", 5, "vector")]
SEQUENCES = [InputSpec("hubert-tiny.L2", "audio", 6, "sequence"), VECTORS[0]]


@pytest.fixture(scope="module")
def data(labelled_stores: Callable[..., Path]) -> TrainData:
    store = FeatureStore.open(labelled_stores(SETS, per_dialog=6))
    return load_data(store, resolve_features(store, list(SETS)), get_label_set("4"))


def member_sides(
    data: TrainData, specs: list[InputSpec], unit: str, shuffle: bool = False
) -> list[Batches]:
    """One side per member, each z-scored on its own fold's training sessions (LOSO)."""
    sides = []
    sessions = np.array([int(u[3:5]) for u in data.utt_ids])  # Ses0S...
    for held_out in (1, 3, 5):
        train = np.flatnonzero(sessions != held_out)
        zscore = fit_zscore(data, train)
        side = Batches(data, train, specs, unit, 4, zscore=zscore, shuffle=shuffle, seed=held_out)  # type: ignore[arg-type]
        sides.append(side)
    return sides


@pytest.mark.parametrize(("specs", "unit"), [(VECTORS, "dialog"), (SEQUENCES, "utterance")])
def test_each_members_slot_is_its_own_batch(data: TrainData, specs, unit) -> None:  # type: ignore[no-untyped-def]
    """Members of different folds (own z-scores) and sizes: slot k of the stacked batch
    is exactly member k's own batch, padded with zeros (z-scores applied after the
    shared gather give the numbers of a table normalised per member)."""
    sides = member_sides(data, specs, unit)
    plans = [side.plans()[0] for side in sides]
    plans[1] = sides[1].plans()[-1]  # a short last batch: sizes differ
    stacked = StackedSides(sides).gather(plans, torch.from_numpy(_padded(plans)))
    for k, (side, plan) in enumerate(zip(sides, plans, strict=True)):
        own = side.build(plan)
        for spec in specs:
            box = (k, *(slice(0, n) for n in own.x[spec.name].shape))
            assert torch.equal(stacked.x[spec.name][box], own.x[spec.name])  # type: ignore[index]
            outside = torch.ones_like(stacked.x[spec.name][k], dtype=torch.bool)
            outside[box[1:]] = False
            assert not stacked.x[spec.name][k][outside].any()


def _padded(plans) -> np.ndarray:  # type: ignore[no-untyped-def]
    shape = [max(p.positions.shape[i] for p in plans) for i in range(plans[0].positions.ndim)]
    out = np.full((len(plans), *shape), -1, dtype=np.int64)
    for k, p in enumerate(plans):
        out[(k, *(slice(0, n) for n in p.positions.shape))] = p.positions
    return out


class Sizes(TorchDispatchMode):
    """The largest tensor made while active (elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor):
            self.largest = max(self.largest, out.numel())
        return out


def test_members_share_one_table_of_each_vector_view(data: TrainData) -> None:
    """Setting up the stacked sides and a whole epoch of theirs makes no per-member copy
    of a vector table: no tensor as large as two members' tables of one set (a 6373-d set
    at 20 members would otherwise take gigabytes)."""
    sides = member_sides(data, VECTORS, "dialog", shuffle=True)
    table = 2 * len(data) * 7  # two members' copies of the is13 table
    for spec in VECTORS:  # the data's own pooled table, made at load
        assert len(data.features[spec.name].vectors) == len(data)
    with Sizes() as made:
        batches = list(StackedSides(sides).epoch())
    assert batches and made.largest < table, made.largest
