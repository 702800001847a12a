"""Feature store: a manifest plus contiguous ragged feature sets, in Zarr v3 or HDF5.

See `ser.cache.store.FeatureStore` and docs/dev/store.md ("Feature store").
"""

from ser.cache.manifest import Manifest
from ser.cache.shards import ShardWriter
from ser.cache.store import FeatureStore
from ser.cache.store_types import Damage, FeatureData, FeatureSetInfo, VerifyReport

__all__ = [
    "Damage",
    "FeatureData",
    "FeatureSetInfo",
    "FeatureStore",
    "Manifest",
    "ShardWriter",
    "VerifyReport",
]
