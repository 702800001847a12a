"""How members execute, apart from what a run is: K members (`loop.Member`: its sides
and settings) in, each one's selected state and curves out (`loop.select` ->
`tracker.Selection`), and each tested on its side (`loop.test` -> `tracker.Evaluation`).

Behind that interface: the members one at a time or stacked (`ensemble.Ensemble`: one in
place, several under vmap), their steps eager, compiled or replayed as one CUDA graph
(`steps.Steps`, `graphs`), Adam over stacked members of unequal epochs (`member_adam`),
each member's curves and best state (`tracker`), and a family's stages trained in turn
(`fitting.fit`: the ensemble, its sides, each member's `Selection`). The callers
(`ser.train.recipe`, `ser.train.group`, `ser.train.final`) import the names below;
nothing in here knows a run, its record or its folds.
"""

from ser.train.engine.fitting import fit
from ser.train.engine.loop import Member, select, test
from ser.train.engine.steps import Steps
from ser.train.engine.tracker import Evaluation, Selection

__all__ = [
    "Evaluation",
    "Member",
    "Selection",
    "Steps",
    "fit",
    "select",
    "test",
]
