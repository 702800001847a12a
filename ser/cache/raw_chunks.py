"""A data array's chunks as plain bytes on disk, which rows are written into at their byte
offset from any process (`scattered.py`), then sealed with the checksum the format's own
reads check. The two formats keep a chunk the same way: its rows, raw and little-endian,
then 4 bytes of checksum over them (the last chunk padded with zeros to its full size).

- Zarr (`ZarrChunks`): a file per chunk (``c/<chunk>/0``), ending in the rows' crc32c
  (the ``crc32c`` codec; none for an array written before checksums).
- HDF5 (`Hdf5Chunks`): a place each in the store's one file, fixed when the dataset was
  created with its chunks allocated up front (HDF5 writes them once, as zeros); each
  ends in the Fletcher-32 filter's checksum (numcodecs' `Fletcher32` is HDF5's). HDF5
  takes one writer at a time, but the rows never go through it: each is an ``os.pwrite``
  into a place HDF5 never moves (it moves a chunk only when it writes that chunk itself),
  so worker processes write side by side as they do into Zarr's chunk files, and the
  file is open through HDF5 only when the set is created and completed.

Both are frozen dataclasses of paths and numbers: a writer carrying one pickles cheaply.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import h5py
import numpy as np
from numcodecs import Fletcher32

from ser.cache.backend import RawChunks
from ser.errors import StoreError

CHECKSUM_BYTES = 4


@dataclass(frozen=True)
class ZarrChunks:
    """Zarr's chunk files of a 2-D array chunked along its rows (its folder ``data``)."""

    data: Path
    chunk_bytes: int
    crc: bool  # each file ends in the crc32c of its rows

    def write(self, chunk: int, at: int, piece: memoryview) -> None:
        """`piece` written from byte `at` of chunk `chunk`'s rows."""
        path = self._path(chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        _pwrite(path, piece, at, os.O_WRONLY | os.O_CREAT)

    def read(self, chunk: int, at: int, out: memoryview) -> None:
        """`out` filled from byte `at` of chunk `chunk`'s rows; StoreError where they are
        not all written."""
        _pread(self._path(chunk), out, at)

    def seal(self, chunk: int, kept: int) -> bytes:
        """Chunk `chunk` made whole (zeros past its first `kept` bytes) and, with crc32c,
        its checksum written after its rows; its first `kept` bytes."""
        path = self._path(chunk)
        try:
            raw = path.read_bytes()[:kept]  # past them: nothing, or rows moved up since
        except FileNotFoundError:
            raise StoreError(f"{path}: a chunk of rows was never written") from None
        tail = bytes(self.chunk_bytes - len(raw))  # the padding past the last row
        if self.crc:
            tail += google_crc32c.value(raw + tail).to_bytes(CHECKSUM_BYTES, "little")
        with open(path, "r+b") as f:
            f.seek(len(raw))
            f.write(tail)
            f.truncate()
        return (raw + tail)[:kept]

    def rewritten(self) -> bool:
        """Whether the array was written anew through zarr since its rows were placed:
        its first chunk is whole with its crc32c, as only zarr writes it (placed chunks
        get theirs when sealed, which an array laid out anew never is)."""
        path = self._path(0)
        whole = self.chunk_bytes + CHECKSUM_BYTES
        return self.crc and path.is_file() and path.stat().st_size == whole

    @property
    def checked(self) -> bool:
        """Whether each chunk ends in a checksum (a write cut short is found)."""
        return self.crc

    def _path(self, chunk: int) -> Path:
        """Zarr v3's default chunk key ("/" separated) of rows chunk `chunk` of a 2-D array."""
        return self.data / "c" / str(chunk) / "0"


@dataclass(frozen=True)
class Hdf5Chunks:
    """The places of an HDF5 dataset's chunks in its file, each ``chunk_bytes`` of rows
    then their Fletcher-32."""

    path: Path  # the store's file
    chunk_bytes: int
    places: tuple[int, ...]  # byte offset of each chunk, in row order
    allocated: bool  # its chunks were allocated when it was created: rows placed

    def write(self, chunk: int, at: int, piece: memoryview) -> None:
        """`piece` written from byte `at` of chunk `chunk`'s rows."""
        _pwrite(self.path, piece, self.places[chunk] + at, os.O_WRONLY)

    def read(self, chunk: int, at: int, out: memoryview) -> None:
        """`out` filled from byte `at` of chunk `chunk`'s rows."""
        _pread(self.path, out, self.places[chunk] + at)

    def seal(self, chunk: int, kept: int) -> bytes:
        """Chunk `chunk` made whole (zeros past its first `kept` bytes, as HDF5 pads the
        last chunk) and its Fletcher-32 written after its rows; its first `kept` bytes."""
        raw = bytearray(self.chunk_bytes)
        _pread(self.path, memoryview(raw), self.places[chunk])
        raw[kept:] = bytes(self.chunk_bytes - kept)
        sealed = bytes(Fletcher32().encode(raw))  # the rows, then their checksum
        _pwrite(self.path, memoryview(sealed)[kept:], self.places[chunk] + kept, os.O_WRONLY)
        return bytes(raw[:kept])

    def rewritten(self) -> bool:
        """Whether the array was written anew through HDF5 since its rows were placed:
        a set laid out anew gets a dataset whose chunks HDF5 allocated as it wrote them."""
        return not self.allocated

    @property
    def checked(self) -> bool:
        """Each chunk ends in its Fletcher-32: always."""
        return True


def hdf5_chunks(path: Path, data: h5py.Dataset) -> Hdf5Chunks | None:
    """The places of `data`'s chunks where rows may be written into them (chunked along
    its rows, Fletcher-32 its one filter, every chunk in the file at its full size);
    None otherwise: its rows go through HDF5."""
    rows_per = data.chunks[0] if data.chunks is not None else 0
    if data.ndim != 2 or not rows_per or data.chunks[1] != data.shape[1]:
        return None
    plist = data.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if filters != [h5py.h5z.FILTER_FLETCHER32]:
        return None
    chunk_bytes = rows_per * data.shape[1] * data.dtype.itemsize
    found: dict[int, int] = {}

    def seen(info: h5py.h5d.StoreInfo) -> None:
        if info.size == chunk_bytes + CHECKSUM_BYTES and not info.filter_mask:
            found[info.chunk_offset[0] // rows_per] = info.byte_offset

    data.id.chunk_iter(seen)
    n_chunks = -(-data.shape[0] // rows_per)
    if sorted(found) != list(range(n_chunks)):
        return None
    allocated = plist.get_alloc_time() == h5py.h5d.ALLOC_TIME_EARLY
    return Hdf5Chunks(path, chunk_bytes, tuple(found[c] for c in range(n_chunks)), allocated)


def allocated_plist() -> h5py.h5p.PropDCID:
    """Dataset creation settings under which HDF5 allocates every chunk when it creates
    the dataset (it fills them with zeros, as it fills a filtered dataset's chunks)."""
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return plist


def put_rows(chunks: RawChunks, chunk_rows: int, start: int, rows: np.ndarray) -> None:
    """`rows` [n, dim] (contiguous, in the array's dtype) written from row `start` on,
    a piece into each chunk it spans."""
    row_bytes = rows.shape[1] * rows.itemsize
    for first, chunk, within, take in _pieces(start, len(rows), chunk_rows):
        piece = memoryview(rows[first : first + take]).cast("B")  # type: ignore[arg-type]
        chunks.write(chunk, within * row_bytes, piece)


def get_rows(
    chunks: RawChunks, chunk_rows: int, start: int, count: int, dim: int, dtype: str
) -> np.ndarray:
    """Rows ``start .. start + count`` as written (not checked: their chunk may not be
    sealed yet)."""
    out = np.empty((count, dim), dtype)  # [count, dim]
    row_bytes = dim * out.itemsize
    for first, chunk, within, take in _pieces(start, count, chunk_rows):
        target = memoryview(out[first : first + take]).cast("B")  # type: ignore[arg-type]
        chunks.read(chunk, within * row_bytes, target)
    return out


def _pieces(start: int, count: int, chunk_rows: int) -> Iterator[tuple[int, int, int, int]]:
    """(first row of the run, chunk, row within the chunk, rows) per chunk it spans."""
    done = 0
    while done < count:
        chunk, within = divmod(start + done, chunk_rows)
        take = min(count - done, chunk_rows - within)
        yield done, chunk, within, take
        done += take


def _pwrite(path: Path, piece: memoryview, offset: int, flags: int) -> None:
    fd = os.open(path, flags, 0o644)
    try:
        while len(piece):  # a write may take fewer bytes than given
            done = os.pwrite(fd, piece, offset)
            piece, offset = piece[done:], offset + done
    finally:
        os.close(fd)


def _pread(path: Path, out: memoryview, offset: int) -> None:
    """`out` filled from byte `offset` of `path`; StoreError where the file ends first."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            got = f.readinto(out)
    except FileNotFoundError:
        got = 0
    if got != len(out):
        raise StoreError(f"{path}: rows missing")
