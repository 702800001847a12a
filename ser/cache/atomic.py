"""Atomic file writes: the content goes to a temp file beside its target, then
``os.replace`` puts it in place, so a reader (another process, a resume after a kill)
sees the old file or the new one, never half of one. Shards, transcripts, receipts,
checkpoints, run records and sweep manifests are all written so.

A full disk (or quota) while writing is a `DiskFullError` naming the file and what it
holds (`writing`): the temp file goes, the files written before stay, so the same
command run again once there is room goes on from there.

>>> import tempfile
>>> path = write_json(Path(tempfile.mkdtemp()) / "a" / "b.json", {"x": 1}, "a setting")
>>> path.read_text()
'{\\n "x": 1\\n}\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ser.errors import RESUMES, DiskFullError


@contextlib.contextmanager
def writing(path: str | Path, what: str, again: str = RESUMES) -> Iterator[None]:
    """A full disk inside the block is a `DiskFullError` naming `what` and `path`; the
    innermost block names it (an outer one lets a `DiskFullError` through)."""
    try:
        yield
    except Exception as error:  # safetensors' own error type says a full disk in its text
        full = DiskFullError.of(error, path, what, again)
        if full is None:
            raise
        raise full from error


def atomic(path: Path, write: Callable[[Path], Any], what: str, again: str = RESUMES) -> None:
    """`write(tmp)` to a temp file in `path`'s folder (created if missing; the temp file
    removed on failure), then ``os.replace`` it onto `path`. `what`, `again`: a full
    disk's message (`writing`)."""
    with writing(path, what, again):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object], what: str) -> None:
    """`atomic`, for a writer of an open binary file."""

    def to(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    atomic(path, to, what)


def write_json(path: Path, value: object, what: str) -> Path:
    """`value` as JSON at `path`, atomically, the folder created."""
    text = json.dumps(value, indent=1) + "\n"
    atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what)
    return path
