"""Click parameter types and options shared by several commands."""

from __future__ import annotations

import math
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from ser.corpus.registry import KINDS, class_set_names, fallback

#: The help every command with `--threads N` shares.
THREADS_HELP = (
    "torch CPU threads, chosen once from stable facts (affinity, cgroup quota, workers; "
    "see ser/runtime/threads.py) so the same command gives the same numbers; recorded with how "
    "it was chosen."
)


class Registered(click.Choice):
    """A choice among the names `names()` gives when a command line is read, not when
    its module was: a corpus kind registered after import is one of them."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self.names = names
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        return tuple(self.names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """click sets it in `__init__`; `names` stands for it."""


def classes_option(help: str) -> Callable[[Any], Any]:
    """`--classes`: a label set's name, all codes by default."""
    choice = Registered(class_set_names)
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


class Described(click.Option):
    """An option whose help `describe()` writes when help is shown (from a registry)."""

    # `click.Option`'s own arguments, passed on as they are.
    def __init__(self, *args: Any, describe: Callable[[], str], **kwargs: Any) -> None:
        self.describe = describe
        super().__init__(*args, **kwargs)

    @property
    def help(self) -> str:
        return self.describe()

    @help.setter
    def help(self, value: str | None) -> None:
        """click sets it in `__init__`; `describe` stands for it."""


def _corpus_help() -> str:
    layouts = "; ".join(f"{kind.name}: {kind.layout}" for kind in KINDS.values())
    return (
        f"The corpus's layout [default: guessed from ROOT; {fallback().title} when no layout "
        f"matches]. {layouts}."
    )


def corpus_option() -> Callable[[Any], Any]:
    """`--corpus KIND`: the corpus's layout, guessed from the root when not given."""
    return click.option(
        "--corpus",
        cls=Described,
        describe=_corpus_help,
        type=Registered(lambda: KINDS),
        default=None,
    )


class FiniteFloat(click.ParamType):
    """A float that is a number: NaN and infinities refused as a bad value, in one line,
    where a float option would pass them on to fail deep inside (or silently)."""

    name = "float"

    def convert(
        self,
        value: Any,  # click's: the text given, or a default that is a number already
        param: click.Parameter | None,
        ctx: click.Context | None,
    ) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def interrupted(line: str) -> NoReturn:
    """Ctrl-C's end of a command: its one `line` on stderr, exit code 130. A zarr read the
    interrupt stopped leaves coroutines never awaited, which Python would name on stderr
    as the process ends; they say nothing to the user, so those warnings are dropped."""
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited")
    click.echo(line, err=True)
    sys.exit(130)


def command_line(ctx: click.Context, leave_out: tuple[str, ...] = ()) -> str:
    """The command being run as one shell line ("ser train --store f.zarr ..."): its
    arguments and the options given (on the command line or in the environment), less
    the options named in `leave_out`."""
    names, at = [], ctx
    while at.parent is not None:  # the root's own name may be "python -m ser.cli"
        names.append(at.info_name or "")
        at = at.parent
    words = ["ser", *reversed(names)]
    for param in ctx.command.get_params(ctx):
        name = param.name
        if name is None or name in leave_out or name not in ctx.params:
            continue
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        words += _words(param, ctx.params[name])
    return shlex.join(words)


def _words(param: click.Parameter, value: Any) -> list[str]:  # any option's value
    """`param` with `value` as a command line gives it."""
    values = value if param.multiple or param.nargs != 1 else (value,)
    if isinstance(param, click.Argument):
        return [str(v) for v in values]
    if isinstance(param, click.Option) and (param.is_flag or param.is_bool_flag):
        on = value if isinstance(value, bool) else bool(value)
        if on:
            return [param.opts[0]]
        return [param.secondary_opts[0]] if param.secondary_opts else []
    return [word for v in values for word in (param.opts[0], str(v))]
