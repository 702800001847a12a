"""Why an HDF5 file cannot be opened, told by what it is, not by HDF5's wording."""

from __future__ import annotations

import errno
from pathlib import Path

import h5py
import pytest

from ser.cache.hdf5_file import is_locked, recorded_end, unreadable


@pytest.fixture
def h5(tmp_path: Path) -> Path:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["a"] = list(range(1000))
    return path


def opening(path: Path) -> OSError:
    with pytest.raises(OSError) as error:
        h5py.File(path, "r")
    return error.value


def test_truncation_is_the_file_shorter_than_its_superblock_says(h5: Path) -> None:
    size = h5.stat().st_size
    assert recorded_end(h5) == (0, size)
    with open(h5, "r+b") as f:
        f.truncate(size - 100)
    error = opening(h5)
    assert "sblock" in str(error) and not is_locked(error)  # what matched "lock" before
    assert unreadable(h5, error).startswith(f"is truncated: {size - 100:,} of its {size:,} bytes")


def test_no_hdf5_signature_and_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "x.h5").write_bytes(b"x" * 2000)
    assert recorded_end(tmp_path / "x.h5") is None
    assert "no HDF5 signature" in unreadable(tmp_path / "x.h5", opening(tmp_path / "x.h5"))
    (tmp_path / "e.h5").write_bytes(b"")
    assert unreadable(tmp_path / "e.h5", opening(tmp_path / "e.h5")) == "is an empty file (0 bytes)"


def test_a_lock_is_the_error_file_locking_raises() -> None:
    assert is_locked(BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable"))
    assert not is_locked(OSError("Unable to lock the block of a truncated file"))
