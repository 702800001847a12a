"""`ser.cache.lock`: what a holder records of itself, and how a refusal names it."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from ser.cache.lock import try_lock, who, writer


def test_a_holder_running_a_ser_command_is_named_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "f.zarr.lock"
    monkeypatch.setattr(sys, "argv", ["/x/ser/cli.py", "store", "repair", "my store.zarr"])
    with try_lock(lock) as holder:
        assert holder is None
        found = writer(lock)
    host = socket.gethostname()
    assert found == f"{os.getpid()} on {host}: ser store repair 'my store.zarr'"
    assert who(found) == (
        f"another ser process (pid {os.getpid()} on {host}) running "
        "`ser store repair 'my store.zarr'`"
    )
    assert writer(lock) is None  # given back


def test_a_holder_running_no_ser_command_is_named_by_pid_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "run" / ".lock"
    monkeypatch.setattr(sys, "argv", ["/usr/bin/python", "script.py"])
    with try_lock(lock):
        found = writer(lock)
    assert found == f"{os.getpid()} on {socket.gethostname()}"
    assert who("") == "another ser process"  # a lock file that says nothing of its holder
    assert who("12 on h") == "another ser process (pid 12 on h)"


def test_a_long_command_line_is_cut_to_one_short_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "f.h5.lock"
    monkeypatch.setattr(sys, "argv", ["/venv/bin/ser", "extract", "a\nb", *["x" * 50] * 10])
    with try_lock(lock):
        found = writer(lock)
    assert found is not None and "\n" not in found and found.endswith("...")
    assert len(found.split(": ", 1)[1]) == 200
