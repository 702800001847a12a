"""FeatureStore: one corpus manifest and many feature sets, in Zarr or HDF5.

Writing goes through staging so that any process can contribute and a killed run loses
nothing: workers commit shards with a `ShardWriter`; ``consolidate`` lays them out in
manifest order, records their checksum, marks the set complete (last) and only then drops
the staging folder. Every chunk carries its own checksum (`backend.py`): a read of a
damaged one is a `StoreError` naming the rows, the utterances and the repair command, and
`repair` writes re-extracted utterances back over them (`repair.py`).

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
import hashlib
import shutil
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ser import __version__
from ser.cache import shards
from ser.cache.backend import (
    DATA,
    FORMAT,
    FORMAT_KEY,
    RESERVED,
    TRANSCRIPTS,
    Backend,
    DamagedChunks,
    check_name,
    failure_arrays,
    folder_bytes,
    read_failures,
)
from ser.cache.corpus import StoreCorpus
from ser.cache.fingerprint import BOOKKEEPING, differences, fingerprint, plain_json, provenance
from ser.cache.formats import backend_for
from ser.cache.lock import try_lock
from ser.cache.manifest import Manifest
from ser.cache.repair import corpus_argument, read_damage, repair_command, repair_runs
from ser.cache.store_types import Damage, FeatureData, FeatureSetInfo, VerifyReport
from ser.cache.transcripts import TranscriptSets
from ser.cache.verify import RECORDED, Health, check_feature_set, little_bytes
from ser.corpus.registry import store_kind
from ser.errors import FingerprintMismatch, StoreError, StoreLocked

CHUNK_BYTES = 16 * 2**20  # rows per chunk/block: about this many bytes


class FeatureStore(TranscriptSets):
    """A feature store on disk; make one with `create` or `open`. Its transcript-set
    methods (`begin_transcripts` ...) are `TranscriptSets`' (`transcripts.py`)."""

    def __init__(self, backend: Backend, manifest: Manifest, attrs: dict[str, Any]) -> None:
        self._backend = backend
        self.path: Path = backend.path
        self.manifest = manifest
        self.attrs = attrs
        self._staging = self.path.with_name(self.path.name + ".staging")

    @property
    def backend(self) -> str:
        return self._backend.name

    @cached_property
    def corpus(self) -> StoreCorpus:
        """The corpus the store holds: its kind, as its attrs record it, and its groups."""
        return StoreCorpus(store_kind(self.attrs), self.manifest)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, {self.backend}, {len(self.manifest)} utts)"

    @classmethod
    def create(
        cls, path: str | Path, manifest: Manifest, attrs: dict[str, Any] | None = None
    ) -> FeatureStore:
        """A new store holding ``manifest``; an existing store with the same manifest is
        opened for writing (its attributes kept), one with another manifest refused."""
        backend = backend_for(Path(path).absolute(), writable=True)
        root_attrs = {**(attrs or {}), FORMAT_KEY: FORMAT, "ser_version": __version__}
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
                f"({_manifest_difference(store.manifest, manifest)}); "
                "use another path or delete it"
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
        attrs = backend.root_attrs()
        if FORMAT_KEY not in attrs:
            raise StoreError(f"{backend.path}: a {backend.name} file but not a ser feature store")
        if attrs[FORMAT_KEY] > FORMAT:
            raise StoreError(f"{backend.path}: written by a newer ser (format {attrs[FORMAT_KEY]})")
        if backend.writable:  # what a delete killed half-way left beside it (zarr_backend)
            for trash in backend.path.parent.glob(f".{backend.path.name}.*.trash"):
                shutil.rmtree(trash, ignore_errors=True)
        return cls(backend, Manifest(backend.read_manifest()), attrs)

    def feature_sets(self) -> list[str]:
        return self._backend.group_names()  # complete or in progress

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's lock for the ``with`` block; StoreLocked at once if another has it."""
        with try_lock(self.path.with_name(self.path.name + ".lock")) as holder:
            if holder is not None:
                who = f" (pid {holder})" if holder else ""
                raise StoreLocked(
                    f"{self.path} is in use by another ser process{who}: only one extraction "
                    "may write a store at a time; wait for it to finish or stop it"
                )
            yield

    def begin_feature_set(self, name: str, attrs: dict[str, Any], overwrite: bool = False) -> None:
        """Record a feature set's provenance before its shards are written; the same
        fingerprint resumes, another one is refused unless ``overwrite`` (docs/CONTRACTS.md)."""
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

    def done_shards(self, name: str) -> set[int]:
        """Ids of committed shards of an incomplete set (empty once consolidated)."""
        self._attrs_of(name)
        return shards.done_shards(self._staging / name)

    def consolidate(self, name: str, n_shards: int) -> None:
        """Lay shards ``0..n_shards-1`` out contiguously in manifest order; safe to re-run
        after a crash."""
        self._require_writable()
        attrs = self._attrs_of(name)
        if attrs.get("complete"):
            self._clear_staging(name)
            return
        writer = self.shard_writer(name)
        layout = shards.gather(writer, n_shards)
        dim, dtype = writer.dim, writer.dtype
        rows = int(layout.counts.sum())
        block = _chunk_rows(rows, dim, dtype)
        self._backend.create_data(name, (rows, dim), dtype, block)
        # The checksum of the rows as they are handed over, so that verify finds what went
        # wrong from here on, in the writing too.
        digest = hashlib.sha256()
        for start, rows_here in shards.blocks(layout, writer, block):
            digest.update(little_bytes(rows_here))
            self._backend.write_blocks(name, [(start, rows_here)])
        failures = failure_arrays(self.manifest.utt_ids, layout.failures)
        self._backend.write_arrays(name, {"offsets": layout.offsets, **failures})
        recorded = {RECORDED: digest.hexdigest()}
        self._backend.set_group_attrs(name, {**attrs, **recorded, "complete": True})
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
            command = repair_command(self.path, name, attrs, corpus_argument(self.attrs))
            message = read_damage(self.path, name, self.manifest, damaged, held, command)
            raise StoreError(message) from None
        return FeatureData(data=data, offsets=offsets.astype(np.int64), attrs=attrs)

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
            rows, n_failed, n_shards = shards.staged_summary(self._staging / name)
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

    def verify(self) -> list[str]:
        """Problems found (empty = healthy): chunk and content checksums, offsets,
        NaN/Inf, completeness, failures."""
        return self.verify_report().problems

    def verify_report(self) -> VerifyReport:
        """`verify` with each set's checksum as read and as recorded, and its damage."""
        report = VerifyReport(problems=[], checksums={})
        for name in self.feature_sets():
            attrs = self._attrs_of(name)
            found = check_feature_set(self._backend, self.manifest, name, attrs)
            report.problems.extend(found.problems)
            report.checksums[name] = found.checksum
            if attrs.get("complete"):
                report.recorded[name] = found.recorded
            if found.damage:
                report.damaged[name] = found.damage
        for name in self.transcript_sets():
            report.problems.extend(self.check_transcripts(name))
        return report

    def checksum(self, name: str) -> str:
        """sha256 of the data bytes (little-endian, C order) in manifest order."""
        self._complete_attrs(name)
        found = self._health(name)
        if found.checksum is None:
            raise StoreError(f"{self.path}: " + "; ".join(found.problems))
        return found.checksum

    def damage(self, name: str) -> Damage:
        """What of complete set ``name`` is damaged (falsy when nothing is)."""
        self._complete_attrs(name)
        return self._health(name).damage

    def repair_command(self, name: str) -> str:
        """The command that mends set ``name`` (`ser extract ... --repair`)."""
        return repair_command(self.path, name, self._attrs_of(name), corpus_argument(self.attrs))

    def begin_repair(self, name: str) -> Damage:
        """The damage of complete set ``name`` (`damage`), made ready for its repair: what
        an earlier repair staged is dropped (a repair extracts afresh), and a set damaged
        ``whole`` is deleted, to be begun and extracted again."""
        self._require_writable()
        damage = self.damage(name)
        if damage.whole:
            self.delete_feature_set(name)
        else:
            self._clear_staging(name)
        return damage

    def repair(self, name: str, damage: Damage) -> bool | None:
        """Write the damaged utterances' rows, re-extracted into this set's staged shards,
        over the stored ones; check the set again. True: its bytes are those recorded when
        it was completed; False: they differ (extracted elsewhere, in other batches), and
        their checksum is recorded now; None: a set written before checksums were."""
        self._require_writable()
        attrs = self._complete_attrs(name)
        if damage.whole or not damage.utterances:
            raise StoreError(f"{self.path}: feature set {name!r}: nothing a repair can mend")
        offsets = self._backend.read_array(name, "offsets")
        if offsets is None:
            raise StoreError(f"{self.path}: feature set {name!r} has no offsets array")
        writer = self.shard_writer(name)
        runs = repair_runs(writer, offsets, damage.utterances, self.manifest)
        self._backend.repair_rows(name, runs)
        after = check_feature_set(self._backend, self.manifest, name, attrs)
        if after.damage.utterances or (after.damage.whole and after.checksum is None):
            raise StoreError(
                f"{self.path}: feature set {name!r} is still damaged after its repair: "
                + "; ".join(after.problems)
            )
        self._clear_staging(name)
        if after.recorded is None or after.checksum is None:
            return None
        if after.checksum == after.recorded:
            return True
        self._backend.set_group_attrs(name, {**attrs, RECORDED: after.checksum})
        return False

    def _health(self, name: str) -> Health:
        return check_feature_set(self._backend, self.manifest, name, self._attrs_of(name))

    def _begin(self, group: str, prov: dict[str, Any], what: str, overwrite: bool) -> None:
        """Resume a set of the same fingerprint, else (``overwrite``) replace it: its old
        data and staged work go, and so does work staged for a set no longer there."""
        stored = self._backend.group_attrs(group)
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
        self._backend.set_group_attrs(
            group, {**prov, "fingerprint": fingerprint(prov), "complete": False}
        )

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
        for folder in (self._staging / TRANSCRIPTS, self._staging):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _chunk_rows(rows: int, dim: int, dtype: str) -> int:
    """Rows per chunk: about CHUNK_BYTES, evened out so the padded last chunk is small."""
    target = max(1, CHUNK_BYTES // (dim * np.dtype(dtype).itemsize))
    n_chunks = max(1, -(-rows // target))
    return max(1, -(-rows // n_chunks))


def _manifest_difference(old: Manifest, new: Manifest) -> str:
    if len(old) != len(new):
        return f"{len(old)} utterances here, {len(new)} given"
    return "columns differ: " + ", ".join(old.differences(new))
