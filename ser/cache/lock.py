"""One writer per store: a non-blocking exclusive ``flock`` on a file beside the store.

The kernel drops the lock when its holder dies (even by kill -9): a stale lock file never
blocks a later run. The file keeps the holder's pid only to name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def try_lock(lock_file: Path) -> Iterator[str | None]:
    """Yields None while this process holds the lock, else the holder's pid ("" when
    unknown), never waiting. Also what guards a sweep's cells."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
            yield holder if holder.isdigit() else ""
            return
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield None
        finally:
            # Truncate before unlocking so that nobody reads our pid once we are gone.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
