"""Health checks of one feature set, and its content checksum, in one pass over the data.

The checksum is the sha256 of the data bytes (little-endian, C order) in manifest order,
so the same features give the same digest in a Zarr and an HDF5 store, on any machine.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ser.cache.backend import Backend
from ser.cache.fingerprint import matches
from ser.cache.manifest import Manifest

BLOCK_BYTES = 64 * 2**20  # rows are scanned in blocks of about this size


def check_feature_set(
    backend: Backend, manifest: Manifest, name: str, attrs: dict[str, Any], want_checksum: bool
) -> tuple[list[str], str | None]:
    """Problems of feature set ``name`` (empty when healthy) and, if asked, its checksum."""
    if not attrs.get("complete"):
        return [f"{name}: incomplete (extraction or consolidation has not finished)"], None
    problems = []
    if not matches(attrs):  # also a set fingerprinted before locations left the hash
        problems.append(f"{name}: stored fingerprint does not match its attributes")
    layout = backend.data_layout(name)
    offsets = backend.read_array(name, "offsets")
    if layout is None or offsets is None:
        return [*problems, f"{name}: data or offsets array is missing"], None
    (rows, dim), dtype = layout
    if dim != attrs.get("dim") or dtype.name != attrs.get("dtype"):
        problems.append(
            f"{name}: data is [{rows}, {dim}] {dtype.name}, attributes say dim "
            f"{attrs.get('dim')} {attrs.get('dtype')}"
        )
    offset_problems = _offset_problems(name, offsets, len(manifest), rows)
    problems += offset_problems
    if not offset_problems:
        problems += _row_count_problems(backend, manifest, name, attrs, offsets)
    bad_rows, first_bad, digest = scan(backend, name, dim, dtype)
    if bad_rows:
        where = f"row {first_bad}"
        if not offset_problems:
            utt = int(np.searchsorted(offsets, first_bad, side="right")) - 1
            where += f", utterance {manifest.utt_ids[utt]}"
        problems.append(f"{name}: {bad_rows} rows hold NaN or Inf (first: {where})")
    return problems, digest if want_checksum else None


def _offset_problems(name: str, offsets: np.ndarray, n_utt: int, rows: int) -> list[str]:
    if offsets.ndim != 1 or len(offsets) != n_utt + 1:
        return [f"{name}: offsets has shape {offsets.shape}, expected ({n_utt + 1},)"]
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


def scan(backend: Backend, name: str, dim: int, dtype: np.dtype) -> tuple[int, int, str]:
    """(rows holding NaN/Inf, first such row or -1, sha256 of the data bytes)."""
    digest = hashlib.sha256()
    bad_rows, first_bad, start = 0, -1, 0
    for block in backend.iter_blocks(name, max(1, BLOCK_BYTES // (dim * dtype.itemsize))):
        little = np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<"))
        digest.update(memoryview(little).cast("B"))  # type: ignore[arg-type]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad_rows += int((~finite).sum())
            first_bad = first_bad if first_bad >= 0 else start + int(np.argmin(finite))
        start += len(block)
    return bad_rows, first_bad, digest.hexdigest()
