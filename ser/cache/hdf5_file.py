"""Why an HDF5 file cannot be opened: held by another writer, truncated, or no HDF5 at all.

HDF5 says so in words meant for its developers ("truncated file: eof = ..., sblock->base_addr
= ..."); ser tells them apart by what they are instead: a lock held elsewhere is the
``BlockingIOError`` HDF5's file locking raises (errno EAGAIN), and truncation is the file
being shorter than the end-of-file address its superblock records (the HDF5 file format
specification, "Superblock": versions 0-1 and 2-3 keep it at fixed places after the
signature).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Where the signature may be: after a user block of 512 bytes or a power of two above it.
_PLACES = (0, *(512 << n for n in range(24)))


def is_locked(error: OSError) -> bool:
    """Whether opening failed because another process holds the file's lock."""
    return isinstance(error, BlockingIOError) or error.errno in (errno.EAGAIN, errno.EWOULDBLOCK)


def unreadable(path: Path, error: OSError) -> str:
    """What is wrong with an HDF5 file h5py could not open (`error`), in words."""
    try:
        size = path.stat().st_size
        found = recorded_end(path)
    except OSError as err:
        return f"cannot be read ({os.strerror(err.errno) if err.errno else err})"
    if error.errno is not None:  # the system's error (permissions...), not the file's
        return f"cannot be opened ({os.strerror(error.errno)})"
    if size == 0:
        return "is an empty file (0 bytes)"
    if found is None:
        return "is not an HDF5 file (no HDF5 signature where one belongs)"
    base, end = found
    if size + base < end:  # HDF5's own test of truncation
        return (
            f"is truncated: {size:,} of its {end:,} bytes are there (cut short by a full "
            "disk or a killed copy); what was past them is lost"
        )
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"is damaged: HDF5 cannot read it ({first})"


def recorded_end(path: Path) -> tuple[int, int] | None:
    """(base address, end-of-file address) as the file's superblock records them; None
    without an HDF5 signature, (0, 0) for a superblock version this does not know."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for place in _PLACES:
            if place + len(SIGNATURE) > size:
                return None
            f.seek(place)
            if f.read(len(SIGNATURE)) == SIGNATURE:
                head = f.read(64)
                break
        else:
            return None
    version = head[0] if head else -1  # the superblock's first byte
    if version in (0, 1):
        width, base_at = head[5], 16 + 4 * version
    elif version in (2, 3):
        width, base_at = head[1], 4
    else:
        return 0, 0
    end_at = base_at + 2 * width  # base address, then one more address, then the end
    base = int.from_bytes(head[base_at : base_at + width], "little")
    return base, int.from_bytes(head[end_at : end_at + width], "little")
