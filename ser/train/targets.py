"""A run's targets on the trainer's side: the attribute targets' scale fitted on a fold's
training side, and what validation selects on."""

from __future__ import annotations

import math

import numpy as np
import torch

from ser.errors import ConfigError
from ser.models.targets import Targets
from ser.train.data import STD_FLOOR, TrainData, ZScore
from ser.train.ensemble import Ensemble


def fit_target_scale(data: TrainData, train: np.ndarray) -> ZScore | None:
    """Each attribute's mean/std [A] over the `train` positions that have a value (None:
    no attribute targets): the scale the model's attribute outputs are trained on."""
    if data.targets is None:
        return None
    values = data.targets[np.asarray(train, dtype=np.int64)]  # [n_train, A]
    has = np.isfinite(values)
    if not has.any(axis=0).all():
        missing = [a for a, h in zip(data.attributes, has.any(axis=0), strict=True) if not h]
        raise ConfigError(f"the training side has no value of {', '.join(missing)}")
    mean = np.nanmean(values, axis=0)
    std = np.nanstd(values, axis=0)
    std = np.where(std < STD_FLOOR, 1.0, std)
    on = {"dtype": torch.float32, "device": data.device}
    return ZScore(torch.as_tensor(mean, **on), torch.as_tensor(std, **on))  # type: ignore[arg-type]


def targets_of(ensemble: Ensemble) -> Targets:
    """What the ensemble's members predict (their family's model's `targets`)."""
    targets = getattr(ensemble.base, "targets", None)
    return targets if isinstance(targets, Targets) else Targets()


def selection_score(targets: Targets, ua: float, ccc: float) -> float:
    """What validation selects on: UA (percent), the mean CCC of attributes alone, or,
    with both, their mean on one scale (UA / 100 beside CCC)."""
    if not targets.attributes:
        return ua
    score = ccc if not targets.emotion else (ua / 100 + ccc) / 2
    return -math.inf if math.isnan(score) else score  # NaN: an undefined CCC
