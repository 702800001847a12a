"""Staging: finished work as shard files, written by any process, read by `consolidate`.

A shard is ``shard-000042.npy`` (its rows, in manifest order) and ``shard-000042.json``
(which utterances, how many rows each, failures), each committed with ``os.replace``, the
``.json`` last: its presence means the shard is done. Workers never open the store.
A shard's part, ``shard-000042.part.npy`` and ``.part.json`` alike, holds the utterances
of the batches it finished before its run stopped (`ShardWriter.write_part`): a resume
reads them back (`ShardWriter.read_part`) and extracts only the rest; the whole shard replaces it.

Example:
    >>> import tempfile
    >>> writer = ShardWriter(Path(tempfile.mkdtemp()), fingerprint="f", dim=2,
    ...                      dtype="float16", level="frame", n_utterances=3)
    >>> writer.write(0, {2: np.ones((4, 2)), 0: np.zeros((1, 2))}, {1: "no audio"})
    >>> done_shards(writer.directory)
    {0}
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ser.cache.atomic import atomic_write
from ser.errors import StoreError

_SHARD = re.compile(r"^shard-(\d+)\.json$")
_PART = re.compile(r"^shard-(\d+)\.part\.json$")


@dataclass(frozen=True)
class ShardWriter:
    """Writes shards of one feature set; only paths and settings, so it pickles cheaply."""

    directory: Path
    fingerprint: str
    dim: int
    dtype: str
    level: str
    n_utterances: int

    def write(
        self,
        shard_id: int,
        rows: Mapping[int, np.ndarray],
        failures: Mapping[int, str] | None = None,
    ) -> None:
        """Commit one shard: ``rows`` maps manifest index -> ``[n_rows, dim]``, cast to the set's
        dtype. Output empty or not finite after the cast (float16 overflow) becomes a failure:
        a failed utterance always has zero rows."""
        if not isinstance(shard_id, int | np.integer) or shard_id < 0:
            raise StoreError(f"shard id must be a non-negative integer, got {shard_id!r}")
        failed = {self._checked_index(i): str(reason) for i, reason in (failures or {}).items()}
        kept: dict[int, np.ndarray] = {}
        for index, values in rows.items():
            index = self._checked_index(index)
            if index in failed:
                raise StoreError(f"utterance {index} is both written and failed in one shard")
            array = stored_rows(index, values, self.dim, self.dtype, self.level)
            problem = row_problem(array, self.dtype)
            if problem:
                failed[index] = problem
            else:
                kept[index] = array
        self._commit(shard_paths(self.directory, int(shard_id)), kept, failed, str(shard_id))
        for path in part_paths(self.directory, int(shard_id))[::-1]:  # the record first
            path.unlink(missing_ok=True)

    def write_part(
        self, shard_id: int, rows: Mapping[int, np.ndarray], failures: Mapping[int, str]
    ) -> None:
        """Commit the utterances of shard `shard_id` finished so far (whole batches: an
        output depends on its batch), as `write` commits a shard, for a resume to keep."""
        checked = {self._checked_index(i): np.asarray(v, self.dtype) for i, v in rows.items()}
        failed = {self._checked_index(i): str(r) for i, r in failures.items()}
        what = f"part of shard {shard_id}"
        self._commit(part_paths(self.directory, int(shard_id)), checked, failed, what)

    def part_indices(self, shard_id: int) -> set[int]:
        """The utterances (manifest indices) the part of shard `shard_id` holds, rows or
        failures (none: no part, or one of another fingerprint or unreadable)."""
        meta = self._part_meta(shard_id)
        return set() if meta is None else {*meta["indices"], *map(int, meta["failures"])}

    def read_part(self, shard_id: int) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """The rows and failures the part of shard `shard_id` holds (none: no usable
        part)."""
        meta = self._part_meta(shard_id)
        if meta is None:
            return {}, {}
        counts = np.asarray(meta["counts"], np.int64)
        starts = np.cumsum(counts) - counts
        try:
            data = np.load(part_paths(self.directory, shard_id)[0], allow_pickle=False)
        except (OSError, ValueError):
            return {}, {}
        if data.ndim != 2 or len(data) != int(counts.sum()):
            return {}, {}
        held = zip(meta["indices"], starts, counts, strict=True)
        rows = {int(i): data[a : a + n] for i, a, n in held}
        return rows, {int(i): r for i, r in meta["failures"].items()}

    def _part_meta(self, shard_id: int) -> dict | None:
        record = part_paths(self.directory, shard_id)[1]
        try:
            meta = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if meta.get("fingerprint") == self.fingerprint else None

    def _commit(
        self,
        paths: tuple[Path, Path],
        kept: Mapping[int, np.ndarray],
        failed: Mapping[int, str],
        shard: str,
    ) -> None:
        """The rows' ``.npy`` then the record's ``.json``, each replaced atomically."""
        order = sorted(kept)
        parts = [kept[i] for i in order]  # each [rows_i, dim], contiguous
        meta = {
            "fingerprint": self.fingerprint,
            "indices": order,
            "counts": [len(kept[i]) for i in order],
            "failures": {str(i): failed[i] for i in sorted(failed)},
        }
        npy, record = paths
        self.directory.mkdir(parents=True, exist_ok=True)
        what = f"shard {shard} of {self.directory.name}"
        atomic_write(npy, lambda f: save_rows(f, parts, self.dim, self.dtype), what)
        atomic_write(record, lambda f: f.write(json.dumps(meta).encode("utf-8")), what)

    def _checked_index(self, index: int) -> int:
        if not isinstance(index, int | np.integer) or not 0 <= index < self.n_utterances:
            raise StoreError(
                f"manifest index {index!r} out of range (store has {self.n_utterances})"
            )
        return int(index)


def stored_rows(index: int, values: np.ndarray, dim: int, dtype: str, level: str) -> np.ndarray:
    """Utterance `index`'s rows as a set stores them: ``[n_rows, dim]`` (a ``[dim]`` vector at
    utterance level is one row) in `dtype`; StoreError for any other shape."""
    array = np.asarray(values)
    if array.ndim == 1 and level == "utterance":
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dim:
        raise StoreError(f"utterance {index}: expected [rows, {dim}] features, got {array.shape}")
    if level == "utterance" and len(array) > 1:
        raise StoreError(f"utterance {index}: utterance-level features need one row")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught just after
        return np.ascontiguousarray(array, dtype=dtype)


def save_rows(file: BinaryIO, parts: list[np.ndarray], dim: int, dtype: str) -> None:
    """`parts` one after another as one ``.npy`` array [sum of rows, dim], what `np.save`
    of their concatenation writes, without the concatenated copy (the writer's largest
    cost after the disk)."""
    rows = sum(len(part) for part in parts)
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": (rows, dim),
    }
    np.lib.format.write_array_header_1_0(file, header)
    for part in parts:
        file.write(part.data)


def row_problem(array: np.ndarray, dtype: str) -> str:
    """Why rows cast to `dtype` cannot be stored ("" when they can): none, or not finite."""
    if len(array) == 0:
        return "no output (0 rows)"
    if not np.isfinite(array).all():
        return f"non-finite values (NaN/Inf) in the {dtype} output"
    return ""


def shard_paths(directory: Path, shard_id: int) -> tuple[Path, Path]:
    stem = directory / f"shard-{shard_id:06d}"
    return stem.with_suffix(".npy"), stem.with_suffix(".json")


def part_paths(directory: Path, shard_id: int) -> tuple[Path, Path]:
    stem = directory / f"shard-{shard_id:06d}.part"
    return stem.with_suffix(".part.npy"), stem.with_suffix(".part.json")


def done_shards(directory: Path) -> set[int]:
    """Ids of the committed shards in ``directory`` (empty when it does not exist)."""
    return {int(m.group(1)) for p in directory.glob("*.json") if (m := _SHARD.match(p.name))}


@dataclass(frozen=True)
class RowLayout:
    """Where each utterance's rows are: shard, first row there, row count (-1: failed)."""

    shard: np.ndarray  # [n_utt] int64
    start: np.ndarray  # [n_utt] int64
    counts: np.ndarray  # [n_utt] int64, 0 for failures
    failures: dict[int, str]  # manifest index -> reason

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)


def gather(writer: ShardWriter, n_shards: int) -> RowLayout:
    """Join the metadata of shards ``0..n_shards-1``; StoreError for anything amiss."""
    directory = writer.directory
    missing = sorted(set(range(n_shards)) - done_shards(directory))
    if missing:
        some = ", ".join(map(str, missing[:5]))
        raise StoreError(
            f"{directory}: {len(missing)} of {n_shards} shards are not written yet "
            f"(e.g. {some}); run the extraction again to finish them"
        )
    n = writer.n_utterances
    shard = np.full(n, -1, np.int64)
    start = np.zeros(n, np.int64)
    counts = np.zeros(n, np.int64)
    failures: dict[int, str] = {}
    for shard_id in range(n_shards):
        meta = _read_meta(directory, shard_id, writer.fingerprint)
        indices = np.asarray(meta["indices"], np.int64)
        failed = np.asarray([int(i) for i in meta["failures"]], np.int64)
        _claim(shard, np.concatenate([indices, failed]), shard_id, directory)
        shard_counts = np.asarray(meta["counts"], np.int64)
        _shard_rows(writer, shard_id, int(shard_counts.sum()))
        counts[indices] = shard_counts
        start[indices] = np.cumsum(shard_counts) - shard_counts
        failures.update({int(i): reason for i, reason in meta["failures"].items()})
    uncovered = np.flatnonzero(shard < 0)
    if len(uncovered):
        raise StoreError(
            f"{directory}: {len(uncovered)} utterances are in none of the {n_shards} shards "
            f"(e.g. manifest index {uncovered[0]}); the shards do not cover the manifest"
        )
    return RowLayout(shard=shard, start=start, counts=counts, failures=failures)


def _read_meta(directory: Path, shard_id: int, fingerprint: str) -> dict:
    record = shard_paths(directory, shard_id)[1]
    meta = json.loads(record.read_text(encoding="utf-8"))
    if meta["fingerprint"] != fingerprint:
        raise StoreError(f"{record}: written for another version of this feature set")
    return meta


def _claim(shard: np.ndarray, indices: np.ndarray, shard_id: int, directory: Path) -> None:
    taken = indices[shard[indices] >= 0]
    if len(taken) or len(np.unique(indices)) != len(indices):
        index = taken[0] if len(taken) else indices[0]
        raise StoreError(f"{directory}: manifest index {index} is in more than one shard")
    shard[indices] = shard_id


def _shard_rows(writer: ShardWriter, shard_id: int, rows: int | None = None) -> np.ndarray:
    """A committed shard's rows, memory-mapped; ``rows``: how many its record says."""
    path = shard_paths(writer.directory, shard_id)[0]
    data = np.load(path, mmap_mode="r", allow_pickle=False)
    if data.ndim != 2 or data.shape[1] != writer.dim or data.dtype != writer.dtype:
        raise StoreError(
            f"{path}: expected [rows, {writer.dim}] {writer.dtype}, got {data.shape} {data.dtype}"
        )
    if rows is not None and len(data) != rows:
        raise StoreError(f"{path}: holds {len(data)} rows, its record says {rows}")
    return data


def blocks(
    layout: RowLayout, writer: ShardWriter, block_rows: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) in manifest order, in blocks of ``block_rows``; one buffer is
    reused: the consumer must write each block before asking for the next."""
    # A few shards' memory maps at a time, however many shards the set has.
    shard_rows = functools.lru_cache(maxsize=32)(functools.partial(_shard_rows, writer))
    buffer = np.empty((block_rows, writer.dim), writer.dtype)  # [block_rows, dim]
    fill = written = 0
    for index in np.flatnonzero(layout.counts):
        shard, first, count = layout.shard[index], layout.start[index], layout.counts[index]
        done = 0
        while done < count:
            take = min(count - done, block_rows - fill)
            buffer[fill : fill + take] = shard_rows(shard)[first + done : first + done + take]
            fill, done = fill + take, done + take
            if fill == block_rows:
                yield written, buffer
                written, fill = written + fill, 0
    if fill:
        yield written, buffer[:fill]


def staged_utterances(
    writer: ShardWriter, wanted: set[int]
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Rows and failure reasons of the `wanted` utterances (manifest indices) in the
    shards committed so far (a repair's re-extracted shards)."""
    rows: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    for shard_id in sorted(done_shards(writer.directory)):
        meta = _read_meta(writer.directory, shard_id, writer.fingerprint)
        counts = np.asarray(meta["counts"], np.int64)
        starts = np.cumsum(counts) - counts
        data = _shard_rows(writer, shard_id, int(counts.sum()))
        for index, start, count in zip(meta["indices"], starts, counts, strict=True):
            if index in wanted:
                rows[index] = np.array(data[start : start + count])
        failures.update({int(i): r for i, r in meta["failures"].items() if int(i) in wanted})
    return rows, failures


def staged_summary(directory: Path) -> tuple[int, int, int]:
    """(rows, failures, shards) committed so far in a staging folder, the rows and
    failures of shards' parts among them."""
    rows = failed = 0
    done = done_shards(directory)
    records = [shard_paths(directory, shard_id)[1] for shard_id in done]
    records += [p for p in directory.glob("shard-*.part.json") if _is_part(p, done)]
    for record in records:
        meta = json.loads(record.read_text("utf-8"))
        rows += sum(meta["counts"])
        failed += len(meta["failures"])
    return rows, failed, len(done)


def _is_part(record: Path, done: set[int]) -> bool:
    """Whether `record` is the part of a shard not done (a done one's is stale)."""
    match = _PART.match(record.name)
    return match is not None and int(match.group(1)) not in done


def keep_only(directory: Path, fingerprint: str) -> None:
    """Drop the shards (and parts) in ``directory`` written for another fingerprint (or
    unreadable)."""
    parts = {int(m.group(1)) for p in directory.glob("*.json") if (m := _PART.match(p.name))}
    pairs = [shard_paths(directory, i) for i in done_shards(directory)]
    for npy, record in pairs + [part_paths(directory, i) for i in parts]:
        try:
            kept = json.loads(record.read_text("utf-8")).get("fingerprint") == fingerprint
        except (OSError, ValueError):
            kept = False
        if not kept:
            record.unlink(missing_ok=True)  # the record first: no half shard looks done
            npy.unlink(missing_ok=True)
