"""The end of an extraction pass: each feature set's staged shards laid out in manifest
order (`FeatureStore.consolidate`), side by side on threads where the store's format
lets threads write different sets (Zarr: a folder each; HDF5: one file, one set at a
time), and the word for shards another `--shard-size` cut."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ser.cache import FeatureStore
from ser.errors import StoreError
from ser.runtime.execution import write_threads


def lay_out(store: FeatureStore, names: list[str], n_shards: int, shard_size: int) -> None:
    """Each set of a pass laid out, side by side on `write_threads` where the store's
    format lets threads write different sets (Zarr: a folder each; HDF5: one file); the
    first error raised once the others are done."""
    threads = write_threads(len(names)) if store.concurrent_sets else 1
    if threads == 1:
        for name in names:
            _consolidate(store, name, n_shards, shard_size)
        return
    with ThreadPoolExecutor(threads, "ser-consolidate") as pool:
        done = [pool.submit(_consolidate, store, name, n_shards, shard_size) for name in names]
    for future in done:
        future.result()


def _consolidate(store: FeatureStore, name: str, n_shards: int, shard_size: int) -> None:
    try:
        store.consolidate(name, n_shards)
    except StoreError as error:
        if "more than one shard" in str(error) or "none of the" in str(error):
            raise StoreError(f"{error}\n{replanned(name, shard_size)}") from error
        raise


def replanned(name: str, shard_size: int, early: bool = False) -> str:
    return (
        f"the finished shards of {name} were cut with another --shard-size than this "
        f"run's {shard_size}: resume with the --shard-size of the first run"
        + (", or pass --overwrite to extract the feature set again" if early else "")
    )
