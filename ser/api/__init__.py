"""ser as a Python library (docs/python.md): a store opened (`open_store`), a protocol's
folds (`folds`), cached features as a torch `Dataset` (`FeatureDataset`), a run trained
(`train`) and a run or an exported folder loaded to predict (`load`); each a thin typed
layer over what the `ser` commands call, its refusals raised as `ser.errors.SerError`s."""

from ser.api.dataset import FeatureBatch, FeatureDataset, Item
from ser.api.model import Model, Predicted, Predictions, Segment, load
from ser.api.splits import Fold, folds
from ser.api.store import SetInfo, Store, open_store
from ser.api.training import Run, train

__all__ = [
    "FeatureBatch",
    "FeatureDataset",
    "Fold",
    "Item",
    "Model",
    "Predicted",
    "Predictions",
    "Run",
    "Segment",
    "SetInfo",
    "Store",
    "folds",
    "load",
    "open_store",
    "train",
]
