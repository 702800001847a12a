"""Import features computed elsewhere (e.g. another toolkit's embeddings) from a .npz file.

The file maps utterance ids to arrays; utterances it lacks become failures. Its sha256 is
in the provenance, so re-importing a changed file is a fingerprint mismatch; ``overwrite``
replaces the set whatever it was imported from (the same file again mends a damaged set).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ser.cache.manifest import COLUMNS, Manifest
    >>> folder = Path(tempfile.mkdtemp())
    >>> manifest = Manifest.from_columns({c: [0, 1] for c in COLUMNS} | {"utt_id": ["a", "b"]})
    >>> store = FeatureStore.create(folder / "f.zarr", manifest)
    >>> np.savez(folder / "emb.npz", a=np.ones(4, np.float32))
    >>> result = import_npz(store, folder / "emb.npz", ImportConfig("emb", "audio", "utterance"))
    >>> result.imported, result.missing
    (1, ['b'])
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from ser.cache.store import FeatureStore
from ser.errors import StoreError

UTTERANCES_PER_SHARD = 512


@dataclass(frozen=True)
class ImportConfig:
    name: str
    modality: str  # "audio" | "text"
    level: str  # "frame" | "token" | "utterance"
    dtype: str | None = None  # "float16" | "float32"; None: float16 if the file's is
    overwrite: bool = False


@dataclass(frozen=True)
class ImportResult:
    imported: int  # utterances with rows
    missing: list[str]  # manifest ids the file lacks, recorded as failures
    rejected: list[tuple[str, str]]  # (utt_id, reason): in the file but not storable
    already: bool  # the same file was imported before: nothing done


def import_npz(store: FeatureStore, npz: Path, config: ImportConfig) -> ImportResult:
    """Add the features of ``npz`` to ``store``; every array's shape and dtype is checked
    (from the .npy headers) first, so a bad file leaves the store untouched."""
    headers = _headers(npz)
    _check_ids(npz, list(headers), store)
    dim = _check_shapes(npz, headers, config.level)
    all_half = all(dtype == np.float16 for _, dtype in headers.values())
    attrs = {
        "extractor": "imported",
        "modality": config.modality,
        "level": config.level,
        "dim": dim,
        "dtype": config.dtype or ("float16" if all_half else "float32"),
        "source": npz.name,
        "source_sha256": _sha256(npz),
    }
    in_file = {store.manifest.index(utt_id): utt_id for utt_id in headers}
    missing = [u for i, u in enumerate(store.manifest.utt_ids.tolist()) if i not in in_file]
    with store.lock():
        if config.overwrite and config.name in store.feature_sets():
            store.delete_feature_set(config.name)  # the same file too: a damaged set mended
        store.begin_feature_set(config.name, attrs, overwrite=config.overwrite)
        if store.info(config.name).complete:
            return ImportResult(len(in_file), missing, [], already=True)
        n_shards = _write_shards(store, config.name, npz, in_file)
        store.consolidate(config.name, n_shards)
    not_in_file = f"not in {npz.name}"
    rejected = [(u, r) for u, r in store.failures(config.name) if r != not_in_file]
    return ImportResult(len(in_file) - len(rejected), missing, rejected, already=False)


def _write_shards(store: FeatureStore, name: str, npz: Path, in_file: dict[int, str]) -> int:
    """Shards of consecutive manifest utterances; committed ones are kept (resume)."""
    writer = store.shard_writer(name)
    done = store.done_shards(name)
    n = len(store.manifest)
    starts = range(0, n, UTTERANCES_PER_SHARD)
    for shard_id, start in enumerate(starts):
        if shard_id in done:
            continue
        indices = range(start, min(start + UTTERANCES_PER_SHARD, n))
        with np.load(npz, allow_pickle=False) as arrays:
            rows = {i: arrays[in_file[i]] for i in indices if i in in_file}
        failures = {i: f"not in {npz.name}" for i in indices if i not in in_file}
        writer.write(shard_id, rows, failures)
    return len(starts)


def _headers(npz: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each array in ``npz``, read from the .npy headers only."""
    if not npz.is_file():
        raise StoreError(f"{npz}: no such file")
    headers = {}
    try:
        with zipfile.ZipFile(npz) as archive:
            for member in archive.infolist():
                with archive.open(member) as f:
                    old = npy.read_magic(f) == (1, 0)
                    read = npy.read_array_header_1_0 if old else npy.read_array_header_2_0
                    shape, _, dtype = read(f)
                headers[member.filename.removesuffix(".npy")] = (shape, np.dtype(dtype))
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise StoreError(f"{npz}: not a readable .npz file ({err})") from None
    if not headers:
        raise StoreError(f"{npz}: holds no arrays")
    return headers


def _check_ids(npz: Path, ids: list[str], store: FeatureStore) -> None:
    unknown = [utt_id for utt_id in ids if utt_id not in store.manifest]
    if unknown:
        raise StoreError(
            f"{npz}: {len(unknown)} of its {len(ids)} ids are not in the store's manifest "
            f"(e.g. {', '.join(unknown[:3])}); nothing was imported"
        )


def _check_shapes(
    npz: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]], level: str
) -> int:
    """The common dim of all arrays: numeric [rows, dim], or [dim] for utterance level."""
    first_shape = next(iter(headers.values()))[0]
    dim = first_shape[-1] if first_shape else 0
    ndims = (1, 2) if level == "utterance" else (2,)
    for utt_id, (shape, dtype) in headers.items():
        if dtype.kind not in "fiu" or len(shape) not in ndims or shape[-1] != dim or dim == 0:
            want = f"[rows, {dim}]" + (f" or [{dim}]" if level == "utterance" else "")
            raise StoreError(
                f"{npz}: {utt_id}: expected a numeric {want} array, got {dtype} {shape}; "
                "nothing was imported"
            )
        if level == "utterance" and len(shape) == 2 and shape[0] != 1:
            raise StoreError(
                f"{npz}: {utt_id}: utterance-level arrays need one row, got {shape}; "
                "nothing was imported"
            )
    return int(dim)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
