"""A dataset's rows (`ser.api.dataset.FeatureDataset`): those of its own utterances only,
held in memory where they fit its memory budget, else read from the store through the
trainer's chunk cache and reader threads (`ser.train.stream.RowStream`), as `ser train
--memory-budget` reads a set that does not fit. Which sets stream is decided as the
trainer decides it (`ser.train.placement.decide`: the smallest sets held first); the
budget by default is the trainer's (`ser.train.placement.default_budget`). A held set is
read in store order, a chunk's worth of utterances at a time with the next piece read
ahead, so that the set is never held whole on its way in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch
from rich.console import Console

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.extract.progress import progress_bar
from ser.runtime.units import human_bytes, parse_size
from ser.train.data import FeatureTable, TrainData
from ser.train.placement import chunk_bytes, decide, default_budget, least_cache
from ser.train.stream import READERS, RowStream

#: Chunks of each set a held set's reading caches: the piece being copied and the next,
#: and a buffer for each reader thread to read a chunk into.
READ_CHUNKS = 4 + READERS
#: The batches a streamed dataset's budget leaves room for beside its chunk caches once
#: `FeatureDataset.batches` says their size: the one being made, the one before it, which
#: a loop holds while it asks for the next, and the padded copy a collate of one's own
#: makes of its items (`FeatureDataset.collate` makes none: the items are views of it).
BATCH_COPIES = 3


@dataclass(frozen=True)
class Streamed:
    """What a streamed set's `RowStream` is made of, to make it again in another process
    (a DataLoader's worker: reader threads and a store's handles are a process's own):
    its set, each utterance's first store row and rows, its cache's bytes and a layered
    input's further layer sets with their first rows."""

    name: str
    first: np.ndarray  # [n] int64
    lengths: np.ndarray  # [n] int64
    cache: int
    layers: tuple[tuple[str, np.ndarray], ...] = ()

    def open(self, store: FeatureStore, share: int = 1) -> RowStream:
        """The stream, on `store`; `share`: the processes reading it at once (a
        DataLoader's workers), each caching its share of the budget's cache."""
        cache = self.cache // max(share, 1)
        return RowStream(
            store, self.name, self.first, self.lengths, cache, layers=self.layers, compact=True
        )


def dataset_budget(asked: str | int | None) -> tuple[int, str]:
    """The bytes a dataset may hold and the words that say where they came from:
    `memory_budget` (a size such as "384MB", or bytes), else `ser train`'s default."""
    if asked is None:
        return default_budget(torch.device("cpu"))
    if isinstance(asked, int) and not isinstance(asked, bool):
        if asked < 1:
            raise ConfigError(f"memory_budget must be at least one byte, got {asked}")
        return asked, f"memory_budget {human_bytes(asked)}"
    try:
        return parse_size(str(asked)), f"memory_budget {asked}"
    except ValueError as error:
        raise ConfigError(f"memory_budget {error}") from None


def placed_rows(
    store: FeatureStore,
    layout: TrainData,
    positions: np.ndarray,
    budget: int,
    progress: bool = False,
) -> tuple[dict[str, FeatureTable], dict[str, Streamed]]:
    """Each set's table of the utterances at `positions` of `layout` (whose tables are
    streams that read nothing yet: `ser.api.splits.labelled_layout`), in that order: held
    where they fit `budget`, else streamed; and what the streamed ones are made of."""
    streams = {name: _stream(table) for name, table in layout.features.items()}
    needs = {name: _bytes(stream, positions) for name, stream in streams.items()}
    chunks = {name: chunk_bytes(store, t.feature) for name, t in layout.features.items()}
    least = {name: least_cache(store, t.feature) for name, t in layout.features.items()}
    try:
        places, caches = decide(needs, least, dict.fromkeys(needs, 0), budget)
    except ConfigError:
        raise ConfigError(_refusal(budget, least)) from None
    tables: dict[str, FeatureTable] = {}
    streamed: dict[str, Streamed] = {}
    with progress_bar(Console(stderr=True), enabled=progress) as bar:
        for name, stream in streams.items():
            spec = _subset(stream, positions, caches.get(name, READ_CHUNKS * chunks[name]))
            if places[name] == "stream":
                streamed[name] = spec
                tables[name] = _table(layout.features[name], spec, spec.open(store))
                continue
            task = bar.add_task(f"{name} (reading)", total=len(positions))
            reader = spec.open(store)
            try:
                rows = held_rows(reader, functools.partial(bar.advance, task))
            finally:
                reader.close()
            tables[name] = _table(layout.features[name], spec, None, torch.from_numpy(rows))
    return tables, streamed


def _refusal(budget: int, caches: Mapping[str, int]) -> str:
    """Why `budget` cannot hold a dataset of sets whose least caches take `caches`
    (`ser.train.placement.least_cache`)."""
    least = ", ".join(f"{n} {human_bytes(c)}" for n, c in caches.items())
    return (
        f"memory_budget {human_bytes(budget)} cannot hold this dataset even streamed: the "
        "sets that fit are held, smallest first, and a streamed set's chunk cache takes "
        f"at least the chunks of two windows of its blocks ({least}); give a larger "
        "memory_budget, or `ser store rechunk` the set into smaller chunks"
    )


def held_rows(stream: RowStream, advance: Callable[[int], None]) -> np.ndarray:
    """Every row of `stream` [rows, (L,) D] in its stored dtype, read in store order a
    chunk's worth of utterances at a time, the next piece's chunks read ahead;
    `advance(n)` hears each piece's utterances."""
    out = np.empty((stream.rows, *stream.shape), dtype=stream.dtype)
    if not len(stream.lengths):
        return out
    order = np.argsort(stream.first, kind="stable")  # utterances in store order
    starts = np.cumsum(stream.lengths) - stream.lengths  # each one's first row in `out`
    piece = (np.cumsum(stream.lengths[order]) - 1) // stream.chunk_rows
    groups = np.split(order, np.flatnonzero(np.diff(piece)) + 1)
    for k, group in enumerate(groups):
        if k + 1 < len(groups):
            stream.prefetch(groups[k + 1])
        lengths = stream.lengths[group]
        into = np.repeat(starts[group] - (np.cumsum(lengths) - lengths), lengths)
        index = into + np.arange(int(lengths.sum()), dtype=np.int64)  # [r] rows of `out`
        out[index] = stream.take(torch.from_numpy(index)).numpy()
        advance(len(group))
    return out


def batch_room(tables: Mapping[str, FeatureTable], batch_size: int) -> int:
    """The bytes `BATCH_COPIES` batches of `batch_size` of the sets' longest items take at
    most, in float32 (the dtype of an item and of a batch)."""
    total = 0
    for table in tables.values():
        layers = len(table.feature.sets) or 1
        longest = int(table.lengths_np.max(initial=1))
        total += batch_size * longest * layers * table.feature.dim * 4
    return BATCH_COPIES * total


def fitted(
    tables: Mapping[str, FeatureTable],
    streamed: Mapping[str, Streamed],
    budget: int,
    batch_size: int,
) -> dict[str, Streamed]:
    """`streamed` with caches that leave room in `budget` for the held sets' rows, the
    streams' row indexes and batches of `batch_size` (`batch_room`), the room shared among
    them as the placement shared it; each open stream fitted to its own. A cache keeps at
    least the chunks of two windows of blocks as it caches them (`least_cache`'s count,
    `RowStream.least_bytes`): below that an epoch reads a chunk about twice, and the
    batches go beyond a budget that cannot hold both."""
    streams = {name: tables[name].stream for name in streamed}
    held = sum(t.flat.nbytes for name, t in tables.items() if name not in streamed)
    index = sum(s.index_bytes() for s in streams.values() if s is not None)
    room = max(0, budget - held - index - batch_room(tables, batch_size))
    whole = max(1, sum(spec.cache for spec in streamed.values()))
    out = {}
    for name, spec in streamed.items():
        cache = room * spec.cache // whole
        if (stream := streams[name]) is not None:
            feature = tables[name].feature
            chunks = least_cache(stream.store, feature) // chunk_bytes(stream.store, feature)
            cache = max(cache, stream.least_bytes(chunks))
            stream.fit(cache)
        out[name] = replace(spec, cache=cache)
    return out


def blocks_of(layout: TrainData, positions: np.ndarray) -> np.ndarray:
    """[n] the block each utterance at `positions` starts in, in its widest set (of
    most rows): the unit of the trainer's block shuffle (`ser.train.batches`); zeros
    without a set."""
    streams = [_stream(table) for table in layout.features.values()]
    if not streams:
        return np.zeros(len(positions), dtype=np.int64)
    widest = max(streams, key=lambda s: int(s.lengths[positions].sum()))
    return widest.blocks()[positions]


def _stream(table: FeatureTable) -> RowStream:
    if table.stream is None:
        raise ValueError(f"{table.feature.name}: a layout's table is a stream")
    return table.stream


def _bytes(stream: RowStream, positions: np.ndarray) -> int:
    """The bytes of the rows of the utterances at `positions`."""
    width = int(np.prod(stream.shape)) * stream.dtype.itemsize
    return int(stream.lengths[positions].sum()) * width


def _subset(stream: RowStream, positions: np.ndarray, cache: int) -> Streamed:
    """`stream`'s utterances at `positions`, in that order, through a cache of `cache`."""
    layers = tuple((name, first[positions]) for name, first, *_ in stream.sets[1:])
    return Streamed(stream.name, stream.first[positions], stream.lengths[positions], cache, layers)


def _table(
    table: FeatureTable, spec: Streamed, stream: RowStream | None, flat: torch.Tensor | None = None
) -> FeatureTable:
    """`table`'s input over `spec`'s utterances: its rows `flat` (held) or `stream`."""
    lengths = spec.lengths.astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    if flat is None:
        flat = torch.empty(0)
    return FeatureTable(
        feature=table.feature,
        flat=flat,
        starts=torch.from_numpy(starts),
        lengths=torch.from_numpy(lengths),
        lengths_np=lengths,
        stream=stream,
    )


def reopened(
    tables: Mapping[str, FeatureTable], streamed: Mapping[str, Streamed], store: FeatureStore
) -> dict[str, FeatureTable]:
    """`tables` with each streamed one's stream made anew on `store` (in this process),
    its cache shared among a DataLoader's workers when in one."""
    from torch.utils.data import get_worker_info

    worker = get_worker_info()
    share = worker.num_workers if worker is not None else 1
    made = dict(tables)
    for name, spec in streamed.items():
        made[name] = _with_stream(tables[name], spec.open(store, share))
    return made


def _with_stream(table: FeatureTable, stream: RowStream | None) -> FeatureTable:
    return FeatureTable(
        table.feature, table.flat, table.starts, table.lengths, table.lengths_np, stream=stream
    )


def without_streams(
    tables: Mapping[str, FeatureTable], streamed: Mapping[str, Streamed]
) -> dict[str, FeatureTable]:
    """`tables` with no stream (threads and handles stay in their process), for pickling."""
    return {n: _with_stream(t, None) if n in streamed else t for n, t in tables.items()}
