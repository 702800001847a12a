"""Stores of layer sets, as `ser extract --layers ... --pool mean` writes them, for the
probe tests: each set's rows carry the class signal its layer is given."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.cache.store import FeatureStore
from tests.stores import LABEL_CYCLE, labelled_store

# A layer set: (stem, layer, pool or None for frames, class signal).
Layer = tuple[str, int, str | None, float]


def layer_attrs(stem: str, layer: int, pool: str | None, dim: int, **more: Any) -> dict[str, Any]:
    """A speech layer set's attrs (pooled views add `pool`, level utterance)."""
    attrs = {"extractor": "speech", "modality": "audio", "level": "frame", "dim": dim,
             "dtype": "float16", "model": stem, "layer": layer, **more}  # fmt: skip
    if pool is not None:
        attrs.update(level="utterance", pool=pool, dim=dim * (2 if pool == "meanstd" else 1))
    return attrs


def set_name(stem: str, layer: int, pool: str | None) -> str:
    return f"{stem}.L{layer}" + (f".{pool}" if pool else "")


def add_layer(
    store: FeatureStore,
    layer: Layer,
    dim: int = 6,
    name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write one layer set whose class centres are scaled by the layer's signal."""
    stem, n, pool, signal = layer
    rng = np.random.default_rng([n, dim, len(stem)])
    classes = [min(LABEL_CYCLE.index(str(c)), 4) for c in store.manifest.column("label")]
    width = dim * (2 if pool == "meanstd" else 1)
    centres = rng.normal(size=(5, width))
    # An encoder's layers share each utterance's frame count (a weighted sum needs it).
    counts = np.random.default_rng(sum(map(ord, stem))).integers(2, 5, size=len(classes))
    rows = {}
    for i, y in enumerate(classes):
        count = 1 if pool else int(counts[i])
        rows[i] = centres[y] * signal + rng.normal(size=(count, width))
    name = name or set_name(stem, n, pool)
    store.begin_feature_set(name, dict(attrs or layer_attrs(stem, n, pool, dim)))
    store.shard_writer(name).write(0, rows, {})
    store.consolidate(name, 1)


def layered_store(path: Path, layers: Sequence[Layer], per_dialog: int = 6) -> FeatureStore:
    """`labelled_store`'s utterances (5 sessions x 2 dialogs x `per_dialog`) with `layers`."""
    store = labelled_store(path, {}, per_dialog=per_dialog)
    for layer in layers:
        add_layer(store, layer)
    return store
