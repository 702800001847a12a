"""Atomic file writes: the content goes to a temp file beside its target, then
``os.replace`` puts it in place, so a reader (another process, a resume after a kill)
sees the old file or the new one, never half of one. Shards, transcripts, receipts,
checkpoints, run records and sweep manifests are all written so.

>>> import tempfile
>>> path = write_json(Path(tempfile.mkdtemp()) / "a" / "b.json", {"x": 1})
>>> path.read_text()
'{\\n "x": 1\\n}\\n'
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` to a temp file in `path`'s folder (removed on failure), then
    ``os.replace`` it onto `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`atomic`, for a writer of an open binary file."""

    def to(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    atomic(path, to)


def write_json(path: Path, value: Any) -> Path:
    """`value` as JSON at `path`, atomically, the folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=1) + "\n"
    atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
