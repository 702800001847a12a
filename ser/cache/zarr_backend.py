"""Zarr v3 directory backend.

``data`` is stored uncompressed in chunks of whole rows, each followed by its crc32c
(the codec after the bytes codec: a chunk file is its raw bytes and 4 bytes of checksum),
so a full read copies each chunk file straight into the output and checks its crc there
(zarr's generic path decodes and copies again); any other layout falls back to
``array[...]``. Small arrays are zstd-compressed, then crc32c'd: the checksum is of the
bytes on disk, checked before anything is decompressed. Zarr writes each key by temp file
and rename: a killed writer leaves no half-written ``zarr.json`` or chunk (a copy onto a full
disk may: each node is opened by itself, its metadata checked first, `zarr_nodes.py`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ZstdCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import LocalStore

from ser.cache import backend
from ser.cache.backend import DATA, MANIFEST, RESERVED, DamagedChunks, folder_bytes
from ser.cache.raw_chunks import ZarrChunks
from ser.cache.zarr_nodes import (
    METADATA,
    attributes,
    children,
    damaged,
    damaged_metadata,
    is_node,
    metadata,
    open_node,
    quiet_zarr_tasks,
)
from ser.errors import StoreError

# A rechunk's new ``data`` is built in a hidden folder (no node), renamed whole when every
# row is in it, then swapped in for the old (itself renamed aside, then removed): a kill at
# any point leaves the old array or the whole new one, which the next holder of the store's
# lock puts in place (`settle_rechunks`; reads find it meanwhile).
REBUILDING = f".{DATA}.rechunking"
REBUILT = f".{DATA}.rechunked"
RETIRED = f".{DATA}.retired"


class ZarrBackend:
    name = "zarr"
    concurrent_sets = True

    def __init__(self, path: Path, writable: bool) -> None:
        self.path = path
        self.writable = writable
        # A reader's sets' data, opened once while their metadata file is the same one: a
        # stream reads a set a chunk at a time, and opening it again each time cost about
        # as much as reading a 4 MB chunk.
        self._opened: dict[str, tuple[tuple[int, ...], _Stored]] = {}
        quiet_zarr_tasks()

    def exists(self) -> bool:
        # A store whose own zarr.json is lost is still one (its manifest holds a copy).
        return any((self.path / rel / METADATA).is_file() for rel in ("", MANIFEST))

    def create(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        # Built aside and renamed into place: a store is either whole or absent.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.creating")
        try:
            root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            columns = root.create_group(MANIFEST, attributes=attrs)  # the root's, copied
            for key, values in manifest.items():
                _write_small(columns, key, values)
            root.attrs.put(attrs)
            try:
                os.rename(tmp, self.path)  # replaces an empty directory, never a full one
            except OSError as err:
                if self.exists():  # another process made it meanwhile
                    raise FileExistsError(self.path) from None
                raise StoreError(f"{self.path}: cannot create a store there ({err})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def root_attrs(self) -> dict[str, Any]:
        return attributes(self.path, "")

    def set_root_attrs(self, attrs: dict[str, Any]) -> None:
        self.restore_group_attrs("", attrs)

    def read_manifest(self) -> dict[str, np.ndarray]:
        keys = children(self.path, MANIFEST)
        return {key: _read_small(self._stored(MANIFEST, key)) for key in keys}

    def replace_manifest(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        # Written whole beside the old one, then swapped in (a hidden folder is no node).
        new = f".{MANIFEST}.{uuid.uuid4().hex}"
        self.restore_group_attrs(new, attrs)
        columns = open_node(self.path, new, zarr.Group, writable=True)
        for key, values in manifest.items():
            _write_small(columns, key, values)
        self.delete_group(MANIFEST)
        os.rename(self.path / new, self.path / MANIFEST)

    def group_names(self, parent: str | None = None) -> list[str]:
        return [n for n in children(self.path, parent or "") if parent or n not in RESERVED]

    def group_attrs(self, name: str) -> dict[str, Any] | None:
        if not is_node(self.path / name):
            return None
        return attributes(self.path, name)

    def set_group_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        if is_node(self.path / name):
            open_node(self.path, name, zarr.Group, writable=True).attrs.put(attrs)
        else:
            for parent in Path(name).parents[:-1][::-1]:  # transcripts/, made once
                if not is_node(self.path / parent):
                    self.restore_group_attrs(parent.as_posix(), {})
            self.restore_group_attrs(name, attrs)

    def restore_group_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        """Write group ``name``'s metadata anew, whatever is there (its members kept)."""
        (self.path / name / METADATA).unlink(missing_ok=True)
        zarr.create_group(str(self.path / name), attributes=attrs, zarr_format=3)

    def array_attrs(self, name: str, key: str) -> dict[str, Any] | None:
        if not is_node(self.path / name / key):
            return None
        return attributes(self.path, f"{name}/{key}")

    def set_array_attrs(self, name: str, key: str, attrs: dict[str, Any]) -> None:
        open_node(self.path, f"{name}/{key}", zarr.Array, writable=True).attrs.put(attrs)

    def restore_data(self, name: str, shape: tuple[int, int], dtype: str) -> None:
        """Write the metadata of set ``name``'s ``data`` anew (its chunks kept), its chunks'
        rows read off their files' size: whole rows, then 4 bytes of crc32c."""
        row_bytes = shape[1] * np.dtype(dtype).itemsize
        sizes = [p.stat().st_size for p in (self.path / name / DATA / "c").glob("*/0")]
        size = max(set(sizes), key=sizes.count) if sizes else 0  # a damaged one aside
        if size <= 4 or (size - 4) % row_bytes:
            raise StoreError(f"{name}/{DATA}: no chunk file tells the rows of its chunks")
        (self.path / name / DATA / METADATA).unlink(missing_ok=True)
        layout = _data_layout(shape, dtype, (size - 4) // row_bytes)
        zarr.create_array(str(self.path / name / DATA), **layout, zarr_format=3)

    def damaged_metadata(self) -> list[backend.DamagedMetadata]:
        return damaged_metadata(self.path)

    def delete_group(self, name: str) -> None:
        # A rename makes the set vanish at once; a crash mid-delete leaves only trash.
        target = self.path / name
        if not target.exists():
            return
        trash = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.trash")
        os.rename(target, trash)
        shutil.rmtree(trash)

    def write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        group = self._group(name)
        for key, values in arrays.items():
            _write_small(group, key, values)

    def array_names(self, name: str) -> list[str]:
        return children(self.path, name)

    def read_array(self, name: str, key: str) -> np.ndarray | None:
        if not is_node(self.path / name / key):
            return None
        return _read_small(self._stored(name, key))

    def array_length(self, name: str, key: str) -> int | None:
        if not is_node(self.path / name / key):
            return None
        shape = metadata(self.path, f"{name}/{key}").get("shape")
        if not isinstance(shape, list) or not shape or not isinstance(shape[0], int):
            raise damaged(self.path, f"{name}/{key}", "holds no array shape")
        return shape[0]

    def create_data(
        self, name: str, shape: tuple[int, int], dtype: str, chunk_rows: int, in_place: bool = False
    ) -> None:
        # A chunk file is written where rows land (`ZarrChunks`): nothing to place first.
        self._group(name).create_array(
            DATA, **_data_layout(shape, dtype, chunk_rows), overwrite=True
        )

    def write_blocks(self, name: str, blocks: Iterable[tuple[int, np.ndarray]]) -> None:
        # Every chunk on disk, zeros included: direct reads, byte-identical stores, and a
        # missing chunk file is damage, not zeros (a runtime setting, not stored with it).
        array = self._data(name).with_config({"write_empty_chunks": True})
        for start, block in blocks:
            array[start : start + len(block)] = block

    def trim_data(self, name: str, rows: int) -> None:
        array = self._data(name)
        array.resize((rows, int(array.shape[1])))  # the chunks past the new end deleted

    def repair_rows(self, name: str, runs: Sequence[tuple[int, np.ndarray]]) -> None:
        # In place: zarr writes a chunk the selection covers whole without reading it, and
        # each chunk file by temp file and rename.
        self.write_blocks(name, runs)

    def rechunk_data(
        self,
        name: str,
        chunk_rows: int,
        blocks: Iterable[tuple[int, np.ndarray]],
        rows: int | None = None,
    ) -> None:
        old = self._data(name)
        group = self.path / name
        shutil.rmtree(group / REBUILDING, ignore_errors=True)  # a killed rechunk's
        shape = (int(old.shape[0]) if rows is None else rows, int(old.shape[1]))
        layout = _data_layout(shape, str(old.dtype), chunk_rows)
        attrs = dict(old.attrs)  # the copy of the set's attributes
        new = zarr.create_array(str(group / REBUILDING), **layout, attributes=attrs, zarr_format=3)
        new = new.with_config({"write_empty_chunks": True})  # every chunk on disk (write_blocks)
        for start, block in blocks:
            new[start : start + len(block)] = block
        os.rename(group / REBUILDING, group / REBUILT)
        _swap_rebuilt(group)

    def settle_rechunks(self) -> None:
        for group in self.path.iterdir() if self.path.is_dir() else ():
            if (group / REBUILDING).is_dir():  # not whole: the old data stands
                shutil.rmtree(group / REBUILDING, ignore_errors=True)
            if (group / REBUILT).is_dir() or (group / RETIRED).is_dir():
                _swap_rebuilt(group)

    def data_layout(self, name: str) -> tuple[tuple[int, int], np.dtype] | None:
        if not is_node(self.path / self._data_rel(name)):
            return None
        array = self._data(name)
        return (int(array.shape[0]), int(array.shape[1])), np.dtype(array.dtype)

    def chunk_rows(self, name: str) -> int:
        return int(self._data(name).chunks[0])

    def direct_chunks(self, name: str) -> ZarrChunks | None:
        # Rows written straight into the chunk files (`scattered.py`) where they are raw.
        array = self._data(name)
        layout = _chunk_layout(array)
        if layout is None:
            return None
        chunk_bytes = int(array.chunks[0]) * int(array.shape[1]) * array.dtype.itemsize
        return ZarrChunks(self.path / name / DATA, chunk_bytes, layout == "crc32c")

    def read_data(self, name: str) -> np.ndarray:
        return self.read_rows(name, 0, self._data(name).shape[0])

    def read_rows(
        self, name: str, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        return _read_rows(self._data_stored(name), start, stop, out)

    def nbytes(self, name: str) -> int:
        return folder_bytes(self.path / name)

    def _group(self, name: str) -> zarr.Group:
        if not is_node(self.path / name):
            raise StoreError(f"{self.path}: no group {name!r}")
        return open_node(self.path, name, zarr.Group, writable=self.writable)

    def _data(self, name: str) -> zarr.Array:
        return self._data_stored(name).array

    def _data_stored(self, name: str) -> _Stored:
        """Set ``name``'s data: for a reader, the one opened before while its ``zarr.json``
        is the same file (zarr writes it anew by rename: a rechunk, a trim or a set made
        again changes it); a writer's opened each time."""
        if self.writable:
            return self._stored(name, DATA)
        try:
            found = os.stat(self.path / name / DATA / METADATA)
        except OSError:  # no data there (a rechunk's leftovers, a lost set): the full path
            return self._stored(name, DATA)
        stamp = (found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)
        held = self._opened.get(name)
        if held is None or held[0] != stamp:
            held = (stamp, self._stored(name, DATA))
            self._opened[name] = held
        return held[1]

    def _data_rel(self, name: str) -> str:
        """Where set ``name``'s data is: ``data``, or the whole rechunked one a rechunk
        killed between its two renames left (a read-only reader cannot put it in place)."""
        if not is_node(self.path / name / DATA) and (self.path / name / REBUILT).is_dir():
            return f"{name}/{REBUILT}"
        return f"{name}/{DATA}"

    def _stored(self, name: str, key: str) -> _Stored:
        if not is_node(self.path / name):
            raise StoreError(f"{self.path}: no group {name!r}")
        if key == DATA and (rel := self._data_rel(name)) != f"{name}/{DATA}":
            array = open_node(self.path, rel, zarr.Array)
            return _Stored(array, self.path / rel, self.path, f"{name}/{DATA}")
        array = open_node(self.path, f"{name}/{key}", zarr.Array, writable=self.writable)
        return _Stored(array, self.path / name / key, self.path, f"{name}/{key}")


def _swap_rebuilt(group: Path) -> None:
    """Put a set's whole rechunked ``data`` in place of the old, then drop the old."""
    if (group / REBUILT).is_dir():
        if (group / DATA).is_dir():
            shutil.rmtree(group / RETIRED, ignore_errors=True)  # an older rechunk's
            os.rename(group / DATA, group / RETIRED)
        os.rename(group / REBUILT, group / DATA)
    shutil.rmtree(group / RETIRED, ignore_errors=True)


def _data_layout(shape: tuple[int, int], dtype: str, chunk_rows: int) -> dict[str, Any]:
    """How a set's ``data`` is laid out: chunks of whole rows, each with its checksum."""
    return {
        "shape": shape,
        "chunks": (max(1, chunk_rows), shape[1]),
        "dtype": dtype,
        "compressors": Crc32cCodec() if backend.CHUNK_CHECKSUMS else None,
        "fill_value": 0,
    }


def _write_small(group: zarr.Group, key: str, values: np.ndarray) -> None:
    checked: dict[str, Any] = {}
    if backend.CHUNK_CHECKSUMS:  # zarr's default compression, then the checksum of its bytes
        checked = {"compressors": (ZstdCodec(level=0), Crc32cCodec())}
        checked["config"] = {"write_empty_chunks": True}  # a missing chunk is damage
    if values.dtype.kind == "U":  # variable-length UTF-8, the spec'd zarr v3 string type
        array = group.create_array(key, shape=values.shape, dtype=str, overwrite=True, **checked)
        if len(values):
            array[...] = values
    else:
        group.create_array(key, data=values, overwrite=True, **checked)


@dataclass(frozen=True)
class _Stored:
    """A zarr array and where it is: its folder, the store's path, its name in the store."""

    array: zarr.Array
    folder: Path
    store: Path
    where: str  # "<group>/<key>"

    def damaged(self, spans: list[tuple[int, int]]) -> DamagedChunks:
        return DamagedChunks(self.store, self.where, spans)


def _read_small(stored: _Stored) -> np.ndarray:
    values = _read_checked(stored, 0, stored.array.shape[0])
    if values.dtype.kind in "TO":  # numpy StringDType / objects -> fixed "U" in memory
        return np.array(values.tolist(), dtype=np.str_)
    return values


def _read_checked(stored: _Stored, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]`` through zarr; DamagedChunks naming each chunk that fails."""
    try:
        if not _missing(stored, start, stop):
            return np.asarray(stored.array[start:stop])
    except (ValueError, RuntimeError):  # the crc32c codec's mismatch; undecodable bytes
        pass
    except OSError as err:  # a chunk there, but not to be read (permissions)
        raise StoreError(f"{stored.folder}: cannot be read ({err.strerror or err})") from None
    raise stored.damaged(_damaged_spans(stored, start, stop))


def _damaged_spans(stored: _Stored, start: int, stop: int) -> list[tuple[int, int]]:
    """[start, stop) rows of each chunk in ``start:stop`` that is missing or fails to decode."""
    spans = []
    step, rows = stored.array.chunks[0], stored.array.shape[0]
    for lo in range(start - start % step, stop, step):
        hi = min(lo + step, rows)
        try:
            bad = _missing(stored, lo, hi)
            if not bad:
                stored.array[lo:hi]
        except (ValueError, RuntimeError):
            bad = True
        if bad:
            spans.append((lo, hi))
    return spans


def _missing(stored: _Stored, start: int, stop: int) -> bool:
    """A chunk file of rows ``start:stop`` is absent where it must be there: every chunk of
    a checksummed array is written (``write_empty_chunks``)."""
    array = stored.array
    if not _checksummed(array) or stop <= start:
        return False
    step = array.chunks[0]
    across = [range(-(-n // c)) for n, c in zip(array.shape[1:], array.chunks[1:], strict=True)]
    for k in range(start // step, -(-stop // step)):
        for rest in itertools.product(*across):
            if not (stored.folder / array.metadata.encode_chunk_key((k, *rest))).is_file():
                return True
    return False


def _checksummed(array: zarr.Array) -> bool:
    codecs: tuple[Any, ...] = getattr(array.metadata, "codecs", ())
    return any(isinstance(codec, Crc32cCodec) for codec in codecs)


def _read_rows(
    stored: _Stored, start: int, stop: int, into: np.ndarray | None = None
) -> np.ndarray:
    """Rows ``start:stop`` (into the first rows of `into` where given); chunk files
    copied straight into the output when possible, their crc32c checked there;
    DamagedChunks naming every chunk that fails."""
    array = stored.array
    if into is not None and (into.dtype != array.dtype or into.shape[1:] != array.shape[1:]):
        into = None  # a buffer laid out otherwise than the set: rows of their own
    chunk_rows = array.chunks[0]
    layout = _chunk_layout(array)
    if start % chunk_rows or layout is None:
        rows = _read_checked(stored, start, stop)
        if into is None:
            return rows
        # Zarr's own array let go now: a stream keeps a copy of the buffer's rows, and
        # both would be held at once beside the buffer it counts.
        into[: len(rows)] = rows
        return into[: len(rows)]
    shape = (stop - start, array.shape[1])
    out = np.empty(shape, dtype=array.dtype) if into is None else into[: shape[0]]
    flat = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    chunk_bytes = chunk_rows * array.shape[1] * out.itemsize
    damaged = []
    for k, lo in enumerate(range(0, len(flat), chunk_bytes)):
        hi = min(lo + chunk_bytes, len(flat))
        first = start + k * chunk_rows
        chunk = stored.folder / "c" / str(first // chunk_rows) / "0"
        if layout == "crc32c":
            if not _read_checked_chunk(chunk, flat[lo:hi], chunk_bytes):
                damaged.append((first, min(first + chunk_rows, array.shape[0])))
        elif not _read_exactly(chunk, flat[lo:hi]):
            out.reshape(-1)[lo // out.itemsize : hi // out.itemsize] = array.fill_value
    if damaged:
        raise stored.damaged(damaged)
    return out


def _chunk_layout(array: zarr.Array) -> str | None:
    """ "plain" (raw little-endian rows) or "crc32c" (raw rows, then their crc32c) chunk
    files of whole rows under the default keys, on local disk; None for anything else."""
    meta = array.metadata
    codecs: tuple[Any, ...] = getattr(meta, "codecs", ())
    encoding = getattr(meta, "chunk_key_encoding", None)
    direct = (
        isinstance(array.store, LocalStore)
        and sys.byteorder == "little"
        and len(codecs) in (1, 2)
        and isinstance(codecs[0], BytesCodec)
        and str(getattr(codecs[0].endian, "value", "little")) == "little"
        and isinstance(encoding, DefaultChunkKeyEncoding)
        and encoding.separator == "/"
        and isinstance(meta.chunk_grid, RegularChunkGrid)
        and meta.chunk_grid.chunk_shape[1] == array.shape[1]
    )
    if not direct:
        return None
    if len(codecs) == 1:
        return "plain"
    return "crc32c" if isinstance(codecs[1], Crc32cCodec) else None


def _read_checked_chunk(path: Path, target: memoryview, chunk_bytes: int) -> bool:
    """Fill ``target`` from a crc32c chunk file (``chunk_bytes`` of rows, then 4 bytes of
    crc32c); False when the file is absent, of another size, or fails its checksum."""
    try:
        with open(path, "rb") as f:
            if len(target) == chunk_bytes:  # a whole chunk: read in place
                whole: memoryview = target
            else:  # the array's last chunk, padded on disk to a whole one
                whole = memoryview(bytearray(chunk_bytes))
            crc = bytearray(4)
            if f.readinto(whole) != chunk_bytes or f.readinto(crc) != 4 or f.read(1):
                return False
    except FileNotFoundError:
        return False
    except OSError as err:  # there, but not to be read (permissions)
        raise StoreError(f"{path}: cannot be read ({os.strerror(err.errno or 0)})") from None
    if google_crc32c.value(np.frombuffer(whole, np.uint8)) != int.from_bytes(crc, "little"):
        return False
    if whole is not target:
        target[:] = whole[: len(target)]
    return True


def _read_exactly(path: Path, target: memoryview) -> bool:
    """Fill ``target`` from the start of ``path``; False when the chunk file is absent."""
    if not path.is_file():
        return False
    with open(path, "rb") as f:  # a buffered readinto reads until target is full or EOF
        if f.readinto(target) < len(target):
            raise StoreError(f"{path}: chunk file is shorter than its array says")
    return True
