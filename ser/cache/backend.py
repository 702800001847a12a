"""What a storage format must offer the store (`formats.py` picks one by suffix), and
the names a store accepts for its sets. Both formats hold the same tree: root attributes,
a ``manifest`` group, a group per set (``data``, ``offsets``, the failures table).

Every array a backend writes carries a checksum per chunk that its reads check (Zarr:
the ``crc32c`` codec; HDF5: the Fletcher-32 filter); a chunk that fails it is reported
as `DamagedChunks`, never returned. Arrays of stores written before have none and read
as they are.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ser.errors import StoreError

FORMAT_KEY = "ser_store_format"
FORMAT = 1
MANIFEST = "manifest"
# Groups of transcript sets (ASR output) live under this group, never among feature sets.
TRANSCRIPTS = "transcripts"
RESERVED = (MANIFEST, TRANSCRIPTS)
DATA = "data"
# "@" joins a text set to the transcripts it was extracted from (`mpnet-base@asr-whisper-small`).
SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]*$")
# Arrays written carry per-chunk checksums. False writes the layout of stores made before
# checksums (tests and benchmarks build such stores); never False in ser itself.
CHUNK_CHECKSUMS = True


class DamagedChunks(StoreError):
    """Chunks of one stored array whose bytes fail their checksum (or cannot be decoded)."""

    def __init__(self, path: Path, array: str, spans: Sequence[tuple[int, int]]) -> None:
        self.array = array  # "<group>/<key>"
        self.spans = list(spans)  # [start, stop) along the first axis, one per damaged chunk
        super().__init__(
            f"{path}: {array}: {len(self.spans)} chunk(s) fail their checksum "
            f"(rows {span_text(self.spans)})"
        )


class DamagedMetadata(StoreError):
    """A part of the store whose metadata cannot be read (a Zarr ``zarr.json`` missing,
    empty or garbled; an HDF5 attribute that is no JSON): the part ("" the store's root,
    `MANIFEST`, a set's group), the node whose metadata it is (the part's group, or one of
    its arrays: ``<part>/<key>``), the file, and why."""

    def __init__(
        self, store: Path, part: str, file: Path, reason: str, node: str | None = None
    ) -> None:
        self.store, self.part, self.file, self.reason = store, part, file, reason
        self.node = part if node is None else node
        super().__init__(
            f"{store}: {part_title(part)} is damaged: {file} {reason}; "
            f"`ser store repair {shlex.quote(str(store))}` rebuilds it"
        )


class UnreadablePart(DamagedMetadata):
    """A file or folder of the store this user may not read (its permissions): nothing in
    it need be damaged, and nothing ser writes mends it, so no repair is offered."""

    def __init__(self, store: Path, part: str, path: Path, why: str, node: str | None = None):
        reason = (
            f"cannot be read ({why}): give this user read access to it (chmod -R u+rX "
            f"{shlex.quote(str(path))}), then run this again"
        )
        super().__init__(store, part, path, reason, node)
        self.args = (f"{store}: {part_title(part)}: {path} {reason}",)


class StoreUnreadable(StoreError):
    """A store file that cannot be opened at all (an HDF5 file truncated or garbled): what
    it held can only be extracted again (`ser store repair`, from its receipt)."""

    def __init__(self, store: Path, reason: str) -> None:
        self.store, self.reason = store, reason
        super().__init__(f"{store}: the store {reason}; `ser store verify` says what mends it")


def part_title(part: str) -> str:
    """How messages name a part of a store: its root, its manifest, a set."""
    if not part:
        return "the store's own metadata"
    if part == MANIFEST:
        return "the manifest"
    if part.startswith(TRANSCRIPTS + "/"):
        return f"transcript set {part.split('/', 1)[1]!r}"
    return f"feature set {part!r}"


def span_text(spans: Sequence[tuple[int, int]], shown: int = 4) -> str:
    """``0-4095, 8192-9000`` (inclusive), the first `shown` spans and how many more."""
    text = ", ".join(f"{start}-{stop - 1}" for start, stop in spans[:shown])
    return text + (f" and {len(spans) - shown} more" if len(spans) > shown else "")


class RawChunks(Protocol):
    """A data array's chunks as bytes on disk (`raw_chunks.py`): each chunk's rows, raw,
    then once sealed the checksum its format's reads check. Picklable: paths and numbers."""

    # `piece` written from byte `at` of a chunk's rows (any process, any order).
    def write(self, chunk: int, at: int, piece: memoryview) -> None: ...
    # `out` filled from byte `at` of a chunk's rows; StoreError where they are not there.
    def read(self, chunk: int, at: int, out: memoryview) -> None: ...
    # The chunk made whole (zeros past its first `kept` bytes) and its checksum written;
    # its first `kept` bytes.
    def seal(self, chunk: int, kept: int) -> bytes: ...
    # Whether the array was written anew through its library since rows were placed in it.
    def rewritten(self) -> bool: ...
    # Whether each chunk ends in a checksum, so that a write cut short is found.
    @property
    def checked(self) -> bool: ...


class Backend(Protocol):
    """One storage format. Small arrays are read and written whole; ``data`` in blocks.
    Reads raise `DamagedChunks` naming every damaged chunk of what they read."""

    name: str
    path: Path
    writable: bool
    # Whether threads may write different feature sets at once (zarr: a folder each;
    # HDF5: one file, locked by each open).
    concurrent_sets: bool

    def exists(self) -> bool: ...
    # Atomic: a whole new store or none; FileExistsError if one is there.
    def create(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None: ...
    # Metadata (attributes) raise `DamagedMetadata` where unreadable.
    def root_attrs(self) -> dict[str, Any]: ...
    def set_root_attrs(self, attrs: dict[str, Any]) -> None: ...
    def read_manifest(self) -> dict[str, np.ndarray]: ...
    # The manifest written anew beside the old one, then swapped in; `attrs`: the root's copy.
    def replace_manifest(self, manifest: dict[str, np.ndarray], attrs: dict[str, Any]) -> None: ...
    # Top-level groups but `RESERVED` ones, or those under ``parent`` (none if it is absent).
    def group_names(self, parent: str | None = None) -> list[str]: ...
    def group_attrs(self, name: str) -> dict[str, Any] | None: ...
    # Creates the group if absent, and its missing parents (``transcripts/<name>``).
    def set_group_attrs(self, name: str, attrs: dict[str, Any]) -> None: ...
    # A group's metadata written anew over damaged metadata; its arrays untouched.
    def restore_group_attrs(self, name: str, attrs: dict[str, Any]) -> None: ...
    # Attributes of an array (a set's copy of its own, `mend.py`); None: no such array.
    def array_attrs(self, name: str, key: str) -> dict[str, Any] | None: ...
    def set_array_attrs(self, name: str, key: str, attrs: dict[str, Any]) -> None: ...
    # ``data``'s metadata written anew, its chunks kept (Zarr; HDF5 has none apart).
    def restore_data(self, name: str, shape: tuple[int, int], dtype: str) -> None: ...
    # Every node whose metadata is unreadable, the root first.
    def damaged_metadata(self) -> list[DamagedMetadata]: ...
    def delete_group(self, name: str) -> None: ...
    def write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None: ...
    def array_names(self, name: str) -> list[str]: ...  # the arrays of group ``name``
    # Text comes back as numpy str ("U"), whatever the format stored.
    def read_array(self, name: str, key: str) -> np.ndarray | None: ...
    # Its length from the metadata alone, no chunk read (None: no such array).
    def array_length(self, name: str, key: str) -> int | None: ...
    # ``in_place``: made to take rows written straight into its chunks (`direct_chunks`;
    # HDF5 allocates every chunk now, writing zeros, so that none moves later).
    def create_data(
        self, name: str, shape: tuple[int, int], dtype: str, chunk_rows: int, in_place: bool = False
    ) -> None: ...
    def write_blocks(self, name: str, blocks: Iterable[tuple[int, np.ndarray]]) -> None: ...
    # ``data`` cut to its first ``rows`` rows (a set written in place that kept fewer rows
    # than it was sized for), its chunks and attributes kept.
    def trim_data(self, name: str, rows: int) -> None: ...
    # Repair: (first row, rows) written over the stored data; the runs cover every damaged
    # chunk whole, so none is read back.
    def repair_rows(self, name: str, runs: Sequence[tuple[int, np.ndarray]]) -> None: ...
    # ``data`` written anew beside the old in chunks of ``chunk_rows``, from ``blocks``
    # (first row, rows: every row, in order), its attributes kept, then swapped in; an
    # exception from ``blocks`` leaves the old one as it was.
    def rechunk_data(
        self,
        name: str,
        chunk_rows: int,
        blocks: Iterable[tuple[int, np.ndarray]],
        rows: int | None = None,  # the new array's rows (None: the old's)
    ) -> None: ...
    # What a killed rechunk left, finished or dropped; only under the store's lock (a
    # rechunk under way looks the same).
    def settle_rechunks(self) -> None: ...
    def data_layout(self, name: str) -> tuple[tuple[int, int], np.dtype] | None: ...
    def chunk_rows(self, name: str) -> int: ...  # rows per chunk of ``data``
    # Where ``data``'s chunks keep their raw rows, which may be written in place from any
    # process (`scattered.py`); None: only through the library.
    def direct_chunks(self, name: str) -> RawChunks | None: ...
    def read_data(self, name: str) -> np.ndarray: ...
    # Rows ``start:stop`` of ``data``, into the first rows of ``out`` where given (a
    # buffer a reader reuses, so that reading a set does not churn the allocator).
    def read_rows(
        self, name: str, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray: ...
    def nbytes(self, name: str) -> int: ...


def failure_arrays(utt_ids: np.ndarray, failures: Mapping[int, str]) -> dict[str, np.ndarray]:
    """The failures table of a set (manifest row -> reason), in manifest order."""
    rows = sorted(failures)
    reasons = np.array([failures[i] for i in rows], np.str_)
    return {"failures_utt_id": utt_ids[rows], "failures_reason": reasons}


def read_failures(backend: Backend, name: str) -> list[tuple[str, str]]:
    """(utt_id, reason) of the set's failures table, manifest order (empty without one);
    StoreError when only half of the table is there."""
    ids = backend.read_array(name, "failures_utt_id")
    reasons = backend.read_array(name, "failures_reason")
    problem = failures_table_problem(ids, reasons)
    if problem:
        raise StoreError(
            f"{backend.path}: {name!r}: {problem}; `ser store verify {backend.path}` prints "
            "the command that rebuilds it"
        )
    if ids is None or reasons is None:
        return []
    return list(zip(ids.tolist(), reasons.tolist(), strict=True))


def failures_table_problem(ids: np.ndarray | None, reasons: np.ndarray | None) -> str:
    """What is wrong with a failures table of these two arrays ("" when nothing): both
    are written together, so one without the other, or of other lengths, is damage. A
    table with neither array is a set without failures (stores written before it)."""
    if ids is None and reasons is None:
        return ""
    if ids is None or reasons is None:
        missing = "failures_utt_id" if ids is None else "failures_reason"
        return f"its failures table is damaged: {missing} is missing"
    if len(ids) != len(reasons):
        return f"its failures table is damaged: {len(ids)} utterance ids but {len(reasons)} reasons"
    return ""


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist). A writer may rename
    or remove its temp files, or drop a whole staging folder, while they are counted (an
    extraction beside a `ser store info`): what is gone by then counts nothing."""
    total = 0
    for parent, _, names in os.walk(folder):  # a folder gone meanwhile: skipped
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(parent, name)).st_size
    return total


def check_name(name: str) -> None:
    """StoreError unless `name` can name a feature set or transcript set in a store."""
    if not SET_NAME.match(name) or name in RESERVED:
        raise StoreError(
            f"feature set name {name!r}: use letters, digits and . _ + = @ - "
            f"(not starting with a symbol, and not {' or '.join(map(repr, RESERVED))})"
        )
