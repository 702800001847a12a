"""The `ser` command line: a thin click group over the library.

Each command family lives in `ser/commands/<family>.py`; this module only wires them up
and turns `SerError` into a one-line message with its exit code.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ser import __version__
from ser.errors import SerError


class _Group(click.Group):
    """A group that reports user errors (SerError) without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SerError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="ser")
def main() -> None:
    """Multimodal speech emotion recognition: cached features, fast fusion training."""


def _register() -> None:
    # Imported here so that `ser --help` stays cheap and a broken optional family
    # shows up as a clear import error of that family only.
    from ser.commands import corpus, extract, store, train

    for module in (corpus, extract, store, train):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
