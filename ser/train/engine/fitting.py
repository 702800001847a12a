"""A model trained as its family trains it (`fit`): its earlier stages each trained alone
and written back into the members' modules (e.g. Zhou et al.'s branches), then the whole
model, every stage selecting on the members' validation sides (`loop.select`). What comes
out (`Fitted`): the ensemble at each member's selected state, and each stage's curves."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from torch import nn

from ser.track.progress import Progress
from ser.train.engine.ensemble import Ensemble
from ser.train.engine.loop import Member, Selection, select
from ser.train.engine.steps import Steps


class Fitted(NamedTuple):
    """The members fitted: the whole model's `ensemble` at each member's selected state,
    the sides it trained on (`members`), each member's selection (`chosen`), and the
    earlier stages' selections by stage name (`stages`: none for a one-stage family)."""

    ensemble: Ensemble
    members: list[Member]
    chosen: list[Selection]
    stages: dict[str, list[Selection]]


def fit(
    modules: Sequence[nn.Module],
    members: Callable[[], list[Member]],
    classes: Sequence[str],
    progress: Progress,
    steps: Steps | None = None,
) -> Fitted:
    """The family's earlier stages (e.g. Zhou et al.'s branches alone), each trained and
    written back into the modules, then the whole model; `members()`: each stage's sides."""
    steps = steps or Steps()
    planned = [m.stages() for m in modules]  # type: ignore[operator]
    total = len(planned[0]) + 1
    stages = {}
    for n, (name, _) in enumerate(planned[0], 1):
        progress.stage(n, total, f"{name} alone")
        stage_modules = [p[n - 1][1] for p in planned]
        ensemble, stages[name] = _selected(stage_modules, members(), classes, progress, steps)
        ensemble.write_back(stage_modules)
    if planned[0]:
        progress.stage(total, total, "the whole model")
    last = members()
    ensemble, chosen = _selected(modules, last, classes, progress, steps)
    return Fitted(ensemble, last, chosen, stages)


def _selected(
    modules: Sequence[nn.Module],
    members: list[Member],
    classes: Sequence[str],
    progress: Progress,
    steps: Steps,
) -> tuple[Ensemble, list[Selection]]:
    """`modules` stacked as `steps` runs them, trained on `members`' sides and each
    member's selected state loaded (`select`)."""
    ensemble = steps.ensemble(modules)
    return ensemble, select(ensemble, members, classes, progress.epoch, progress.step, steps)
