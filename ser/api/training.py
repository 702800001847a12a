"""`ser train` from Python (`train`): the same options, the same run, folder and record
(`ser.train.option_table.train_config`, `ser.train.recipe.train`), its refusals raised as
`SerError`s (docs/python.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.api.arguments import python_named
from ser.api.store import Store
from ser.errors import DiskFullError, PathError
from ser.runs.record import RunRecord, head_summary, json_summary
from ser.runtime.progress import log_console, on_terminal
from ser.track.console import ConsoleProgress
from ser.track.progress import Heartbeat, Progress
from ser.train.option_table import train_config, train_options
from ser.train.recipe import train as train_run

if TYPE_CHECKING:
    from ser.api.model import Model


@dataclass(frozen=True)
class Run:
    """A trained run: its `folder` (``<out>/<name>``, holding run.json, the checkpoints
    and predictions.csv) and its `record` (run.json read: `ser.runs.record.RunRecord`)."""

    folder: Path
    record: RunRecord

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def summary(self) -> dict[str, Any]:
        """What `ser train --json` prints: each head's scores over seeds and per fold."""
        return json_summary(self.record)

    def __repr__(self) -> str:
        """Its name, folder and scores over seeds: the record it holds is kilobytes."""
        scores = {
            k: round(v, 2) if isinstance(v, float) else v
            for k, v in head_summary(self.record).items()
        }
        return f"Run({self.name!r}, folder={str(self.folder)!r}, scores={scores})"

    def load(self, **options: Any) -> Model:
        """The run as a model to predict with (`ser.load`'s options)."""
        from ser.api.model import load

        return load(self.folder, **options)


def train(progress: Progress | bool | None = None, **options: Any) -> Run:
    """Train (or resume) the run `ser train` would with these options, given by their
    `ser train` names with underscores (``store``, ``features``, ``fusion``, ``epochs``,
    ``batch_size``, ...), as values or as the command line's text (``epochs=2`` or
    ``"2"``, ``features="hubert+mpnet"``). `progress=True` shows on stderr what `ser
    train` shows (its notes, a live bar a fold on a terminal, else epoch lines, each
    fold's scores); a `ser.track.progress.Progress` hears each note and epoch itself; by
    default nothing is printed. `store` may be an
    opened `Store`. `ConfigError` for an option that is unknown or that does not go with
    the others, as `ser train` refuses it, naming the arguments as given here
    (``batch_size``, ``overwrite=True``), not as flags."""
    if not isinstance(progress, Progress | bool | None):
        raise TypeError(
            f"progress must be True, False or a ser.track.progress.Progress, got {progress!r}"
        )
    for key in ("store", "test_store"):  # an opened store stands for its path
        if isinstance(options.get(key), Store):
            options[key] = str(options[key].path)
    flags = {name: option.kind is bool for name, option in train_options().items()}
    with python_named(flags):
        config = train_config(options)
        with said_as_ser_errors("the run's folder"), heard(progress) as hooks:
            record = train_run(config, hooks)
    folder = Path(config.out) / record.name
    return Run(folder, record)


@contextlib.contextmanager
def heard(progress: Progress | bool | None) -> Iterator[Progress | None]:
    """What the trainer tells: for True, `ser train`'s console progress on stderr, with
    its heartbeat (a line a minute through long epochs); else `progress` itself (None,
    False: nothing)."""
    if progress is not True:
        yield progress if isinstance(progress, Progress) else None
        return
    console = log_console()
    terminal = on_terminal(console)
    shown = ConsoleProgress(console, live=terminal, plain=not terminal)
    with shown.bar:
        yield Heartbeat(shown)


@contextlib.contextmanager
def said_as_ser_errors(what: str) -> Iterator[None]:
    """The block's full disk or unusable path raised as the `SerError` that `ser`'s
    command line says in one line (`DiskFullError`, `PathError`), other errors as they are."""
    try:
        yield
    except OSError as error:
        said = DiskFullError.of(error, error.filename, what) or PathError.of(error)
        if said is None:
            raise
        raise said from error
