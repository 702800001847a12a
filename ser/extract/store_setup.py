"""The store an extraction writes: opened, or created holding the corpus's manifest, and
under --repair mended first (metadata from its copies, a manifest from the corpus).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ser.cache import FeatureStore, Manifest
from ser.cache.receipts import receipt_backup
from ser.corpus.records import CorpusReading
from ser.errors import StoreError


def open_store(
    path: Path, reading: CorpusReading, attrs: dict[str, Any], repair: bool = False
) -> FeatureStore:
    """The store of `reading`, wav paths relative to the corpus root as the manifest's
    contract and `ser store init` have them. Stores an earlier `ser extract` made hold
    absolute ones: such a store is opened as it is, not refused for that column. With
    `repair`, one whose manifest is damaged is opened as it is (`mend_store` rebuilds it)."""
    with contextlib.suppress(StoreError):  # none yet, or none readable: create says which
        store = FeatureStore.open(path, mode="a")
        if repair and store.manifest_damage is not None:
            return store
        if any(store.manifest.holds(m) for m in manifests(reading)):
            return store
    return FeatureStore.create(path, manifests(reading)[0], attrs)


def manifests(reading: CorpusReading) -> tuple[Manifest, Manifest]:
    """The manifest of `reading`: wav paths relative to its root, and absolute."""
    relative = Manifest.from_utterances(reading.utterances, reading.root)
    return relative, Manifest.from_utterances(reading.utterances)


def mend_store(store: FeatureStore, reading: CorpusReading) -> list[str]:
    """--repair: the store's damaged metadata written anew from its copies (or its
    receipt's), a damaged manifest from the corpus; a line for each. StoreError if the
    manifest is then not the corpus's."""
    backup = receipt_backup(store.path) or {}
    done, _ = store.mend(backup.get("sets", {}))  # what stays damaged: verify names it
    if store.rebuild_manifest(manifests(reading)):
        done.append(f"the manifest, from the corpus ({len(store.manifest)} utterances)")
    if not any(store.manifest.holds(m) for m in manifests(reading)):
        FeatureStore.create(store.path, manifests(reading)[0], store.attrs)  # says how
    return done
