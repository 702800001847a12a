"""A model trained as its family trains it (`fit`): its earlier stages each trained alone
and written back into the members' modules (e.g. Zhou et al.'s branches), then the whole
model, every stage selecting on the members' validation sides (`loop.select`). What comes
out: the ensemble at each member's selected state, the sides the whole model trained on,
and each member's selection, its earlier stages' inside it (`Selection.stages`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from ser.track.progress import Progress
from ser.train.engine.ensemble import Ensemble
from ser.train.engine.loop import Member, Selection, select
from ser.train.engine.steps import Steps


def fit(
    modules: Sequence[nn.Module],
    members: Callable[[], list[Member]],
    classes: Sequence[str],
    progress: Progress,
    steps: Steps | None = None,
) -> tuple[Ensemble, list[Member], list[Selection]]:
    """The family's earlier stages (e.g. Zhou et al.'s branches alone), each trained and
    written back into the modules, then the whole model; `members()`: each stage's sides.
    Returns the whole model's ensemble, its sides and each member's selection."""
    steps = steps or Steps()
    planned = [m.stages() for m in modules]  # type: ignore[operator]
    total = len(planned[0]) + 1
    stages: dict[str, list[Selection]] = {}
    for n, (name, _) in enumerate(planned[0], 1):
        progress.stage(n, total, f"{name} alone")
        stage_modules = [p[n - 1][1] for p in planned]
        ensemble, stages[name] = _selected(stage_modules, members(), classes, progress, steps)
        ensemble.write_back(stage_modules)
    if planned[0]:
        progress.stage(total, total, "the whole model")
    last = members()
    ensemble, chosen = _selected(modules, last, classes, progress, steps)
    for i, selection in enumerate(chosen):
        selection.stages = {name: stage[i] for name, stage in stages.items()}
    return ensemble, last, chosen


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
