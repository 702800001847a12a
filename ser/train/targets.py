"""A run's targets on the trainer's side: the attribute targets' scale fitted on a fold's
training side, and what validation selects on."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ser.errors import ConfigError
from ser.models.targets import Targets
from ser.train.data import STD_FLOOR, TrainData
from ser.train.ensemble import Ensemble


class TargetScale(NamedTuple):
    """A fold's training side's attribute targets: the z-score the model's attribute
    outputs are trained on and the range its predictions are clipped to
    (`ser.heads.attributes.AttributeHead.bounded`; every [A]
    float32, on the device; a checkpoint's on the CPU)."""

    mean: torch.Tensor
    std: torch.Tensor  # >= STD_FLOOR (1 for a constant attribute)
    low: torch.Tensor  # the side's smallest value: no rating scale goes below its own
    high: torch.Tensor


def fit_target_scale(data: TrainData, train: np.ndarray) -> TargetScale | None:
    """The `TargetScale` of the `train` positions that have a value (None: no attribute
    targets)."""
    if data.targets is None:
        return None
    values = data.targets[np.asarray(train, dtype=np.int64)]  # [n_train, A]
    has = np.isfinite(values)
    if not has.any(axis=0).all():
        missing = [a for a, h in zip(data.attributes, has.any(axis=0), strict=True) if not h]
        raise ConfigError(f"the training side has no value of {', '.join(missing)}")
    std = np.nanstd(values, axis=0)
    moments = (np.nanmean(values, axis=0), np.where(std < STD_FLOOR, 1.0, std))
    every = (*moments, np.nanmin(values, axis=0), np.nanmax(values, axis=0))
    return TargetScale(
        *(torch.as_tensor(v, dtype=torch.float32, device=data.device) for v in every)
    )


def targets_of(ensemble: Ensemble) -> Targets:
    """What the ensemble's members predict (their family's model's `targets`)."""
    targets = getattr(ensemble.base, "targets", None)
    return targets if isinstance(targets, Targets) else Targets()
