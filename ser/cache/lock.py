"""One writer per store: a non-blocking exclusive ``flock`` on a file beside the store.

The kernel drops the lock when its holder dies (even by kill -9): a stale lock file never
blocks a later run. The file keeps the holder's pid and host only to name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from ser.errors import StoreLocked

_HOLDER = re.compile(r"\d+( on \S+)?")  # what a holder writes: "<pid> on <host>"


def store_lock(store: Path) -> Path:
    """The lock file of the store at `store` (beside it: a store may be one HDF5 file)."""
    return store.with_name(store.name + ".lock")


def _holder(fd: int) -> str:
    """What the holder of the lock on `fd` wrote of itself ("" when unreadable)."""
    holder = os.pread(fd, 256, 0).decode("ascii", errors="replace").strip()
    return holder if _HOLDER.fullmatch(holder) else ""


@contextlib.contextmanager
def try_lock(lock_file: Path) -> Iterator[str | None]:
    """Yields None while this process holds the lock, else the holder, "<pid> on <host>"
    ("" when unknown), never waiting. Also what guards a sweep's cells and a run."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _holder(fd)
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield None
        finally:
            # Truncate before unlocking so that nobody reads our pid once we are gone.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def writer(lock_file: Path) -> str | None:
    """The holder of the lock while another holds it ("<pid> on <host>", "" when unknown),
    None when nobody does; only looks (a shared lock, given back at once: the file is
    neither created nor written)."""
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
    """StoreLocked while an extraction (or a repair) holds the store's lock: what a reader
    would find is its work under way, not damage."""
    holder = writer(store_lock(store))
    if holder is not None:
        who = f" (pid {holder})" if holder else ""
        raise StoreLocked(
            f"an extraction is writing {store}{who}; wait for it to finish, then run this again"
        )
