"""Import features computed elsewhere (e.g. another toolkit's embeddings) from a .npz file.

The file maps utterance ids to arrays; utterances it lacks become failures. Its sha256 is
in the provenance, so re-importing a changed file is a fingerprint mismatch; ``overwrite``
replaces the set whatever it was imported from (the same file again mends a damaged set).
The file is opened once for its headers and once for its rows, each array read once and
each row written once, straight into the set (`FeatureStore.place`): an import stopped
part-way goes on from the rows it wrote.

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

import contextlib
import hashlib
import math
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from ser.cache.receipts import write_receipt
from ser.cache.store import FeatureStore
from ser.errors import StoreError
from ser.runtime.progress import UTTERANCES, Counter

MIB = 2**20
NO_ROWS = "no output (0 rows)"  # an array of no rows: a failure, as an extractor's would be


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


@dataclass(frozen=True)
class Header:
    """An array of the file as its .npy header describes it, its name in the zip and
    where in it its values start."""

    shape: tuple[int, ...]
    dtype: np.dtype
    member: str
    fortran: bool = False
    offset: int = 0  # bytes of the .npy header, its values after them

    def values(self, archive: zipfile.ZipFile) -> np.ndarray:
        """The array, read from its member past the header read already (numpy's
        `read_array` would parse that again: most of the time an array of one row
        takes)."""
        count = math.prod(self.shape)
        with archive.open(self.member) as f:
            f.read(self.offset)
            data = f.read(count * self.dtype.itemsize)
        if len(data) != count * self.dtype.itemsize:
            raise ValueError(f"{self.member} is cut short")
        return np.frombuffer(data, self.dtype).reshape(
            self.shape, order="F" if self.fortran else "C"
        )


def header_rows(shape: tuple[int, ...]) -> int:
    """Rows an array of ``shape`` stores as: a vector one, a matrix its first axis."""
    return 1 if len(shape) == 1 else int(shape[0])


def import_npz(
    store: FeatureStore, npz: Path, config: ImportConfig, progress: Counter | None = None
) -> ImportResult:
    """Add the features of ``npz`` to ``store``; every array's shape and dtype is checked
    (from the .npy headers) first, so a bad file leaves the store untouched. Each row is
    written once, straight into the set (`FeatureStore.place`); an import stopped part-way
    goes on from there when run again. ``progress`` counts the arrays' headers read, the
    file's bytes hashed and the utterances as they go in: each pass a task."""
    headers = _headers(npz, _counter(progress, f"{npz.name} headers"))
    _check_ids(npz, list(headers), store)
    dim = _check_shapes(npz, headers, config.level)
    all_half = all(header.dtype == np.float16 for header in headers.values())
    attrs = {
        "extractor": "imported",
        "modality": config.modality,
        "level": config.level,
        "dim": dim,
        "dtype": config.dtype or ("float16" if all_half else "float32"),
        "source": npz.name,
        "source_sha256": _sha256(npz, progress),
    }
    in_file = {store.manifest.index(utt_id): utt_id for utt_id in headers}
    missing = [u for i, u in enumerate(store.manifest.utt_ids.tolist()) if i not in in_file]
    with store.lock():
        if config.overwrite and config.name in store.feature_sets():
            store.delete_feature_set(config.name)  # the same file too: a damaged set mended
        store.begin_feature_set(config.name, attrs, overwrite=config.overwrite)
        already = store.info(config.name).complete
        if not already:
            _place(store, config.name, npz, in_file, headers, progress)
        write_receipt(store.path, None, None, store)  # what `ser store verify` checks sets against
    if already:
        return ImportResult(len(in_file), missing, [], already=True)
    not_in_file = f"not in {npz.name}"
    rejected = [(u, r) for u, r in store.failures(config.name) if r != not_in_file]
    return ImportResult(len(in_file) - len(rejected), missing, rejected, already=False)


def _place(
    store: FeatureStore,
    name: str,
    npz: Path,
    in_file: dict[int, str],
    headers: dict[str, Header],
    progress: Counter | None,
) -> None:
    """The arrays' rows written into set ``name`` in manifest order, the file opened once:
    each array is found by name in the zip's directory, read once."""
    counts = np.zeros(len(store.manifest), np.int64)  # [n_utt]
    for index, utt_id in in_file.items():
        counts[index] = header_rows(headers[utt_id].shape)
    failures = {i: f"not in {npz.name}" for i in range(len(counts)) if i not in in_file}
    failures |= {i: NO_ROWS for i in in_file if counts[i] == 0}
    placed = store.place(name, counts)
    todo = placed.pending()
    total = int(np.count_nonzero(counts))
    with _unreadable(npz):
        archive = zipfile.ZipFile(npz)  # its directory read once, before the rate's clock
    with archive:
        advance = _counter(progress, name)(total, total - len(todo))  # done before: untimed
        for index in todo.tolist():
            with _unreadable(npz):
                values = headers[in_file[index]].values(archive)
            placed.add(index, values)
            advance(1)
    placed.commit(failures)


@contextlib.contextmanager
def _unreadable(npz: Path) -> Iterator[None]:
    """The file failing to read part-way (changed, cut short, its disk gone) as one line."""
    try:
        yield
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise StoreError(
            f"{npz}: cannot be read ({err}); the rows imported so far are kept, and the same "
            "command goes on from them once the file reads"
        ) from None


# Given the total and what of it is done already, a function that counts work done.
Start = Callable[[float, int], Callable[[float], None]]


def _counter(progress: Counter | None, description: str, unit: str = UTTERANCES) -> Start:
    """What starts a new task of ``progress`` (nothing without one): `Start`."""

    def start(total: float, completed: int = 0) -> Callable[[float], None]:
        if progress is None:
            return lambda done: None
        task = progress.add_task(description, total=total, completed=completed, unit=unit)
        return lambda done: progress.advance(task, done)

    return start


def _headers(npz: Path, counted: Start) -> dict[str, Header]:
    """Shape and dtype of each array in ``npz``, read from the .npy headers only."""
    if not npz.is_file():
        raise StoreError(f"{npz}: no such file")
    headers = {}
    try:
        with zipfile.ZipFile(npz) as archive:
            members = archive.infolist()
            advance = counted(len(members), 0)
            for member in members:
                with archive.open(member) as f:
                    old = npy.read_magic(f) == (1, 0)
                    read = npy.read_array_header_1_0 if old else npy.read_array_header_2_0
                    shape, fortran, dtype = read(f)
                    offset = f.tell()
                name = member.filename.removesuffix(".npy")
                headers[name] = Header(shape, np.dtype(dtype), member.filename, fortran, offset)
                advance(1)
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


def _check_shapes(npz: Path, headers: dict[str, Header], level: str) -> int:
    """The common dim of all arrays: numeric [rows, dim], or [dim] for utterance level."""
    first_shape = next(iter(headers.values())).shape
    dim = first_shape[-1] if first_shape else 0
    ndims = (1, 2) if level == "utterance" else (2,)
    for utt_id, header in headers.items():
        shape, dtype = header.shape, header.dtype
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


def _sha256(path: Path, progress: Counter | None) -> str:
    """The file's sha256, its MiB counted as they are read."""
    digest = hashlib.sha256()
    advance = _counter(progress, f"{path.name} sha256", "MiB")(path.stat().st_size / MIB, 0)
    with open(path, "rb") as f:
        while block := f.read(16 * MIB):
            digest.update(block)
            advance(len(block) / MIB)
    return digest.hexdigest()
