"""A small synthetic CMU-MOSEI store for the families' sentiment-score tests: the corpus
written by `ser.synth.cmu` (the SDK's standard folds), its real manifest from `ser
extract --features logmel`, and feature sets whose rows carry each segment's score
(`add_score_sets`): an encoder's stored layers per modality, frame- and token-level, and
one utterance-level set. Built without models, in a few seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.synth.cmu import CmuConfig, write_cmu

# name stem -> (extractor, modality, level, dim)
LAYERED = {
    "tiny-hubert": ("hubert", "audio", "frame", 6),
    "tiny-bert": ("bert", "text", "token", 5),
}
LAYERS = 3  # each stem's stored layers: audio <stem>.L0-2, text <stem>.L0-1 and <stem>


def mosei_store(root: Path, videos: tuple[int, int, int] = (6, 2, 2), seed: int = 0) -> Path:
    """The corpus under `root`/MOSEI extracted to `root`/m.zarr with the score sets added."""
    write_cmu(root / "MOSEI", CmuConfig(videos=videos, seed=seed))
    store = root / "m.zarr"
    args = ["extract", str(root / "MOSEI"), "--store", str(store), "--features", "logmel"]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    add_score_sets(FeatureStore.open(store, mode="a"), seed)
    return store


def add_score_sets(store: FeatureStore, seed: int = 0, signal: float = 1.0) -> list[str]:
    """Sets whose every row is the segment's score along one direction, times `signal`,
    plus unit noise: each stem's layers (its last layer most informative) and an
    utterance-level `is13`. Returns the names."""
    scores = np.nan_to_num(np.asarray(store.manifest.column("sentiment"), dtype=np.float64))
    names = []
    for stem, (extractor, modality, level, dim) in LAYERED.items():
        for layer in range(LAYERS):
            top = modality == "text" and layer == LAYERS - 1
            name = stem if top else f"{stem}.L{layer}"
            attrs = {"extractor": extractor, "modality": modality, "level": level, "dim": dim,
                     "dtype": "float32", "model": f"/models/{stem}", "layer": layer,
                     "weights_sha256": "cd" * 32, "seed": seed,
                     **({} if top else {"n_layers": LAYERS - 1})}  # fmt: skip
            weight = signal * (layer + 1) / LAYERS
            _write(store, name, attrs, scores, weight, [seed, dim], layer)
            names.append(name)
    attrs = {"extractor": "is13", "modality": "audio", "level": "utterance", "dim": 7,
             "dtype": "float32", "seed": seed}  # fmt: skip
    _write(store, "is13", attrs, scores, signal, [seed, 7], 0)
    return [*names, "is13"]


def _write(
    store: FeatureStore,
    name: str,
    attrs: dict,
    scores: np.ndarray,
    signal: float,
    seed: list[int],
    layer: int,
) -> None:
    """One set: an encoder's layers share their frame counts (`seed`), not their noise."""
    counts = np.random.default_rng(seed).integers(2, 6, len(scores))
    rng = np.random.default_rng([*seed, layer])
    direction = rng.normal(size=attrs["dim"])
    rows = {}
    for i, score in enumerate(scores):
        count = 1 if attrs["level"] == "utterance" else int(counts[i])
        rows[i] = (score * signal * direction + rng.normal(size=(count, attrs["dim"]))).astype(
            np.float32
        )
    store.begin_feature_set(name, attrs)
    store.shard_writer(name).write(0, rows, {})
    store.consolidate(name, 1)
