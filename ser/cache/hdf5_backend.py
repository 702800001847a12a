"""HDF5 file backend.

``data`` is one contiguous dataset (``chunk_rows`` unused): a full read is one
``read_direct``. The file is open only for one short, flushed operation, so others can
read between our writes. Attributes are one JSON string each, so they round-trip exactly;
persistent free-space tracking lets ``--overwrite`` reuse the old set's space.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ser.cache.backend import DATA, MANIFEST, RESERVED
from ser.errors import StoreError

ATTRS = "ser"


class Hdf5Backend:
    name = "hdf5"

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
            return _attrs(f)

    def read_manifest(self) -> dict[str, np.ndarray]:
        with self._open() as f:
            group = f[MANIFEST]
            return {key: _read_small(group[key]) for key in sorted(group)}

    def group_names(self, parent: str | None = None) -> list[str]:
        with self._open() as f:
            if parent is None:
                return sorted(k for k in f if k not in RESERVED and isinstance(f[k], h5py.Group))
            if parent not in f:
                return []
            group = f[parent]
            return sorted(k for k in group if isinstance(group[k], h5py.Group))

    def group_attrs(self, name: str) -> dict[str, Any] | None:
        with self._open() as f:
            return _attrs(f[name]) if name in f else None

    def set_group_attrs(self, name: str, attrs: dict[str, Any]) -> None:
        with self._open(write=True) as f:
            group = f.require_group(name)
            group.attrs[ATTRS] = json.dumps(attrs)

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

    def read_array(self, name: str, key: str) -> np.ndarray | None:
        with self._open() as f:
            group = f[name]
            return _read_small(group[key]) if key in group else None

    def create_data(self, name: str, shape: tuple[int, int], dtype: str, chunk_rows: int) -> None:
        with self._open(write=True) as f:
            group = f[name]
            if DATA in group:
                del group[DATA]
            group.create_dataset(DATA, shape=shape, dtype=dtype)

    def write_blocks(self, name: str, blocks: Iterable[tuple[int, np.ndarray]]) -> None:
        with self._open(write=True) as f:
            data = f[name][DATA]
            for start, block in blocks:
                data[start : start + len(block)] = block

    def data_layout(self, name: str) -> tuple[tuple[int, int], np.dtype] | None:
        with self._open() as f:
            group = f[name]
            if DATA not in group:
                return None
            data = group[DATA]
            return (int(data.shape[0]), int(data.shape[1])), np.dtype(data.dtype)

    def read_data(self, name: str) -> np.ndarray:
        with self._open() as f:
            data = f[name][DATA]
            out = np.empty(data.shape, data.dtype)
            if out.size:
                data.read_direct(out)
            return out

    def iter_blocks(self, name: str, block_rows: int) -> Iterator[np.ndarray]:
        with self._open() as f:
            data = f[name][DATA]
            for start in range(0, data.shape[0], max(1, block_rows)):
                yield data[start : start + block_rows]

    def nbytes(self, name: str) -> int:
        with self._open() as f:  # a set's group holds datasets only (names have no "/")
            return sum(node.id.get_storage_size() for node in f[name].values())

    def _open(self, write: bool = False) -> h5py.File:
        if write and not self.writable:
            raise StoreError(f"{self.path}: store is open read-only")
        try:
            return h5py.File(self.path, "r+" if write else "r")
        except FileNotFoundError:
            raise StoreError(f"{self.path}: no feature store here") from None
        except OSError as err:
            if "lock" in str(err).lower():
                raise StoreError(
                    f"{self.path}: the file is being written by another process; "
                    "try again when it has finished"
                ) from None
            raise StoreError(f"{self.path}: not a readable HDF5 feature store ({err})") from None


def _attrs(node: h5py.Group) -> dict[str, Any]:
    text = node.attrs.get(ATTRS)  # str, or UTF-8 bytes (json reads both)
    return {} if text is None else json.loads(text)


def _write_small(group: h5py.Group, key: str, values: np.ndarray) -> None:
    if values.dtype.kind == "U":  # h5py stores Python strings, not numpy's fixed-width text
        group.create_dataset(key, data=values.astype(object), dtype=h5py.string_dtype("utf-8"))
    else:
        group.create_dataset(key, data=values)


def _read_small(dataset: Any) -> np.ndarray:
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return np.array(dataset.asstr()[...].tolist(), dtype=np.str_)
    return np.asarray(dataset[...])
