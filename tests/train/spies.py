"""Progress hooks the trainer tests watch a run through."""

from __future__ import annotations

from ser.train.recipe import Progress


class Groups(Progress):
    """Counts the groups trained (one `fold_start` each)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.started.append(fold)
