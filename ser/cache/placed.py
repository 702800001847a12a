"""A feature set written straight into its place: its rows, in manifest order, a chunk at
a time into the set's ``data`` array, sized up front from each utterance's row count.

Staged shards are written, then copied into the store: each row twice, and the disk holds
both at once. Here each row is written once, and beside the store there is only a small
record of how far the rows got (``<store>.staging/<set>/placed.json``, replaced after
each chunk), from which a killed writer goes on: the rows before it are read back for the
set's checksum, never written again. The set is complete when its offsets, failures and
checksum are written, its attributes last, as `FeatureStore.consolidate` completes one.

For a writer that knows every utterance's row count before it starts (`ser store
import` reads them off the .npy headers). An utterance whose rows cannot be stored (NaN
or Inf, or beyond float16) is a failure with zero rows, the rows after it moved up, and
the array cut to the rows kept at the end.

Example:
    >>> import tempfile
    >>> from ser.cache.manifest import COLUMNS, Manifest
    >>> from ser.cache.store import FeatureStore
    >>> manifest = Manifest.from_columns({c: [0, 1] for c in COLUMNS} | {"utt_id": ["a", "b"]})
    >>> store = FeatureStore.create(Path(tempfile.mkdtemp()) / "f.zarr", manifest)
    >>> store.begin_feature_set("emb", {"extractor": "imported", "modality": "audio",
    ...     "level": "frame", "dim": 2, "dtype": "float32"})
    >>> placed = store.place("emb", np.array([3, 0]))
    >>> placed.pending().tolist()
    [0]
    >>> placed.add(0, np.ones((3, 2)))
    >>> placed.commit({1: "not in the file"})
    >>> store.read("emb").offsets.tolist()
    [0, 3, 3]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ser.cache.atomic import atomic_write, writing
from ser.cache.backend import Backend
from ser.cache.shards import row_problem, stored_rows
from ser.cache.verify import little_bytes
from ser.errors import StoreError

RECORD = "placed.json"

# offsets [n_utt + 1], failures by manifest index, the rows' sha256: what completes a set
Finish = Callable[[np.ndarray, dict[int, str], str], None]


class PlacedRows:
    """Rows handed over one utterance at a time (`add`, in the order `pending` gives),
    gathered into a chunk's worth of rows, each whole chunk written in place; `commit`
    writes the last rows and completes the set. Memory: one chunk, whatever the set."""

    def __init__(
        self,
        backend: Backend,
        name: str,
        attrs: Mapping[str, Any],
        counts: np.ndarray,
        chunk_rows: int,
        staging: Path,
        finish: Finish,
    ) -> None:
        self._backend, self._name, self._finish = backend, name, finish
        self._dim, self._dtype = int(attrs["dim"]), str(attrs["dtype"])
        self._level, self._fingerprint = str(attrs["level"]), str(attrs["fingerprint"])
        self._counts = np.array(counts, np.int64)  # [n_utt] rows kept of each
        self._total = int(self._counts.sum())  # the array's rows as it was created
        self._chunk = max(1, chunk_rows)
        self._record = staging / RECORD
        self._buffer = np.empty((self._chunk, self._dim), self._dtype)  # [chunk, dim]
        self._fill = 0  # rows in the buffer
        self.written = 0  # rows in the store
        self.rejected: dict[int, str] = {}  # utterances found not storable, and why
        self._digest = hashlib.sha256()
        self._resume_or_create()
        self._todo = self.pending()
        self._next = 0  # position in `_todo` of the utterance `add` takes next
        # Rows of the first pending utterance a killed writer had written already.
        self._skip = self.written - self._start(int(self._todo[0])) if len(self._todo) else 0

    def pending(self) -> np.ndarray:
        """The manifest indices whose rows are not all in the store yet, in order."""
        ends = np.cumsum(self._counts)
        return np.flatnonzero((self._counts > 0) & (ends > self.written))

    def add(self, index: int, values: np.ndarray) -> None:
        """Utterance ``index``'s rows (``[rows, dim]``; ``[dim]`` at utterance level), cast
        to the set's dtype; rows that cannot be stored make it a failure instead."""
        if self._next >= len(self._todo) or index != self._todo[self._next]:
            expected = self._todo[self._next] if self._next < len(self._todo) else "none"
            raise ValueError(f"utterance {index} handed over, expected {expected}")
        self._next += 1
        rows = stored_rows(index, values, self._dim, self._dtype, self._level)
        if len(rows) != self._counts[index]:
            raise StoreError(
                f"utterance {index}: {len(rows)} rows, {self._counts[index]} when counted"
            )
        problem = row_problem(rows, self._dtype)
        if problem and self._skip:  # its rows were stored once: they are not the same now
            raise StoreError(f"utterance {index}: {problem}, where its rows stored were not")
        if problem:
            self.rejected[index] = problem
            self._counts[index] = 0
            return
        rows, self._skip = rows[self._skip :], 0
        while len(rows):
            take = min(len(rows), self._chunk - self._fill)
            self._buffer[self._fill : self._fill + take] = rows[:take]
            self._fill, rows = self._fill + take, rows[take:]
            if self._fill == self._chunk:
                self._flush()

    def commit(self, failures: Mapping[int, str]) -> None:
        """The last rows written and the set completed: ``failures`` (the utterances
        counted with no rows, and why) with those `add` found."""
        if self._next < len(self._todo):
            raise ValueError(f"{len(self._todo) - self._next} utterances not handed over yet")
        self._flush()
        kept = int(self._counts.sum())
        if kept < self._total:
            self._backend.trim_data(self._name, kept)
        given = {int(i): str(why) for i, why in failures.items()}
        if any(self._counts[i] for i in given):
            raise ValueError("an utterance with rows is among the failures")
        offsets = np.concatenate([[0], np.cumsum(self._counts)]).astype(np.int64)
        self._finish(offsets, {**given, **self.rejected}, self._digest.hexdigest())

    def _flush(self) -> None:
        if not self._fill:
            return
        rows = self._buffer[: self._fill]
        with writing(self._backend.path, f"the rows of feature set {self._name!r}"):
            self._backend.write_blocks(self._name, [(self.written, rows)])
        self._digest.update(little_bytes(rows))
        self.written, self._fill = self.written + len(rows), 0
        self._save()

    def _start(self, index: int) -> int:
        """Utterance ``index``'s first row in the set."""
        return int(self._counts[:index].sum())

    def _resume_or_create(self) -> None:
        """Go on from the record a killed writer left (its rows read back for the
        checksum), or create the set's data array anew."""
        record = self._resumable()
        if record is None:
            shape = (self._total, self._dim)
            self._backend.create_data(self._name, shape, self._dtype, self._chunk)
            self._save()
            return
        self.rejected = {int(i): str(why) for i, why in record["rejected"].items()}
        self._counts[list(self.rejected)] = 0
        self.written = int(record["written"])
        for start in range(0, self.written, self._chunk):
            stop = min(start + self._chunk, self.written)
            self._digest.update(little_bytes(self._backend.read_rows(self._name, start, stop)))

    def _resumable(self) -> dict[str, Any] | None:
        """The record, when it is of this set's rows as they are laid out now."""
        try:
            record = json.loads(self._record.read_text(encoding="utf-8"))
            same = (record["fingerprint"], record["rows"], record["chunk_rows"]) == (
                self._fingerprint,
                self._total,
                self._chunk,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        layout = self._backend.data_layout(self._name)
        if not same or layout != ((self._total, self._dim), np.dtype(self._dtype)):
            return None
        if self._total and self._backend.chunk_rows(self._name) != self._chunk:
            return None
        return record if isinstance(record.get("rejected"), dict) else None

    def _save(self) -> None:
        record = {
            "fingerprint": self._fingerprint,
            "rows": self._total,
            "chunk_rows": self._chunk,
            "written": self.written,
            "rejected": {str(i): why for i, why in sorted(self.rejected.items())},
        }
        text = json.dumps(record).encode("utf-8")
        atomic_write(self._record, lambda f: f.write(text), f"progress of {self._name}")


def placed_so_far(staging: Path) -> tuple[int, int]:
    """(rows written, utterances failed) of a set being written in place, as its record
    says ((0, 0) without one)."""
    try:
        record = json.loads((staging / RECORD).read_text(encoding="utf-8"))
        return int(record["written"]), len(record["rejected"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0
