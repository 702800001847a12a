"""A feature set's rows written straight to their place in its data array, in whatever
order they are computed: `ser extract`'s batches are cut from utterances sorted by length,
so a shard's rows belong all over the manifest, and staged shards had to wait for every
other shard before the set could be laid out (each row written twice, the disk holding
both copies at the end).

Each utterance's row count is known before its rows are computed
(`ser.extract.row_counts`), so the set's offsets, its data array's shape and chunking are
fixed up front, as `consolidate` would fix them. Each row is then written once, at its
place, into the array's chunks (`raw_chunks.py`, the one part that differs between the
formats: Zarr's chunk files, or the places of an HDF5 dataset's chunks in its file, each
raw little-endian rows then their checksum; `os.pwrite` of an utterance's rows at their
byte offset, from whichever process computed them), and the set is sealed when every
shard is: every chunk read once, its checksum written after its rows (the last chunk
padded with zeros, as both formats pad it), the set's sha256 taken. Beside the store each
shard leaves a record (`placed-N.json`: which utterances, failures), never its rows; a
shard under way leaves its part's record (`placed-N.part.json`) and a killed writer's next
run writes again only what no record holds.

An utterance whose rows are not its predicted count (a failure found while extracting it:
audio that does not decode, NaN output; or a count the prediction got wrong) leaves its
place empty; its rows, if any, are kept beside the records (`placed-N.spill.npy`). Where
every utterance has at most its predicted rows (failures none, spilled ones fewer),
sealing compacts the set in place (`compact`): the rows after each gap move up, chunk by
chunk in order, each chunk assembled in memory from its sources (rows at their predicted
places, which lie at or after it, or a spill), its new bytes kept in one journal beside
the records (`compact-N.journal`) where some of them lie in the chunk itself (while the
gaps before it add up to less than a chunk), written over its place, then a cursor
advanced (`compact.json`); a killed seal replays the journal, goes on from the cursor. The
array is then sealed and cut to the rows kept: the disk holds the set plus one chunk.
The rows, offsets, failures, sha256 and attributes are those of the set laid out anew
(its `block_rows` the chunks the kept rows would be written in), and so are the chunks'
bytes where the kept rows give the same chunk size; where not, the chunks keep the size
the set was created with (HDF5 cannot change a dataset's): as after `ser store rechunk`,
a streamed run's batches follow `block_rows`, never the chunks.
Where some utterance has more rows than predicted (rows would move toward the end),
sealing writes the set anew in a folder beside the old data (`Backend.rechunk_data` with
the rows kept): the bytes `consolidate` would write, at twice the disk for that set.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ser.cache.atomic import atomic_write
from ser.cache.backend import Backend, RawChunks
from ser.cache.raw_chunks import get_rows, put_rows
from ser.cache.shards import row_problem, save_rows, stored_rows
from ser.cache.verify import little_bytes
from ser.errors import StoreError

#: The staging file of the predicted row counts, [n_utt] int64: what makes a set placed.
PREDICTED = "predicted.npy"
_RECORD = re.compile(r"^placed-(\d+)\.json$")
#: The stem of a compaction's cursor (`compact.json`) and its one journal (`compact-N.journal`).
COMPACTING = "compact"


@dataclass(frozen=True)
class ScatteredWriter:
    """Writes one feature set's shards into its data array (the `ShardWriter` interface
    the runner commits through); only paths and settings, so it pickles cheaply."""

    directory: Path  # the set's staging folder: the counts, each shard's record
    chunks: RawChunks  # where the data array's chunks keep their rows
    fingerprint: str
    dim: int
    dtype: str
    level: str
    n_utterances: int
    chunk_rows: int

    @property
    def row_bytes(self) -> int:
        return self.dim * np.dtype(self.dtype).itemsize

    def counts(self) -> np.ndarray:
        """[n_utt] int64: the rows predicted for each utterance."""
        return _predicted(self.directory / PREDICTED)[0]

    def write(
        self,
        shard_id: int,
        rows: Mapping[int, np.ndarray],
        failures: Mapping[int, str] | None = None,
    ) -> None:
        """Commit one shard: its rows into place, then its record; a part it had goes."""
        self._commit(_paths(self.directory, shard_id, ""), rows, failures or {})
        for path in _paths(self.directory, shard_id, ".part")[::-1]:  # the record first
            path.unlink(missing_ok=True)

    def write_part(
        self, shard_id: int, rows: Mapping[int, np.ndarray], failures: Mapping[int, str]
    ) -> None:
        """The utterances of shard `shard_id` finished so far, for a resume to keep."""
        self._commit(_paths(self.directory, shard_id, ".part"), rows, failures)

    def part_indices(self, shard_id: int) -> set[int]:
        """The utterances the part of shard `shard_id` holds, rows or failures."""
        record = self._record(_paths(self.directory, shard_id, ".part")[1])
        return set() if record is None else set(_held(record))

    def read_part(self, shard_id: int) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """The rows and failures the part of shard `shard_id` holds (its placed rows read
        back from the chunk files)."""
        spill, path = _paths(self.directory, shard_id, ".part")
        record = self._record(path)
        if record is None:
            return {}, {}
        starts = _predicted(self.directory / PREDICTED)[1]
        counts = self.counts()
        rows = {i: self.read_rows(int(starts[i]), int(counts[i])) for i in record["placed"]}
        rows.update(_spilled(spill, record))
        return rows, {int(i): why for i, why in record["failures"].items()}

    def done(self) -> set[int]:
        """Ids of the shards whose records are written."""
        return done_records(self.directory)

    def read_rows(self, start: int, count: int) -> np.ndarray:
        """Rows ``start .. start + count`` as placed (not checked: no crc yet)."""
        return get_rows(self.chunks, self.chunk_rows, start, count, self.dim, self.dtype)

    def _commit(
        self, paths: tuple[Path, Path], rows: Mapping[int, np.ndarray], failures: Mapping[int, str]
    ) -> None:
        counts, starts = _predicted(self.directory / PREDICTED)
        failed = {self._checked(i): str(why) for i, why in failures.items()}
        placed: list[int] = []
        spilled: dict[int, np.ndarray] = {}
        for index, values in sorted(rows.items()):
            index = self._checked(index)
            array = stored_rows(index, values, self.dim, self.dtype, self.level)
            problem = row_problem(array, self.dtype)
            if problem:
                failed[index] = problem
            elif len(array) != counts[index]:
                spilled[index] = array  # not where the offsets put it: sealing lays it out
            else:
                self._put(int(starts[index]), array)
                placed.append(index)
        record = {
            "fingerprint": self.fingerprint,
            "placed": placed,
            "spilled": {str(i): len(a) for i, a in spilled.items()},
            "failures": {str(i): failed[i] for i in sorted(failed)},
        }
        spill, path = paths
        what = f"{path.name} of {self.directory.name}"
        if spilled:
            parts = list(spilled.values())
            atomic_write(spill, lambda f: save_rows(f, parts, self.dim, self.dtype), what)
        atomic_write(path, lambda f: f.write(json.dumps(record).encode("utf-8")), what)

    def _put(self, start: int, rows: np.ndarray) -> None:
        """`rows` [n, dim] (contiguous, in the set's dtype) written from row `start` on."""
        put_rows(self.chunks, self.chunk_rows, start, rows)

    def _record(self, path: Path) -> dict[str, Any] | None:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if record.get("fingerprint") == self.fingerprint else None

    def _checked(self, index: int) -> int:
        if not isinstance(index, int | np.integer) or not 0 <= index < self.n_utterances:
            raise StoreError(
                f"manifest index {index!r} out of range (store has {self.n_utterances})"
            )
        return int(index)


@dataclass(frozen=True)
class Placed:
    """What a set's shards hold: rows kept per utterance, failures, and where the rows of
    an utterance not at its predicted place are (its shard's spill)."""

    counts: np.ndarray  # [n_utt] int64 rows kept
    failures: dict[int, str]
    spilled: dict[int, int]  # manifest index -> shard id

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)


def gather(writer: ScatteredWriter, n_shards: int) -> Placed:
    """Join the records of shards ``0..n_shards-1``; StoreError for any missing, or for
    utterances in none of them or in more than one."""
    missing = sorted(set(range(n_shards)) - writer.done())
    if missing:
        raise StoreError(
            f"{writer.directory}: {len(missing)} of {n_shards} shards are not written yet "
            f"(e.g. {', '.join(map(str, missing[:5]))}); run the extraction again to finish them"
        )
    counts = writer.counts().copy()
    seen = np.zeros(writer.n_utterances, np.int64)
    failures: dict[int, str] = {}
    spilled: dict[int, int] = {}
    for shard_id in range(n_shards):
        record = writer._record(_paths(writer.directory, shard_id, "")[1])
        if record is None:
            raise StoreError(f"{writer.directory}: shard {shard_id}'s record is unreadable")
        np.add.at(seen, np.asarray(_held(record), np.int64), 1)
        for index, count in record["spilled"].items():
            counts[int(index)], spilled[int(index)] = count, shard_id
        failed = {int(i): why for i, why in record["failures"].items()}
        counts[list(failed)] = 0
        failures.update(failed)
    if (seen > 1).any():  # the words `shards.gather` uses: the runner names --shard-size
        index = int(np.flatnonzero(seen > 1)[0])
        raise StoreError(f"{writer.directory}: manifest index {index} is in more than one shard")
    if (seen == 0).any():
        uncovered = np.flatnonzero(seen == 0)
        raise StoreError(
            f"{writer.directory}: {len(uncovered)} utterances are in none of the {n_shards} "
            f"shards (e.g. manifest index {uncovered[0]}); the shards do not cover the manifest"
        )
    return Placed(counts, failures, spilled)


def in_place(writer: ScatteredWriter, placed: Placed) -> bool:
    """Whether every utterance's rows are where the predicted offsets put them."""
    return not placed.spilled and bool((placed.counts == writer.counts()).all())


def seal(writer: ScatteredWriter, rows: int | None = None) -> str:
    """Each chunk of the set's first `rows` rows (None: all it was sized for), all in
    place, made whole (the last padded with zeros) and its checksum written after its
    rows; the sha256 of the rows in order."""
    rows = int(writer.counts().sum()) if rows is None else rows
    digest = hashlib.sha256()
    for chunk in range(-(-rows // writer.chunk_rows)):
        kept = min(writer.chunk_rows, rows - chunk * writer.chunk_rows) * writer.row_bytes
        digest.update(writer.chunks.seal(chunk, kept))
    return digest.hexdigest()


def blocks(
    writer: ScatteredWriter, placed: Placed, block_rows: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of the kept rows in manifest order, in blocks of `block_rows`,
    read from their places or their shard's spill: a set laid out anew."""
    starts = _predicted(writer.directory / PREDICTED)[1]
    predicted = writer.counts()
    buffer = np.empty((block_rows, writer.dim), writer.dtype)  # [block_rows, dim]
    fill = written = 0
    for index in np.flatnonzero(placed.counts):
        if index in placed.spilled:
            rows = _spilled_rows(writer, placed.spilled[int(index)], int(index))
        else:
            rows = writer.read_rows(int(starts[index]), int(predicted[index]))
        while len(rows):
            take = min(len(rows), block_rows - fill)
            buffer[fill : fill + take], rows = rows[:take], rows[take:]
            fill += take
            if fill == block_rows:
                yield written, buffer
                written, fill = written + fill, 0
    if fill:
        yield written, buffer[:fill]


def compactable(writer: ScatteredWriter, placed: Placed) -> bool:
    """Whether the set can be sealed by moving rows toward its start only: it keeps some
    rows, and no utterance has more than predicted (a failure kept none, a spilled one
    fewer)."""
    return bool(placed.counts.sum()) and bool((placed.counts <= writer.counts()).all())


def compact(writer: ScatteredWriter, placed: Placed) -> None:
    """The kept rows moved up over the gaps, in the array's own chunks, chunk by chunk
    from the first that changes: each assembled in memory from its sources (its rows at
    their predicted places, at or after it, or a spill), kept in the journal where some
    lie in it (a write cut short would lose them), written over its place, then the
    cursor advanced. A kill anywhere: the next call replays the journal and goes on from
    the cursor (a chunk without one is assembled again from its sources, all after it)."""
    kept = int(placed.counts.sum())
    sources = _Sources(writer, placed)
    first = max(_resumed(writer, kept), sources.first_moved() // writer.chunk_rows)
    for chunk in range(first, -(-kept // writer.chunk_rows)):
        rows, lowest = sources.chunk(chunk, kept)  # zeros past the kept rows
        new, journal = little_bytes(rows), None
        if lowest is not None and lowest < (chunk + 1) * writer.chunk_rows:  # from itself
            journal = writer.directory / f"{COMPACTING}-{chunk}.journal"
            what = f"chunk {chunk} of {writer.directory.name} being compacted"
            atomic_write(journal, functools.partial(_write_to, new), what)
        _overwrite(writer, chunk, new, journal, kept)


def compacted_rows(directory: Path) -> int | None:
    """The rows a compaction under way in this staging keeps (None: none is)."""
    try:
        return int(json.loads((directory / f"{COMPACTING}.json").read_text("utf-8"))["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _resumed(writer: ScatteredWriter, kept: int) -> int:
    """The chunk a compaction goes on from, the journal a killed one left written first."""
    _cursor(writer, kept)
    for journal in writer.directory.glob(f"{COMPACTING}-*.journal"):
        chunk = int(journal.stem.removeprefix(f"{COMPACTING}-"))
        _overwrite(writer, chunk, memoryview(journal.read_bytes()), journal, kept)
    return _cursor(writer, kept)


def _cursor(writer: ScatteredWriter, kept: int) -> int:
    """The next chunk the cursor names (0: none written); StoreError where it is not
    this compaction's."""
    cursor = writer.directory / f"{COMPACTING}.json"
    try:
        record = json.loads(cursor.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        record = {}
    if (
        not isinstance(record, dict)
        or "next" not in record
        or ((record.get("rows"), record.get("chunk_rows")) != (kept, writer.chunk_rows))
    ):
        raise StoreError(
            f"{cursor}: the record of the rows being moved is damaged or not this set's; "
            "run the same command with --overwrite to extract the set again"
        )
    return int(record["next"])


def _overwrite(
    writer: ScatteredWriter, chunk: int, data: memoryview, journal: Path | None, kept: int
) -> None:
    """Chunk `chunk`'s new bytes (its journal's, if it has one) written over its place;
    then the cursor past it; then the journal goes."""
    writer.chunks.write(chunk, 0, data)
    record = {"rows": kept, "chunk_rows": writer.chunk_rows, "next": chunk + 1}
    cursor = writer.directory / f"{COMPACTING}.json"
    what = f"the cursor of {writer.directory.name}'s compaction"
    atomic_write(cursor, lambda f: f.write(json.dumps(record).encode("utf-8")), what)
    if journal is not None:
        journal.unlink()


def _write_to(data: memoryview, file: BinaryIO) -> None:
    file.write(data)


class _Sources:
    """Where each kept row of a set being compacted is read from: its predicted place,
    `shift` rows after its new one, or its shard's spill."""

    def __init__(self, writer: ScatteredWriter, placed: Placed) -> None:
        self.writer, self.placed = writer, placed
        self.offsets = placed.offsets  # [n_utt + 1] where the rows go
        self.shift = _predicted(writer.directory / PREDICTED)[1] - self.offsets[:-1]  # [n_utt]
        self.spills: dict[int, np.ndarray] = {}

    def first_moved(self) -> int:
        """The first row not already where it goes (the kept rows: none moves)."""
        moved = (self.placed.counts > 0) & (self.shift > 0)
        moved[list(self.placed.spilled)] = True
        found = np.flatnonzero(moved)
        return int(self.offsets[found[0]]) if len(found) else int(self.offsets[-1])

    def chunk(self, chunk: int, kept: int) -> tuple[np.ndarray, int | None]:
        """([chunk_rows, dim] the rows chunk `chunk` holds once compacted, the first row
        of the array they are read from: None where all come from spills)."""
        size = self.writer.chunk_rows
        out = np.zeros((size, self.writer.dim), self.writer.dtype)  # [chunk_rows, dim]
        lo, hi = chunk * size, min((chunk + 1) * size, kept)
        lowest: int | None = None
        index = int(np.searchsorted(self.offsets, lo, side="right")) - 1
        while index < len(self.placed.counts) and self.offsets[index] < hi:
            first, stop = max(lo, int(self.offsets[index])), hi
            if index in self.placed.spilled:
                stop = min(hi, int(self.offsets[index + 1]))
                skip = first - int(self.offsets[index])
                out[first - lo : stop - lo] = self._spilled(index)[skip : skip + stop - first]
                index += 1
                continue
            end = index  # the utterances after it in this chunk at the same shift: one run
            while self._joins(index, end + 1, hi):
                end += 1
            stop = min(hi, int(self.offsets[end + 1]))
            if stop > first:
                from_row = first + int(self.shift[index])
                out[first - lo : stop - lo] = self.writer.read_rows(from_row, stop - first)
                lowest = from_row if lowest is None else min(lowest, from_row)
            index = end + 1
        return out, lowest

    def _joins(self, index: int, other: int, hi: int) -> bool:
        """Whether utterance `other` begins before row `hi` and its rows follow `index`'s
        where they are read as where they go."""
        return (
            other < len(self.placed.counts)
            and self.offsets[other] < hi
            and other not in self.placed.spilled
            and self.shift[other] == self.shift[index]
        )

    def _spilled(self, index: int) -> np.ndarray:
        if index not in self.spills:
            self.spills[index] = _spilled_rows(self.writer, self.placed.spilled[index], index)
        return self.spills[index]


def save_predicted(directory: Path, counts: np.ndarray) -> None:
    """The predicted counts a placed set is laid out by, its staging's first file."""
    values = np.asarray(counts, np.int64)
    atomic_write(directory / PREDICTED, lambda f: np.save(f, values), f"counts of {directory.name}")


def read_predicted(directory: Path) -> np.ndarray | None:
    """The predicted counts of a set being placed (None: it is not)."""
    try:
        return _predicted(directory / PREDICTED)[0]
    except (OSError, ValueError):
        return None


def placed_summary(directory: Path) -> tuple[int, int, int]:
    """(rows, failures, shards) the records of a placed set hold so far, its parts'
    among them."""
    counts = read_predicted(directory)
    if counts is None:
        return 0, 0, 0
    rows = failed = shards = 0
    for path in directory.glob("placed-*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows += int(counts[record["placed"]].sum()) + sum(record["spilled"].values())
        failed += len(record["failures"])
        shards += bool(_RECORD.match(path.name))
    return rows, failed, shards


def done_records(directory: Path) -> set[int]:
    """Ids of the shards of a placed set whose records are written."""
    found = (_RECORD.match(p.name) for p in directory.glob("placed-*.json"))
    return {int(m.group(1)) for m in found if m}


def _held(record: Mapping[str, Any]) -> list[int]:
    return [*record["placed"], *map(int, record["spilled"]), *map(int, record["failures"])]


def _spilled(spill: Path, record: Mapping[str, Any]) -> dict[int, np.ndarray]:
    if not record["spilled"]:
        return {}
    data = np.load(spill, allow_pickle=False)
    counts = [int(n) for n in record["spilled"].values()]
    starts = np.cumsum(counts) - counts
    return {
        int(i): data[a : a + n] for i, a, n in zip(record["spilled"], starts, counts, strict=True)
    }


def _spilled_rows(writer: ScatteredWriter, shard_id: int, index: int) -> np.ndarray:
    spill, path = _paths(writer.directory, shard_id, "")
    record = writer._record(path)
    return _spilled(spill, record or {"spilled": {}})[index]


def _paths(directory: Path, shard_id: int, kind: str) -> tuple[Path, Path]:
    """(spilled rows, record) of a shard (`kind` "") or of its part (".part")."""
    stem = f"placed-{int(shard_id)}{kind}"
    return directory / f"{stem}.spill.npy", directory / f"{stem}.json"


@functools.lru_cache(maxsize=16)
def _loaded(path: Path, stamp: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.load(path, allow_pickle=False)
    return counts, np.cumsum(counts) - counts


def _predicted(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(counts [n_utt], first rows [n_utt]) of a placed set, read once per process."""
    stat = path.stat()
    return _loaded(path, (stat.st_mtime_ns, stat.st_size))


# Rows a chunk of a set of so many rows (`store.chunk_rows_for` of the set's dim and dtype).
ChunkRows = Callable[[int], int]


def open_writer(
    backend: Backend,
    staging: Path,
    name: str,
    attrs: Mapping[str, Any],
    counts: np.ndarray,
    chunking: ChunkRows,
) -> ScatteredWriter | None:
    """The writer of incomplete set `name` laid out by `counts`: the one a killed run
    began with the same counts and layout, else begun anew (its data array created, its
    staging cleared); None where its chunks take no rows in place (an array of no rows,
    or of a layout written before checksums)."""
    dim, dtype = int(attrs["dim"]), str(attrs["dtype"])
    rows = int(counts.sum())
    block = chunking(rows)
    old = read_predicted(staging)
    sized = {rows, compacted_rows(staging)}  # a compacted set is cut to the rows it keeps
    layout = backend.data_layout(name)
    same = (
        old is not None
        and np.array_equal(old, counts)
        and layout is not None
        and layout[0][0] in sized
        and layout == ((layout[0][0], dim), np.dtype(dtype))
        and backend.chunk_rows(name) == block
    )
    if not same:
        shutil.rmtree(staging, ignore_errors=True)
        backend.create_data(name, (rows, dim), dtype, block, in_place=True)
    chunks = backend.direct_chunks(name)
    if chunks is None:
        return None
    if not same:
        staging.mkdir(parents=True, exist_ok=True)
        save_predicted(staging, counts)
    fingerprint, level = str(attrs["fingerprint"]), str(attrs["level"])
    return ScatteredWriter(staging, chunks, fingerprint, dim, dtype, level, len(counts), block)


def finish(
    backend: Backend, writer: ScatteredWriter, name: str, n_shards: int, chunking: ChunkRows
) -> tuple[Placed, str, int]:
    """The set's rows all written: sealed in place; or (an utterance not at its predicted
    place) compacted in place where no utterance has more rows than predicted, else laid
    out anew beside the old data. (what the shards hold, the rows' sha256, the rows of a
    chunk as the kept rows would be chunked)."""
    placed = gather(writer, n_shards)
    if in_place(writer, placed):
        return placed, seal(writer), writer.chunk_rows
    rows = int(placed.counts.sum())
    if compactable(writer, placed):
        compact(writer, placed)
        sealed = seal(writer, rows)
        backend.trim_data(name, rows)  # after the seal: HDF5 reads the last chunk to cut it
        return placed, sealed, chunking(rows)
    if writer.chunks.rewritten():
        # A run stopped between the new array's swap and the set's completion: the rows
        # are no longer where the counts put them, so they cannot be read from there again.
        raise StoreError(
            f"{writer.directory}: the rows were laid out anew by a run stopped before it "
            "completed the set; run the same command with --overwrite to extract it again"
        )
    block = chunking(rows)
    digest = hashlib.sha256()

    def hashed() -> Iterator[tuple[int, np.ndarray]]:
        for start, rows_here in blocks(writer, placed, block):
            digest.update(little_bytes(rows_here))
            yield start, rows_here

    backend.rechunk_data(name, block, hashed(), rows=rows)
    return placed, digest.hexdigest(), block
