"""Stores with features in them, for the tests (`from tests.stores import ...`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser.cache.manifest import Manifest
from ser.cache.store import FeatureStore
from ser.synth.manifest import example_columns

EXAMPLE_ATTRS: dict[str, Any] = {
    "extractor": "hubert",
    "modality": "audio",
    "level": "frame",
    "dim": 6,
    "dtype": "float16",
    "model": "tiny-hubert",
    "weights_sha256": "ab" * 32,
    "layer": 3,
    "frame_shift": 0.02,
    "sample_rate": 16000,
}


def random_rows(n_utt: int, dim: int, failed: Sequence[int] = (), seed: int = 0) -> dict:
    """Ragged float32 rows (1-9 per utterance) for every utterance not in ``failed``."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, n_utt)
    return {
        i: rng.standard_normal((int(lengths[i]), dim)).astype(np.float32)
        for i in range(n_utt)
        if i not in failed
    }


def write_shards(
    store: FeatureStore,
    name: str,
    rows: dict[int, np.ndarray],
    failures: dict[int, str],
    n_shards: int,
    only: Sequence[int] | None = None,
) -> None:
    """Write shards of interleaved utterances (i % n_shards), last shard first."""
    writer = store.shard_writer(name)
    for shard_id in reversed(range(n_shards)):
        if only is not None and shard_id not in only:
            continue
        writer.write(
            shard_id,
            {i: r for i, r in rows.items() if i % n_shards == shard_id},
            {i: f for i, f in failures.items() if i % n_shards == shard_id},
        )


def fill(
    store: FeatureStore,
    name: str = "hubert.L3",
    attrs: dict[str, Any] | None = None,
    failures: dict[int, str] | None = None,
    n_shards: int = 3,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Begin, write and consolidate one feature set; returns the rows written."""
    attrs = attrs or EXAMPLE_ATTRS
    failures = {2: "audio file missing", 5: "empty transcript"} if failures is None else failures
    rows = random_rows(len(store.manifest), attrs["dim"], list(failures), seed)
    store.begin_feature_set(name, attrs)
    write_shards(store, name, rows, failures, n_shards)
    store.consolidate(name, n_shards)
    return rows


def expected_data(rows: dict[int, np.ndarray], n_utt: int, dtype: str) -> np.ndarray:
    parts = [rows[i].astype(dtype) for i in range(n_utt) if i in rows]
    return np.concatenate(parts)


#: A labelled feature set for trainer tests: (extractor, modality, level, dim, dtype).
SetSpec = tuple[str, str, str, int, str]
LABEL_CYCLE = ("neu", "hap", "sad", "ang", "exc", "fru")


def session_ids(per_dialog: int) -> list[str]:
    """IEMOCAP-shaped ids: 5 sessions x 2 dialogs x `per_dialog` utterances."""
    return [
        f"Ses0{s}{g}_impro0{d}_{'FM'[u % 2]}{u:03d}"
        for s in range(1, 6)
        for d, g in enumerate("FM")
        for u in range(per_dialog)
    ]


def labelled_store(
    path: Path,
    sets: dict[str, SetSpec],
    per_dialog: int = 6,
    signal: float = 2.0,
    seed: int = 0,
    shuffle: int | None = None,
    attrs: dict[str, Any] | None = None,
    attributes: bool = False,
) -> FeatureStore:
    """A store for trainer tests: 5 sessions x 2 dialogs x `per_dialog` utterances whose
    labels cycle through all 6 codes (with `shuffle`, a seed: the same labels in a random
    order, so a dialog-context model cannot read a label off its position); each set's
    rows are its class centre * `signal` plus noise, so the classes are learnable.
    `attrs`: the store's own (another corpus kind's, `CorpusKind.attrs()`). `attributes`:
    arousal, valence and dominance (1-5) that follow the label plus noise, so they are
    learnable too, with every tenth utterance's dominance missing (NaN)."""
    ids = session_ids(per_dialog)
    cols = example_columns(ids)
    labels = [LABEL_CYCLE[i % len(LABEL_CYCLE)] for i in range(len(ids))]
    if shuffle is not None:
        labels = [labels[i] for i in np.random.default_rng(shuffle).permutation(len(labels))]
    cols["label"] = labels
    cols["order"] = [i % per_dialog for i in range(len(ids))]
    if attributes:
        cols.update(attribute_columns(labels, seed))
    store = FeatureStore.create(path, Manifest.from_columns(cols), attrs)
    for name, spec in sets.items():
        add_labelled_set(store, name, spec, signal=signal, seed=seed)
    return store


# Each code's (arousal, valence, dominance) on IEMOCAP's 1-5 scale.
CODE_ATTRIBUTES = {
    "neu": (2.5, 3.0, 2.8), "hap": (3.8, 4.2, 3.2), "sad": (2.0, 1.8, 2.2),
    "ang": (4.2, 1.6, 4.0), "exc": (4.0, 4.0, 3.4), "fru": (3.4, 2.2, 3.0),
}  # fmt: skip


def attribute_columns(labels: list[str], seed: int = 0) -> dict[str, list[float]]:
    """Arousal, valence and dominance of each label (`CODE_ATTRIBUTES`) plus noise."""
    rng = np.random.default_rng([seed, 7])
    means = np.array([CODE_ATTRIBUTES[c] for c in labels])  # [N, 3]
    values = np.clip(means + rng.normal(0, 0.3, size=means.shape), 1, 5)
    values[::10, 2] = np.nan
    return {
        name: values[:, i].tolist() for i, name in enumerate(("arousal", "valence", "dominance"))
    }


def add_labelled_set(
    store: FeatureStore,
    name: str,
    spec: SetSpec,
    signal: float = 2.0,
    seed: int = 0,
    overwrite: bool = False,
) -> None:
    """Write one labelled set (see `labelled_store`); `seed` enters its provenance, so
    another seed is another fingerprint."""
    extractor, modality, level, dim, dtype = spec
    rng = np.random.default_rng([seed, dim])
    # exc and fru stay apart from the 4 classes (index 4 = "other").
    classes = [min(LABEL_CYCLE.index(str(c)), 4) for c in store.manifest.column("label")]
    centres = rng.normal(size=(5, dim))
    rows = {}
    for i, y in enumerate(classes):
        n = 1 if level == "utterance" else int(rng.integers(2, 7))
        rows[i] = centres[y] * signal + rng.normal(size=(n, dim))
    attrs = {"extractor": extractor, "modality": modality, "level": level, "dim": dim,
             "dtype": dtype, "seed": seed}  # fmt: skip
    store.begin_feature_set(name, attrs, overwrite=overwrite)
    store.shard_writer(name).write(0, rows, {})
    store.consolidate(name, 1)


def add_incomplete_set(store: FeatureStore, name: str = "logmel80", dim: int = 3) -> None:
    """Begin a frame-level audio set and write one shard of it, never consolidated: what a
    killed extraction leaves, which readers must refuse as incomplete."""
    attrs = {"extractor": "logmel", "modality": "audio", "level": "frame", "dim": dim,
             "dtype": "float16"}  # fmt: skip
    store.begin_feature_set(name, attrs)
    store.shard_writer(name).write(0, {0: np.ones((2, dim))}, {})


def damage_chunk(store: FeatureStore, array: str, chunk: int = 0, seed: int = 1) -> None:
    """Overwrite one stored chunk of ``array`` ("<set>/data", "manifest/label", ...) on
    disk with finite garbage, as a failing disk or network filesystem might: its bytes
    but the last 4 (a Zarr chunk's crc32c, an HDF5 chunk's Fletcher-32), from the start."""
    if store.backend == "zarr":
        folder = store.path / array / "c" / str(chunk)
        path = folder / "0" if folder.is_dir() else folder
        offset, size = 0, path.stat().st_size
    else:
        import h5py

        path = store.path
        with h5py.File(path, "r") as f:
            dataset = f[array]
            first = (chunk * dataset.chunks[0],) + (0,) * (dataset.ndim - 1)
            info = dataset.id.get_chunk_info_by_coord(first)
            offset, size = info.byte_offset, info.size
    garbage = np.random.default_rng(seed).standard_normal(size).astype(np.float16).tobytes()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(garbage[: size - 4])


def drop_recorded_checksums(store: FeatureStore) -> None:
    """Take the checksum attribute off every set: with `backend.CHUNK_CHECKSUMS` False
    while it was written, the store is what ser wrote before checksums."""
    for name in store.feature_sets():
        attrs = store.info(name).attrs
        store._backend.set_group_attrs(name, {k: v for k, v in attrs.items() if k != "data_sha256"})


def add_layer_sets(
    store: FeatureStore,
    stem: str,
    spec: SetSpec,
    layers: Sequence[int],
    informative: int | None = None,
    pool: str | None = None,
    signal: float = 2.0,
    seed: int = 0,
    n_layers: int | None = None,
) -> list[str]:
    """One encoder's layer sets as extraction names them (docs: PLAN conventions): audio
    `<stem>.L<n>`; text `<stem>` for the last layer (`n_layers`, default max(layers); its
    attrs without n_layers) and `<stem>.L<n>` below it; pooled ones `.mean` / `.meanstd`
    (level utterance, one row). Every layer is labelled as `add_labelled_set`'s sets are,
    or with `informative`, only that layer: the others are noise. Returns the set names."""
    extractor, modality, level, dim, dtype = spec
    top = max(layers) if n_layers is None else n_layers
    classes = [min(LABEL_CYCLE.index(str(c)), 4) for c in store.manifest.column("label")]
    counts = np.random.default_rng([seed, dim, 99]).integers(2, 7, len(classes))
    names = []
    for layer in layers:
        rng = np.random.default_rng([seed, dim, layer])
        centres = rng.normal(size=(5, dim)) * (informative in (None, layer))
        rows = {}
        for i, y in enumerate(classes):
            n = 1 if pool else int(counts[i])
            rows[i] = centres[y] * signal + rng.normal(size=(n, dim))
        attrs = {"extractor": extractor, "modality": modality, "level": level, "dim": dim,
                 "dtype": dtype, "model": f"/models/{stem}", "weights_sha256": "cd" * 32,
                 "seed": seed, "layer": layer}  # fmt: skip
        text_top = modality == "text" and layer == top
        if not text_top:
            attrs["n_layers"] = top
        name = stem if text_top else f"{stem}.L{layer}"
        if pool:
            attrs.update(level="utterance", pool=pool)
            name += f".{pool}"
        store.begin_feature_set(name, attrs)
        store.shard_writer(name).write(0, rows, {})
        store.consolidate(name, 1)
        names.append(name)
    return names


def corpus_store(
    path: Path,
    kind: str,
    labels: Sequence[str],
    speakers: int = 6,
    sets: dict[str, SetSpec] | None = None,
    per_dialog: int = 1,
    shift: float = 0.0,
    seed: int = 0,
    signal: float = 2.0,
    model: str | None = None,
    dataset: str | None = None,
    transcripts: Sequence[str] | None = None,
) -> FeatureStore:
    """A store of corpus `kind` (its attrs recorded) whose utterances cycle through the
    label codes `labels` over `speakers` speakers, `per_dialog` turns a dialog (1: each
    utterance its own); each set's rows are the centre of the code's EMOTION (the same
    in every store built here: `ser.corpus.emotions`) * `signal` plus noise, plus
    `shift` everywhere (a corpus whose features sit elsewhere). `sets` defaults to one
    is13-like utterance-level set, which the trainer z-scores. `model`: the encoder the
    sets record; `dataset`: an EmoBox store's corpus (its `dataset` group); `transcripts`:
    one per utterance (else "hello there" each)."""
    from ser.corpus.emotions import EMOTIONS, emotion
    from ser.corpus.registry import KINDS

    n = len(labels)
    # every speaker says every label (a cycle of labels over a cycle of 7 turns)
    speaker = [f"{kind}-spk{(i // 7) % speakers}" for i in range(n)]
    dialog = [f"{kind}-d{i // per_dialog}" for i in range(n)]
    cols: dict[str, Any] = {
        "utt_id": [f"{kind}_{i:05d}" for i in range(n)],
        "dialog": dialog if per_dialog > 1 else [f"{kind}_{i:05d}" for i in range(n)],
        "speaker": speaker,
        "gender": ["F" if i % 2 else "M" for i in range(n)],
        "order": [i % per_dialog for i in range(n)],
        "start": [0.0] * n,
        "end": [1.0] * n,
        "duration": [1.0] * n,
        "label": list(labels),
        "valence": [np.nan] * n,
        "arousal": [np.nan] * n,
        "dominance": [np.nan] * n,
        "transcript": list(transcripts or ["hello there"] * n),
        "transcript_raw": list(transcripts or ["hello there"] * n),
        "wav": [f"{kind}_{i:05d}.wav" for i in range(n)],
    }
    if kind == "iemocap":  # its protocols' group: two speakers a session
        cols["session"] = [int(spk.rsplit("spk", 1)[1]) // 2 + 1 for spk in speaker]
    if dataset is not None:
        cols["dataset"] = [dataset] * n
    if kind in ("meld", "msp-podcast"):  # their official partitions
        cols["split"] = [("train", "train", "train", "dev", "test")[(i // 7) % 5] for i in range(n)]
    store = FeatureStore.create(path, Manifest.from_columns(cols), KINDS[kind].attrs())
    names = [emotion(str(code).split(".")[0]) or "other" for code in labels]
    index = [EMOTIONS.index(e) if e in EMOTIONS else len(EMOTIONS) for e in names]
    specs = sets or {"is13": ("is13", "audio", "utterance", 7, "float32")}
    for name, (extractor, modality, level, dim, dtype) in specs.items():
        rng = np.random.default_rng([seed, dim, n])
        centres = np.random.default_rng(dim).normal(size=(len(EMOTIONS) + 1, dim))
        rows = {}
        for i, y in enumerate(index):
            count = 1 if level == "utterance" else int(rng.integers(2, 5))
            rows[i] = centres[y] * signal + rng.normal(size=(count, dim)) + shift
        attrs = {"extractor": extractor, "modality": modality, "level": level, "dim": dim,
                 "dtype": dtype, "seed": 0, **({"model": model} if model else {})}  # fmt: skip
        store.begin_feature_set(name, attrs)
        store.shard_writer(name).write(0, rows, {})
        store.consolidate(name, 1)
    return store
