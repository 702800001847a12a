"""The storage format of a store, chosen by its path's suffix."""

from __future__ import annotations

from pathlib import Path

from ser.cache.backend import Backend
from ser.errors import StoreError

#: The suffixes of a store's path: a Zarr directory, an HDF5 file.
STORE_SUFFIXES = (".zarr", ".h5", ".hdf5")


def backend_for(path: Path, writable: bool) -> Backend:
    """The backend for ``path`` by its suffix: ``.zarr`` or ``.h5``/``.hdf5``."""
    suffix = path.suffix.lower()
    # Imported here: a store of one format need not pay for loading the other's library.
    if suffix == ".zarr":
        from ser.cache.zarr_backend import ZarrBackend
        from ser.cache.zarr_nodes import refuse_v2

        refuse_v2(path)  # a folder ser neither reads nor may write over
        return ZarrBackend(path, writable)
    if suffix in (".h5", ".hdf5"):
        from ser.cache.hdf5_backend import Hdf5Backend

        return Hdf5Backend(path, writable)
    raise StoreError(
        f"{path}: a feature store path must end in .zarr (Zarr directory) or .h5/.hdf5 (HDF5 file)"
    )
