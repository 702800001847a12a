"""ser as a Python library (docs/python.md): a store opened (`open_store`), a protocol's
folds (`folds`), cached features as a torch `Dataset` (`FeatureDataset`), a run trained
(`train`) and a run or an exported folder loaded to predict (`load`); each a thin typed
layer over what the `ser` commands call, its refusals raised as `ser.errors.SerError`s.
The plugins (`ser.runtime.plugins`) are imported with it, as the command line imports
them before a command reads a registry."""

from ser.api import metrics
from ser.api.batches import BlockBatches
from ser.api.dataset import FeatureBatch, FeatureDataset, Item
from ser.api.manifest import UtteranceTable
from ser.api.model import Model, Predicted, Predictions, Segment, load
from ser.api.splits import Fold, folds
from ser.api.store import SetInfo, Store, open_store
from ser.api.training import Run, train
from ser.runtime.plugins import load_plugins

load_plugins()

__all__ = [
    "BlockBatches",
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
    "UtteranceTable",
    "folds",
    "load",
    "metrics",
    "open_store",
    "train",
]
