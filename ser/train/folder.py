"""A run's folder while it trains: one process at a time holds its lock (`RUN_LOCK`, as
an extraction holds its store's), from before its record is read until it ends; another
is refused at once (`RunLocked`, naming the holder), and readers of a finished run (`ser
export`, `ser predict --run`) wait for it. What each run's folder keeps (`kept`) is said
on Ctrl-C (`ser.errors.Interrupted`), in the one line that says how to resume."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from ser.cache.lock import refuse_while_written, try_lock, who, writer
from ser.errors import ConfigError, RunLocked, SerError, StoreError, StoreLocked
from ser.runs.record import RECORD
from ser.train.checkpoint import fold_key, has_checkpoint
from ser.train.options import ResolvedConfig, TrainConfig
from ser.train.plan import Prepared, run_dir
from ser.train.record import RUN_LOCK, read_record


@contextlib.contextmanager
def locked(configs: Sequence[ResolvedConfig]) -> Iterator[None]:
    """Each run's folder locked for the block; `RunLocked` at once if another process
    holds one."""
    with contextlib.ExitStack() as held:
        for folder in dict.fromkeys(run_dir(config) for config in configs):
            if folder.exists() and not folder.is_dir():
                raise ConfigError(
                    f"{folder}: a file where the run's folder goes; choose another --name or --out"
                )
            holder = held.enter_context(try_lock(folder / RUN_LOCK))
            if holder is not None:
                raise RunLocked(
                    f"{folder} is being trained by {who(holder)}: one process "
                    "trains a run at a time; wait for it to end (or stop it), then run this "
                    "command again: it resumes from what that one finished; or give another "
                    "--name"
                )
        yield


@contextlib.contextmanager
def unless_written(configs: Sequence[TrainConfig]) -> Iterator[None]:
    """A store's fault found while another process writes that store (an extraction, a
    repair) is its work under way, not damage: `StoreLocked` naming that process instead."""
    try:
        yield
    except StoreLocked:
        raise
    except StoreError:
        for store in dict.fromkeys(s for c in configs for s in (c.store, c.test_store) if s):
            refuse_while_written(Path(store).absolute())
        raise


def refuse_while_trained(run_dir: Path) -> None:
    """`RunLocked` while another process trains the run in `run_dir`: its checkpoints and
    run.json are not whole until it ends (what `ser export` and `ser predict --run` read)."""
    holder = writer(Path(run_dir) / RUN_LOCK)
    if holder is not None:
        raise RunLocked(
            f"{run_dir} is being trained by {who(holder)}; wait for it to finish, then run "
            "this again"
        )


def kept(run: Prepared) -> str:
    """What an interrupted `run` keeps in its folder, said: its finished (seed, fold)s of
    those planned, in the record read back (a resume reads that one and skips them)."""
    folder = run_dir(run.config)
    path = folder / RECORD
    kept = 0
    if path.exists():
        with contextlib.suppress(SerError, OSError):
            folds = read_record(path).folds
            kept = sum(has_checkpoint(folder, fold_key(*e.key)) for e in folds)
    return f"{kept} of {run.planned} (seed, fold) runs kept in {folder}"
