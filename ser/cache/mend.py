"""Metadata a store writes anew from its own copies, and a manifest rebuilt from its corpus.

Every piece of metadata a store cannot lose without losing its data has a copy elsewhere
in it: the root's attributes are the manifest group's too (written with the store), and
each complete set's attributes are its main array's too (``data``, a transcript set's
``text``: written when the set is completed). `FeatureStore.open` reads the copy where the
original is damaged, and `mend_metadata` writes the original anew from it: the set's
fingerprint, provenance and recorded checksum, exactly as they were. A Zarr ``data``
array's own metadata is written anew from the set's attributes, its offsets and its chunk
files' size. What has no copy (an offsets or failures array's metadata) is extracted
again by the repair, like a damaged offsets array. A receipt's copy of a set's attributes
(`ser.cache.receipts`) stands in only where the set's data bears it out: its content
checksum is the one that copy records.

The manifest is rebuilt from the corpus, only when the rebuilt one agrees with everything
left of the old: the digest recorded with the store (`manifest_digest`), each column still
readable, and each set's number of utterances.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ser.cache.backend import (
    DATA,
    FORMAT_KEY,
    MANIFEST,
    TRANSCRIPTS,
    Backend,
    DamagedMetadata,
    UnreadablePart,
)
from ser.cache.manifest import DERIVED, LEGACY, Manifest
from ser.cache.verify import RECORDED, scan_data
from ser.errors import StoreError

DIGEST = "manifest_sha256"  # the root attribute: `manifest_digest` of the manifest written


def copy_key(part: str) -> str:
    """The array of a set that keeps the copy of its attributes."""
    return "text" if part.startswith(TRANSCRIPTS + "/") else DATA


def manifest_digest(manifest: Manifest) -> str:
    """sha256 over every column's name, kind and values, in column order; not over the
    `DERIVED` ones, added after the digest was recorded (and the corpus cannot give)."""
    digest = hashlib.sha256()
    for name in (n for n in manifest.names if n not in DERIVED):
        values = manifest.column(name)
        digest.update(json.dumps([name, values.dtype.kind, values.tolist()]).encode())
    return digest.hexdigest()


def root_attrs(backend: Backend) -> tuple[dict[str, Any], DamagedMetadata | None]:
    """The store's attributes, from the manifest's copy where its own are damaged; and
    that damage (None: none)."""
    try:
        return backend.root_attrs(), None
    except DamagedMetadata as damaged:
        try:
            copy = backend.group_attrs(MANIFEST)
        except StoreError:
            copy = None
        if not copy or FORMAT_KEY not in copy:
            raise damaged from None
        return copy, damaged


def read_manifest(backend: Backend) -> Manifest | StoreError:
    """The manifest, or why it cannot be read (a damaged chunk, metadata, column)."""
    try:
        return Manifest(backend.read_manifest())
    except StoreError as error:
        return error


def manifest_damage(store: str, error: StoreError) -> StoreError:
    """What reading a damaged manifest says: the file or array, and the repair."""
    return StoreError(
        f"{store}: the manifest is damaged ({damage_detail(store, error)}); "
        f"`ser store repair {shlex.quote(store)}` rebuilds it from the corpus"
    )


def damage_detail(store: str, error: StoreError) -> str:
    """What is damaged, as an error of reading the manifest says it: the file and why."""
    if isinstance(error, DamagedMetadata):
        return f"{error.file} {error.reason}"
    return str(error).removeprefix(f"{store}: ")


def copied_attrs(backend: Backend, part: str) -> dict[str, Any] | None:
    """The copy of set ``part``'s attributes its main array keeps (None: none readable)."""
    try:
        found = backend.array_attrs(part, copy_key(part))
    except StoreError:
        return None
    return found or None


def mend_metadata(
    backend: Backend, attrs: dict[str, Any], backup: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], list[str]]:
    """Write anew every damaged piece of metadata the store's copies (or ``backup``: a
    receipt's attributes by set, where the data bears them out) restore; (what was
    restored, what could not be), each as a line."""
    done: list[str] = []
    left: list[str] = []
    mended: set[str] = set()  # nodes written anew with another's
    every = sorted(backend.damaged_metadata(), key=lambda d: d.node)  # a set before its data
    left += [str(d) for d in every if isinstance(d, UnreadablePart)]  # permissions: not ours
    every = [d for d in every if not isinstance(d, UnreadablePart)]
    nodes = {d.node for d in every}
    for damaged in every:
        part, node = damaged.part, damaged.node
        if node in mended or (node == f"{part}/{DATA}" and part in nodes - mended):
            continue  # written with its set's attributes, or said with them
        if node == "":
            backend.set_root_attrs(attrs)
            done.append("the store's own metadata, from the manifest's copy")
        elif node == MANIFEST:
            backend.restore_group_attrs(MANIFEST, attrs)
            done.append("the manifest group's metadata")
        elif node == TRANSCRIPTS:  # the group of transcript sets holds nothing of its own
            backend.restore_group_attrs(TRANSCRIPTS, {})
            done.append("the transcripts group's metadata")
        elif node == part and part != MANIFEST:
            copy = copied_attrs(backend, part)
            found = copy or _borne_out(backend, part, backup.get(part))
            if found is not None:
                backend.restore_group_attrs(part, found)
                if copy is None:  # the copy was lost too: kept again, as completion wrote it
                    backend.set_array_attrs(part, DATA, found)
                mended.add(part)
                done.append(f"{part}: its attributes, from {_source(copy)}")
            elif _from_receipt(backend, part, backup.get(part)):
                mended |= {part, f"{part}/{DATA}"}
                done.append(
                    f"{part}: its attributes, from the store's receipt, and its data's "
                    "metadata, from them and its offsets"
                )
            else:
                left.append(f"{part}: no copy of its attributes to restore {damaged.file} from")
        elif node == f"{part}/{DATA}":
            line = _restore_data(backend, part)
            (done if line.startswith(part + ": its data") else left).append(line)
    return done, left


def _source(copy: Mapping[str, Any] | None) -> str:
    return "the store's receipt" if copy is None else "its copy"


def _restore_data(backend: Backend, part: str) -> str:
    """Write a set's ``data`` metadata anew from its attributes and offsets."""
    try:
        attrs = backend.group_attrs(part) or {}
        offsets = backend.read_array(part, "offsets")
        if offsets is None or "dim" not in attrs or "dtype" not in attrs:
            return f"{part}: its data's metadata cannot be restored (no offsets or attributes)"
        backend.restore_data(part, (int(offsets[-1]), int(attrs["dim"])), str(attrs["dtype"]))
        if attrs.get("complete"):  # the copy it kept
            backend.set_array_attrs(part, DATA, attrs)
    except StoreError as error:
        return f"{part}: its data's metadata cannot be restored ({error})"
    return f"{part}: its data's metadata, from its attributes and offsets"


def _from_receipt(backend: Backend, part: str, attrs: Mapping[str, Any] | None) -> bool:
    """Set ``part``'s attributes and its data's metadata, both damaged (the data keeps the
    attributes' copy), written anew from the receipt's ``attrs`` and its offsets where its
    data then bears them out; False (its data's metadata as they say, still checked by
    verify) where it does not."""
    if attrs is None or part.startswith(TRANSCRIPTS + "/") or "dim" not in attrs:
        return False
    try:
        offsets = backend.read_array(part, "offsets")
        if offsets is None:
            return False
        backend.restore_data(part, (int(offsets[-1]), int(attrs["dim"])), str(attrs["dtype"]))
        found = _borne_out(backend, part, attrs)
        if found is None:
            return False
        backend.restore_group_attrs(part, found)
        backend.set_array_attrs(part, DATA, found)
    except StoreError:
        return False
    return True


def _borne_out(
    backend: Backend, part: str, attrs: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """``attrs`` when set ``part``'s data is what they describe: its layout, and its
    content checksum the one they record."""
    if attrs is None or not attrs.get(RECORDED) or part.startswith(TRANSCRIPTS + "/"):
        return None
    try:
        layout = backend.data_layout(part)
        if layout is None:
            return None
        (rows, dim), dtype = layout
        if dim != attrs.get("dim") or dtype.name != attrs.get("dtype"):
            return None
        scan = scan_data(backend, part, rows, dim, dtype)
    except StoreError:
        return None
    return dict(attrs) if scan.digest == attrs[RECORDED] else None


def agreeing_manifest(
    backend: Backend, candidates: Iterable[Manifest], attrs: Mapping[str, Any], sets: Sequence[str]
) -> Manifest:
    """The first of ``candidates`` (the corpus's manifest as it reads now) that agrees with
    what is left of the stored one, with the `DERIVED` columns still readable whole;
    StoreError saying where none does."""
    readable = _readable_columns(backend)
    lengths = {n: backend.array_length(n, "offsets") for n in sets if _has_offsets(backend, n)}
    why = "no manifest to compare"
    for manifest in candidates:
        why = _disagreement(manifest, readable, lengths, attrs.get(DIGEST))
        if not why:
            kept = {n: v for n, v in readable.items() if n in DERIVED and len(v) == len(manifest)}
            return Manifest.from_columns({**manifest.columns(), **kept})
    raise StoreError(
        f"{backend.path}: the corpus gives another manifest than the store's ({why}): it "
        "cannot be rebuilt from it; extract into a new store"
    )


def _has_offsets(backend: Backend, name: str) -> bool:
    try:
        return backend.array_length(name, "offsets") is not None
    except StoreError:
        return False


def _readable_columns(backend: Backend) -> dict[str, np.ndarray]:
    """The manifest's columns that can still be read, each read on its own."""
    found: dict[str, np.ndarray] = {}
    try:
        names = backend.array_names(MANIFEST)
    except StoreError:
        return found
    for name in names:
        try:
            values = backend.read_array(MANIFEST, name)
        except StoreError:  # its metadata or a chunk damaged
            continue
        if values is not None:
            found[name] = values
    return found


def _disagreement(
    manifest: Manifest,
    readable: Mapping[str, np.ndarray],
    lengths: Mapping[str, int | None],
    digest: str | None,
) -> str:
    """Why ``manifest`` is not the stored one ("" when nothing says it is not)."""
    if digest is not None and manifest_digest(manifest) != digest:
        return "its digest differs from the one recorded with the store"
    for name, values in readable.items():
        if name not in manifest.names:
            if name in (*LEGACY, *DERIVED):  # before groups, or made from the audio
                continue
            return f"the store has a column {name} the corpus does not give"
        try:
            stored = Manifest.from_columns({**manifest.columns(), name: values})
        except StoreError as error:
            return f"column {name}: {error}"
        if stored.differences(manifest):
            return f"column {name} differs"
    for name, length in lengths.items():
        if length is not None and length != len(manifest) + 1:
            return f"set {name} holds {length - 1} utterances, the corpus {len(manifest)}"
    return ""
