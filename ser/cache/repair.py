"""Damaged feature sets: what a reader is told, and the rows a repair writes back.

A set's bytes are checked chunk by chunk on every read (`DamagedChunks`) and as a whole
by `ser store verify` (`verify.py`). A complete set's shards are gone, so a repair
(`ser extract ... --repair`) re-extracts the plan's shards that hold the damaged
utterances into the set's staging folder, as an extraction would, and writes only those
utterances' rows back over the stored ones, at their offsets: the rows of each run of
neighbouring utterances in one write, which covers every damaged chunk whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.cache.backend import DamagedChunks, span_text
from ser.cache.manifest import Manifest
from ser.cache.shards import ShardWriter, staged_utterances
from ser.cache.store_types import Damage
from ser.cache.verify import utterance_text, utterances_in
from ser.errors import StoreError

CORPUS_PLACEHOLDER = "CORPUS_ROOT"  # `ser extract`'s argument, where the store lacks it


def corpus_argument(store_attrs: Mapping[str, Any]) -> str | None:
    """`ser extract`'s corpus as the store records it: its root, and for a corpus read with
    an audio root (EmoBox's) its kind and `--audio-root`; None where it records none."""
    root = store_attrs.get("corpus_root")
    if root and store_attrs.get("audio_root"):
        return (
            f"{root} --corpus {store_attrs.get('corpus')} --audio-root {store_attrs['audio_root']}"
        )
    return None if root is None else str(root)


def repair_command(path: Path, name: str, attrs: Mapping[str, Any], corpus: str | None) -> str:
    """The command that mends set ``name``: ``ser extract`` as it made the set, plus
    ``--repair`` (an imported set: imported again)."""
    if attrs.get("extractor") == "imported":
        return (
            f"ser store import {path} {attrs.get('source', 'FILE.npz')} --name {name} "
            f"--modality {attrs.get('modality')} --level {attrs.get('level')} --overwrite"
        )
    asr = attrs.get("text_source") == "asr"
    text = f" --text-source asr --asr-model {attrs.get('asr_model')}" if asr else ""
    return (
        f"ser extract {corpus or CORPUS_PLACEHOLDER} --store {path} --features "
        f"{attrs.get('extractor')}{text} --repair (with the options that made the set)"
    )


def read_damage(
    path: Path,
    name: str,
    manifest: Manifest,
    damaged: DamagedChunks,
    offsets: np.ndarray | None,
    command: str,
) -> str:
    """What a read of a damaged set says: the store, the set, the rows and their
    utterances (when its offsets are readable), and the command that mends it."""
    key = damaged.array.rsplit("/", 1)[-1]
    if key == "data" and offsets is not None:
        held = utterance_text(manifest, utterances_in(offsets, damaged.spans))
        what = f"rows {span_text(damaged.spans)} of its data fail their checksum ({held}); "
        what += "re-extract them with"
    else:  # where its rows are, or which failed, is lost: the whole set is extracted again
        what = f"its {key} array fails its checksum (entries {span_text(damaged.spans)}); "
        what += "re-extract the set with"
    return (
        f"{path}: feature set {name!r} is damaged: {what}: {command}; "
        f"`ser store verify {path}` checks every set"
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
