"""One side of a fold as batches, and the members' batches stacked into one a step.

Which utterances each batch holds is planned on the host (`StepPlan`): utterances in
length-bucketed batches; dialogs whole, their utterances in `order`, a training side dealt
in a new uniform shuffle each epoch as the fusion study's code does (length buckets would
put long dialogs together and, with its summed loss, weigh those batches more). A dialog
holds only its side's utterances, so no test utterance is seen. `Batches` gathers a plan's
rows on the device (`gather`). Where an input streams from the store
(`ser.train.placement`), a side's utterances are planned window by window
(`windowed_plans`: a block shuffle over the set's blocks, its chunks as first written),
so that a step reads a few chunks, the next step's read ahead while it trains.

`StackedSides` stacks K members' sides of their own shapes into one [K, ...] batch a
step: member k's tensors fill the front of each axis; the rest is padding: zeros, masks
False, labels -100 (ignored by every loss and metric), index -1. A member without a batch
at this step (an evaluation side shorter than another member's) is all padding. For a
compiled step (`static`) every batch is padded to one of few shapes: the batch size, and
each sequence view to its length's `bucket` (`padded_length`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ser.corpus.protocols.folds import Fold
from ser.errors import ConfigError
from ser.models.batch import Batch, InputSpec, Unit
from ser.train.augment import Augment, Draws, apply, balanced_draw, epoch_draws
from ser.train.data import FeatureTable, TrainData, ZScore
from ser.train.gather import gather
from ser.train.placement import WINDOW_BLOCKS

# Sequence views up to this many rows are padded to their longest utterance's bucket
# (`padded_length`): text (MPNet, BERT tokens: IEMOCAP's longest ~120) costs little
# padded, and adds no shape.
SHORT_ROWS = 256
# Buckets an octave of a long view's lengths: at most 19 % padding (1 / (PER_OCTAVE + 1)
# of a bucket's rows), 4 shapes an octave of lengths.
PER_OCTAVE = 4


@dataclass(frozen=True)
class StepPlan:
    """One batch as positions: utterance unit [B]; dialog unit [B, U] (-1 = padding)."""

    positions: np.ndarray
    lengths: dict[str, int]  # sequence views: the batch's padded length
    # The optimiser steps after this batch; False: a first part whose gradient adds to
    # the next part's (`dialog_plans`).
    steps: bool = True
    views: np.ndarray | None = None  # `--views`: each position's view (as `positions`)


def bucket(n: int, per_octave: int = PER_OCTAVE) -> int:
    """The smallest length >= n on a grid of `per_octave` steps between powers of two
    (lengths below 2 x per_octave on a grid of 1).

    >>> [bucket(n) for n in (1, 7, 8, 9, 100, 129, 1700)]
    [1, 7, 8, 10, 112, 160, 1792]
    """
    step = max(1, (1 << (max(n, 1).bit_length() - 1)) // per_octave)
    return -(-n // step) * step


def padded_length(longest: int, n: int) -> int:
    """A static batch's length of a sequence view whose longest utterance in the run has
    `longest` rows (0: unknown), for a batch whose longest has n: a short view's (at most
    `SHORT_ROWS`) bucket of `longest`, else n's bucket."""
    return bucket(longest) if 0 < longest <= SHORT_ROWS else bucket(n)


def bucket_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> list[np.ndarray]:
    """Batches of indices into `lengths`, sorted by length (with `rng`, for training:
    jittered by ±10 % and the batch order shuffled, so batches change each epoch).

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


def utterance_plans(
    positions: np.ndarray,
    seq_len: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator | None,
) -> list[StepPlan]:
    """An epoch of utterance batches, bucketed by the summed lengths of the sequence views
    (`seq_len`: name -> [n] lengths of `positions`)."""
    total = sum(seq_len.values(), np.zeros(len(positions), dtype=np.int64))
    return [
        StepPlan(positions[local], {name: int(lens[local].max()) for name, lens in seq_len.items()})
        for local in bucket_batches(total, batch_size, rng)
    ]


def windowed_plans(
    positions: np.ndarray,
    seq_len: Mapping[str, np.ndarray],
    batch_size: int,
    rng: np.random.Generator | None,
    blocks: np.ndarray,
) -> list[StepPlan]:
    """`utterance_plans` a window at a time: `blocks` [N] is each position's block (a
    streamed input's), the blocks of `positions` are taken in store order (with `rng`,
    for training: in a new random order each epoch), `WINDOW_BLOCKS` of them a window,
    and each window's utterances bucketed and shuffled as `utterance_plans` does. The
    windows hold a fixed count of blocks: the same seed gives the same batches whatever
    the budget, the machine or the reader threads. Every batch but the last is full: a
    window's utterances that do not fill one wait for the next window's (those carried
    are batched first), so that a side takes ceil(N / batch) steps whatever its seed, as
    in memory, and members of other seeds stack step for step.

    >>> plans = windowed_plans(np.arange(6), {}, 2, None, np.array([0, 0, 1, 1, 9, 9]))
    >>> [p.positions.tolist() for p in plans]
    [[0, 1], [2, 3], [4, 5]]
    >>> blocks = np.array([0, 0, 1, 2, 3, 5, 5, 5, 5, 5])  # two windows of 5 utterances
    >>> [p.positions.tolist() for p in windowed_plans(np.arange(10), {}, 4, None, blocks)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """
    held = blocks[positions]
    kept = np.unique(held)  # sorted
    order = kept if rng is None else kept[rng.permutation(len(kept))]
    rank = np.empty(len(kept), dtype=np.int64)
    rank[np.searchsorted(kept, order)] = np.arange(len(order))  # each block's turn
    # Each position's window, its positions in index order: one sort, not a scan a window
    # (which grew with the square of the utterances).
    windows = rank[np.searchsorted(kept, held)] // WINDOW_BLOCKS  # [n]
    by_window = np.argsort(windows, kind="stable")
    bounds = np.searchsorted(windows[by_window], np.arange(len(order) // WINDOW_BLOCKS + 2))
    plans: list[StepPlan] = []
    carried = np.zeros(0, dtype=np.int64)  # local indices waiting for a full batch
    for i, w in enumerate(range(0, len(order), WINDOW_BLOCKS)):
        window = by_window[bounds[i] : bounds[i + 1]]
        last = w + WINDOW_BLOCKS >= len(order)
        count = len(carried) + len(window)
        now = count if last else count - count % batch_size
        if now < len(carried):  # too few for a batch yet: all wait
            carried = np.concatenate([carried, window])
            continue
        picked = np.zeros(len(window), dtype=bool)
        chosen = rng.permutation(len(window)) if rng is not None else np.arange(len(window))
        picked[chosen[: now - len(carried)]] = True
        local = np.concatenate([carried, window[picked]])
        carried = window[~picked]
        lens = {name: seq[local] for name, seq in seq_len.items()}
        plans += utterance_plans(positions[local], lens, batch_size, rng)
    return plans


def dialog_groups(
    dialogs: np.ndarray, orders: np.ndarray, positions: np.ndarray
) -> list[np.ndarray]:
    """`positions` grouped by dialog, each group sorted by `order` (dialogs sorted by name)."""
    if len(positions) == 0:
        return []
    pos = positions[np.lexsort((orders[positions], dialogs[positions]))]
    cuts = np.flatnonzero(dialogs[pos][1:] != dialogs[pos][:-1]) + 1
    return np.split(pos, cuts)


def dialog_plans(
    groups: list[np.ndarray], batch_size: int, rng: np.random.Generator | None
) -> list[StepPlan]:
    """An epoch of dialog batches: by length for evaluation; for training a uniform shuffle
    (the fusion study's), each batch run as its shorter and its longer half with one
    optimiser step: the summed loss's gradient is the batch's, and halves pad less (the
    step took 0.65x the time)."""
    sizes = np.array([len(g) for g in groups])
    if rng is None:
        plan = bucket_batches(sizes, batch_size, None)
        return [StepPlan(_padded([groups[i] for i in batch]), {}) for batch in plan]
    order = rng.permutation(len(sizes))
    plans = []
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        by_length = batch[np.argsort(sizes[batch], kind="stable")]
        cut = len(by_length) // 2
        plans.append(StepPlan(_padded([groups[i] for i in by_length[:cut]]), {}, steps=False))
        plans.append(StepPlan(_padded([groups[i] for i in by_length[cut:]]), {}))
    return plans


def _padded(dialogs: list[np.ndarray]) -> np.ndarray:
    width = max((len(d) for d in dialogs), default=1)  # no dialog: an empty part [0, 1]
    out = np.full((len(dialogs), width), -1, dtype=np.int64)
    for i, d in enumerate(dialogs):
        out[i, : len(d)] = d
    return out


def untrained_lines(
    folds: Sequence[Fold], labels: np.ndarray, classes: Sequence[str], sampler: str
) -> list[str]:
    """A line for each fold whose training side lacks a class of the run (`labels`: class
    indices; the folds are every seed's): no member learns that class, and a balanced
    sampler, which draws among the classes present, cannot draw it."""
    lines = []
    for fold in folds:
        held, tested = (
            np.bincount(labels[r], minlength=len(classes)) for r in (fold.train, fold.test)
        )
        lacking = [int(c) for c in np.flatnonzero(held == 0)]
        named = ", ".join(f"{classes[c]} ({tested[c]} in its test side)" for c in lacking)
        drawn = f"; --sampler balanced draws only the other {len(classes) - len(lacking)}"
        if len(lacking):
            lines.append(
                f"{fold.name} (every seed): no training utterance of {named}: the model "
                f"cannot learn {'it' if len(lacking) == 1 else 'them'}"
                + (drawn if sampler == "balanced" else "")
            )
    return lines


def unvalidated_lines(
    folds: Sequence[Fold], labels: np.ndarray, classes: Sequence[str]
) -> list[str]:
    """A line for each fold whose validation side holds one class alone (every epoch
    scores alike on it: UA of one class, so the epoch it selects says nothing) or lacks
    a class (the epoch is chosen by the others alone)."""
    lines = []
    for fold in folds:
        held = np.unique(labels[fold.val])
        if len(fold.val) and len(held) == 1 and len(classes) > 1:
            lines.append(
                f"{fold.name}: its validation side holds only {classes[int(held[0])]} "
                f"({len(fold.val)} utterances): the epoch it selects says nothing; carve "
                "another (--val random10) or train the fixed epochs (--val none)"
            )
        elif len(fold.val) and len(held) < len(classes):
            lacking = ", ".join(c for i, c in enumerate(classes) if i not in set(held.tolist()))
            lines.append(
                f"{fold.name}: its validation side holds no {lacking} ({len(fold.val)} "
                f"utterances): the epoch it selects is chosen by the {len(held)} classes it "
                "holds; carve another (--val random10) or train the fixed epochs (--val none)"
            )
    return lines


class Batches:
    """One side of a fold as batches for a model's inputs, an epoch per iteration: a new
    order each epoch when `shuffle`, else the same batches; `class_weights` [C] on the
    device (a training side of `--class-weights balanced`) ride in every batch. A
    training side's `sampler` "balanced" draws each epoch's utterances with equal class
    probability (`balanced_draw`) before bucketing them; its `augment` changes its
    batches as `StackedSides` gathers them (`ser.train.augment`)."""

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
        class_weights: torch.Tensor | None = None,
        target_scale: ZScore | None = None,
        sampler: str = "shuffle",
        augment: Augment | None = None,
    ) -> None:
        """`target_scale`: the attribute targets' `ZScore` (with their range) of the fold's
        training side, its mean and std riding in every batch like `class_weights`."""
        self.data, self.specs, self.unit = data, list(specs), unit
        self.class_weights, self.target_scale = class_weights, target_scale
        self.positions = np.asarray(positions, dtype=np.int64)
        self.batch_size, self.zscore = batch_size, dict(zscore or {})
        self.rng = np.random.default_rng(seed) if shuffle else None
        self.balanced = sampler == "balanced" and shuffle
        # What it draws: its augmentation's, and (`--views`, a training side) the view it
        # reads each utterance from an epoch
        self.draws = Draws(seed, augment, 1 + len(data.views) if shuffle else 1)
        for spec in self.specs:
            if spec.name not in data.features:
                raise ConfigError(
                    f"the model wants feature set {spec.name!r}, which was not loaded"
                )
            if unit == "dialog" and spec.view != "vector":
                raise ConfigError(
                    f"dialog models take vector views only; {spec.name} is {spec.view}"
                )
        self._groups = (
            dialog_groups(data.dialogs, data.orders, self.positions) if unit == "dialog" else []
        )
        self._seq_len = {
            s.name: data.features[s.name].lengths_np[self.positions]
            for s in self.specs
            if s.gathered == "sequence"
        }
        # A streamed input's blocks (the one of most rows): the windows its plans take.
        streams = streams_of(data, self.specs)
        widest = max(streams, key=lambda t: int(t.lengths_np.sum()), default=None)
        self._blocks = None if widest is None else widest.blocks()

    def _plan(self, positions: np.ndarray, seq_len: Mapping[str, np.ndarray]) -> list[StepPlan]:
        """`utterance_plans`, window by window where an input streams."""
        if self._blocks is None:
            return utterance_plans(positions, seq_len, self.batch_size, self.rng)
        return windowed_plans(positions, seq_len, self.batch_size, self.rng, self._blocks)

    def __len__(self) -> int:
        units = len(self._groups) if self.unit == "dialog" else len(self.positions)
        return -(-units // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        return (self.build(plan) for plan in self.plans())

    def plans(self) -> list[StepPlan]:
        drawn = self.draws.view_each(len(self.data))
        if self.unit == "dialog":
            plans = dialog_plans(self._groups, self.batch_size, self.rng)
            return [self._viewed(p, drawn, self._longest(p.positions, drawn)) for p in plans]
        if drawn is None and (not self.balanced or self.rng is None):
            return self._plan(self.positions, self._seq_len)
        positions, seq_len = self.positions, self._seq_len
        if self.balanced and self.rng is not None:
            local = balanced_draw(self.data.labels[self.positions], self.rng)
            positions, seq_len = positions[local], {n: s[local] for n, s in seq_len.items()}
        if drawn is not None:
            # Bucketed and padded by the rows each utterance has in the view it reads this
            # epoch: a batch pads to the longest row it gathers, so a slowed-down view's
            # longer rows cost their own batches' padding only, not every epoch's.
            seq_len = {n: self._drawn_lengths(n, positions, drawn) for n in seq_len}
        plans = self._plan(positions, seq_len)
        return [self._viewed(p, drawn, p.lengths) for p in plans]

    def _drawn_lengths(
        self, name: str, positions: np.ndarray, drawn: np.ndarray | None
    ) -> np.ndarray:
        """The rows `positions` have in `name`'s table in their views `drawn` (None, or
        a table without views: its clean rows)."""
        table = self.data.features[name]
        if drawn is None or table.views is None:
            return table.lengths_np[positions]
        return table.views.lengths_np[drawn[positions], positions]

    def _viewed(
        self, plan: StepPlan, drawn: np.ndarray | None, lengths: dict[str, int]
    ) -> StepPlan:
        """`plan` with `lengths`, and each position's view of those `drawn` (None: clean)."""
        if drawn is None:
            return replace(plan, lengths=lengths)
        views = np.where(plan.positions >= 0, drawn[plan.positions.clip(0)], 0)
        return replace(plan, lengths=lengths, views=views)

    def _longest(self, positions: np.ndarray, drawn: np.ndarray | None) -> dict[str, int]:
        """Each gathered sequence's longest utterance at `positions` (-1: padding) in the
        views `drawn` (None: clean): a dialog's rows for a fine-tuned input (none: {})."""
        real = positions[positions >= 0]
        return {
            name: int(self._drawn_lengths(name, real, drawn).max(initial=1))
            for name in self._seq_len
        }

    def build(self, plan: StepPlan) -> Batch:
        pos = torch.from_numpy(plan.positions).to(self.data.device)
        views = None if plan.views is None else torch.from_numpy(plan.views).to(pos.device)
        batch = gather(self.data, self.specs, self.unit, pos, plan.lengths, self.zscore, views)
        batch.class_weights = self.class_weights
        if self.target_scale is not None:
            batch.target_mean, batch.target_std = self.target_scale[:2]
        return batch


class StackedSides:
    """The members' sides (all train, all val or all test; one run's data and inputs),
    gathered into stacked batches directly: a few device operations per step whatever K
    is. Member k's slot holds the batch its own `Batches` builds, padded further."""

    def __init__(self, sides: Sequence[Batches], static: bool = False) -> None:
        """`static`: batches padded to few shapes, as a compiled step needs
        (`ser.train.engine.steps`): every batch to `rows` (the sides' batch size) and
        each sequence view by `padded_length` of its `longest` utterance."""
        first = sides[0]
        if any(s.data is not first.data or s.specs != first.specs for s in sides):
            raise ValueError("stacked sides must come from one run's data and inputs")
        self.sides, self.data = list(sides), first.data
        self.specs, self.unit = first.specs, first.unit
        self.rows = max(side.batch_size for side in sides) if static else 0
        self.longest = _longest(sides) if static else None  # None: batches as they come
        augmented = [side.draws for side in sides if side.draws.augment is not None]
        if augmented and (len(augmented) < len(sides) or len({d.augment for d in augmented}) > 1):
            raise ValueError("stacked sides must all have one augmentation or none")
        self.augmented = augmented
        # One table per vector view for all members and sides, each member's z-score
        # applied after the gather: a copy per member of a 6373-d set at 20 members
        # would take 17 GB.
        self.zscores = {
            spec.name: ZScore(
                torch.stack([side.zscore[spec.name].mean for side in sides]),  # [K, D]
                torch.stack([side.zscore[spec.name].std for side in sides]),
            )
            for spec in first.specs
            if spec.name in first.zscore
        }
        # Each member's class weights in its slot [K, C] (training sides with weights).
        weights = [side.class_weights for side in sides]
        if any(w is None for w in weights) and any(w is not None for w in weights):
            raise ValueError("stacked sides must all have class weights or none")
        self.class_weights = None if weights[0] is None else torch.stack(weights)  # type: ignore[arg-type]
        # Each member's attribute scale in its slot [K, A] (runs with attribute targets).
        scales = [side.target_scale for side in sides if side.target_scale is not None]
        self.target_scale = None
        if len(scales) == len(sides):
            means, stds = zip(*(scale[:2] for scale in scales), strict=True)
            self.target_scale = ZScore(torch.stack(means), torch.stack(stds))

    def __len__(self) -> int:
        """Optimiser steps in an epoch: the longest side's."""
        return max((len(side) for side in self.sides), default=0)

    def epoch(self) -> Iterator[tuple[list[bool], Batch, bool]]:
        """(which members have a batch, the stacked batch, whether the optimiser steps
        after it) per step; the epoch's positions go to the device in one copy."""
        # A member without a batch at a step (a shorter side) is None there.
        steps = list(itertools.zip_longest(*(side.plans() for side in self.sides)))
        arrays = [_pad_positions(now, self.rows) for now in steps]
        if not arrays:
            return
        viewed = any(p is not None and p.views is not None for now in steps for p in now)
        views = [_pad_positions(now, self.rows, views=True) for now in steps] if viewed else []
        flat = np.concatenate([a.ravel() for a in arrays + views])
        parts = torch.from_numpy(flat).to(self.data.device).split([a.size for a in arrays + views])
        shaped = [part.view(a.shape) for part, a in zip(parts, arrays + views, strict=True)]
        positions, viewing = shaped[: len(arrays)], shaped[len(arrays) :] or [None] * len(arrays)
        draws = self._draws(steps, arrays)
        streams = streams_of(self.data, self.specs)
        for i, (now, pos, view, drawn) in enumerate(
            zip(steps, positions, viewing, draws, strict=True)
        ):
            # pos: [K, B] or [K, B, U]; view: its positions' views (None: clean)
            closes = any(plan.steps for plan in now if plan is not None)
            batch = self.gather(now, pos, view)
            for table in streams if i + 1 < len(arrays) else []:  # read as this step trains
                table.prefetch(arrays[i + 1], views[i + 1] if views else None)
            augment = self.augmented[0].augment if self.augmented else None
            if augment is not None:  # a training side's, before the step function
                batch = apply(batch, augment, drawn, self.specs, len(self.data.classes))
            yield [plan is not None for plan in now], batch, closes

    def _draws(
        self, steps: list[tuple[StepPlan | None, ...]], arrays: list[np.ndarray]
    ) -> list[list[torch.Tensor]]:
        """Each step's augmentation draws on the device (none without augmentation)."""
        if not self.augmented:
            return [[] for _ in steps]
        rows = [[None if p is None else len(p.positions) for p in now] for now in steps]
        shapes = [array.shape[1] for array in arrays]
        return epoch_draws(self.augmented, rows, shapes, self.specs, self.data.device)

    def gather(
        self,
        plans: Sequence[StepPlan | None],
        pos: torch.Tensor,
        views: torch.Tensor | None = None,
    ) -> Batch:
        """The stacked batch of the members' plans for one step (None: no batch), their
        positions `pos` (and `views`, `--views`) already on the device."""
        lengths = {
            spec.name: max(0 if p is None else p.lengths[spec.name] for p in plans)
            for spec in self.specs
            if spec.gathered == "sequence"
        }
        if self.longest is not None:
            most = self.longest
            lengths = {name: padded_length(most.get(name, 0), n) for name, n in lengths.items()}
        batch = gather(self.data, self.specs, self.unit, pos, lengths, self.zscores, views)
        batch.class_weights = self.class_weights
        if self.target_scale is not None:
            batch.target_mean, batch.target_std = self.target_scale[:2]
        return batch


def streams_of(data: TrainData, specs: Sequence[InputSpec]) -> list[FeatureTable]:
    """The tables of the inputs of `specs` whose batches read streamed rows
    (`ser.train.stream`): sequence inputs, and utterance-level sets (none: all in memory;
    a frame set's vector view reads its means, held)."""
    pairs = [(data.features[s.name], s) for s in specs if s.name in data.features]
    return [
        table
        for table, spec in pairs
        if table.stream is not None and (spec.gathered == "sequence" or table.row_vectors)
    ]


def _longest(sides: Sequence[Batches]) -> dict[str, int]:
    """Each sequence view's longest utterance in the sides' data (in any of its views,
    `--views`): what a static batch pads the view by (`padded_length`)."""
    tables = sides[0].data.features
    return {
        spec.name: int(_all_lengths(tables[spec.name]).max(initial=0))
        for spec in sides[0].specs
        if spec.gathered == "sequence"
    }


def _all_lengths(table: FeatureTable) -> np.ndarray:
    """Every utterance's rows in `table`, in each of its views where it has them."""
    return table.lengths_np if table.views is None else table.views.lengths_np


def _pad_positions(
    plans: Sequence[StepPlan | None], rows: int = 0, views: bool = False
) -> np.ndarray:
    """[K, *max shape] int64 positions (at least `rows` on the batch axis), -1 where a
    member has none (`views`: the positions' views, 0 there)."""
    real = [p.positions for p in plans if p is not None]
    shape = [max(p.shape[i] for p in real) for i in range(real[0].ndim)]
    shape[0] = max(shape[0], rows)
    out = np.full((len(plans), *shape), 0 if views else -1, dtype=np.int64)
    for k, plan in enumerate(plans):
        if plan is not None:
            held = plan.views if views else plan.positions
            out[(k, *(slice(0, n) for n in plan.positions.shape))] = held  # type: ignore[index]
    return out
