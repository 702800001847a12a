"""Atomic writes (ser.cache.atomic): a reader sees the old file or the new one, and a
write that fails leaves the old one and no temp file beside it."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import ser.cache.atomic as atomic_module
from ser.cache.atomic import atomic, atomic_write, write_json


def test_doctests() -> None:
    assert doctest.testmod(atomic_module).failed == 0


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = write_json(tmp_path / "run.json", {"v": 1})

    def half(tmp: Path) -> None:
        tmp.write_text('{"v": ')
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic(path, half)
    assert path.read_text() == '{\n "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_file_writer_and_a_path_writer_land_the_same_bytes(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.bin", lambda f: f.write(b"\x00\x01"))
    atomic(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"\x00\x01"))
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]
