"""Atomic writes (ser.cache.atomic): a reader sees the old file or the new one, and a
write that fails leaves the old one and no temp file beside it."""

from __future__ import annotations

import doctest
import errno
import os
from pathlib import Path

import pytest

import ser.cache.atomic as atomic_module
from ser.cache.atomic import atomic, atomic_write, write_json, writing
from ser.errors import DiskFullError


def test_doctests() -> None:
    assert doctest.testmod(atomic_module).failed == 0


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = write_json(tmp_path / "run.json", {"v": 1}, "the run record")

    def half(tmp: Path) -> None:
        tmp.write_text('{"v": ')
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic(path, half, "the run record")
    assert path.read_text() == '{\n "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_file_writer_and_a_path_writer_land_the_same_bytes(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"\x00\x01"), "a")
    atomic(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"\x00\x01"), "b")
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="Linux's /dev/full")
def test_a_full_disk_is_a_disk_full_error_naming_the_file_and_its_content(tmp_path: Path) -> None:
    """A write that fills the disk (the kernel's ENOSPC, from /dev/full) is one line that
    names the file and what it holds; the old file stays, no temp is left."""
    path = write_json(tmp_path / "run.json", {"v": 1}, "the run record")

    def fills(tmp: Path) -> None:
        with open("/dev/full", "wb") as full:
            full.write(b"x" * 2**16)

    with pytest.raises(DiskFullError) as caught:
        atomic(path, fills, "the run record")
    message = str(caught.value)
    assert message.startswith("the disk is full (No space left on device) writing the run")
    assert f"record to {path}; free some space and run the same command again" in message
    assert "it resumes where it stopped" in message and "\n" not in message
    assert path.read_text() == '{\n "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_writing_names_a_full_disk_once_and_lets_other_errors_through(tmp_path: Path) -> None:
    inner = writing(tmp_path / "inner", "a shard")
    outer = writing(tmp_path / "outer", "the store")
    with pytest.raises(DiskFullError, match=r"writing a shard to .*inner"), outer, inner:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    with pytest.raises(PermissionError), writing(tmp_path, "the store"):
        raise PermissionError(errno.EACCES, "Permission denied")
