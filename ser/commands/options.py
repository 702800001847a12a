"""Click parameter types and options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ser.corpus.labels import LABEL_SETS

#: The help every command with `--threads N` shares.
THREADS_HELP = (
    "torch CPU threads, chosen once from stable facts (affinity, cgroup quota, workers; "
    "see ser/runtime/threads.py) so the same command gives the same numbers; recorded with how "
    "it was chosen."
)


def classes_option(help: str) -> Callable[[Any], Any]:
    """`--classes`: a label set's name, all codes by default."""
    choice = click.Choice(list(LABEL_SETS))
    return click.option("--classes", type=choice, default="all", show_default=True, help=help)
