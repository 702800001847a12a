"""Health checks of one feature set, and its content checksum, in one pass over the data.

The checksum is the sha256 of the data bytes (little-endian, C order) in manifest order,
so the same features give the same digest in a Zarr and an HDF5 store, on any machine.
It is recorded (``data_sha256``) when a set is completed and compared here; every chunk
read also checks its own checksum (`DamagedChunks`), so damage is named by its rows and
utterances, and `Damage` says what re-extraction mends it. A view set (`ser extract
--augment`) is checked against its clean set as well: one made from a clean set since
extracted again with other settings is stale (`stale_view`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.cache.backend import (
    Backend,
    DamagedChunks,
    DamagedMetadata,
    failures_table_problem,
    span_text,
)
from ser.cache.fingerprint import VIEW_SOURCE, fingerprint, identity, matches
from ser.cache.manifest import Manifest
from ser.cache.store_types import Damage
from ser.errors import StoreError

BLOCK_BYTES = 64 * 2**20  # rows are scanned in blocks of about this size
RECORDED = "data_sha256"  # the set attribute holding the checksum recorded at completion
# The attrs a view set adds to its clean set's: the clean set's name, the view
# (`"speed=0.9"`) and the clean set's fingerprint when the view was made.
VIEW_ATTRS = ("view_of", "view", VIEW_SOURCE)


@dataclass(frozen=True)
class Health:
    """One feature set: what is wrong with it and the checksums."""

    problems: list[str]
    checksum: str | None  # of the data as read; None when some of it could not be read
    recorded: str | None  # recorded at completion; None for a set written before
    damage: Damage


@dataclass(frozen=True)
class Scan:
    """One pass over a set's data."""

    digest: str | None  # sha256 of the data bytes; None when a chunk could not be read
    damaged: list[tuple[int, int]]  # [start, stop) rows of chunks that fail their checksum
    bad_rows: np.ndarray  # rows holding NaN or Inf, int64


#: Told the bytes of each block a scan has read (a progress bar's advance).
Advance = Callable[[int], None]


def check_feature_set(
    backend: Backend,
    manifest: Manifest | None,
    name: str,
    attrs: dict[str, Any],
    advance: Advance | None = None,
) -> Health:
    """Problems of feature set ``name`` (empty when healthy), its checksums and damage;
    ``manifest`` None (damaged): what needs it to be checked is not; `advance` is told
    the bytes of each block of its data read."""
    if not attrs.get("complete"):
        stopped = (
            "import" if attrs.get("extractor") == "imported" else "extraction or consolidation"
        )
        problem = f"{name}: incomplete ({stopped} has not finished)"
        return Health([problem], None, None, Damage())
    recorded = attrs.get(RECORDED)
    try:
        problems, offsets, layout = _structure(backend, manifest, name, attrs)
    except DamagedChunks as damaged:
        key = damaged.array.rsplit("/", 1)[-1]
        problems = [f"{name}: its {key} array fails its checksum ({span_text(damaged.spans)})"]
        return Health(problems, None, recorded, Damage(whole=True, problems=tuple(problems)))
    except DamagedMetadata as damaged:  # its offsets' or failures' (verify names the file)
        problems = [f"{name}: {damaged.file} {damaged.reason}"]
        return Health(problems, None, recorded, Damage(whole=True, problems=tuple(problems)))
    if layout is None:
        return Health(problems, None, recorded, Damage(whole=True, problems=tuple(problems)))
    (rows, dim), dtype = layout
    scan = scan_data(backend, name, rows, dim, dtype, advance)
    local = _damage(manifest, name, offsets, scan)
    differs = []
    if scan.digest is not None and recorded is not None and scan.digest != recorded:
        differs.append(
            f"{name}: content checksum {scan.digest[:12]} differs from the one recorded "
            f"when the set was completed ({recorded[:12]})"
        )
    # Damage the utterances' rows cannot mend: the layout itself, or a changed checksum
    # no chunk is to blame for.
    whole = bool(problems) or (bool(differs) and not local.utterances)
    problems += [*local.problems, *differs]
    damage = Damage(local.utterances, local.rows, whole, tuple(problems), failing=local.failing)
    return Health(problems, scan.digest, recorded, damage)


def _structure(
    backend: Backend, manifest: Manifest | None, name: str, attrs: dict[str, Any]
) -> tuple[list[str], np.ndarray | None, tuple[tuple[int, int], np.dtype] | None]:
    """Problems of the set's layout, its offsets (None when they cannot be trusted) and
    its data's layout (None when data or offsets are missing)."""
    problems = []
    if not matches(attrs):  # also a set fingerprinted before locations left the hash
        problems.append(f"{name}: stored fingerprint does not match its attributes")
    layout = backend.data_layout(name)
    offsets = backend.read_array(name, "offsets")
    backend.read_array(name, "failures_reason")  # its chunks checked: the rest reads them
    if layout is None or offsets is None:
        return [*problems, f"{name}: data or offsets array is missing"], None, None
    (rows, dim), dtype = layout
    if dim != attrs.get("dim") or dtype.name != attrs.get("dtype"):
        problems.append(
            f"{name}: data is [{rows}, {dim}] {dtype.name}, attributes say dim "
            f"{attrs.get('dim')} {attrs.get('dtype')}"
        )
    n_utt = None if manifest is None else len(manifest)
    offset_problems = _offset_problems(name, offsets, n_utt, rows)
    if offset_problems:
        return problems + offset_problems, None, layout
    if manifest is None:
        return problems, offsets, layout
    return problems + _row_count_problems(backend, manifest, name, attrs, offsets), offsets, layout


def _damage(manifest: Manifest | None, name: str, offsets: np.ndarray | None, scan: Scan) -> Damage:
    """The damage a scan found: chunks failing their checksum and NaN/Inf rows, with the
    utterances holding them (none when the offsets cannot be trusted)."""
    problems = []
    utterances: set[int] = set()
    if scan.damaged:
        held = set() if offsets is None else utterances_in(offsets, scan.damaged)
        problems.append(
            f"{name}: rows {span_text(scan.damaged)} fail their chunk checksum"
            + (f" ({utterance_text(manifest, held)})" if held else "")
        )
        utterances |= held
    if len(scan.bad_rows):
        where = f"row {scan.bad_rows[0]}"
        if offsets is not None:
            owners = np.searchsorted(offsets, scan.bad_rows, side="right") - 1
            utterances |= set(owners.tolist())
            if manifest is not None:
                where += f", utterance {manifest.utt_ids[owners[0]]}"
        problems.append(f"{name}: {len(scan.bad_rows)} rows hold NaN or Inf (first: {where})")
    spans = (*scan.damaged, *((int(r), int(r) + 1) for r in scan.bad_rows))
    failing = tuple(scan.damaged)
    return Damage(tuple(sorted(utterances)), spans, problems=tuple(problems), failing=failing)


def utterances_in(offsets: np.ndarray, spans: list[tuple[int, int]]) -> set[int]:
    """Manifest rows of the utterances with rows in any of ``spans`` ([start, stop))."""
    starts, ends = offsets[:-1], offsets[1:]
    found: set[int] = set()
    for start, stop in spans:  # failed utterances hold no rows, wherever their offset is
        found |= set(np.flatnonzero((starts < stop) & (ends > start) & (ends > starts)).tolist())
    return found


def utterance_text(
    manifest: Manifest | None, utterances: set[int] | tuple[int, ...], shown: int = 3
) -> str:
    """``312 utterances: Ses01F_impro01_F000, ... and 309 more`` (rows of a damaged
    manifest: ``manifest rows 4, 5``)."""
    rows = sorted(utterances)
    noun = "utterance" if len(rows) == 1 else "utterances"
    if manifest is None:
        ids = [f"manifest row {i}" for i in rows]
    else:
        ids = [str(manifest.utt_ids[i]) for i in rows]
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f"{len(ids)} {noun}: {', '.join(ids[:shown])}{more}"


def _offset_problems(name: str, offsets: np.ndarray, n_utt: int | None, rows: int) -> list[str]:
    if offsets.ndim != 1 or len(offsets) < 1 or (n_utt is not None and len(offsets) != n_utt + 1):
        expected = "(N + 1,)" if n_utt is None else f"({n_utt + 1},)"
        return [f"{name}: offsets has shape {offsets.shape}, expected {expected}"]
    problems = []
    if offsets[0] != 0:
        problems.append(f"{name}: offsets start at {offsets[0]}, not 0")
    decreasing = np.flatnonzero(np.diff(offsets) < 0)
    if len(decreasing):
        problems.append(
            f"{name}: offsets are not monotonic ({len(decreasing)} decreases, first at "
            f"utterance {decreasing[0]})"
        )
    if offsets[-1] != rows:
        problems.append(f"{name}: offsets end at {offsets[-1]} but data has {rows} rows")
    return problems


def _row_count_problems(
    backend: Backend, manifest: Manifest, name: str, attrs: dict[str, Any], offsets: np.ndarray
) -> list[str]:
    counts = np.diff(offsets)
    ids = manifest.utt_ids
    problems = []
    if attrs.get("level") == "utterance" and (counts > 1).any():
        first = ids[np.flatnonzero(counts > 1)[0]]
        problems.append(f"{name}: utterance-level set has several rows for {first}")
    failed_ids = backend.read_array(name, "failures_utt_id")
    table = failures_table_problem(failed_ids, backend.read_array(name, "failures_reason"))
    if table:
        problems.append(f"{name}: {table}")
    failed_ids = np.array([], np.str_) if failed_ids is None else failed_ids
    unknown = [u for u in failed_ids.tolist() if u not in manifest]
    if unknown:
        problems.append(f"{name}: failures name utterances not in the manifest: {unknown[:3]}")
    failed = np.isin(ids, failed_ids)
    with_rows = ids[failed & (counts > 0)]
    if len(with_rows):
        problems.append(f"{name}: failed utterances have rows: {', '.join(with_rows[:3])}")
    silent = ids[~failed & (counts == 0)]
    if len(silent):
        problems.append(
            f"{name}: {len(silent)} utterances have no rows and no failure recorded "
            f"(e.g. {', '.join(silent[:3])})"
        )
    return problems


def scan_data(
    backend: Backend,
    name: str,
    rows: int,
    dim: int,
    dtype: np.dtype,
    advance: Advance | None = None,
) -> Scan:
    """Read every chunk of the set's data once: its sha256, damaged chunks, NaN/Inf rows;
    `advance` is told the bytes of each block read."""
    digest = hashlib.sha256()
    damaged: list[tuple[int, int]] = []
    bad: list[np.ndarray] = []
    chunk = backend.chunk_rows(name)
    step = chunk * max(1, BLOCK_BYTES // (chunk * dim * dtype.itemsize))
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        try:
            block = backend.read_rows(name, start, stop)
        except DamagedChunks as error:
            damaged += error.spans
            continue
        finally:
            if advance is not None:
                advance((stop - start) * dim * dtype.itemsize)
        if not damaged:  # past a damaged chunk the digest means nothing
            digest.update(little_bytes(block))
        bad.append(start + np.flatnonzero(~np.isfinite(block).all(axis=1)))
    bad_rows = np.concatenate([np.zeros(0, np.int64), *bad]).astype(np.int64)
    return Scan(None if damaged else digest.hexdigest(), damaged, bad_rows)


def data_bytes(backend: Backend, name: str, attrs: dict[str, Any]) -> int:
    """The bytes a check of complete set ``name`` reads (0: one it will not scan, or
    whose layout cannot be read)."""
    if not attrs.get("complete"):
        return 0
    try:
        layout = backend.data_layout(name)
    except StoreError:
        return 0
    if layout is None:
        return 0
    (rows, dim), dtype = layout
    return rows * dim * dtype.itemsize


def little_bytes(block: np.ndarray) -> memoryview:
    """The bytes the checksum is over: little-endian, C order."""
    little = np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<"))
    return memoryview(little).cast("B")  # type: ignore[arg-type]


def view_source(attrs: dict[str, Any]) -> str:
    """The fingerprint of the clean set a view set (with `attrs`) was made from, as it
    records it; for a view written before views recorded it, that of the clean set's
    provenance its attrs repeat (a view's attrs are its clean set's plus `VIEW_ATTRS`)."""
    recorded = attrs.get(VIEW_SOURCE)
    if isinstance(recorded, str):
        return recorded
    return fingerprint({k: v for k, v in attrs.items() if k not in VIEW_ATTRS})


def stale_view(name: str, attrs: dict[str, Any], clean: dict[str, Any]) -> str | None:
    """The problem of view set `name` (with `attrs`) whose clean set now has the attrs
    `clean`: stale where the clean set was extracted again with other settings since the
    view was made (a view of other weights than its clean set's); None where it is not."""
    if view_source(attrs) == fingerprint(clean):
        return None
    made = identity({k: v for k, v in attrs.items() if k not in VIEW_ATTRS})
    now = identity(clean)
    keys = sorted(k for k in set(made) | set(now) if made.get(k) != now.get(k))
    which = f" ({', '.join(keys)} {'differs' if len(keys) == 1 else 'differ'})" if keys else ""
    return (
        f"{name}: stale view: its clean set {attrs.get('view_of')} was extracted again "
        f"with other settings{which} since the view was made from it"
    )
