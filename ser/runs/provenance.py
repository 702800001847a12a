"""How a run ran, as its record keeps it: its threads (`Threads`), its processes and
stacking (`ExecutionRecord`; `Processes` in records from before the execution policy),
its timings (`Timings`) and the model trained on all data (`Final`).

Each mirrors what its writer writes (`ser.runtime.threads.ThreadChoice`,
`ser.runtime.execution.Execution` and `ser.train.engine.steps`, `ser.train.prepare`,
`ser.train.recipe`, `ser.train.group`); a key this version does not know (a newer ser's,
or one since gone) stays in `extra` and is written back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from ser.runs.codec import Json
from ser.runs.curves import Curves
from ser.runtime.execution import Execution
from ser.runtime.threads import ThreadChoice


@dataclass(frozen=True, kw_only=True)
class Threads:
    """The torch threads a run trained on and why (`ThreadChoice`; no `source` in some
    records of `--threads follow`, since gone)."""

    count: int
    source: str | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def of(cls, choice: ThreadChoice) -> Threads:
        return cls(count=choice.count, source=choice.source)


@dataclass(frozen=True, kw_only=True)
class Processes:
    """Processes side by side and why: what records held before `ExecutionRecord`."""

    count: int
    source: str
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ExecutionRecord:
    """`Execution` as the run chose it (`training` and `step`: None in records from
    before they were recorded) and, where its steps were compiled, how (`ser.train.engine.steps`:
    `compiled`, `backend`, the `shapes` it met)."""

    ALWAYS: ClassVar[frozenset[str]] = frozenset({"stacked"})

    processes: int
    threads: int
    source: str
    stacked: int | None = None
    cluster: bool = False
    training: bool | None = None
    step: str | None = None
    compiled: bool | None = None
    backend: str | None = None
    shapes: int | None = None
    memory: str | None = None  # where the inputs' rows lived (`--memory-budget`)
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def of(cls, execution: Execution) -> ExecutionRecord:
        return cls(**{**asdict(execution), "memory": execution.memory or None})


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Seconds spent loading the data (`load`), training every fold (`folds`) and in all
    (`wall`), on which `device` with how many torch `threads`."""

    load: float | None = None
    device: str | None = None
    threads: int | None = None
    folds: float | None = None
    wall: float | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Final:
    """The model trained on all the data (`ser train --final`): its epochs, seed and
    utterances, its loss's class weights, its learnt layer weights (if any) and its
    training loss at each epoch (`curves`; records before it: None)."""

    epochs: int
    seed: int
    utterances: int
    class_weights: Mapping[str, float] | None = None
    layer_weights: Mapping[str, tuple[float, ...]] | None = None
    curves: Curves | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)
