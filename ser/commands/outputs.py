"""What a command writes, checked before it does any work: a folder it writes into, a
file it writes, a store it creates or adds to. Each refusal is one `PathError` naming the
option, the path and what is wrong (a file where a folder must be, or on the way to it; a
folder where a file goes; a folder this process may not write in), instead of a
traceback once a fold has trained or a corpus been read.

Writing is tried, not inferred from permission bits: a temporary file (unnamed where the
system allows) made and dropped in the folder that would hold the output, or its nearest
existing ancestor when missing folders are still to be made. That is what the command
itself will meet: ACLs, a read-only file system, root's privileges.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ser.errors import PathError


def output_folder(path: Path, option: str) -> None:
    """`path` is a folder the command may write into, or can be made one."""
    if path.exists() and not path.is_dir():
        raise PathError(f"{option} {path}: exists and is a file, not a folder")
    _writable(path, option, path)


def output_file(path: Path, option: str) -> None:
    """`path` can be written as a file (made anew or replaced): it is not a folder, and
    its folder may be written into, or made."""
    if path.is_dir():
        raise PathError(f"{option} {path}: is a folder; give a file's name")
    _writable(path.parent, option, path)


def output_store(path: Path, option: str = "--store") -> None:
    """A feature store can be made at `path`, or written into where it is: a Zarr store
    (``.zarr``) is a folder written into, an HDF5 store (``.h5``) a file opened for
    writing; either's folder is written into too (its lock lies beside it)."""
    _writable(path.parent, option, path)
    folder = path.suffix.lower() == ".zarr"
    if path.exists() and path.is_dir() != folder:
        found, wanted = ("a folder", "a file") if path.is_dir() else ("a file", "a folder")
        raise PathError(f"{option} {path}: is {found}; a {path.suffix} store is {wanted}")
    if path.is_dir():
        _writable(path, option, path)
    elif path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as error:
            raise PathError(f"{option} {path}: cannot write it ({error.strerror})") from None


def _writable(folder: Path, option: str, target: Path) -> None:
    """A file can be made in `folder`, or (missing) in its nearest existing ancestor."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PathError(f"{option} {target}: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        where = "it" if existing == target else existing
        raise PathError(f"{option} {target}: cannot write in {where} ({error.strerror})") from None
