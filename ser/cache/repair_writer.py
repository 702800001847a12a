"""A damaged set's re-extracted rows written straight back into their place, each once.

A repair (`ser extract --repair`) knows before it extracts anything where every damaged
utterance's rows go and how many there are: the set's offsets. So each row is written
once, by whichever process computed it, into the set's own chunks (`raw_chunks.py`:
Zarr's chunk files, the places of HDF5's chunks in its file), as `scattered.py` places a
new set's; once every damaged utterance is written, each chunk their rows touch is
sealed (its checksum written after its rows, the last chunk's padding zeroed), and the
set is checked again as the staged repair checked it. Beside the store only records:
the plan (`repair.json`: the damaged utterances, their rows, the chunks that failed their
checksum) and each shard's record (`repaired-N.json`; a shard under way,
`repaired-N.part.json`): which utterances it wrote, which it refused. Never rows.

Killed part way, the chunks written but not sealed fail their checksum, so `verify`
names them as it names any damage; the next repair goes on from the plan while the
damage it finds lies in the plan's chunks (the utterances the records hold are not
extracted again), else begins anew from the damage found.

An utterance re-extracted with another row count than its place holds, or failing now
(the corpus or the model changed since the set was made), is refused: nothing of it is
written. The chunks the repair touched are all sealed but those that failed their
checksum and hold a refused utterance's rows (their rows are still the damaged ones),
and the repair stops naming it: the set is as damaged as it was, no more.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser.cache.atomic import atomic_write
from ser.cache.backend import RawChunks
from ser.cache.raw_chunks import get_rows, put_rows
from ser.cache.shards import row_problem, stored_rows
from ser.cache.store_types import Damage
from ser.errors import StoreError

PLAN = "repair.json"
_RECORD = re.compile(r"^repaired-(\d+)\.json$")


@dataclass(frozen=True)
class Plan:
    """What a repair writes back: each damaged utterance's place in the set's data."""

    places: dict[int, tuple[int, int]]  # manifest row -> (first row, rows)
    failing: tuple[tuple[int, int], ...]  # [start, stop) rows of chunks failing their checksum
    rows: int  # the set's rows
    chunk_rows: int
    fingerprint: str  # the set's, when the plan was made

    def chunks_of(self, utterances: list[int]) -> set[int]:
        """The chunks the rows of `utterances` lie in."""
        found: set[int] = set()
        for index in utterances:
            start, count = self.places[index]
            found |= _chunks_of(((start, start + count),), self.chunk_rows)
        return found


@dataclass(frozen=True)
class RepairWriter:
    """Writes the damaged utterances of a shard back into their place (the `ShardWriter`
    interface the runner commits through; the shard's other utterances are passed
    over); only paths and settings, so it pickles cheaply."""

    directory: Path  # the set's staging folder: the plan, each shard's record
    chunks: RawChunks
    fingerprint: str
    dim: int
    dtype: str
    level: str

    def write(
        self,
        shard_id: int,
        rows: Mapping[int, np.ndarray],
        failures: Mapping[int, str] | None = None,
    ) -> None:
        """Commit one shard: its damaged utterances' rows into place, then its record."""
        self._commit(_path(self.directory, shard_id, ""), rows, failures or {})
        _path(self.directory, shard_id, ".part").unlink(missing_ok=True)

    def write_part(
        self, shard_id: int, rows: Mapping[int, np.ndarray], failures: Mapping[int, str]
    ) -> None:
        """The utterances of shard `shard_id` finished so far, for a resume to keep."""
        self._commit(_path(self.directory, shard_id, ".part"), rows, failures)

    def part_indices(self, shard_id: int) -> set[int]:
        """The utterances the part of shard `shard_id` went through (written, refused,
        or not damaged)."""
        record = _record(_path(self.directory, shard_id, ".part"), self.fingerprint)
        return set() if record is None else set(record["held"])

    def read_part(self, shard_id: int) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """The rows the part of shard `shard_id` wrote (read back from their chunks) and
        the reasons of those it refused."""
        record = _record(_path(self.directory, shard_id, ".part"), self.fingerprint)
        if record is None:
            return {}, {}
        places = self.plan().places
        rows = {i: self._rows(*places[i]) for i in record["placed"]}
        return rows, {int(i): why for i, why in record["refused"].items()}

    def covered(self) -> dict[int, str | None]:
        """The damaged utterances the shards' records hold: None where written, else why
        it was refused."""
        return covered(self.directory, self.fingerprint)

    def plan(self) -> Plan:
        """The plan this repair writes by; StoreError where it is gone."""
        plan = read_plan(self.directory)
        if plan is None:
            raise StoreError(
                f"{self.directory}: the repair's plan ({PLAN}) is gone or unreadable; "
                "run the repair again"
            )
        return plan

    def _rows(self, start: int, count: int) -> np.ndarray:
        chunk_rows = self.plan().chunk_rows
        return get_rows(self.chunks, chunk_rows, start, count, self.dim, self.dtype)

    def _commit(
        self, path: Path, rows: Mapping[int, np.ndarray], failures: Mapping[int, str]
    ) -> None:
        plan = self.plan()
        places = plan.places
        placed: list[int] = []
        refused: dict[int, str] = {}
        for index in sorted({*rows, *failures}):
            if int(index) not in places:
                continue  # not damaged: its batch gave it, its place keeps it
            start, count = places[int(index)]
            why = self._refusal(int(index), rows.get(index), failures.get(index), count)
            if why:
                refused[int(index)] = why
                continue
            values = stored_rows(int(index), rows[index], self.dim, self.dtype, self.level)
            put_rows(self.chunks, plan.chunk_rows, start, values)
            placed.append(int(index))
        record = {
            "fingerprint": self.fingerprint,
            "placed": placed,
            "refused": {str(i): refused[i] for i in sorted(refused)},
            "held": sorted(int(i) for i in {*rows, *failures}),
        }
        what = f"{path.name} of {self.directory.name}"
        atomic_write(path, lambda f: f.write(json.dumps(record).encode("utf-8")), what)

    def _refusal(
        self, index: int, values: np.ndarray | None, failed: str | None, count: int
    ) -> str:
        """Why utterance `index`'s re-extraction cannot go where its rows are ("" when
        it can)."""
        if failed is not None or values is None:
            return failed or "not re-extracted"
        array = stored_rows(index, values, self.dim, self.dtype, self.level)
        problem = row_problem(array, self.dtype)
        if problem:
            return problem
        if len(array) != count:
            return (
                f"re-extracted with {len(array)} rows where the set holds {count}: the corpus "
                "or the model differs from the one that made the set"
            )
        return ""


def open_writer(
    chunks: RawChunks | None,
    staging: Path,
    attrs: Mapping[str, Any],
    damage: Damage,
    offsets: np.ndarray,
    chunk_rows: int,
) -> RepairWriter | None:
    """The writer of complete set ``attrs``'s damaged utterances into `chunks`: on the plan
    a killed repair left for the same utterances, else a plan begun anew (the staging
    cleared). None where its chunks take no rows in place, or carry no checksum a write
    cut short would fail (a layout written before checksums: staged, as before)."""
    if chunks is None or not chunks.checked:
        return None
    fingerprint = str(attrs["fingerprint"])
    old = read_plan(staging)
    if (
        old is None
        or sorted(old.places) != list(damage.utterances)
        or old.chunk_rows != chunk_rows
        or old.fingerprint != fingerprint
    ):
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        plan = {
            "fingerprint": fingerprint,
            "utterances": list(damage.utterances),
            "starts": [int(offsets[i]) for i in damage.utterances],
            "counts": [int(offsets[i + 1] - offsets[i]) for i in damage.utterances],
            "failing": [list(span) for span in damage.failing],
            "rows": int(offsets[-1]),
            "chunk_rows": chunk_rows,
        }
        what = f"the repair's plan of {staging.name}"
        atomic_write(staging / PLAN, lambda f: f.write(json.dumps(plan).encode("utf-8")), what)
    return existing(chunks, staging, attrs)


def existing(
    chunks: RawChunks | None, staging: Path, attrs: Mapping[str, Any]
) -> RepairWriter | None:
    """The writer of the repair whose plan this staging holds (None: none does)."""
    fingerprint = str(attrs["fingerprint"])
    plan = read_plan(staging)
    if chunks is None or plan is None or plan.fingerprint != fingerprint:
        return None
    dim, dtype, level = int(attrs["dim"]), str(attrs["dtype"]), str(attrs["level"])
    return RepairWriter(staging, chunks, fingerprint, dim, dtype, level)


def resumed(staging: Path, fingerprint: str, damage: Damage, chunk_rows: int) -> Damage | None:
    """The damage a killed repair's plan mends, to go on from (its records kept), where
    the damage found now (`damage`) lies within it: the chunks failing their checksum in
    the chunks it was writing, NaN/Inf rows in its utterances; None: begin anew (the set
    chunked otherwise since, too)."""
    plan = read_plan(staging)
    if plan is None or plan.chunk_rows != chunk_rows or damage.whole or not damage:
        return None
    if plan.fingerprint != fingerprint:
        return None
    touched = plan.chunks_of(list(plan.places))
    failing = _chunks_of(damage.failing, plan.chunk_rows)
    spans = [plan.places[i] for i in plan.places]
    nan = set(damage.rows) - set(damage.failing)
    inside = all(any(s <= a and b <= s + n for s, n in spans) for a, b in nan)
    if not failing <= touched or not inside:
        return None
    utterances = tuple(sorted(plan.places))
    rows = tuple(sorted({(s, s + n) for s, n in spans if n}))
    return Damage(utterances, rows, problems=damage.problems, failing=plan.failing)


def finish(writer: RepairWriter) -> dict[int, str]:
    """Every chunk the damaged utterances' rows lie in sealed (its rows as written, the
    last chunk's padding zeroed, its checksum after them), but a chunk failing its
    checksum that holds a refused utterance's rows; the refused utterances, with why.
    A damaged utterance no record holds is refused as not re-extracted."""
    plan = writer.plan()
    held = writer.covered()
    refused = {}
    for index in plan.places:
        if index not in held:
            refused[index] = "not re-extracted"
        elif held[index] is not None:
            refused[index] = str(held[index])
    keep = plan.chunks_of(list(refused)) & _chunks_of(plan.failing, plan.chunk_rows)
    row_bytes = writer.dim * np.dtype(writer.dtype).itemsize
    for chunk in sorted(plan.chunks_of(list(plan.places)) - keep):
        rows = min(plan.chunk_rows, plan.rows - chunk * plan.chunk_rows)
        writer.chunks.seal(chunk, rows * row_bytes)
    return refused


def covered(directory: Path, fingerprint: str) -> dict[int, str | None]:
    """The damaged utterances the shards' records (not their parts) hold: None where
    written, else why refused."""
    found: dict[int, str | None] = {}
    for path in sorted(directory.glob("repaired-*.json")):
        record = _record(path, fingerprint) if _RECORD.match(path.name) else None
        if record is None:
            continue
        found.update({int(i): why for i, why in record["refused"].items()})
        found.update(dict.fromkeys(record["placed"]))
    return found


def read_plan(staging: Path) -> Plan | None:
    """The plan of a repair under way in this staging (None: none is)."""
    try:
        stat = (staging / PLAN).stat()
    except OSError:
        return None
    return _loaded(staging / PLAN, (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _loaded(path: Path, stamp: tuple[int, int]) -> Plan | None:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        places = zip(plan["utterances"], plan["starts"], plan["counts"], strict=True)
        return Plan(
            {int(i): (int(s), int(n)) for i, s, n in places},
            tuple((int(a), int(b)) for a, b in plan["failing"]),
            int(plan["rows"]),
            int(plan["chunk_rows"]),
            str(plan["fingerprint"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _chunks_of(spans: tuple[tuple[int, int], ...], chunk_rows: int) -> set[int]:
    """The chunks rows ``[start, stop)`` of `spans` lie in."""
    return {c for a, b in spans if b > a for c in range(a // chunk_rows, -(-b // chunk_rows))}


def _record(path: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("fingerprint") == fingerprint else None


def _path(directory: Path, shard_id: int, kind: str) -> Path:
    return directory / f"repaired-{int(shard_id)}{kind}.json"
