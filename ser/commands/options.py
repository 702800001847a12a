"""Click parameter types and options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ser.corpus.registry import KINDS, class_set_names

#: The help every command with `--threads N` shares.
THREADS_HELP = (
    "torch CPU threads, chosen once from stable facts (affinity, cgroup quota, workers; "
    "see ser/runtime/threads.py) so the same command gives the same numbers; recorded with how "
    "it was chosen."
)


def classes_option(help: str) -> Callable[[Any], Any]:
    """`--classes`: a label set's name, all codes by default."""
    choice = click.Choice(list(class_set_names()))
    return click.option("--classes", type=choice, default="all", show_default=True, help=help)


def audio_root_option() -> Callable[[Any], Any]:
    """`--audio-root DIR`: where a corpus's relative wav paths resolve (EmoBox's)."""
    return click.option(
        "--audio-root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="--corpus emobox: the folder holding EmoBox's downloads/ (the JSONL's wav paths "
        "are relative to it) [default: the EmoBox checkout two folders above data/<name>]; "
        "for a track2 file, the folder its wav_filename paths start in [default: the "
        "file's folder].",
    )


def corpus_option() -> Callable[[Any], Any]:
    """`--corpus KIND`: the corpus's layout, guessed from the root when not given."""
    layouts = "; ".join(f"{kind.name}: {kind.layout}" for kind in KINDS.values())
    return click.option(
        "--corpus",
        type=click.Choice(list(KINDS)),
        default=None,
        help=f"The corpus's layout [default: guessed from ROOT; IEMOCAP when no layout "
        f"matches]. {layouts}.",
    )
