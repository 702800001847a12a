"""HDF5 file backend.

Every dataset is chunked with the Fletcher-32 filter, which HDF5 checks on each read:
``data`` in chunks of ``chunk_rows`` whole rows (a full read is still one
``read_direct``), text as fixed-length UTF-8 so that the checksum covers the text itself
(variable-length strings live outside the chunks). Files written before hold a
contiguous ``data`` and variable-length text without checksums, and read as they are.
The file is open only for one short, flushed operation, so others can read between our
writes; the rows `ser extract` places go into their chunks' places in the file without
HDF5 (`raw_chunks.Hdf5Chunks`: a dataset created with its chunks allocated). Attributes
are one JSON string each, so they round-trip exactly; persistent free-space tracking lets
``--overwrite`` reuse the old set's space.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ser.cache import backend
from ser.cache.backend import (
    DATA,
    MANIFEST,
    RESERVED,
    TRANSCRIPTS,
    DamagedChunks,
    DamagedMetadata,
    StoreUnreadable,
)
from ser.cache.hdf5_file import is_locked, unreadable
from ser.cache.lock import store_lock, who, writer
from ser.cache.raw_chunks import Hdf5Chunks, allocated_plist, hdf5_chunks
from ser.errors import DiskFullError, StoreError, StoreLocked

ATTRS = "ser"
# A repair's new ``data``, swapped in when written whole (what a killed repair left is
# dropped by the next one).
REPAIRING = "data.repairing"
# A rechunk's new ``data``, swapped in when written whole (what a killed one left is
# dropped by the next one).
REBUILDING = "data.rechunking"


class Hdf5Backend:
    name = "hdf5"
    concurrent_sets = False

    def __init__(self, path: Path, writable: bool) -> None:
        self.path = path
        self.writable = writable

    def exists(self) -> bool:
        return self.path.is_file()

    def create(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        # Built aside and renamed into place: a store is either whole or absent.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.creating")
        try:
            with h5py.File(tmp, "w", fs_strategy="fsm", fs_persist=True) as f:
                columns = f.create_group(MANIFEST)
                columns.attrs[ATTRS] = json.dumps(attrs)  # the root's, copied
                for key, values in manifest.items():
                    _write_small(columns, key, values)
                f.attrs[ATTRS] = json.dumps(attrs)
            # link() never replaces: a store another process just made is kept.
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                raise
            except OSError as err:
                raise StoreError(f"{self.path}: cannot create a store there ({err})") from None
        finally:
            tmp.unlink(missing_ok=True)

    def root_attrs(self) -> dict[str, Any]:
        with self._open() as f:
            return self._attrs(f, "")

    def set_root_attrs(self, attrs: dict[str, Any]) -> None:
        with self._open(write=True) as f:
            f.attrs[ATTRS] = json.dumps(attrs)

    def read_manifest(self) -> dict[str, np.ndarray]:
        with self._open() as f:
            if MANIFEST not in f:
                raise StoreError(f"{self.path}: the manifest is missing")
            group = f[MANIFEST]
            return {key: self._read_small(group[key]) for key in sorted(group)}

    def replace_manifest(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        with self._open(write=True) as f:  # built beside the old one, then swapped in
            new = f.create_group(f".{MANIFEST}.{uuid.uuid4().hex}")  # no set's name
            new.attrs[ATTRS] = json.dumps(attrs)
            for key, values in manifest.items():
                _write_small(new, key, values)
            if MANIFEST in f:
                del f[MANIFEST]
            f.move(new.name, MANIFEST)

    def group_names(self, parent: str | None = None) -> list[str]:
        with self._open() as f:
            if parent is None:
                return sorted(
                    k
                    for k in f
                    if not k.startswith(".") and k not in RESERVED and isinstance(f[k], h5py.Group)
                )
            if parent not in f:
                return []
            group = f[parent]
            return sorted(k for k in group if isinstance(group[k], h5py.Group))

    def group_attrs(self, name: str) -> dict[str, Any] | None:
        with self._open() as f:
            return self._attrs(f[name], name) if name in f else None

    def set_group_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        with self._open(write=True) as f:
            group = f.require_group(name)
            group.attrs[ATTRS] = json.dumps(attrs)

    def restore_group_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        self.set_group_attrs(name, attrs)

    def array_attrs(self, name: str, key: str) -> dict[str, Any] | None:
        with self._open() as f:
            group = f.get(name, {})
            return self._attrs(group[key], name) if key in group else None

    def set_array_attrs(self, name: str, key: str, attrs: dict[str, Any]) -> None:
        with self._open(write=True) as f:
            f[name][key].attrs[ATTRS] = json.dumps(attrs)

    def restore_data(self, name: str, shape: tuple[int, int], dtype: str) -> None:
        raise StoreError(f"{self.path}: {name}/{DATA}: HDF5 keeps no metadata to write anew")

    def damaged_metadata(self) -> list[DamagedMetadata]:
        found = []
        with self._open() as f:
            groups: list[tuple[str, h5py.Group]] = [("", f)]
            groups += [(k, f[k]) for k in f if isinstance(f[k], h5py.Group)]
            if TRANSCRIPTS in f:
                groups += [(f"{TRANSCRIPTS}/{k}", g) for k, g in f[TRANSCRIPTS].items()]
            for part, group in groups:
                try:
                    self._attrs(group, part)
                except DamagedMetadata as error:
                    found.append(error)
        return found

    def delete_group(self, name: str) -> None:
        with self._open(write=True) as f:
            if name in f:
                del f[name]

    def write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        with self._open(write=True) as f:
            group = f[name]
            for key, values in arrays.items():
                if key in group:
                    del group[key]
                _write_small(group, key, values)

    def array_names(self, name: str) -> list[str]:
        with self._open() as f:
            group = f.get(name, {})
            return sorted(k for k in group if isinstance(group[k], h5py.Dataset))

    def read_array(self, name: str, key: str) -> np.ndarray | None:
        with self._open() as f:
            group = f[name]
            return self._read_small(group[key]) if key in group else None

    def array_length(self, name: str, key: str) -> int | None:
        with self._open() as f:
            group = f[name]
            return len(group[key]) if key in group else None

    def create_data(
        self, name: str, shape: tuple[int, int], dtype: str, chunk_rows: int, in_place: bool = False
    ) -> None:
        with self._open(write=True) as f:
            group = f[name]
            if DATA in group:
                del group[DATA]
            chunks = (max(1, chunk_rows), shape[1])
            _create_data(group, DATA, shape, dtype, chunks, allocated=in_place)

    def write_blocks(self, name: str, blocks: Iterable[tuple[int, np.ndarray]]) -> None:
        with self._open(write=True) as f:
            data = f[name][DATA]
            for start, block in blocks:
                data[start : start + len(block)] = block

    def trim_data(self, name: str, rows: int) -> None:
        with self._open(write=True) as f:
            group = f[name]
            data = group[DATA]
            if data.maxshape[0] is None:  # chunked: resizable (`_create_data`)
                data.resize(rows, axis=0)
                return
            # Contiguous (the layout of stores written before checksums): copied anew.
            kept, attrs = data[:rows], dict(data.attrs)
            del group[DATA]
            new = _create_data(group, DATA, kept.shape, kept.dtype.str, kept.shape)
            new[...] = kept
            new.attrs.update(attrs)

    def repair_rows(self, name: str, runs: Sequence[tuple[int, np.ndarray]]) -> None:
        with self._open(write=True) as f:
            group = f[name]
            old = group[DATA]
            if not old.fletcher32:  # written before checksums: in place
                for start, rows in runs:
                    old[start : start + len(rows)] = rows
                return
            # HDF5 reads a filtered chunk before writing over it, even whole, and a
            # damaged one fails that read: the array is written anew beside and swapped in.
            if REPAIRING in group:
                del group[REPAIRING]
            new = _create_data(group, REPAIRING, old.shape, old.dtype.str, old.chunks)
            step = old.chunks[0]
            for lo in range(0, old.shape[0], step):
                hi = min(lo + step, old.shape[0])
                new[lo:hi] = self._patched(old, f"{name}/{DATA}", lo, hi, runs)
            del group[DATA]
            group.move(REPAIRING, DATA)

    def rechunk_data(
        self,
        name: str,
        chunk_rows: int,
        blocks: Iterable[tuple[int, np.ndarray]],
        rows: int | None = None,
    ) -> None:
        with self._open(write=True) as f:
            group = f[name]
            if REBUILDING in group:  # a killed rechunk's
                del group[REBUILDING]
            old = group[DATA]
            chunks = (chunk_rows, old.shape[1])
            shape = (old.shape[0] if rows is None else rows, old.shape[1])
            new = _create_data(group, REBUILDING, shape, old.dtype.str, chunks)
            for key, value in old.attrs.items():  # the copy of the set's attributes
                new.attrs[key] = value
        # One short open a block, as every write here: readers get the file between them,
        # and a kill leaves a flushed file whose old ``data`` is whole.
        for start, block in blocks:
            with self._open(write=True) as f:
                f[name][REBUILDING][start : start + len(block)] = block
        with self._open(write=True) as f:
            group = f[name]
            del group[DATA]
            group.move(REBUILDING, DATA)

    def settle_rechunks(self) -> None:
        pass  # the swap is one operation; a half-written array is dropped by the next rechunk

    def direct_chunks(self, name: str) -> Hdf5Chunks | None:
        # Each chunk's place in the file, where it was allocated at the set's creation.
        with self._open() as f:
            return hdf5_chunks(self.path, f[name][DATA])

    def data_layout(self, name: str) -> tuple[tuple[int, int], np.dtype] | None:
        with self._open() as f:
            group = f[name]
            if DATA not in group:
                return None
            data = group[DATA]
            return (int(data.shape[0]), int(data.shape[1])), np.dtype(data.dtype)

    def chunk_rows(self, name: str) -> int:
        with self._open() as f:
            data = f[name][DATA]
            return int(data.chunks[0]) if data.chunks else max(1, int(data.shape[0]))

    def read_data(self, name: str) -> np.ndarray:
        with self._open() as f:
            data = f[name][DATA]
            return self._read_rows(data, f"{name}/{DATA}", 0, data.shape[0])

    def read_rows(
        self, name: str, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        with self._open() as f:
            return self._read_rows(f[name][DATA], f"{name}/{DATA}", start, stop, out)

    def nbytes(self, name: str) -> int:
        with self._open() as f:  # a set's group holds datasets only (names have no "/")
            return sum(node.id.get_storage_size() for node in f[name].values())

    @contextlib.contextmanager
    def _open(self, write: bool = False) -> Iterator[h5py.File]:
        """The file, open for one operation; HDF5's failures inside it (a damaged object
        header, B-tree...) are a StoreError naming the file, a full disk aside."""
        opened = self._file(write)
        try:
            with opened:
                yield opened
        except OSError as err:
            if DiskFullError.of(err, self.path, "the store") is not None:
                raise
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise StoreError(f"{self.path}: HDF5 cannot read part of the store ({first})") from None

    def _file(self, write: bool) -> h5py.File:
        if write and not self.writable:
            raise StoreError(f"{self.path}: store is open read-only")
        try:
            return h5py.File(self.path, "r+" if write else "r")
        except FileNotFoundError:
            raise StoreError(f"{self.path}: no feature store here") from None
        except OSError as err:
            if is_locked(err):
                holder = writer(store_lock(self.path))  # ser's own writers say who they are
                by = "another process" if holder is None else who(holder)
                raise StoreLocked(
                    f"{self.path}: the file is being written by {by}; try again when it "
                    "has finished"
                ) from None
            raise StoreUnreadable(self.path, unreadable(self.path, err)) from None

    def _attrs(self, node: h5py.Group | h5py.Dataset, part: str) -> dict[str, Any]:
        text = node.attrs.get(ATTRS)  # str, or UTF-8 bytes (json reads both)
        where = str(node.name).strip("/")
        try:
            attrs = {} if text is None else json.loads(text)
        except ValueError as err:
            reason = f"holds attributes of /{where} that are not JSON ({err})"
            raise DamagedMetadata(self.path, part, self.path, reason, where) from None
        if not isinstance(attrs, dict):
            reason = f"holds attributes of /{where} that are no JSON object"
            raise DamagedMetadata(self.path, part, self.path, reason, where)
        return attrs

    def _read_rows(
        self,
        data: h5py.Dataset,
        where: str,
        start: int,
        stop: int,
        into: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``start:stop`` in one ``read_direct`` (into the first rows of `into` where
        given); DamagedChunks naming each chunk that fails its checksum."""
        shape = (stop - start, *data.shape[1:])
        out = np.empty(shape, data.dtype) if into is None else into[: shape[0]]
        if not out.size:
            return out
        try:
            data.read_direct(out, source_sel=np.s_[start:stop])
        except OSError as err:
            spans = _damaged_spans(data, start, stop)
            if not spans:
                raise StoreError(f"{self.path}: {where}: cannot be read ({err})") from None
            raise DamagedChunks(self.path, where, spans) from None
        return out

    def _read_small(self, dataset: h5py.Dataset) -> np.ndarray:
        where = dataset.name.lstrip("/")
        try:
            if h5py.check_string_dtype(dataset.dtype) is not None:
                return np.array(dataset.asstr()[...].tolist(), dtype=np.str_)
            return np.asarray(dataset[...])
        except OSError as err:
            spans = _damaged_spans(dataset, 0, len(dataset))
            if not spans:
                raise StoreError(f"{self.path}: {where}: cannot be read ({err})") from None
            raise DamagedChunks(self.path, where, spans) from None

    def _patched(
        self,
        old: h5py.Dataset,
        where: str,
        lo: int,
        hi: int,
        runs: Sequence[tuple[int, np.ndarray]],
    ) -> np.ndarray:
        """Rows ``lo:hi``: the runs' where they reach, else the stored ones (read only
        when some row needs them: a damaged chunk the runs cover whole is never read)."""
        block = np.empty((hi - lo, *old.shape[1:]), old.dtype)
        covered = np.zeros(hi - lo, bool)
        for start, rows in runs:
            a, b = max(lo, start), min(hi, start + len(rows))
            if a < b:
                block[a - lo : b - lo] = rows[a - start : b - start]
                covered[a - lo : b - lo] = True
        if not covered.all():
            stored = self._read_rows(old, where, lo, hi)
            block[~covered] = stored[~covered]
        return block


def _create_data(
    group: h5py.Group,
    key: str,
    shape: tuple[int, ...],
    dtype: str,
    chunks: tuple[int, ...],
    allocated: bool = False,
) -> h5py.Dataset:
    """`allocated`: every chunk given its place in the file now (`raw_chunks.Hdf5Chunks`)."""
    if not backend.CHUNK_CHECKSUMS or not shape[0]:  # HDF5 chunks no empty dataset
        return group.create_dataset(key, shape=shape, dtype=dtype)
    # Resizable along the rows: a set written in place is cut to the rows it kept.
    maxshape = (None, *shape[1:])
    plist = allocated_plist() if allocated else None
    return group.create_dataset(
        key,
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        fletcher32=True,
        maxshape=maxshape,
        dcpl=plist,
    )


def _write_small(group: h5py.Group, key: str, values: np.ndarray) -> None:
    if not backend.CHUNK_CHECKSUMS:  # the layout of stores written before
        if values.dtype.kind == "U":  # h5py stores Python strings, not numpy's fixed text
            text = values.astype(object)
            group.create_dataset(key, data=text, dtype=h5py.string_dtype("utf-8"))
        else:
            group.create_dataset(key, data=values)
        return
    if values.dtype.kind == "U":  # fixed-length UTF-8, inside the checksummed chunks
        encoded = np.char.encode(values, "utf-8")
        values = encoded.astype(h5py.string_dtype("utf-8", max(1, encoded.dtype.itemsize)))
    group.create_dataset(key, data=values, fletcher32=True)


def _damaged_spans(dataset: h5py.Dataset, start: int, stop: int) -> list[tuple[int, int]]:
    """[start, stop) rows of each chunk in ``start:stop`` that HDF5 cannot read back."""
    rows = dataset.shape[0]
    step = dataset.chunks[0] if dataset.chunks else max(1, rows)
    spans = []
    for lo in range(start - start % step, stop, step):
        hi = min(lo + step, rows)
        try:
            dataset[lo:hi]
        except OSError:
            spans.append((lo, hi))
    return spans
