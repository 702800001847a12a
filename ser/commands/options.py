"""Click parameter types and options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ser.corpus.labels import LABEL_SETS
from ser.errors import ConfigError
from ser.runtime.threads import FOLLOW, parse_threads


class ThreadsParam(click.ParamType):
    """`--threads N|follow`: a count of at least 1, or the opt-in to follow the load."""

    name = f"N|{FOLLOW}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return parse_threads(value)
        except ConfigError as error:
            self.fail(str(error).removeprefix("--threads "), param, ctx)


THREADS = ThreadsParam()
#: The help every command with `--threads N|follow` shares.
THREADS_HELP = (
    "torch CPU threads, chosen once from stable facts (affinity, cgroup quota, workers; "
    "see ser/runtime/threads.py) so the same command gives the same numbers; recorded with how "
    f"it was chosen. '{FOLLOW}': start from the cores idle now and move with the machine's "
    "load (faster beside other jobs, but results then depend on that load, and the record "
    "says so)."
)


def classes_option(help: str) -> Callable[[Any], Any]:
    """`--classes`: a label set's name, all codes by default."""
    choice = click.Choice(list(LABEL_SETS))
    return click.option("--classes", type=choice, default="all", show_default=True, help=help)
