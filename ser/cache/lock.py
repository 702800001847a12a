"""One writer per store: a non-blocking exclusive ``flock`` on a file beside the store.

The kernel drops the lock when its holder dies (even by kill -9): a stale lock file never
blocks a later run. The file keeps the holder's pid, host and `ser` command line only to
name it: "<pid> on <host>: ser store repair features.zarr".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from ser.errors import StoreLocked

# What a holder writes of itself: "<pid> on <host>", then ": <its ser command>" if any.
_HOLDER = re.compile(r"(\d+)( on \S+)?(?:: (ser .+))?")
_COMMAND_CHARS = 200  # a command line longer than this is cut (the line stays readable)


def store_lock(store: Path) -> Path:
    """The lock file of the store at `store` (beside it: a store may be one HDF5 file)."""
    return store.with_name(store.name + ".lock")


def _holder(fd: int) -> str:
    """What the holder of the lock on `fd` wrote of itself ("" when unreadable)."""
    holder = os.pread(fd, 1024, 0).decode("utf-8", errors="replace").strip()
    return holder if _HOLDER.fullmatch(holder) else ""


def _command() -> str:
    """The `ser` command line this process runs ("" when it runs none: the Python API, a
    test), to name it to whoever finds the lock held."""
    argv = sys.argv
    program = Path(argv[0]) if argv and argv[0] else None
    if program is None or not (
        program.name == "ser" or (program.parent.name == "ser" and program.name == "cli.py")
    ):
        return ""
    line = " ".join(shlex.join(["ser", *argv[1:]]).split())  # one line, whatever it holds
    return line if len(line) <= _COMMAND_CHARS else line[: _COMMAND_CHARS - 3] + "..."


def who(holder: str) -> str:
    """A holder as a refusal names it: "another ser process (pid N on HOST) running `ser
    ...`", less what the lock file does not record."""
    found = _HOLDER.fullmatch(holder)
    if found is None:
        return "another ser process"
    pid, host, command = found.groups()
    running = f" running `{command}`" if command else ""
    return f"another ser process (pid {pid}{host or ''}){running}"


@contextlib.contextmanager
def try_lock(lock_file: Path) -> Iterator[str | None]:
    """Yields None while this process holds the lock, else the holder, "<pid> on <host>"
    (and ": <command>" where it runs one; "" when unknown), never waiting. Also what guards
    a sweep's cells and a run."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _holder(fd)
            return
        command = _command()
        me = f"{os.getpid()} on {socket.gethostname()}" + (f": {command}" if command else "")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{me}\n".encode(), 0)
        try:
            yield None
        finally:
            # Truncate before unlocking so that nobody reads our pid once we are gone.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def writer(lock_file: Path) -> str | None:
    """The holder of the lock while another holds it ("<pid> on <host>[: <command>]", ""
    when unknown), None when nobody does; only looks (a shared lock, given back at once:
    the file is neither created nor written)."""
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:  # no lock file: nobody ever wrote the store
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_while_written(store: Path) -> None:
    """StoreLocked while another process (an extraction, a repair) holds the store's lock:
    what a reader would find is its work under way, not damage."""
    holder = writer(store_lock(store))
    if holder is not None:
        raise StoreLocked(
            f"{store} is being written by {who(holder)}; wait for it to finish, then run this again"
        )
