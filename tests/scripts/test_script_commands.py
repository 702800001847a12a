"""Every `ser` command in scripts/demo.sh and scripts/tour.sh still exists, with the
options and choices it is given there (for `ser train`, the config its options make). CI
runs the demo; the tour (14 minutes on 2 cores) does not fit beside the suite, so this
check keeps a renamed option or command from breaking it unseen. It reads the scripts
as text: nothing runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from ser.cli import main
from ser.errors import ConfigError
from ser.train.option_table import train_config

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
_ARRAY = re.compile(r"^(\w+)=\((.*?)\)", re.MULTILINE | re.DOTALL)
_CALL = re.compile(r'"\$SER(?:_AT)?" (.*)')


def _text(name: str) -> str:
    return (SCRIPTS / name).read_text().replace("\\\n", " ")


def _arrays() -> dict[str, list[str]]:
    """The scripts' bash arrays (`MIT=(...)`), as the words they expand to."""
    text = "\n".join(_text(n) for n in ("common.sh", "demo.sh", "tour.sh"))
    return {m[1]: shlex.split(m[2]) for m in _ARRAY.finditer(text)}


def _calls(name: str) -> list[list[str]]:
    """Each `ser` command line of script `name`, its arrays expanded, up to `||`, `>`, `|`."""
    arrays, calls = _arrays(), []
    for line in _text(name).splitlines():
        found = _CALL.search(line)
        if found is None:
            continue
        words: list[str] = []
        for word in shlex.split(re.split(r" (?:\|\||>|\|) ", found[1])[0]):
            array = re.fullmatch(r"\$\{(\w+)\[@\]\}", word)
            words.extend(arrays.get(array[1], []) if array else [word])
        calls.append(words)
    return calls


def _command(words: list[str]) -> tuple[click.Command, list[click.Parameter], list[str]]:
    """The (sub)command `words` name, its parameters and the words after its name."""
    command: click.Command = main
    with click.Context(main) as ctx:
        while isinstance(command, click.Group):
            found = command.get_command(ctx, words[0])
            assert found is not None, f"no command {words[0]!r}"
            command, words = found, words[1:]
        return command, command.get_params(ctx), words


def _check(words: list[str]) -> None:
    command, params, args = _command(words)
    options = {o: p for p in params for o in (*p.opts, *p.secondary_opts)}
    for i, word in enumerate(args):
        if not word.startswith("--"):
            continue
        name, _, value = word.partition("=")
        assert name in options, f"ser {command.name} takes no {name}"
        param = options[name]
        value = value or (args[i + 1] if i + 1 < len(args) else "")
        if isinstance(param.type, click.Choice) and "$" not in value:
            assert value in param.type.choices, f"ser {command.name} {name}: no choice {value!r}"
    if command.name == "train":  # its options are the config's fields, checked as it runs
        with command.make_context("train", list(args)) as ctx:
            train_config({k: v for k, v in ctx.params.items() if k != "as_json"})


@pytest.mark.parametrize("script", ["demo.sh", "tour.sh"])
def test_every_command_of_the_script_takes_the_options_it_is_given(script: str) -> None:
    calls = _calls(script)
    assert len(calls) >= (10 if script == "demo.sh" else 30)  # the parse found them
    for words in calls:
        _check(words)


def test_a_renamed_option_or_a_lost_choice_is_caught() -> None:
    with pytest.raises(AssertionError, match="takes no --fusion-kind"):
        _check(["train", "--fusion-kind", "mit"])
    with pytest.raises(ConfigError, match="mitt"):
        _check(["train", "--features", "a+b", "--fusion", "mitt"])
    with pytest.raises(AssertionError, match="no choice 'gold2'"):
        _check(["extract", "corpus", "--text-source", "gold2"])
    with pytest.raises(AssertionError, match="no command 'sumary'"):
        _check(["corpus", "sumary", "x"])
