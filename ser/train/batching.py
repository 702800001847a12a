"""The batches a model trains on, gathered from `ser.train.data`'s tables.

Kept apart from loading: the tables are read once per run, while every fold's sides are
batched anew each epoch. `ser.train.data` re-exports these names, where callers import
them from.

`Batches` turns a fold's side (a set of utterance positions) into `Batch`es for a model's
`InputSpec`s, built on the device from index tensors: one host -> device copy of the
epoch's order per epoch, none per step.

- unit "utterance": length-bucketed batches (sorted by length with noise, batch order
  shuffled each epoch); sequence views gathered as padded [B, T, D] + mask, vector views
  are per-utterance masked means computed once at load.
- unit "dialog": batches of whole dialogs, utterances in `order`; a training side deals
  its dialogs into batches in a new uniformly random order each epoch (as the fusion
  study's published code: no length bucketing, which would put long dialogs together
  and, with its summed loss, weigh those batches more). A dialog holds only the
  utterances of this side that survived the class and failure filters: other classes,
  failed utterances and (for a random protocol) another side's utterances are left out of
  the context, so a model never sees a test utterance while training. Session protocols
  keep dialogs whole anyway, and `make_folds` keeps them whole when given dialogs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ser.errors import ConfigError
from ser.train.batch import Batch, InputSpec, Unit

if TYPE_CHECKING:  # annotations only: data.py imports this module to re-export it
    from ser.train.data import FeatureTable, TrainData, ZScore


def bucket_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Batches of indices into `lengths`, each index exactly once.

    With `rng` (training): sorted by length jittered by ±10 % (ties at random), cut into
    batches, batch order shuffled, so batches hold similar lengths but change each epoch.
    A member of a stacked run draws its order from its own seed alone, so the seeds of a
    run are independent repeats (the stack pads each step to its longest batch).
    Without `rng` (evaluation): sorted by length, in order.

    >>> [b.tolist() for b in bucket_batches(np.array([5, 1, 3, 2]), 2, None)]
    [[1, 3], [2, 0]]
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
    else:
        key = lengths * rng.uniform(0.9, 1.1, size=n)
        order = np.lexsort((rng.random(n), key))
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def dialog_groups(data: TrainData, positions: np.ndarray) -> list[np.ndarray]:
    """`positions` grouped by dialog, each group sorted by `order` (dialogs sorted by name)."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) == 0:
        return []
    pos = positions[np.lexsort((data.orders[positions], data.dialogs[positions]))]
    cuts = np.flatnonzero(data.dialogs[pos][1:] != data.dialogs[pos][:-1]) + 1
    return np.split(pos, cuts)


@dataclass(frozen=True)
class StepPlan:
    """One batch as positions: utterance unit [B]; dialog unit [B, U] (-1 = padding)."""

    positions: np.ndarray
    lengths: dict[str, int]  # sequence views: the batch's padded length
    # The optimiser steps after this batch; False: a first part whose gradient adds to
    # the next part's (a dialog batch cut by length, `Batches.plans`).
    steps: bool = True


class Batches:
    """One side of a fold (train, val or test) as batches for a model's inputs.

    Iterating yields one epoch; a training side (`shuffle=True`) draws a new order from
    its generator each epoch, an evaluation side always yields the same batches. Those of
    vector views (one vector per utterance: small) are built once and kept, as the loop
    scores the validation side every epoch.
    """

    def __init__(
        self,
        data: TrainData,
        positions: np.ndarray,
        specs: Sequence[InputSpec],
        unit: Unit,
        batch_size: int,
        *,
        zscore: Mapping[str, ZScore] | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.data, self.specs, self.unit = data, list(specs), unit
        self.positions = np.asarray(positions, dtype=np.int64)
        self.batch_size, self.zscore = batch_size, dict(zscore or {})
        self.rng = np.random.default_rng(seed) if shuffle else None
        for spec in self.specs:
            if spec.name not in data.features:
                raise ConfigError(
                    f"the model wants feature set {spec.name!r}, which was not loaded"
                )
            if unit == "dialog" and spec.view != "vector":
                raise ConfigError(
                    f"dialog models take vector views only; {spec.name} is {spec.view}"
                )
        self._vectors: dict[str, torch.Tensor] | None = None  # built on first use
        self._groups = dialog_groups(data, self.positions) if unit == "dialog" else []
        self._kept: list[Batch] | None = None
        self._seq_len = {
            s.name: data.features[s.name].lengths_np[self.positions]
            for s in self.specs
            if s.view == "sequence"
        }

    @property
    def vectors(self) -> dict[str, torch.Tensor]:
        """Vector views, pooled and normalised once (not per batch), each [n + 1, D] with a
        zero row after the last that padding positions (-1) read: batches are row copies.
        Built on first use: stacked runs gather from one shared table instead
        (`ser.train.stack.StackedSides`), and a copy per side and member of a 6373-d
        set would cost 140 MB each."""
        if self._vectors is None:
            self._vectors = {
                s.name: self._vector_table(s.name) for s in self.specs if s.view == "vector"
            }
        return self._vectors

    def __len__(self) -> int:
        return -(-self._units() // self.batch_size)

    @property
    def rows(self) -> int:
        """The most utterances (or dialogs) one batch of this side holds."""
        return min(self.batch_size, self._units())

    def _units(self) -> int:
        return len(self._groups) if self.unit == "dialog" else len(self.positions)

    def __iter__(self) -> Iterator[Batch]:
        if self._kept is not None:
            return iter(self._kept)
        epoch = (self.build(plan) for plan in self.plans())
        if self.rng is None and all(s.view == "vector" for s in self.specs):
            self._kept = list(epoch)
            return iter(self._kept)
        return epoch

    def plans(self) -> list[StepPlan]:
        """One epoch's batches as positions (on the host); a training side draws a new
        order each call. `__iter__` builds these; stacked runs gather the members' plans
        into one batch (`ser.train.stack.StackedSides`)."""
        if self.unit == "dialog":
            sizes = np.array([len(g) for g in self._groups])
            if self.rng is None:  # evaluation: by length, so batches pad little
                plan = bucket_batches(sizes, self.batch_size, None)
            else:  # training: a uniform shuffle, the fusion study's DataLoader(shuffle=True)
                order = self.rng.permutation(len(sizes))
                batches = [
                    order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)
                ]
                return [part for batch in batches for part in self._halves(batch, sizes)]
            return [StepPlan(_padded([self._groups[i] for i in batch]), {}) for batch in plan]
        total = sum(self._seq_len.values(), np.zeros(len(self.positions), dtype=np.int64))
        plan = bucket_batches(total, self.batch_size, self.rng)
        return [
            StepPlan(
                self.positions[local],
                {name: int(lens[local].max()) for name, lens in self._seq_len.items()},
            )
            for local in plan
        ]

    def _halves(self, batch: np.ndarray, sizes: np.ndarray) -> list[StepPlan]:
        """A uniform batch of dialogs as two parts, its shorter and its longer half, each
        padded to its own longest dialog; the optimiser steps after the second. The
        summed loss's gradient is the whole batch's, but a batch of 20 random dialogs
        padded to its longest (~100 utterances, the mean ~35) spent most of its attention
        on padding: the fusion study's step took 0.65x the time in two halves."""
        by_length = batch[np.argsort(sizes[batch], kind="stable")]
        cut = len(by_length) // 2
        return [
            StepPlan(_padded([self._groups[i] for i in by_length[:cut]]), {}, steps=False),
            StepPlan(_padded([self._groups[i] for i in by_length[cut:]]), {}),
        ]

    def build(self, plan: StepPlan) -> Batch:
        """The batch of one step's plan, on the device."""
        pos = torch.from_numpy(plan.positions).to(self.data.device)
        if self.unit == "dialog":
            return self.dialog_batch(pos)
        return self.utterance_batch(pos, plan.lengths)

    def utterance_batch(self, pos: torch.Tensor, t_max: Mapping[str, int]) -> Batch:
        """The batch of positions `pos` [B] (on the device); `t_max`: padded length per sequence."""
        x: dict[str, torch.Tensor] = {}
        mask: dict[str, torch.Tensor] = {}
        for spec in self.specs:
            table = self.data.features[spec.name]
            if spec.view == "vector":
                x[spec.name] = self.vectors[spec.name].index_select(0, pos)  # [B, D]
            else:
                x[spec.name], mask[spec.name] = self._sequence(table, pos, t_max[spec.name])
        return Batch(
            x=x,
            mask=mask,
            labels=self.data.labels_t[pos],
            index=self.data.manifest_rows_t[pos],
        )

    def _sequence(
        self, table: FeatureTable, pos: torch.Tensor, t_max: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.arange(t_max, device=pos.device)  # [T]
        lengths = table.lengths[pos]  # [B]
        mask = steps.unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        rows = torch.where(mask, table.starts[pos].unsqueeze(1) + steps, 0)  # [B, T]
        seq = self._norm(table.feature.name, table.flat[rows].float())  # [B, T, D]
        return seq * mask.unsqueeze(-1), mask

    def _norm(self, name: str, x: torch.Tensor) -> torch.Tensor:
        z = self.zscore.get(name)
        return x if z is None else z(x)

    def _vector_table(self, name: str) -> torch.Tensor:
        """[n + 1, D] float32: every utterance's normalised vector, then zeros."""
        vectors = self._norm(name, self.data.features[name].vectors())  # [n, D]
        return torch.cat([vectors, vectors.new_zeros(1, vectors.shape[1])])

    # -- dialog unit ------------------------------------------------------------------
    def dialog_batch(self, pos: torch.Tensor) -> Batch:
        """The batch of dialogs `pos` [B, U] (positions, -1 = padding; on the device)."""
        utt_mask = pos >= 0  # [B, U]
        rows = torch.where(utt_mask, pos, len(self.data)).flatten()  # padding: the zero row
        x = {name: t.index_select(0, rows).view(*pos.shape, -1) for name, t in self.vectors.items()}
        safe = pos.clamp_min(0)
        labels = torch.where(utt_mask, self.data.labels_t[safe], -100)
        index = torch.where(utt_mask, self.data.manifest_rows_t[safe], -1)
        return Batch(x=x, mask={}, labels=labels, index=index, utt_mask=utt_mask)


def _padded(dialogs: list[np.ndarray]) -> np.ndarray:
    width = max((len(d) for d in dialogs), default=1)  # no dialog: an empty part [0, 1]
    out = np.full((len(dialogs), width), -1, dtype=np.int64)
    for i, d in enumerate(dialogs):
        out[i, : len(d)] = d
    return out
