"""The `ser` command line: a thin click group over the library.

Each command family lives in `ser/commands/<family>.py`; this module only wires them up
and turns `SerError` into a one-line message with its exit code.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from ser import __version__
from ser.errors import DiskFullError, PathError, SerError
from ser.runtime.plugins import load_plugins
from ser.runtime.threads import brief_waits

# Before any command imports torch, which loads OpenMP and reads this once: waiting
# threads spin only briefly, then sleep, so a busy neighbour process no longer stalls
# every operator's barrier (ser/runtime/threads.py). Dask workers inherit it with the environment.
brief_waits()

# Command name -> the family module that defines it. Families are imported only when one
# of their commands runs, so `ser store info` never pays for torch and a finished
# `ser extract` can say "nothing to do" quickly.
_LAZY: dict[str, str] = {
    "corpus": "corpus",
    "demo-corpus": "corpus",
    "extract": "extract",
    "store": "store",
    "train": "train",
    "report": "train",
    "predict": "predict",
    "sweep": "sweep",
    "claims": "claims",
    "export": "export",
}


class _Group(click.Group):
    """Lazily loaded commands; user errors (SerError), a full disk and a path that cannot
    be written (no permission, a file on the way) reported without a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_LAZY)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        family = _LAZY.get(cmd_name)
        if family is None:
            return None
        try:  # before a command's options are derived from the registries
            load_plugins()
        except SerError as err:  # here also for `ser --help`, which lists every command
            _fail(err)
        module = importlib.import_module(f"ser.commands.{family}")
        return next(c for c in module.COMMANDS if c.name == cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SerError as err:
            _fail(err)
        except OSError as err:  # a full disk no write site named (they say which file)
            # Commands check their outputs before any work (ser/commands/outputs.py); a
            # path met later (a run's folder, a temp file) comes here, named by the system.
            said = DiskFullError.of(err, err.filename, "the command's output") or PathError.of(err)
            if said is None:
                raise
            _fail(said)


def _fail(err: SerError) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    sys.exit(err.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ser")
def main() -> None:
    """Multimodal speech emotion recognition: cached features, fast fusion training."""


if __name__ == "__main__":
    main()
