"""Which of a run's checkpoints an export holds (`--members best|all|final|K`).

`all` is what `ser predict --run` averages: every (seed, fold). `best` and `K` rank the
(seed, fold)s by their validation score at the epoch each selected (UA; the mean CCC for a
run on attributes alone), never by their test score: the card reports the test scores,
which must not have picked the model. `final` is the model trained on all data (`ser
train --final`). Checkpoint keys (comma-separated) name the members themselves: what a
run with a damaged member exports (`ser.train.checkpoint.check_members`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ser.errors import ConfigError, chosen
from ser.runs.fold_entry import FoldEntry
from ser.runs.record import RunRecord
from ser.train.checkpoint import FINAL, fold_key

CHOICES = "best|all|final|K|KEY,KEY..."
#: How an export of several members averages them (config.json and the card say it).
AVERAGING = (
    "the mean of the members' softmax class probabilities (each member's own z-score of "
    "its inputs), and the mean of their attribute predictions on the corpus's scale; the "
    "label is the class of highest mean probability"
)


def choose_members(record: RunRecord, keys: Sequence[str], which: str) -> list[str]:
    """The checkpoint keys `which` selects of a run holding checkpoints `keys`."""
    folds = [k for k in keys if k != FINAL]
    if which == "all":
        if not folds:
            raise ConfigError("--members all: the run has no (seed, fold) checkpoints")
        return folds
    if which == FINAL:
        if FINAL not in keys:
            raise ConfigError("--members final: the run has no final model (ser train --final)")
        return [FINAL]
    if which != "best" and not which.strip().isdigit() and not which.startswith("-"):
        return _named(keys, which)
    count = 1 if which == "best" else _count(which)
    ranked = _ranked(record, folds)
    if count > len(ranked):
        raise ConfigError(f"--members {which}: the run has {len(ranked)} (seed, fold) checkpoints")
    return ranked[:count]


def _named(keys: Sequence[str], which: str) -> list[str]:
    """The members `which` names (comma-separated keys), each one of `keys`."""
    return chosen(
        (k.strip() for k in which.split(",") if k.strip()),
        keys,
        lambda unknown: (
            f"--members {which!r}: expected {CHOICES}; the run has no checkpoint "
            f"{', '.join(unknown) or which!r} (it has {', '.join(keys) or 'none'})"
        ),
    )


def needed(record_keys: Sequence[str], which: str, chosen: Sequence[str]) -> list[str]:
    """The members that must be whole for `which`: those `chosen`, and for `best` and K
    every (seed, fold) (a missing one might have ranked first)."""
    ranks = which == "best" or which.strip().isdigit()
    return [k for k in record_keys if k != FINAL] if ranks else list(chosen)


def _count(which: str) -> int:
    try:
        count = int(which)
    except ValueError:
        raise ConfigError(f"--members {which!r}: expected {CHOICES}") from None
    if count < 1:
        raise ConfigError(f"--members {which}: K must be at least 1")
    return count


def validation_score(entry: FoldEntry) -> float | None:
    """The entry's validation score at its selected epoch (None: not recorded)."""
    curves = entry.curves
    key = "val_ua" if entry.metrics is not None else "val_ccc"
    values, epochs = curves.get(key), curves.get("epoch")
    if not values or not epochs or entry.best_epoch not in epochs:
        return None
    value = values[epochs.index(entry.best_epoch)]
    return float(value) if value is not None and math.isfinite(value) else None


def _ranked(record: RunRecord, folds: Sequence[str]) -> list[str]:
    """The (seed, fold) keys, best validation score first (ties: key order)."""
    scores = {fold_key(e.seed, e.fold): validation_score(e) for e in record.folds}
    missing = [k for k in folds if scores.get(k) is None]
    if missing:
        raise ConfigError(
            f"--members: checkpoints {', '.join(missing)} have no validation score to rank "
            "them by (a run without validation): export them all with --members all"
        )
    return sorted(folds, key=lambda k: -float(scores[k] or 0.0))
