"""Cached features in memory, and what a fold's training side fits on them: the
features' z-scores, the class weights and the attribute targets' z-score and range.

Each feature set is read once and kept on the device as a flat row buffer (fp16 stays
fp16, cast per batch), or where the memory budget says (`ser.train.placement`): in pinned
host memory beside a GPU, or streamed from the store (`ser.train.stream`); utterances
outside the class set or without rows in some set are dropped and counted. z-score
statistics come from the fold's training side only. A layered input (`<stem>.L*`:
several layer sets of one encoder) is one buffer of rows [rows, L, D] (streamed: its
layer sets read by the same rows), gathered as [B, T, L, D] / [B, L, D] for the model's
layer mix.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.cache.store_types import FeatureData
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import Fold
from ser.errors import ConfigError
from ser.heads.base import GoldSource
from ser.heads.emotion import OUTSIDE
from ser.models.losses import balanced_weights
from ser.models.targets import Targets
from ser.train.features import ResolvedFeature
from ser.train.placement import Placement
from ser.train.stream import RowStream, parts_blocks, parts_means, prefetch_parts, take_parts

#: Features whose training-side std is below this keep std 1 (constant openSMILE columns).
STD_FLOOR = 1e-6
__all__ = ["OUTSIDE", "TrainData", "ZScore", "load_data"]


@dataclass
class ViewRows:
    """Where a table's views (`--views`, `ser.train.views`) are in its `flat`: view v of
    each utterance (0: the clean set; a view the input lacks, or in which the utterance
    has no rows: the clean rows again)."""

    starts: torch.Tensor  # [V, n] int64, on the device
    lengths: torch.Tensor  # [V, n] int64
    lengths_np: np.ndarray  # [V, n] host copy
    segments: torch.Tensor  # [S] the rows of each stored segment, in `flat`'s order
    slots: torch.Tensor  # [V, n] each view's segment


@dataclass
class FeatureTable:
    """One feature set in memory: rows of the kept utterances back to back (with `views`,
    each view's rows follow the clean ones)."""

    feature: ResolvedFeature
    flat: torch.Tensor  # [rows, D] (layered: [rows, L, D]) stored dtype (fp16/fp32), on the device
    starts: torch.Tensor  # [n] int64, first row of each utterance
    lengths: torch.Tensor  # [n] int64, rows per utterance (>= 1)
    lengths_np: np.ndarray  # [n] host copy, for batch planning without a device sync
    views: ViewRows | None = None  # None: the clean rows alone
    # Streamed from the store (`flat` then holds no row); None: `flat` holds them all.
    stream: RowStream | None = None
    # Streamed sets whose rows follow `stream`'s in the table (its views', a cross-corpus
    # run's test store's: `ser.train.stream.take_parts`); (): `stream`'s alone.
    parts: tuple[RowStream, ...] = ()

    @property
    def streams(self) -> tuple[RowStream, ...]:
        """Where a streamed table's rows come from, back to back (none: held)."""
        return () if self.stream is None else (self.stream, *self.parts)

    def rows(self, index: torch.Tensor) -> torch.Tensor:
        """`flat[index]` on `index`'s device, wherever the rows live."""
        if self.parts:
            return take_parts(self.streams, index)
        if self.stream is not None:
            return self.stream.take(index)
        if self.flat.device != index.device:  # pinned host rows beside a GPU
            return self.flat[index.cpu()].to(index.device, non_blocking=True)
        return self.flat[index]

    @property
    def row_vectors(self) -> bool:
        """Whether a model of vectors reads this streamed table's rows a batch at a time
        (an utterance-level set's rows are its vectors: `vectors` would hold them all)."""
        return self.stream is not None and self.feature.level == "utterance"

    @cached_property
    def vectors(self) -> torch.Tensor:
        """[n, D] ([n, L, D]) float32 mean over each utterance's rows (computed once, then
        cached): a layered input's vector view is each layer's mean."""
        if self.row_vectors:
            raise ValueError(f"{self.feature.name} is streamed: its vectors are read by `rows`")
        if self.stream is not None:
            return parts_means(self.streams, self.lengths)
        if self.flat.device != self.lengths.device:
            return segment_mean(self.clean, self.lengths.cpu()).to(self.lengths.device)
        return segment_mean(self.clean, self.lengths)

    @cached_property
    def view_vectors(self) -> torch.Tensor:
        """[V, n, D] ([V, n, L, D]): `vectors` of each view (`views` must be set)."""
        if self.views is None:
            raise ValueError(f"{self.feature.name} holds no views")
        clean = len(self.lengths_np)  # the first segments: the clean set's, `vectors`
        if self.parts:  # each view's stream after the clean set's
            rest = parts_means(self.parts, self.views.segments[clean:])
        else:
            flat, segments = self.flat[int(self.lengths_np.sum()) :], self.views.segments
            rest = segment_mean(flat, segments[clean:].to(flat.device)).to(segments.device)
        return torch.cat([self.vectors, rest])[self.views.slots]

    def blocks(self) -> np.ndarray:
        """[n] the block each utterance of a streamed table starts in (its first set's;
        a cross-corpus run's test utterances: the test store's, numbered after)."""
        return parts_blocks(self.streams)

    def prefetch(self, positions: np.ndarray, views: np.ndarray | None = None) -> None:
        """Start reading the chunks of the utterances at `positions` (-1: none) of a
        streamed table, in the `views` drawn for them (`--views`; None: clean)."""
        units = positions
        if views is not None and self.views is not None and self.parts:
            at = positions >= 0
            units = np.where(at, self._slots[np.where(at, views, 0), positions.clip(0)], -1)
        prefetch_parts(self.streams, units)

    @cached_property
    def _slots(self) -> np.ndarray:
        """`views.slots` on the host, for `prefetch` (read once, not a copy a step)."""
        return np.zeros((0, 0), np.int64) if self.views is None else self.views.slots.cpu().numpy()

    @property
    def clean(self) -> torch.Tensor:
        """The clean set's rows (all of `flat` without views; a streamed table's are
        read by `rows`, never whole)."""
        if self.stream is not None:
            raise ValueError(f"{self.feature.name} is streamed: its rows are never held whole")
        return self.flat if self.views is None else self.flat[: int(self.lengths_np.sum())]


@dataclass
class TrainData:
    """Everything the trainer needs about the kept utterances; position i = row i of each array."""

    classes: tuple[str, ...]
    manifest_rows: np.ndarray  # [n] int64, row in the store's manifest
    utt_ids: np.ndarray  # [n] str
    speakers: np.ndarray  # [n] str
    dialogs: np.ndarray  # [n] str
    orders: np.ndarray  # [n] int64
    labels: np.ndarray  # [n] int64 class index (0 for all in a run without the category)
    features: dict[str, FeatureTable]
    device: torch.device
    dropped: dict[str, int]  # reason -> utterances dropped for it
    attributes: tuple[str, ...] = ()  # the attribute targets' names (none: no such targets)
    targets: np.ndarray | None = None  # [n, A] their values, the corpus's scale; NaN: none
    soft: np.ndarray | None = None  # [n, C] vote distributions (`--labels soft`); None: hard
    soft_fallbacks: int = 0  # utterances with no vote in the class set: their label's one-hot
    gold: dict[str, np.ndarray] = field(default_factory=dict)  # head -> [n, G]; NaN: none
    # A cross-corpus run's (`ser.train.cross.join`): positions from here on are the test
    # store's, their manifest rows that store's; None: one store.
    test_from: int | None = None
    views: tuple[str, ...] = ()  # `--views`: the labels a training side draws beside clean
    placement: Placement | None = None  # where its inputs' rows live (None: on `device`)
    labels_t: torch.Tensor = field(init=False, repr=False)  # [n] on device
    manifest_rows_t: torch.Tensor = field(init=False, repr=False)  # [n] on device
    targets_t: torch.Tensor | None = field(init=False, repr=False)  # [n, A] float32
    soft_t: torch.Tensor | None = field(init=False, repr=False)  # [n, C] float32
    gold_t: dict[str, torch.Tensor] = field(init=False, repr=False)  # head -> [n, G] float32

    def __post_init__(self) -> None:
        self.labels_t = torch.as_tensor(self.labels, dtype=torch.long, device=self.device)
        self.manifest_rows_t = torch.as_tensor(
            self.manifest_rows, dtype=torch.long, device=self.device
        )
        self.targets_t, self.soft_t = (
            None if a is None else torch.as_tensor(a, dtype=torch.float32, device=self.device)
            for a in (self.targets, self.soft)
        )
        self.gold_t = {
            n: torch.as_tensor(g, dtype=torch.float32, device=self.device)
            for n, g in self.gold.items()
        }

    def __len__(self) -> int:
        return len(self.labels)


def segment_mean(
    flat: torch.Tensor, lengths: torch.Tensor, chunk_rows: int = 1 << 16
) -> torch.Tensor:
    """Per-segment mean of consecutive rows: [rows, ...], [n] -> [n, ...] float32, summed
    in fp32 chunks so a large fp16 buffer is never copied to fp32 at once (a layered
    row [L, D] counts as L rows of D): 2^16 rows of 768 are 192 MiB in fp32, where
    IEMOCAP's HuBERT frames whole would be 3.6 GiB beside their 1.8 GiB table."""
    n, shape = len(lengths), flat.shape[1:]
    if bool((lengths == 1).all()):
        return flat.float()
    wide = flat.reshape(flat.shape[0], -1)  # [rows, L D]
    step = max(1, chunk_rows * shape[-1] // wide.shape[1])
    seg = torch.repeat_interleave(torch.arange(n, device=flat.device), lengths)  # [rows]
    out = torch.zeros(n, wide.shape[1], dtype=torch.float32, device=flat.device)
    for r0 in range(0, flat.shape[0], step):
        r1 = min(r0 + step, flat.shape[0])
        out.index_add_(0, seg[r0:r1], wide[r0:r1].float())
    return (out / lengths.clamp_min(1).unsqueeze(1).to(out.dtype)).view(n, *shape)


def load_data(
    store: FeatureStore,
    features: Sequence[ResolvedFeature],
    label_set: LabelSet,
    device: torch.device | str = "cpu",
    targets: Targets | None = None,
    root: Path | None = None,
    placement: Placement | None = None,
) -> TrainData:
    """Read `features` from `store` once; keep the utterances with rows in every set and
    gold of the run's first head (a label in the class set; a run on attributes alone: a
    value of some attribute). Every head's gold rides along (`root`: where the store's
    corpus is, if it moved, for a head reading it). `placement`: where each input's rows
    live (None: all on `device`); a streamed input's offsets alone are read here."""
    device, targets, manifest = torch.device(device), targets or Targets(), store.manifest
    codes = np.asarray(manifest.column("label")).astype(str)
    label_of = [label_set.index_of(c) for c in codes]
    source = GoldSource(store, label_set, root)
    gold = targets.gold(source)  # head -> [N, G]
    first = targets.heads[0]
    keep, why = np.isfinite(gold[first.name]).any(axis=1), first.missing(label_set)
    dropped: dict[str, int] = {}
    if (~keep).any():
        dropped[why] = int((~keep).sum())
    raw = {}
    places = placement.places if placement else {}
    for feature in features:
        streamed = places.get(feature.name) == "stream"
        data, layout, lengths = (
            stored_layout(store, feature, keep) if streamed else read_rows(store, feature, keep)
        )
        missing = keep & (lengths == 0)
        if missing.any():
            dropped[f"no rows in {feature.name} (extraction failed)"] = int(missing.sum())
        keep &= lengths > 0
        raw[feature.name] = (data, layout)
    if not keep.any():
        raise ConfigError(
            f"no utterance of {first.wanted(label_set)} has rows in every feature set of "
            f"{'+'.join(f.name for f in features)} in {store.path}"
        )
    tables = {
        f.name: placed_table(store, f, raw[f.name][0], raw[f.name][1], keep, device, placement)
        for f in features
    }
    rows = np.flatnonzero(keep).astype(np.int64)
    return TrainData(
        classes=targets.classes(label_set),
        manifest_rows=rows,
        utt_ids=np.asarray(manifest.column("utt_id")).astype(str)[rows],
        speakers=np.asarray(manifest.column("speaker")).astype(str)[rows],
        dialogs=np.asarray(manifest.column("dialog")).astype(str)[rows],
        orders=np.asarray(manifest.column("order")).astype(np.int64)[rows],
        labels=np.array([label_of[r] or 0 for r in rows], dtype=np.int64),
        features=tables,
        device=device,
        dropped=dropped,
        attributes=targets.attributes,
        targets=targets.scaled(gold, rows),
        gold={name: g[rows] for name, g in gold.items()},
        placement=placement,
    )


def read_layers(
    store: FeatureStore, feature: ResolvedFeature, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A layered input's rows [R, L, D] of the `wanted` utterances, filled a layer set at a
    time (one of them in memory at once, beside the table); the rows each utterance has in
    it ([n], 0 for the others) and the rows of those present in every layer set ([n], 0:
    dropped)."""
    first = store.read(feature.stored[0])
    layout = np.where(wanted, np.diff(np.asarray(first.offsets, dtype=np.int64)), 0)
    rows, dim = int(layout.sum()), first.data.shape[-1]
    table = np.zeros((rows, len(feature.stored), dim), dtype=first.data.dtype)
    lengths = layout.copy()
    _fill_layer(store, feature, table, 0, first, layout, lengths)
    del first  # one layer set in memory at a time, beside the table
    for i, name in enumerate(feature.stored[1:], 1):
        _fill_layer(store, feature, table, i, store.read(name), layout, lengths)
    return table, layout, lengths


def _fill_layer(
    store: FeatureStore,
    feature: ResolvedFeature,
    table: np.ndarray,
    i: int,
    fdata: FeatureData,
    layout: np.ndarray,
    lengths: np.ndarray,
) -> None:
    """Layer set i's rows into `table[:, i]`; `lengths` set to 0 where it has none."""
    name = feature.stored[i]
    data = np.asarray(fdata.data)
    own = np.diff(np.asarray(fdata.offsets, dtype=np.int64)).astype(np.int64)
    if data.ndim != 2 or data.shape[0] != own.sum() or data.shape[1] != table.shape[-1]:
        raise ConfigError(f"feature set {name}: data {data.shape} does not match its offsets")
    here = _match_layer(store, feature, i, own, layout, lengths)
    into = np.repeat(here, layout)  # [R] the rows of `table` this layer set fills
    if into.all():
        table[:, i] = data[np.repeat(here, own)]
    else:
        table[into, i] = data[np.repeat(here, own)]


def _match_layer(
    store: FeatureStore,
    feature: ResolvedFeature,
    i: int,
    own: np.ndarray,
    layout: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
    """Where layer set i (its utterances' rows `own`) and the first (`layout`, 0 outside
    the wanted utterances) both have rows; `ConfigError` where they hold different rows;
    `lengths` set to 0 where set i has none (the utterance is dropped)."""
    here = (layout > 0) & (own > 0)
    differ = np.flatnonzero(here & (own != layout))
    if len(differ):
        raise ConfigError(
            f"layer sets {feature.stored[0]} and {feature.stored[i]} of {store.path} hold "
            f"different rows for {len(differ)} utterance(s) (manifest row {differ[0]} "
            "first); extract them again with one `ser extract --layers ...`"
        )
    lengths[own == 0] = 0
    return here


def read_rows(
    store: FeatureStore, feature: ResolvedFeature, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`feature`'s rows as `feature_table` takes them ([rows, D]; a layered input's [rows,
    L, D], only the `keep` utterances' filled), the rows each utterance has in them, and
    in its set(s) (0: none; a layered input's: in every layer set)."""
    if feature.sets:
        return read_layers(store, feature, keep)
    read = store.read(feature.name)
    lengths = np.diff(np.asarray(read.offsets, dtype=np.int64))
    return read.data, lengths, lengths


def stored_layout(
    store: FeatureStore, feature: ResolvedFeature, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A streamed set as `read_rows` hands a set over, its rows left on disk: its
    offsets (in place of the rows), and the rows each utterance has (a layered input's:
    `stored_layers`, of the `keep` utterances)."""
    if feature.sets:
        return stored_layers(store, feature, keep)
    offsets = store.offsets(feature.name)
    lengths = np.diff(offsets)
    return offsets, lengths, lengths


def stored_layers(
    store: FeatureStore, feature: ResolvedFeature, wanted: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A streamed layered input as `read_layers` hands it over, its rows left on disk:
    each layer set's offsets [L, N + 1] in place of the rows, the rows each `wanted`
    utterance (None: every one) has in the first set, and those it has in every set (0:
    dropped), refused where two sets hold different rows as in memory."""
    offsets = np.stack([np.asarray(store.offsets(n), dtype=np.int64) for n in feature.stored])
    layout = np.diff(offsets[0])
    layout = layout if wanted is None else np.where(wanted, layout, 0)
    lengths = layout.copy()
    for i in range(1, len(offsets)):
        _match_layer(store, feature, i, np.diff(offsets[i]), layout, lengths)
    return offsets, layout, lengths


def placed_table(
    store: FeatureStore,
    feature: ResolvedFeature,
    data: np.ndarray,
    lengths: np.ndarray,
    keep: np.ndarray,
    device: torch.device,
    placement: Placement | None,
) -> FeatureTable:
    """`feature_table` where `placement` puts the input: on `device`, in pinned host
    memory, or streamed (`data`: then the set's offsets)."""
    place = placement.places.get(feature.name, "device") if placement else "device"
    if place == "host":
        table = feature_table(feature, data, lengths, keep, torch.device("cpu"))
        flat = table.flat.pin_memory() if torch.cuda.is_available() else table.flat
        return replace(
            table, flat=flat, starts=table.starts.to(device), lengths=table.lengths.to(device)
        )
    if place != "stream" or placement is None:
        return feature_table(feature, data, lengths, keep, device)
    stream = stored_stream(store, feature, data, lengths, keep, placement.cache[feature.name])
    kept = stream.lengths
    starts = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(np.int64)
    return FeatureTable(
        feature=feature,
        flat=torch.empty((0, *stream.shape), dtype=_torch_dtype(stream.dtype), device=device),
        starts=torch.from_numpy(starts).to(device),
        lengths=torch.from_numpy(kept).to(device),
        lengths_np=kept,
        stream=stream,
    )


def stored_stream(
    store: FeatureStore,
    feature: ResolvedFeature,
    offsets: np.ndarray,
    lengths: np.ndarray,
    keep: np.ndarray,
    cache: int,
) -> RowStream:
    """The `keep` utterances' rows of `feature`'s stored sets, left in the store
    (`stored_layout`'s `offsets`: a layered input's each layer set's [L, N + 1]; `lengths`
    [N] the rows each utterance has), read through a cache of `cache` bytes."""
    firsts = np.atleast_2d(offsets)[:, :-1][:, keep]
    layers = list(zip(feature.stored[1:], firsts[1:], strict=True))
    kept = lengths[keep].astype(np.int64)
    return RowStream(store, feature.stored[0], firsts[0], kept, cache, layers=layers)


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def kept_rows(name: str, data: np.ndarray, lengths: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The rows of the `keep` utterances of set `name`'s `data` (each `lengths` rows)."""
    data = np.asarray(data)
    if data.ndim not in (2, 3) or data.shape[0] != lengths.sum():
        raise ConfigError(f"feature set {name}: data {data.shape} does not match its offsets")
    rows = np.repeat(keep, lengths)
    # Only kept utterances' rows stay in memory (4 classes keep ~55 % of IEMOCAP).
    return data if rows.all() else data[rows]


def feature_table(
    feature: ResolvedFeature,
    data: np.ndarray,
    lengths: np.ndarray,
    keep: np.ndarray,
    device: torch.device,
) -> FeatureTable:
    """`data`: the set's rows [rows, D] (a layered input's [rows, L, D]), `lengths` the rows
    of each utterance in it."""
    data = kept_rows(feature.name, data, lengths, keep)
    kept = lengths[keep]
    starts = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(np.int64)
    return FeatureTable(
        feature=feature,
        flat=torch.from_numpy(np.ascontiguousarray(data)).to(device),
        starts=torch.from_numpy(starts).to(device),
        lengths=torch.from_numpy(kept.astype(np.int64)).to(device),
        lengths_np=kept.astype(np.int64),
    )


class ZScore(NamedTuple):
    """Per-column standardization fitted on a fold's training side: (x - mean) / std. A
    z-scored feature set's (`fit_zscore`), or the attribute targets' (`fit_target_scale`:
    the z-score the model's attribute outputs are trained on) with their range on the
    side, which predictions are clipped to (`ser.heads.attributes.AttributeHead.bounded`;
    every [A] float32, on the device; a checkpoint's on the CPU)."""

    mean: torch.Tensor  # [D], or [K, D]: one per member of a stack
    std: torch.Tensor  # [D] or [K, D], >= STD_FLOOR (exactly 1 for a constant column)
    # The targets' smallest and largest value on the side (no rating scale goes below its
    # own); None: a feature set's, never clipped.
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None


def constant_sets(data: TrainData) -> list[str]:
    """The held sets whose every row is the same (no column varies: silent audio, one
    transcript for every utterance): nothing in them tells one utterance from another.
    A streamed set is not read whole for this."""
    return [n for n, t in data.features.items() if t.stream is None and _one_row(t, None)]


def constant_sides(data: TrainData, folds: Sequence[Fold]) -> list[str]:
    """ "set: fold, fold" for each held set, not the same over every utterance, whose rows
    are all the same over a fold's training side: it teaches those folds nothing."""
    lines = []
    for name, table in data.features.items():
        if table.stream is not None or _one_row(table, None):
            continue
        named = [f.name for f in {f.name: f for f in folds}.values() if _one_row(table, f)]
        lines += [f"{name}: {', '.join(named)}"] if named else []
    return lines


def _one_row(table: FeatureTable, fold: Fold | None) -> bool:
    """Whether `table`'s rows (of `fold`'s training side; None: all) are all the same.
    The first rows end it where they differ, as they almost always do: no whole pass."""
    if fold is None:
        rows = torch.arange(len(table.clean), device=table.clean.device)
    else:
        kept = torch.zeros(len(table.lengths), dtype=torch.bool, device=table.clean.device)
        kept[torch.as_tensor(fold.train, dtype=torch.long, device=kept.device)] = True
        rows = torch.nonzero(torch.repeat_interleave(kept, table.lengths)).flatten()  # [R_train]
    if not len(rows):
        return False
    first = table.clean[rows[0]]
    blocks = (rows[:64], *rows[64:].split(1 << 16))
    return all(bool((table.clean[block] == first).all()) for block in blocks)


def fit_zscore(
    data: TrainData, train: np.ndarray, sets: Collection[str] | None = None
) -> dict[str, ZScore]:
    """Per-dimension mean/std of each z-scored set (`sets`: these, whatever their kind:
    a Python dataset's) over the `train` positions' clean rows only (rows, so sequence
    and mean-pooled views are scaled alike)."""
    kept = torch.zeros(len(data), dtype=torch.bool, device=data.device)
    kept[torch.as_tensor(train, dtype=torch.long, device=data.device)] = True
    out = {}
    for name, table in data.features.items():
        if not (table.feature.zscore if sets is None else name in sets):
            continue
        rows = torch.repeat_interleave(kept, table.lengths)  # [R] the train side's rows
        if table.stream is not None:
            mean, std = streamed_moments(table, torch.nonzero(rows).flatten())
        else:
            v = table.clean[rows].float()  # [R_train, D]
            mean, std = v.mean(dim=0), v.std(dim=0, unbiased=False)
        std = torch.where(std < STD_FLOOR, torch.ones_like(std), std)
        out[name] = ZScore(mean, std)
    return out


def streamed_moments(table: FeatureTable, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The float32 mean and (population) std of a streamed table's `rows` [R], their sums
    and sums of squares taken in float64 a block's count of rows at a time (the set's
    `block_rows`, not its chunks: the same sums after a rechunk), in order: the rows are
    never held whole, the figures do not depend on the reader threads, and they equal
    the in-memory ones to float32 rounding."""
    if table.stream is None:
        raise ValueError(f"{table.feature.name} is held: its moments are its rows'")
    if not len(rows):
        raise ConfigError(f"{table.feature.name}: no training rows to z-score")
    total = torch.zeros(table.stream.shape, dtype=torch.float64)
    squares = torch.zeros_like(total)
    step = table.stream.block_rows
    for r0 in range(0, len(rows), step):
        x = table.rows(rows[r0 : r0 + step]).cpu().double()  # [r, (L,) D]
        total += x.sum(dim=0)
        squares += (x * x).sum(dim=0)
    mean = total / len(rows)
    std = (squares / len(rows) - mean * mean).clamp_min(0).sqrt()
    device = table.lengths.device
    return mean.float().to(device), std.float().to(device)


def fit_class_weights(data: TrainData, rows: np.ndarray, weighting: str) -> np.ndarray | None:
    """The class weights [C] of training on `rows` (`weighting`, the plan's
    `--class-weights`: "balanced" from those rows' labels alone; "none": None): a fold's
    from its own training side, the final model's from all."""
    if weighting == "none":
        return None
    return balanced_weights(data.labels[rows], len(data.classes))


def fit_target_scale(data: TrainData, train: np.ndarray) -> ZScore | None:
    """The attribute targets' `ZScore`, with their range, of the `train` positions that
    have a value (None: no attribute targets)."""
    if data.targets is None:
        return None
    values = data.targets[np.asarray(train, dtype=np.int64)]  # [n_train, A]
    has = np.isfinite(values)
    if not has.any(axis=0).all():
        missing = [a for a, h in zip(data.attributes, has.any(axis=0), strict=True) if not h]
        raise ConfigError(f"the training side has no value of {', '.join(missing)}")
    std = np.nanstd(values, axis=0)
    moments = (np.nanmean(values, axis=0), np.where(std < STD_FLOOR, 1.0, std))
    every = (*moments, np.nanmin(values, axis=0), np.nanmax(values, axis=0))
    return ZScore(*(torch.as_tensor(v, dtype=torch.float32, device=data.device) for v in every))
