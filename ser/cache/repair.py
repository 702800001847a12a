"""Damaged feature sets: what a reader is told, and the rows a repair writes back.

A set's bytes are checked chunk by chunk on every read (`DamagedChunks`) and as a whole
by `ser store verify` (`verify.py`). A complete set's shards are gone, so a repair
(`ser store repair`, `ser extract ... --repair`) re-extracts the plan's shards that hold the
damaged utterances and writes only those utterances' rows back, at their offsets:
straight into the set's chunks where they take rows in place (`repair_writer.py`), else
(chunks without a checksum, written before them) staged as shards in the set's staging
folder, as an extraction would, then written over the stored ones (`repair_runs`): the
rows of each run of neighbouring utterances in one write, which covers every damaged
chunk whole.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.cache.backend import DamagedChunks, span_text
from ser.cache.manifest import Manifest
from ser.cache.shards import ShardWriter, staged_utterances
from ser.cache.store_types import Damage
from ser.cache.verify import utterance_text, utterances_in
from ser.errors import StoreError


def read_damage(
    path: Path,
    name: str,
    manifest: Manifest,
    damaged: DamagedChunks,
    offsets: np.ndarray | None,
    corpus_recorded: bool = True,
) -> str:
    """What a read of a damaged set says: the store, the set, the rows and their
    utterances (when its offsets are readable), and the command that mends it (with the
    corpus's root to give where the store does not record it)."""
    key = damaged.array.rsplit("/", 1)[-1]
    if key == "data" and offsets is not None:
        held = utterance_text(manifest, utterances_in(offsets, damaged.spans))
        what = f"rows {span_text(damaged.spans)} of its data fail their checksum ({held}); "
        what += "re-extract them with"
    else:  # where its rows are, or which failed, is lost: the whole set is extracted again
        what = f"its {key} array fails its checksum (entries {span_text(damaged.spans)}); "
        what += "re-extract the set with"
    store = shlex.quote(str(path))
    root = "" if corpus_recorded else " CORPUS_ROOT"
    return (
        f"{path}: feature set {name!r} is damaged: {what} `ser store repair {store}{root}` "
        f"(`ser store verify {store}` checks every set and prints the `ser extract` command)"
    )


def repair_runs(
    writer: ShardWriter, offsets: np.ndarray, utterances: Sequence[int], manifest: Manifest
) -> list[tuple[int, np.ndarray]]:
    """(first row, rows) of the re-extracted `utterances`, neighbours joined into one run;
    StoreError, before anything is written, when an utterance was not re-extracted as the
    set holds it (failed now, or another number of rows: the corpus or model changed)."""
    rows, failures = staged_utterances(writer, set(utterances))
    runs: list[tuple[int, list[np.ndarray]]] = []
    end = -1
    for index in sorted(utterances):
        utt = manifest.utt_ids[index]
        start, stop = int(offsets[index]), int(offsets[index + 1])
        if index in failures or index not in rows:
            why = failures.get(index, "not re-extracted")
            raise StoreError(f"{writer.directory}: {utt}: {why}; nothing was written")
        if len(rows[index]) != stop - start:
            raise StoreError(
                f"{utt} was re-extracted with {len(rows[index])} rows where the set holds "
                f"{stop - start}: the corpus or the model differs from the one that made the "
                "set; nothing was written (extract it into a new store)"
            )
        if start == end:
            runs[-1][1].append(rows[index])
        else:
            runs.append((start, [rows[index]]))
        end = stop
    return [(start, np.concatenate(parts)) for start, parts in runs]


def repair_outcome(name: str, damage: Damage, outcome: bool | None) -> str:
    """What `ser extract --repair` says of set ``name`` once `FeatureStore.repair` gave
    ``outcome``."""
    said = {
        True: "its bytes are those recorded when it was completed",
        False: "they differ from the recorded ones (extracted on another device or in other "
        "batches); their checksum is recorded now",
        None: "it has no recorded checksum to compare (written before ser recorded them)",
    }
    return f"{name}: {len(damage.utterances)} damaged utterance(s) re-extracted; {said[outcome]}"
