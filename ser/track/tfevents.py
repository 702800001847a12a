"""TensorBoard's event files as ser writes them (`ser.track.tracking`): whether a folder's
files hold what was logged, whole, and their names without the machine's.

An event file is a run of records, each its length (8 bytes, little-endian), a checksum
of the length (4), the event, and a checksum of the event (4); the first event of a file
is its version, then one event per scalar. A file cut short ends inside a record, or
holds fewer events than were logged. TensorBoard's writer names a file
``events.out.tfevents.<time>.<host>.<pid>.<n>``: ser renames its own
``events.out.tfevents.<time>.ser.<n>`` (TensorBoard reads any name holding ``tfevents``).
"""

from __future__ import annotations

import struct
from pathlib import Path

PREFIX = "events.out.tfevents."
FRAME = 8 + 4 + 4  # a record's length and the two checksums around its event


def events(path: Path) -> int | None:
    """How many events the file holds; None: it is cut short (ends inside a record)."""
    data = path.read_bytes()
    count = offset = 0
    while offset < len(data):
        if offset + 8 > len(data):
            return None
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += FRAME + length
        if offset > len(data):
            return None
        count += 1
    return count


def problem(folder: Path, points: int) -> str | None:
    """What is wrong with the event files of a folder `points` scalars were logged to
    (one file's version event each, then the scalars); None: they hold them all."""
    files = sorted(folder.glob("*tfevents*"))
    if not files:
        return "holds no event file"
    counts = [events(path) for path in files]
    if None in counts:
        cut = files[counts.index(None)]
        return f"has an event file cut short ({cut.name})"
    held = sum(c or 0 for c in counts) - len(files)
    return None if held == points else f"holds {held} of its {points} points"


def anonymous(folder: Path) -> None:
    """Rename the event files TensorBoard's writer made in `folder` without the host name
    and process id it puts in them: they may leave the machine."""
    for path in folder.glob(f"{PREFIX}*"):
        parts = path.name.removeprefix(PREFIX).split(".")
        if len(parts) >= 4:  # <time>.<host, maybe dotted>.<pid>.<n>
            path.rename(path.with_name(f"{PREFIX}{parts[0]}.ser.{parts[-1]}"))
