"""The nodes of a Zarr store, each opened on its own by its path, its ``zarr.json`` read and
checked before zarr parses it: a missing, empty or garbled one is a `DamagedMetadata`
naming the part of the store it belongs to and the file, and no other node is read on
the way. (Zarr's own listing of a group reads every member at once: one damaged member
fails them all, and asyncio logs "Task exception was never retrieved" with a traceback for
each other one: `quiet_zarr_tasks` keeps that from the user.)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

import zarr

from ser.cache.backend import TRANSCRIPTS, DamagedMetadata, UnreadablePart
from ser.errors import StoreError

Node = TypeVar("Node", zarr.Group, zarr.Array)
METADATA = "zarr.json"
CHUNKS = "c"  # the folder of an array's chunk files (the default chunk key encoding)
_ZARR = Path(zarr.__file__).resolve().parent


def part_of(rel: str) -> str:
    """The part of the store node ``rel`` belongs to: "" (the root), a top-level group
    (the manifest, a feature set) or ``transcripts/<name>``."""
    parts = PurePosixPath(rel).parts
    if not parts:
        return ""
    if parts[0] == TRANSCRIPTS and len(parts) > 1:
        return f"{TRANSCRIPTS}/{parts[1]}"
    return parts[0]


def damaged(store: Path, rel: str, reason: str) -> DamagedMetadata:
    node = str(PurePosixPath(rel)) if rel else ""
    return DamagedMetadata(store, part_of(rel), store / rel / METADATA, reason, node)


def metadata(store: Path, rel: str) -> dict[str, Any]:
    """The parsed ``zarr.json`` of node ``rel`` ("" for the root); `DamagedMetadata` when
    it is missing, empty, no JSON or no Zarr v3 node's."""
    file = store / rel / METADATA
    try:
        text = file.read_bytes()
    except FileNotFoundError:
        raise damaged(store, rel, "is missing") from None
    except PermissionError as err:
        raise _denied(store, rel, err) from None
    except OSError as err:
        why = os.strerror(err.errno) if err.errno else str(err)
        raise damaged(store, rel, f"cannot be read ({why})") from None
    if not text.strip():
        raise damaged(store, rel, f"is empty ({len(text)} bytes)")
    try:
        meta = json.loads(text)
    except ValueError as err:  # UnicodeDecodeError included
        raise damaged(store, rel, f"is not JSON ({err})") from None
    if (
        not isinstance(meta, dict)
        or meta.get("zarr_format") != 3
        or meta.get("node_type") not in ("group", "array")
    ):
        raise damaged(store, rel, "is JSON but no Zarr v3 group's or array's metadata")
    return meta


def _denied(store: Path, rel: str, err: OSError) -> UnreadablePart:
    """`UnreadablePart` naming what may not be read: node ``rel``'s folder where it cannot
    be listed (a set's folder: `chmod 000`), else its ``zarr.json``."""
    folder = store / rel
    try:
        os.listdir(folder)
        path = folder / METADATA
    except OSError:
        path = folder
    node = str(PurePosixPath(rel)) if rel else ""
    return UnreadablePart(store, part_of(rel), path, os.strerror(err.errno or 13), node)


def attributes(store: Path, rel: str) -> dict[str, Any]:
    """The attributes of node ``rel`` (`metadata`'s)."""
    attrs = metadata(store, rel).get("attributes", {})
    if not isinstance(attrs, dict):
        raise damaged(store, rel, "holds attributes that are no JSON object")
    return attrs


def open_node(store: Path, rel: str, kind: type[Node], writable: bool = False) -> Node:
    """Group or array ``rel`` of the store, opened by itself; `DamagedMetadata` when its
    metadata is unreadable or of the other kind of node."""
    expected = "group" if kind is zarr.Group else "array"
    found = metadata(store, rel)["node_type"]
    if found != expected:
        raise damaged(store, rel, f"describes an {found}, where an {expected} belongs")
    mode: Literal["r", "r+"] = "r+" if writable else "r"
    try:
        if kind is zarr.Group:
            node: object = zarr.open_group(str(store / rel), mode=mode, zarr_format=3)
        else:
            node = zarr.open_array(str(store / rel), mode=mode, zarr_format=3)
    except (ValueError, TypeError, KeyError, NotImplementedError) as err:
        raise damaged(store, rel, f"is metadata zarr cannot read ({err})") from None
    if not isinstance(node, kind):
        raise damaged(store, rel, f"describes no {expected}")
    return node


def refuse_v2(path: Path) -> None:
    """StoreError where `path` is a Zarr v2 store (its ``.zgroup``, no ``zarr.json``): ser
    neither reads it nor may write over it."""
    marker = next((m for m in (".zgroup", ".zarray") if (path / m).is_file()), None)
    if marker is not None:
        raise StoreError(
            f"{path}: a Zarr v2 store (it has {marker}, no zarr.json), which ser does not "
            "read: ser's stores are Zarr v3; give a new path (ser extract or ser store init "
            "makes the store there), and bring features computed elsewhere in with `ser "
            "store import`"
        )


def is_node(folder: Path) -> bool:
    """Whether ``folder`` is a node of the store, its metadata readable or not: it has a
    ``zarr.json``, chunks, or a child that has one; or it cannot be looked into (its
    permissions), so that reading it names it."""
    try:
        if (folder / METADATA).exists() or (folder / CHUNKS).is_dir():
            return True
        return folder.is_dir() and any((child / METADATA).exists() for child in _folders(folder))
    except PermissionError:
        return True


def children(store: Path, rel: str) -> list[str]:
    """Names of the nodes in group ``rel``, by the folders on disk (none if it is absent)."""
    folder = store / rel
    if not folder.is_dir():
        return []
    return sorted(child.name for child in _folders(folder) if is_node(child))


def damaged_metadata(store: Path) -> list[DamagedMetadata]:
    """Every node of the store whose metadata is unreadable, root first, then by path."""
    found: list[DamagedMetadata] = []
    pending = [""]
    while pending:
        rel = pending.pop(0)
        try:
            array = metadata(store, rel)["node_type"] == "array"
        except UnreadablePart as error:  # nothing in it can be looked at either
            found.append(error)
            continue
        except DamagedMetadata as error:
            found.append(error)
            array = (store / rel / CHUNKS).is_dir()
        if not array:
            pending += [str(PurePosixPath(rel) / name) for name in children(store, rel)]
    return found


def _folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


class _ZarrTaskNoise(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for tasks that raised in zarr:
    zarr's listing leaves them behind when one member fails, which ser reports itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not str(record.msg).startswith("Task exception was never retrieved"):
            return True
        frame = error.__traceback__
        while frame is not None:
            if Path(frame.tb_frame.f_code.co_filename).resolve().is_relative_to(_ZARR):
                return False
            frame = frame.tb_next
        return True


def quiet_zarr_tasks() -> None:
    """Install `_ZarrTaskNoise` on asyncio's logger (once)."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _ZarrTaskNoise) for f in logger.filters):
        logger.addFilter(_ZarrTaskNoise())
