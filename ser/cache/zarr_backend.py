"""Zarr v3 directory backend.

``data`` is stored uncompressed in chunks of whole rows, so a full read copies
each chunk file straight into the output (zarr's generic path decodes and copies again);
any other layout falls back to ``array[...]``. Zarr writes each key by temp file and
rename: a killed writer leaves no half-written ``zarr.json``.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import zarr
import zarr.errors
from zarr.codecs import BytesCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import LocalStore

from ser.cache.backend import DATA, MANIFEST, RESERVED, folder_bytes
from ser.errors import StoreError

Node = TypeVar("Node", zarr.Group, zarr.Array)


class ZarrBackend:
    name = "zarr"

    def __init__(self, path: Path, writable: bool) -> None:
        self.path = path
        self.writable = writable

    def exists(self) -> bool:
        return (self.path / "zarr.json").is_file()

    def create(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        # Built aside and renamed into place: a store is either whole or absent.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.creating")
        try:
            root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            columns = root.create_group(MANIFEST)
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
        return self._root().attrs.asdict()

    def read_manifest(self) -> dict[str, np.ndarray]:
        group = self._group(MANIFEST)
        return {key: _read_small(group[key]) for key in sorted(group.array_keys())}

    def group_names(self, parent: str | None = None) -> list[str]:
        group = self._root() if parent is None else self._member(parent)
        return [] if group is None else sorted(set(group.group_keys()) - set(RESERVED))

    def group_attrs(self, name: str) -> dict[str, Any] | None:
        group = self._member(name)
        return None if group is None else group.attrs.asdict()

    def set_group_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        group = self._member(name)
        if group is None:
            self._root().create_group(name, attributes=attrs)
        else:
            group.attrs.put(attrs)

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

    def read_array(self, name: str, key: str) -> np.ndarray | None:
        if not (self.path / name / key / "zarr.json").is_file():
            return None
        return _read_small(self._group(name)[key])

    def create_data(self, name: str, shape: tuple[int, int], dtype: str, chunk_rows: int) -> None:
        self._group(name).create_array(
            DATA,
            shape=shape,
            chunks=(max(1, chunk_rows), shape[1]),
            dtype=dtype,
            compressors=None,
            fill_value=0,
            # Every chunk on disk, zeros included: direct reads and byte-identical stores.
            config={"write_empty_chunks": True},
            overwrite=True,
        )

    def write_blocks(self, name: str, blocks: Iterable[tuple[int, np.ndarray]]) -> None:
        array = self._data(name)
        for start, block in blocks:
            array[start : start + len(block)] = block

    def data_layout(self, name: str) -> tuple[tuple[int, int], np.dtype] | None:
        if not (self.path / name / DATA / "zarr.json").is_file():
            return None
        array = self._data(name)
        return (int(array.shape[0]), int(array.shape[1])), np.dtype(array.dtype)

    def read_data(self, name: str) -> np.ndarray:
        array = self._data(name)
        return _read_rows(array, self.path / name / DATA, 0, array.shape[0])

    def iter_blocks(self, name: str, block_rows: int) -> Iterator[np.ndarray]:
        array = self._data(name)
        chunk_rows = array.chunks[0]
        step = chunk_rows * max(1, block_rows // chunk_rows)
        for start in range(0, array.shape[0], step):
            stop = min(start + step, array.shape[0])
            yield _read_rows(array, self.path / name / DATA, start, stop)

    def nbytes(self, name: str) -> int:
        return folder_bytes(self.path / name)

    def _root(self) -> zarr.Group:
        try:
            return zarr.open_group(
                str(self.path), mode="r+" if self.writable else "r", zarr_format=3
            )
        except (FileNotFoundError, zarr.errors.NodeTypeValidationError, ValueError) as err:
            raise StoreError(f"{self.path}: not a Zarr v3 feature store ({err})") from None

    def _group(self, name: str) -> zarr.Group:
        group = self._member(name)
        if group is None:
            raise StoreError(f"{self.path}: no group {name!r}")
        return group

    def _member(self, name: str) -> zarr.Group | None:
        """The group ``name`` (found without listing the whole store), or None."""
        if not (self.path / name / "zarr.json").is_file():
            return None
        return _expect(zarr.Group, self._root()[name])

    def _data(self, name: str) -> zarr.Array:
        return _expect(zarr.Array, self._group(name)[DATA])


def _expect(kind: type[Node], node: Any) -> Node:
    if not isinstance(node, kind):
        raise StoreError(f"expected a zarr {kind.__name__}, found {node}")
    return node


def _write_small(group: zarr.Group, key: str, values: np.ndarray) -> None:
    if values.dtype.kind == "U":  # variable-length UTF-8, the spec'd zarr v3 string type
        array = group.create_array(key, shape=values.shape, dtype=str, overwrite=True)
        if len(values):
            array[...] = values
    else:
        group.create_array(key, data=values, overwrite=True)


def _read_small(array: Any) -> np.ndarray:
    values = np.asarray(_expect(zarr.Array, array)[...])
    if values.dtype.kind in "TO":  # numpy StringDType / objects -> fixed "U" in memory
        return np.array(values.tolist(), dtype=np.str_)
    return values


def _read_rows(array: zarr.Array, folder: Path, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop``; chunk files copied straight into the output when possible."""
    chunk_rows = array.chunks[0]
    if start % chunk_rows or not _plain_chunks(array):
        return np.asarray(array[start:stop])
    out = np.empty((stop - start, array.shape[1]), dtype=array.dtype)
    flat = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    chunk_bytes = chunk_rows * array.shape[1] * out.itemsize
    for k, lo in enumerate(range(0, len(flat), chunk_bytes)):
        hi = min(lo + chunk_bytes, len(flat))
        chunk = folder / "c" / str(start // chunk_rows + k) / "0"
        if not _read_exactly(chunk, flat[lo:hi]):
            out.reshape(-1)[lo // out.itemsize : hi // out.itemsize] = array.fill_value
    return out


def _plain_chunks(array: zarr.Array) -> bool:
    """Uncompressed little-endian whole-row chunks under the default keys, on local disk."""
    meta = array.metadata
    codecs: tuple[Any, ...] = getattr(meta, "codecs", ())
    encoding = getattr(meta, "chunk_key_encoding", None)
    return (
        isinstance(array.store, LocalStore)
        and sys.byteorder == "little"
        and len(codecs) == 1
        and isinstance(codecs[0], BytesCodec)
        and str(getattr(codecs[0].endian, "value", "little")) == "little"
        and isinstance(encoding, DefaultChunkKeyEncoding)
        and encoding.separator == "/"
        and isinstance(meta.chunk_grid, RegularChunkGrid)
        and meta.chunk_grid.chunk_shape[1] == array.shape[1]
    )


def _read_exactly(path: Path, target: memoryview) -> bool:
    """Fill ``target`` from the start of ``path``; False when the chunk file is absent."""
    if not path.is_file():
        return False
    with open(path, "rb") as f:  # a buffered readinto reads until target is full or EOF
        if f.readinto(target) < len(target):
            raise StoreError(f"{path}: chunk file is shorter than its array says")
    return True
