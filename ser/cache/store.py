"""FeatureStore: one corpus manifest and many feature sets, in Zarr or HDF5.

Writing goes through staging so that any process can contribute and a killed run loses
nothing: workers commit shards with a `ShardWriter`; ``consolidate`` lays them out in
manifest order, records their checksum, marks the set complete (last) and only then drops
the staging folder. A writer that knows every utterance's row count before it starts
writes each row once, straight into place: in manifest order (`ser store import`:
`place`, `placed.py`), or in any order from any process (`ser extract`:
`scattered_writer`, `scattered.py`), in either format.
Every chunk carries its own checksum (`backend.py`): a read of a damaged one is a
`StoreError` naming the rows, the utterances and the repair command, and `repair` writes
re-extracted utterances back over them (`repair.py`). Damaged metadata is a `StoreError`
naming the set (or the manifest) and the file, which blocks no other set; `mend` writes
it anew from the store's own copies (`mend.py`).

Example:
    >>> import tempfile
    >>> from ser.cache.manifest import COLUMNS, Manifest
    >>> manifest = Manifest.from_columns({c: [0, 1] for c in COLUMNS} | {"utt_id": ["a", "b"]})
    >>> store = FeatureStore.create(Path(tempfile.mkdtemp()) / "f.zarr", manifest)
    >>> store.begin_feature_set("logmel80", {"extractor": "logmel", "modality": "audio",
    ...     "level": "frame", "dim": 80, "dtype": "float16"})
    >>> store.shard_writer("logmel80").write(0, {0: np.ones((3, 80)), 1: np.ones((2, 80))})
    >>> store.consolidate("logmel80", n_shards=1)
    >>> features = store.read("logmel80")
    >>> features.data.shape, features.offsets.tolist()
    ((5, 80), [0, 3, 5])
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ser import __version__
from ser.cache import mend, scattered, shards
from ser.cache.backend import (
    DATA,
    FORMAT,
    FORMAT_KEY,
    MANIFEST,
    RESERVED,
    TRANSCRIPTS,
    Backend,
    DamagedChunks,
    DamagedMetadata,
    check_name,
    failure_arrays,
    folder_bytes,
    read_failures,
)
from ser.cache.corpus import StoreCorpus
from ser.cache.fingerprint import BOOKKEEPING, differences, fingerprint, plain_json, provenance
from ser.cache.formats import backend_for
from ser.cache.health import StoreHealth
from ser.cache.lock import store_lock, try_lock, who
from ser.cache.manifest import Manifest
from ser.cache.placed import PlacedRows, placed_so_far
from ser.cache.repair import read_damage
from ser.cache.scattered import ScatteredWriter
from ser.cache.store_types import FeatureData, FeatureSetInfo
from ser.cache.transcripts import TranscriptSets
from ser.cache.verify import BLOCK_BYTES, RECORDED, little_bytes
from ser.corpus.registry import store_kind
from ser.errors import FingerprintMismatch, StoreError, StoreLocked
from ser.runtime.progress import BYTES, Counter, Tally
from ser.runtime.units import human_bytes

CHUNK_BYTES = 16 * 2**20  # a chunk of a large set: about this many bytes
#: A set is written in at least this many chunks where MIN_CHUNK_BYTES allows: a streamed
#: input caches a few chunks (`ser.train.placement`), so a set of one chunk (IS13's 10 MiB
#: was) could only be read whole.
STREAM_CHUNKS = 64
#: Reading a chunk costs about 0.45 ms besides its bytes (its file opened, its checksum):
#: a 16 MiB set read in 32 KiB chunks took 0.26 s of CPU, in 128 KiB ones 0.07 s, in 512
#: KiB ones 0.02 s. No set is written in chunks under this ...
MIN_CHUNK_BYTES = 256 * 2**10
#: ... and `ser store rechunk` warns under this (a streamed step then reads for seconds).
FAST_CHUNK_BYTES = 64 * 2**10
#: A complete set's attribute: the rows of its streamed plan's blocks (`block_rows`).
BLOCK_ROWS = "block_rows"


class FeatureStore(TranscriptSets, StoreHealth):
    """A feature store on disk; make one with `create` or `open`. Its transcript-set
    methods (`begin_transcripts` ...) are `TranscriptSets`' (`transcripts.py`), its checks
    and repairs (`verify_report`, `repair`, `mend` ...) `StoreHealth`'s (`health.py`)."""

    def __init__(
        self,
        backend: Backend,
        manifest: Manifest | StoreError,
        attrs: dict[str, Any],
        damaged_root: DamagedMetadata | None = None,
    ) -> None:
        self._backend = backend
        self.path: Path = backend.path
        self._manifest = manifest  # or why it cannot be read
        self.attrs = attrs
        self.damaged_root = damaged_root  # the root's own metadata (attrs: from the copy)
        self._staging = self.path.with_name(self.path.name + ".staging")

    @property
    def manifest(self) -> Manifest:
        """The manifest; StoreError naming the damage and the repair when it is damaged."""
        if isinstance(self._manifest, StoreError):
            raise mend.manifest_damage(str(self.path), self._manifest)
        return self._manifest

    @property
    def manifest_damage(self) -> StoreError | None:
        """Why the manifest cannot be read (None: it can)."""
        return self._manifest if isinstance(self._manifest, StoreError) else None

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def concurrent_sets(self) -> bool:
        """Whether threads may consolidate different feature sets at once."""
        return self._backend.concurrent_sets

    @cached_property
    def corpus(self) -> StoreCorpus:
        """The corpus the store holds: its kind, as its attrs record it, and its groups."""
        return StoreCorpus(store_kind(self.attrs), self.manifest)

    def __repr__(self) -> str:
        utts = "damaged manifest" if self.manifest_damage else f"{len(self.manifest)} utts"
        return f"FeatureStore({str(self.path)!r}, {self.backend}, {utts})"

    @classmethod
    def create(
        cls, path: str | Path, manifest: Manifest, attrs: dict[str, Any] | None = None
    ) -> FeatureStore:
        """A new store holding ``manifest``; an existing store with the same manifest is
        opened for writing (its attributes kept), one with another manifest refused."""
        backend = backend_for(Path(path).absolute(), writable=True)
        root_attrs = {**(attrs or {}), FORMAT_KEY: FORMAT, "ser_version": __version__}
        root_attrs[mend.DIGEST] = mend.manifest_digest(manifest)
        plain_json(root_attrs, "store")
        if not backend.exists():
            try:
                backend.create(manifest.columns(), root_attrs)
                return cls(backend, manifest, root_attrs)
            except FileExistsError:
                pass  # another process created it first: same checks as below
        store = cls.open(path, mode="a")
        if not store.manifest.holds(manifest):
            raise StoreError(
                f"{store.path}: store exists with another manifest "
                f"({_manifest_difference(store.manifest, manifest)}"
                f"{_classes_difference(store.attrs, root_attrs)}); use another path or delete it"
            )
        return store

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> FeatureStore:
        """Open a store: mode "r" (read-only) or "a" (read and write)."""
        if mode not in ("r", "a"):
            raise StoreError(f"store mode must be 'r' or 'a', got {mode!r}")
        backend = backend_for(Path(path).absolute(), writable=mode == "a")
        if not backend.exists():
            raise StoreError(f"{backend.path}: no feature store here")
        attrs, damaged_root = mend.root_attrs(backend)
        if FORMAT_KEY not in attrs:
            raise StoreError(f"{backend.path}: a {backend.name} file but not a ser feature store")
        if attrs[FORMAT_KEY] > FORMAT:
            raise StoreError(f"{backend.path}: written by a newer ser (format {attrs[FORMAT_KEY]})")
        if backend.writable:  # what a delete or a manifest's rebuild killed half-way left
            for trash in backend.path.parent.glob(f".{backend.path.name}.*.trash"):
                shutil.rmtree(trash, ignore_errors=True)
            for half in backend.path.glob(f".{MANIFEST}.*") if backend.path.is_dir() else ():
                shutil.rmtree(half, ignore_errors=True)
        return cls(backend, mend.read_manifest(backend), attrs, damaged_root)

    @classmethod
    def restore_root(cls, path: str | Path, attrs: dict[str, Any]) -> None:
        """Write a store's own attributes anew (from a receipt's copy) where they are
        damaged, and so is the copy its manifest keeps; nothing where they are not."""
        backend = backend_for(Path(path).absolute(), writable=True)
        try:
            mend.root_attrs(backend)
        except DamagedMetadata:
            if FORMAT_KEY not in attrs:
                raise StoreError(
                    f"{backend.path}: the copy given is no store's attributes"
                ) from None
            backend.set_root_attrs(plain_json(attrs, "store"))

    def feature_sets(self) -> list[str]:
        return self._backend.group_names()  # complete or in progress

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's lock for the ``with`` block; StoreLocked at once if another has it.
        A writer first finishes or drops what a killed rechunk left (`settle_rechunks`)."""
        with try_lock(store_lock(self.path)) as holder:
            if holder is not None:
                raise StoreLocked(
                    f"{self.path} is in use by {who(holder)}: one process writes a store at "
                    "a time; wait for it to finish or stop it"
                )
            if self._backend.writable:
                self._backend.settle_rechunks()
            yield

    def begin_feature_set(self, name: str, attrs: dict[str, Any], overwrite: bool = False) -> None:
        """Record a feature set's provenance before its shards are written; the same
        fingerprint resumes, another one is refused unless ``overwrite`` (docs/dev/store.md)."""
        self._require_writable()
        check_name(name)
        self._begin(name, provenance(attrs), f"feature set {name!r}", overwrite)

    def delete_feature_set(self, name: str) -> None:
        self._require_writable()
        if name not in self.feature_sets() and not (self._staging / name).exists():
            raise StoreError(f"{self.path}: no feature set {name!r} to delete")
        self._backend.delete_group(name)
        self._clear_staging(name)

    def shard_writer(self, name: str) -> shards.ShardWriter:
        """A picklable writer of this set's shards, for this or any other process."""
        attrs = self._attrs_of(name)
        return shards.ShardWriter(
            self._staging / name,
            attrs["fingerprint"],
            attrs["dim"],
            attrs["dtype"],
            attrs["level"],
            n_utterances=len(self.manifest),
        )

    def scattered_writer(self, name: str, counts: np.ndarray) -> ScatteredWriter | None:
        """A picklable writer of incomplete set ``name``'s shards straight into its data
        array, each row once and from any process (`scattered.py`; the chunks' bytes
        written at their place, Zarr's files or HDF5's places in its file), laid out by
        ``counts`` [n_utt] (the rows each utterance is predicted to have); None where the
        array takes no rows in place (no rows at all, or a layout written before
        checksums) or shards are staged already (a run before: laid out as they were)."""
        self._require_writable()
        attrs = self._attrs_of(name)
        staging = self._staging / name
        if attrs.get("complete") or any(staging.glob("shard-*")):
            return None
        counts = np.asarray(counts, np.int64)
        if counts.shape != (len(self.manifest),) or (counts < 0).any():
            raise ValueError(f"counts: one row count per manifest utterance, got {counts.shape}")
        chunking = functools.partial(_chunk_rows, attrs)
        return scattered.open_writer(self._backend, staging, name, attrs, counts, chunking)

    def done_shards(self, name: str) -> set[int]:
        """Ids of committed shards of an incomplete set (empty once consolidated)."""
        self._attrs_of(name)
        staging = self._staging / name
        return shards.done_shards(staging) | scattered.done_records(staging)

    def consolidate(self, name: str, n_shards: int) -> None:
        """Lay shards ``0..n_shards-1`` out contiguously in manifest order; safe to re-run
        after a crash."""
        self._require_writable()
        attrs = self._attrs_of(name)
        if attrs.get("complete"):
            self._clear_staging(name)
            return
        counts = scattered.read_predicted(self._staging / name)
        if counts is not None:  # its rows written in place: sealed
            self._seal(name, attrs, counts, n_shards)
            return
        writer = self.shard_writer(name)
        layout = shards.gather(writer, n_shards)
        dim, dtype = writer.dim, writer.dtype
        rows = int(layout.counts.sum())
        block = chunk_rows_for(rows, dim, dtype)
        self._backend.create_data(name, (rows, dim), dtype, block)
        # The checksum of the rows as they are handed over, so that verify finds what went
        # wrong from here on, in the writing too.
        digest = hashlib.sha256()
        for start, rows_here in shards.blocks(layout, writer, block):
            digest.update(little_bytes(rows_here))
            self._backend.write_blocks(name, [(start, rows_here)])
        digest_hex = digest.hexdigest()
        self._complete_set(name, attrs, layout.offsets, layout.failures, digest_hex, block)

    def _seal(self, name: str, attrs: dict[str, Any], counts: np.ndarray, n_shards: int) -> None:
        chunking = functools.partial(_chunk_rows, attrs)
        writer = scattered.open_writer(
            self._backend, self._staging / name, name, attrs, counts, chunking
        )
        if writer is None:
            raise StoreError(f"{self.path}: feature set {name!r} has no rows placed to seal")
        placed, digest, block = scattered.finish(self._backend, writer, name, n_shards, chunking)
        self._complete_set(name, attrs, placed.offsets, placed.failures, digest, block)

    def place(self, name: str, counts: np.ndarray) -> PlacedRows:
        """A writer of incomplete set ``name``'s rows straight into its data array, each
        row once (`placed.py`): ``counts`` [n_utt] the rows each utterance will have (0:
        none, a failure); it goes on from where a killed one stopped."""
        self._require_writable()
        attrs = self._attrs_of(name)
        if attrs.get("complete"):
            raise StoreError(f"{self.path}: feature set {name!r} is complete already")
        counts = np.asarray(counts, np.int64)
        if counts.shape != (len(self.manifest),) or (counts < 0).any():
            raise ValueError(f"counts: one row count per manifest utterance, got {counts.shape}")
        block = chunk_rows_for(int(counts.sum()), attrs["dim"], attrs["dtype"])

        def finish(offsets: np.ndarray, failures: dict[int, str], digest: str) -> None:
            self._complete_set(name, attrs, offsets, failures, digest, block)

        return PlacedRows(self._backend, name, attrs, counts, block, self._staging / name, finish)

    def _complete_set(
        self,
        name: str,
        attrs: dict[str, Any],
        offsets: np.ndarray,
        failures: Mapping[int, str],
        digest: str,
        block: int,
    ) -> None:
        """A set whose rows are all written made complete: its offsets and failures, the
        rows' checksum and, last, its attributes (`block`: the rows of the chunks it was
        written in, its streamed plan's blocks); then its staging goes."""
        table = failure_arrays(self.manifest.utt_ids, failures)
        self._backend.write_arrays(name, {"offsets": offsets, **table})
        done = {RECORDED: digest, BLOCK_ROWS: block, "complete": True}
        self._commit_attrs(name, {**attrs, **done})
        self._clear_staging(name)

    def read(self, name: str) -> FeatureData:
        """The whole set in one sequential read; StoreError if missing, incomplete or
        damaged (naming the rows, their utterances and the command that mends them)."""
        attrs = self._complete_attrs(name)
        try:
            offsets = self._backend.read_array(name, "offsets")
            if offsets is None:
                raise StoreError(f"{self.path}: feature set {name!r} has no offsets array")
            data = self._backend.read_data(name)
        except DamagedChunks as damaged:
            held = offsets if damaged.array.endswith("/" + DATA) else None
            recorded = "corpus_root" in self.attrs
            message = read_damage(self.path, name, self.manifest, damaged, held, recorded)
            raise StoreError(message) from None
        return FeatureData(data=data, offsets=offsets.astype(np.int64), attrs=attrs)

    def offsets(self, name: str) -> np.ndarray:
        """A complete set's offsets [n_utt + 1] int64, its rows left on disk (`read_rows`
        reads them a piece at a time)."""
        self._complete_attrs(name)
        offsets = self._backend.read_array(name, "offsets")
        if offsets is None:
            raise StoreError(f"{self.path}: feature set {name!r} has no offsets array")
        return offsets.astype(np.int64)

    def read_rows(
        self, name: str, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows ``start:stop`` of a set's data (read chunk-aligned, they are copied
        straight from its chunk files), into the first rows of `out` where given (a reader's
        buffer, used again for each read); StoreError naming damaged rows as `read` does."""
        try:
            return self._backend.read_rows(name, start, stop, out)
        except DamagedChunks as damaged:
            held = self._backend.read_array(name, "offsets")
            recorded = "corpus_root" in self.attrs
            message = read_damage(self.path, name, self.manifest, damaged, held, recorded)
            raise StoreError(message) from None

    def chunk_rows(self, name: str) -> int:
        """Rows per chunk of a set's data: the unit a streamed read takes."""
        return self._backend.chunk_rows(name)

    def block_rows(self, name: str) -> int:
        """The rows of a complete set's blocks, the unit a streamed run's batches are
        planned by (`ser.train.batches.windowed_plans`): its chunks as it was first
        written, whatever `rechunk` made of them since (a set written before they were
        recorded: the chunks it would be written in now), so that a run's batches never
        depend on the set's chunks."""
        attrs = self._complete_attrs(name)
        if BLOCK_ROWS in attrs:
            return max(1, int(attrs[BLOCK_ROWS]))
        layout = self._backend.data_layout(name)
        (rows, dim), dtype = layout if layout is not None else ((0, 1), np.dtype("float32"))
        return chunk_rows_for(rows, dim, dtype.str)

    def rechunk(self, name: str, chunk_bytes: int, bar: Counter | None = None) -> tuple[int, int]:
        """Write complete set ``name``'s data anew in chunks of about ``chunk_bytes`` (whole
        rows): the same rows, offsets, attributes and fingerprint, checked against the
        checksum recorded with them before the new array replaces the old. The old array
        stands until the new one is whole. (rows per chunk before, after). `bar`: where
        the bytes copied are shown (`ser.runtime.progress.task_bar`)."""
        self._require_writable()
        attrs = self._complete_attrs(name)
        layout = self._backend.data_layout(name)
        if layout is None:
            raise StoreError(f"{self.path}: feature set {name!r} has no data array")
        (rows, dim), dtype = layout
        before, row_bytes = self.chunk_rows(name), dim * dtype.itemsize
        if chunk_bytes < row_bytes:
            raise StoreError(
                f"{self.path}: feature set {name!r}: a chunk of {human_bytes(chunk_bytes)} is "
                f"under one row ({human_bytes(row_bytes)}); give at least that"
            )
        after = chunk_rows_for(rows, dim, dtype.str, chunk_bytes)
        if after != before and rows:
            step = after * max(1, BLOCK_BYTES // (after * row_bytes))  # whole new chunks
            tally = Tally(bar, name, rows * row_bytes, BYTES)
            blocks = self._checked_blocks(name, rows, step, attrs.get(RECORDED), tally)
            self._backend.rechunk_data(name, after, blocks)
            tally.finish()
        return before, after

    def _checked_blocks(
        self, name: str, rows: int, step: int, recorded: str | None, tally: Tally
    ) -> Iterator[tuple[int, np.ndarray]]:
        """The set's rows in blocks of ``step`` (`tally` told each one's bytes once the
        block before is written); StoreError after the last when they are not the rows
        whose checksum was recorded (nothing is swapped in then)."""
        digest = hashlib.sha256()
        for start in range(0, rows, step):
            block = self.read_rows(name, start, min(start + step, rows))
            digest.update(little_bytes(block))
            yield start, block
            tally.advance(block.nbytes)
        if recorded is not None and digest.hexdigest() != recorded:
            raise StoreError(
                f"{self.path}: feature set {name!r}: its rows differ from their recorded "
                f"checksum, so it is left as it was; `ser store verify {self.path}` says "
                "what mends it"
            )

    def failures(self, name: str) -> list[tuple[str, str]]:
        self._complete_attrs(name)
        return read_failures(self._backend, name)

    def info(self, name: str) -> FeatureSetInfo:
        attrs = self._attrs_of(name)
        complete = bool(attrs.get("complete"))
        nbytes = self._backend.nbytes(name) + folder_bytes(self._staging / name)
        if complete:
            layout = self._backend.data_layout(name)
            rows = layout[0][0] if layout else 0
            # The table's length, not its chunks: info answers for a damaged set too.
            n_failed, n_shards = self._backend.array_length(name, "failures_utt_id") or 0, 0
        else:
            staging = self._staging / name
            rows, n_failed, n_shards = shards.staged_summary(staging)
            written, rejected = placed_so_far(staging)  # an import under way
            held, failed, placed = scattered.placed_summary(staging)  # an extraction's
            rows, n_failed = rows + written + held, n_failed + rejected + failed
            n_shards += placed
        described = {k: attrs[k] for k in ("modality", "level", "dim", "dtype", "fingerprint")}
        return FeatureSetInfo(
            name=name,
            rows=rows,
            bytes=nbytes,
            complete=complete,
            failures=n_failed,
            attrs=attrs,
            staged_shards=n_shards,
            **described,
        )

    def _begin(self, group: str, prov: dict[str, Any], what: str, overwrite: bool) -> None:
        """Resume a set of the same fingerprint, else (``overwrite``) replace it: its old
        data and staged work go, and so does work staged for a set no longer there. A set
        whose metadata is damaged is replaced with ``overwrite``, begun again where it holds
        nothing complete (its shards of this fingerprint kept), else refused (`mend` it)."""
        begun = {**prov, "fingerprint": fingerprint(prov), "complete": False}
        try:
            stored = self._backend.group_attrs(group)
        except DamagedMetadata:
            if not (overwrite or self._unfinished(group)):
                raise
            self._backend.delete_group(group)
            shards.keep_only(self._staging / group, begun["fingerprint"])
            self._backend.set_group_attrs(group, begun)
            return
        if stored is not None:
            old = {k: v for k, v in stored.items() if k not in BOOKKEEPING}
            if fingerprint(old) == fingerprint(prov):
                return
            if not overwrite:
                raise FingerprintMismatch(
                    f"{self.path}: {what} exists with other settings ("
                    + "; ".join(differences(old, prov))
                    + "); pass --overwrite to replace it, or use another store"
                )
            self._backend.delete_group(group)
        self._clear_staging(group)
        self._backend.set_group_attrs(group, begun)

    def _unfinished(self, group: str) -> bool:
        """A set (damaged metadata) that holds no array, nor a copy of its attributes."""
        return mend.copied_attrs(self._backend, group) is None and not self._backend.array_names(
            group
        )

    def _commit_attrs(self, group: str, attrs: dict[str, Any]) -> None:
        """A complete set's attributes: the copy its main array keeps first, then its own
        (`mend.py`)."""
        self._backend.set_array_attrs(group, mend.copy_key(group), attrs)
        self._backend.set_group_attrs(group, attrs)

    def _attrs_of(self, name: str) -> dict[str, Any]:
        attrs = self._backend.group_attrs(name) if name not in RESERVED else None
        if attrs is None:
            have = ", ".join(self.feature_sets()) or "none"
            raise StoreError(f"{self.path}: no feature set {name!r} (feature sets: {have})")
        return attrs

    def _complete_attrs(self, name: str) -> dict[str, Any]:
        return self._complete(self._attrs_of(name), f"feature set {name!r}")

    def _complete(self, attrs: dict[str, Any], what: str) -> dict[str, Any]:
        if not attrs.get("complete"):
            raise StoreError(
                f"{self.path}: {what} is incomplete; run the extraction again to finish it"
            )
        return attrs

    def _require_writable(self) -> None:
        if not self._backend.writable:
            raise StoreError(f"{self.path}: store is open read-only (open it with mode='a')")

    def _clear_staging(self, name: str) -> None:
        shutil.rmtree(self._staging / name, ignore_errors=True)
        # Empty parents too (``transcripts/<name>`` leaves ``transcripts/``), then the root.
        # rmdir alone, no look first: another set's consolidation (a thread beside this one)
        # may remove the folder, or stage into it again, between a look and the removal.
        for folder in (self._staging / TRANSCRIPTS, self._staging):
            with contextlib.suppress(OSError):  # gone already, or not empty
                folder.rmdir()


def chunk_bytes_for(set_bytes: int) -> int:
    """About how many bytes a chunk of a set of `set_bytes` is written in (by extraction
    and import alike): `CHUNK_BYTES`, or less, so that the set has `STREAM_CHUNKS` chunks
    and streams under a budget smaller than itself, never under `MIN_CHUNK_BYTES`.

    >>> [chunk_bytes_for(n) // 2**10 for n in (2**20, 10 * 2**20, 2**30, 2**40)]
    [256, 256, 16384, 16384]
    """
    # The constants looked up now: tests set them.
    return min(CHUNK_BYTES, max(MIN_CHUNK_BYTES, set_bytes // STREAM_CHUNKS))


def chunk_rows_for(rows: int, dim: int, dtype: str, chunk_bytes: int | None = None) -> int:
    """Rows per chunk: about `chunk_bytes` (None: `chunk_bytes_for` the set), evened out
    so the padded last chunk is small."""
    row_bytes = dim * np.dtype(dtype).itemsize
    size = chunk_bytes_for(rows * row_bytes) if chunk_bytes is None else chunk_bytes
    target = max(1, size // max(row_bytes, 1))
    n_chunks = max(1, -(-rows // target))
    return max(1, -(-rows // n_chunks))


def _chunk_rows(attrs: Mapping[str, Any], rows: int) -> int:
    return chunk_rows_for(rows, attrs["dim"], attrs["dtype"])


def _classes_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Where the stores' class sets explain it: which the store holds."""
    held, asked = old.get("classes"), new.get("classes")
    if held is None or asked is None or held == asked:
        return ""
    return f"; it holds class set {held}, this asks for {asked}: give --classes {held}"


def _manifest_difference(old: Manifest, new: Manifest) -> str:
    if len(old) != len(new):
        return f"{len(old)} utterances here, {len(new)} given"
    return "columns differ: " + ", ".join(old.differences(new))
