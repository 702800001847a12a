"""Progress hooks of a training run, and the wrapper that re-checks CPU threads after
every epoch (`ser.thread_watch`)."""

from __future__ import annotations

from typing import Any

from ser.thread_watch import ThreadWatch


class Progress:
    """Hooks a front end overrides to show progress; the defaults stay silent."""

    def message(self, text: str) -> None:
        """A one-line note (dropped utterances, folds, resume state)."""

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        """Training of one (seed, fold) begins."""

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        """One epoch of the current fold finished."""

    def fold_end(self, seed: int, fold: str, entry: dict[str, Any]) -> None:
        """The (seed, fold) finished; `entry` is its record entry."""


class Watched(Progress):
    """`inner`'s hooks, and after every epoch a `ThreadWatch.check`: a change is said as
    a message and kept in `pending` (epoch, change record) until the caller files it."""

    def __init__(self, inner: Progress, watch: ThreadWatch) -> None:
        self.inner, self.watch = inner, watch
        self.pending: list[dict[str, Any]] = []

    def message(self, text: str) -> None:
        self.inner.message(text)

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.inner.fold_start(seed, fold, epochs)

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        self.inner.epoch(epoch, epochs, train_loss, val_ua)
        change = self.watch.check()
        if change is not None:
            self.inner.message(f"after epoch {epoch}: {change.describe()}")
            self.pending.append({"epoch": epoch, **change.record()})

    def fold_end(self, seed: int, fold: str, entry: dict[str, Any]) -> None:
        self.inner.fold_end(seed, fold, entry)

    def take(self) -> list[dict[str, Any]]:
        """The changes since the last call."""
        taken, self.pending = self.pending, []
        return taken
