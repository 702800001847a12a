"""A streamed input's rows (`ser.train.placement` says which inputs stream): read from the
store a chunk at a time (its own chunking: chunk-aligned reads copy chunk files straight
into memory) into a bounded cache, on reader threads that read the next step's chunks
while this one trains (`prefetch`). Which utterances a window of batches takes is
planned by the set's blocks (`FeatureStore.block_rows`: its chunks as first written),
never by its chunks now: a set rechunked gives a run the same batches.

The rows a batch gathers are the same bytes the in-memory table holds, gathered by the
same row indices (`take`), and the per-utterance means are summed in the same order
(`means`): a step's tensors do not depend on where the rows live, nor on how many
threads read them. Which utterances share a batch is the plan's (`ser.train.batches`).
A layered input's stream reads each of its layer sets by the same row numbers (an
utterance's layer sets hold the same rows) into one cache, and stacks them as the
in-memory table's [rows, L, D].

The cache's bytes are what it holds and what its reader threads are reading: a read
counts a whole chunk from before its bytes arrive, and the least recently used chunks
make room for it. A chunk is read whole (its file is the unit); a dataset's stream
(`compact`) reads it into its reader's buffer (one a thread, counted in the cache's
bytes, used again for every chunk) and caches a copy of the chunk or of the rows it takes
of it, so that a side that takes a few rows of each chunk caches its own rows, not the
set's, and the C allocator is left no freed chunk-sized block to keep.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.errors import StoreError

#: Reader threads of a streamed input: reads of chunk files release the interpreter's
#: lock; more than a few only queue on one disk.
READERS = 2
#: A chunk as the cache keeps it: its rows, and where they are some of the chunk's only,
#: their offsets in it ([kept] int64, sorted; None: every row, in order).
Kept = tuple[np.ndarray, "np.ndarray | None"]


class RowStream:
    """The kept rows of set `name` of `store`, row r of the run's table being store row
    `store_rows[r]`; `first` [n]: each kept utterance's first store row, `lengths` [n]
    its rows; a cache of at most `cache_bytes` of chunks, the chunks being read counted
    (never fewer than two chunks a set). `layers`: a layered input's further layer sets,
    each with its kept utterances' first store rows (the same `lengths`): rows are then
    [.., L, D], `name`'s first. `compact`: a chunk of which the stream keeps fewer than
    half the rows is cached as those rows alone (a dataset's side, spread over the set;
    the trainer's tables keep every labelled utterance, and cache chunks whole)."""

    def __init__(
        self,
        store: FeatureStore,
        name: str,
        first: np.ndarray,
        lengths: np.ndarray,
        cache_bytes: int,
        readers: int = READERS,
        layers: Sequence[tuple[str, np.ndarray]] = (),
        compact: bool = False,
    ) -> None:
        self.store, self.name = store, name
        self.first, self.lengths = first.astype(np.int64), lengths.astype(np.int64)
        info = store.info(name)
        self.dim, self.dtype = int(info.dim), np.dtype(str(info.dtype))
        self.total_store_rows = int(info.rows)
        self.chunk_rows = max(1, store.chunk_rows(name))
        self.block_rows = store.block_rows(name)  # the plan's unit, whatever the chunks
        self.store_rows = self._store_rows(self.first)
        # Set i of a layered input (0: `name`): its name, its kept utterances' first store
        # rows, the store row of each kept row, its chunks' rows and its rows in all.
        self.sets = [(name, self.first, self.store_rows, self.chunk_rows, self.total_store_rows)]
        for other, starts in layers:
            at = starts.astype(np.int64)
            chunk_rows, held = max(1, store.chunk_rows(other)), int(store.info(other).rows)
            self.sets.append((other, at, self._store_rows(at), chunk_rows, held))
        self.chunk_bytes = max(s[3] for s in self.sets) * self.dim * self.dtype.itemsize
        self.compact, self.readers = compact, max(1, readers)
        self.cache_bytes = self._floored(cache_bytes)
        self._cache: OrderedDict[tuple[int, int], Kept] = OrderedDict()  # (set, chunk) ->
        self._cached = 0  # bytes the cache holds
        self._reading = 0  # bytes of the chunks the reader threads are reading now
        self._buffered = 0  # bytes of the reader threads' buffers (a compact stream's)
        self._buffers = threading.local()
        self._spans = [_spans(first, self.lengths) for _, first, *_ in self.sets] if compact else []
        self._pending: dict[tuple[int, int], Future[Kept]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.readers, thread_name_prefix="ser-stream")
        self.reads = 0  # chunks read from the store (a measure of the plan's locality)

    def _store_rows(self, first: np.ndarray) -> np.ndarray:
        """[rows] the store row of each kept row, the utterances starting at `first`."""
        starts = np.cumsum(self.lengths) - self.lengths  # kept row of each utterance's first
        return np.repeat(first - starts, self.lengths) + np.arange(
            int(self.lengths.sum()), dtype=np.int64
        )

    def with_cache(self, cache_bytes: int) -> RowStream:
        """This stream again, its sets and readers as they are, with a cache of
        `cache_bytes` (nothing read yet: made before the run reads a row)."""
        self.close()
        layers = [(name, first) for name, first, *_ in self.sets[1:]]
        first, lengths = self.first, self.lengths
        return RowStream(
            self.store,
            self.name,
            first,
            lengths,
            cache_bytes,
            readers=self.readers,
            layers=layers,
            compact=self.compact,
        )

    def fit(self, cache_bytes: int) -> None:
        """Cache at most `cache_bytes` from now on (never fewer than two chunks a set),
        the least recently used chunks dropped to fit."""
        with self._lock:
            self.cache_bytes = self._floored(cache_bytes)
            self._evict(0)

    def _floored(self, cache_bytes: int) -> int:
        """`cache_bytes`, but never fewer than two chunks a set, and a compact stream's
        reader buffers besides."""
        buffers = self.readers * self.chunk_bytes if self.compact else 0
        return max(2 * len(self.sets) * self.chunk_bytes + buffers, cache_bytes)

    @property
    def capacity(self) -> int:
        """The cache's bytes in whole chunks."""
        return self.cache_bytes // max(self.chunk_bytes, 1)

    def index_bytes(self) -> int:
        """The bytes of the stream's own row index: each row's store row and each
        utterance's first row and span, a set's."""
        spans = sum(a.nbytes for spans in self._spans for a in spans)
        return sum(s[2].nbytes + s[1].nbytes for s in self.sets) + self.lengths.nbytes + spans

    def least_bytes(self, chunks: int) -> int:
        """The bytes the `chunks` largest of the chunks this stream takes rows of are
        cached as (whole, or the rows it takes of them), a layered input's of each set:
        a cache of a window's chunks, for a side spread thinly over the set."""
        total = 0
        for _, _, store_rows, chunk_rows, _ in self.sets:
            counts = np.bincount(store_rows // chunk_rows)
            few = self.compact & (2 * counts < chunk_rows)
            cached = np.where(few, counts, chunk_rows * (counts > 0))  # rows a chunk
            total += int(np.sort(cached)[::-1][:chunks].sum())
        return total * self.dim * self.dtype.itemsize

    @property
    def cached_bytes(self) -> int:
        """The bytes the cache holds now."""
        return self._cached

    @property
    def rows(self) -> int:
        return len(self.store_rows)

    @property
    def shape(self) -> tuple[int, ...]:
        """A row's: (D,), or a layered input's (L, D)."""
        return (len(self.sets), self.dim) if len(self.sets) > 1 else (self.dim,)

    def blocks(self) -> np.ndarray:
        """[n] the block each kept utterance starts in: the block shuffle's unit."""
        return self.first // self.block_rows

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """Rows `index` (any shape, kept-row numbers) -> [*index.shape, D] ([..., L, D])
        in the stored dtype (a layered input's first set's), on `index`'s device."""
        kept = index.cpu().numpy().ravel()
        out = np.empty((len(kept), len(self.sets), self.dim), dtype=self.dtype)
        for i, (_, _, store_rows, chunk_rows, _) in enumerate(self.sets):
            chunk, offset = np.divmod(store_rows[kept], chunk_rows)
            for k in np.unique(chunk):
                at = chunk == k
                held, offsets = self._chunk(int(k), i)
                within = offset[at] if offsets is None else np.searchsorted(offsets, offset[at])
                out[at, i] = held[within]
        rows = torch.from_numpy(out).view(*index.shape, *self.shape)
        return rows.to(index.device, non_blocking=True)

    def _chunk(self, k: int, i: int = 0) -> Kept:
        """Store chunk k's kept rows of set i (a layered input's), from the cache or read
        (by a reader thread: one read of a chunk however many ask for it at once)."""
        with self._lock:
            if (i, k) in self._cache:
                self._cache.move_to_end((i, k))
                return self._cache[i, k]
            future = self._pending.get((i, k)) or self._submit(i, k)
        return future.result()

    def prefetch(self, positions: np.ndarray) -> None:
        """Start reading the chunks of the utterances at `positions` (-1: none) that the
        cache lacks, leaving room for those a step is gathering."""
        real = positions[positions >= 0].ravel()
        if not len(real):
            return
        room = max(1, self.capacity // (2 * len(self.sets)))
        for i, (_, first, _, chunk_rows, _) in enumerate(self.sets):
            lo = first[real] // chunk_rows
            hi = (first[real] + self.lengths[real] - 1) // chunk_rows
            spans = [np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)]
            wanted = np.unique(np.concatenate(spans))
            with self._lock:
                for k in wanted[:room].tolist():
                    if (i, k) not in self._cache and (i, k) not in self._pending:
                        self._submit(i, k)

    def _submit(self, i: int, k: int) -> Future[Kept]:
        """A read of set i's chunk k on a reader thread (the lock held)."""
        future = self._pool.submit(self._read, i, k)
        self._pending[i, k] = future
        return future

    def _read(self, i: int, k: int) -> Kept:
        """Set i's chunk k read whole, kept as `_kept` keeps it. Its bytes count against
        `cache_bytes` from before it is read: the cache and the reads in flight together
        hold at most `cache_bytes`, or the chunks being read and the one just read where
        those alone exceed it."""
        name, _, _, chunk_rows, total = self.sets[i]
        lo, hi = k * chunk_rows, min((k + 1) * chunk_rows, total)
        whole = (hi - lo) * self.dim * self.dtype.itemsize
        with self._lock:
            self._reading += whole
            self._evict(0)
        try:
            rows = self.store.read_rows(name, lo, hi, self._buffer() if self.compact else None)
        except (StoreError, OSError) as error:
            with self._lock:
                self._reading -= whole
            raise read_fault(self.store.path, name, error) from None
        kept = _kept(rows, lo, self._spans[i]) if self.compact else (rows, None)
        del rows  # a chunk of which few rows are kept: the others go now
        with self._lock:
            self.reads += 1
            self._reading -= whole
            self._pending.pop((i, k), None)
            self._cache[i, k] = kept
            self._cached += kept[0].nbytes
            self._evict(1)
        return kept

    def _buffer(self) -> np.ndarray:
        """[chunk rows, D] this reader thread's buffer, that a compact stream reads each
        chunk into before keeping its rows: used again for every read, it leaves the C
        allocator no freed chunk to keep (counted against `cache_bytes` from its making)."""
        buffer: np.ndarray | None = getattr(self._buffers, "rows", None)
        if buffer is None:
            with self._lock:
                self._buffered += self.chunk_bytes
                self._evict(0)
            rows = self.chunk_bytes // (self.dim * self.dtype.itemsize)
            buffer = self._buffers.rows = np.empty((rows, self.dim), self.dtype)
        return buffer

    def _evict(self, keep: int) -> None:
        """Drop the least recently used chunks but the last `keep` until the cache, the
        reads in flight and the readers' buffers fit `cache_bytes` (the lock held)."""
        held = self._reading + self._buffered
        while self._cached + held > self.cache_bytes and len(self._cache) > keep:
            _, (rows, _) = self._cache.popitem(last=False)
            self._cached -= rows.nbytes

    def means(self, lengths: torch.Tensor) -> torch.Tensor:
        """[n, D] ([n, L, D]) float32 mean of each utterance's rows, summed row after row
        as `ser.train.data.segment_mean` sums an in-memory table's (index_add_ adds each
        segment's rows in order, whatever the pieces), a block's rows at a time."""
        n, device = len(lengths), lengths.device
        if bool((lengths == 1).all()):
            return self.take(torch.arange(self.rows, device=device)).float()
        seg = torch.repeat_interleave(torch.arange(n, device=device), lengths)
        out = torch.zeros(n, *self.shape, dtype=torch.float32, device=device)
        for r0 in range(0, self.rows, self.block_rows):
            r1 = min(r0 + self.block_rows, self.rows)
            piece = self.take(torch.arange(r0, r1, device=device))
            out.index_add_(0, seg[r0:r1], piece.float())
        with self._lock:  # read once for the means: held no longer than they are summed
            self._cache.clear()
            self._cached = 0
        scale = lengths.clamp_min(1).view(n, *[1] * len(self.shape)).to(out.dtype)
        return out / scale

    def close(self) -> None:
        """Stop the reader threads (reads in flight finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _spans(first: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The store rows the kept utterances hold, as sorted starts, their ends and the
    running maximum of the ends (the key that finds the spans a chunk overlaps)."""
    starts, at = np.unique(first, return_index=True)  # an utterance kept twice: once
    ends = starts + lengths[at]
    return starts, ends, np.maximum.accumulate(ends) if len(ends) else ends


def _kept(rows: np.ndarray, lo: int, spans: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Kept:
    """A chunk's rows (its first store row `lo`) as the cache keeps them: whole where the
    stream keeps at least half of them, else only those it keeps (a test side's share of
    a chunk: the rest read, never held)."""
    starts, ends, reach = spans
    hi = lo + len(rows)
    j0, j1 = np.searchsorted(reach, lo, side="right"), np.searchsorted(starts, hi)
    edges = np.zeros(len(rows) + 1, dtype=np.int64)  # +1 where a span starts, -1 after it
    np.add.at(edges, np.clip(starts[j0:j1], lo, hi) - lo, 1)
    np.add.at(edges, np.clip(ends[j0:j1], lo, hi) - lo, -1)
    offsets = np.flatnonzero(np.cumsum(edges[:-1]) > 0)
    if 2 * len(offsets) >= len(rows):
        return rows.copy(), None  # `rows` is its reader's buffer
    return rows[offsets], offsets


def read_fault(path: Path, name: str, error: StoreError | OSError) -> StoreError:
    """A streamed read's fault said as what it is: the store deleted or moved while the
    run read it, or its set deleted (a read found "no group", as if the set had never
    been there); else the read's own words (a damaged chunk's name its repair)."""
    if not path.exists():
        return StoreError(f"{path}: the store was deleted or moved while the run read {name}")
    try:
        present = name in FeatureStore.open(path).feature_sets()
    except StoreError:  # its own metadata gone too
        present = False
    if not present:
        return StoreError(f"{path}: feature set {name!r} was deleted while the run read it")
    if isinstance(error, StoreError):
        return error
    return StoreError(f"{path}: feature set {name!r} could not be read mid-run ({error})")


# A table's rows may come from several streams back to back (`FeatureTable.parts`): a
# clean set's then each of its views' (`ser.train.views`), or a cross-corpus run's
# training store's then its test store's (`ser.train.cross`). Their utterances ("units")
# are numbered back to back too. Rows and means are each part's, gathered by the row
# numbers the table in memory would hold them at.


def take_parts(parts: Sequence[RowStream], index: torch.Tensor) -> torch.Tensor:
    """Rows `index` (any shape, row numbers back to back) of `parts` -> [*index.shape, D]
    ([..., L, D]) in the first part's dtype (another part's cast, as the table in memory
    casts it)."""
    flat = index.cpu().numpy().ravel()
    row_starts = np.cumsum([0, *(p.rows for p in parts)])
    part = np.searchsorted(row_starts, flat, side="right") - 1
    shape = parts[0].shape  # (D,), or a layered input's (L, D)
    out = torch.from_numpy(np.empty((len(flat), *shape), dtype=parts[0].dtype))
    for p in np.unique(part).tolist():
        at = np.flatnonzero(part == p)
        out[torch.from_numpy(at)] = parts[p].take(torch.from_numpy(flat[at] - row_starts[p]))
    return out.view(*index.shape, *shape).to(index.device, non_blocking=True)


def parts_means(parts: Sequence[RowStream], lengths: torch.Tensor) -> torch.Tensor:
    """[n, D] float32 means of the first n units of `parts` (`lengths` theirs), each
    part's summed as `RowStream.means` sums them."""
    out, done = [], 0
    for part in parts:
        if done >= len(lengths):
            break
        out.append(part.means(lengths[done : done + len(part.lengths)]))
        done += len(part.lengths)
    return torch.cat(out)


def parts_blocks(parts: Sequence[RowStream]) -> np.ndarray:
    """[units] the block each unit starts in, each part's numbered after the blocks of the
    parts before it (a window holds one part's blocks)."""
    chunks = np.cumsum([0, *(-(-p.total_store_rows // p.block_rows) for p in parts)])
    return np.concatenate([p.blocks() + int(c) for p, c in zip(parts, chunks, strict=False)])


def prefetch_parts(parts: Sequence[RowStream], units: np.ndarray) -> None:
    """Start reading the chunks of `units` (numbered back to back; -1: none), each in the
    part that holds it (`RowStream.prefetch`)."""
    unit_starts = np.cumsum([0, *(len(p.lengths) for p in parts)])
    for p, part in enumerate(parts):
        lo, hi = unit_starts[p], unit_starts[p + 1]
        mine = units[(units >= lo) & (units < hi)] - lo
        if len(mine):
            part.prefetch(mine)
