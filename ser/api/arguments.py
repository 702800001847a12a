"""The Python API's arguments checked where they enter, as Python's own calls check
theirs: a wrong type is a `TypeError`, a wrong value a `ConfigError` (a `ValueError`),
each naming the argument, what it got and what it takes; the forms whose meaning is plain
are taken (`features=["a", "b"]` for "a+b", a whole float for a count, any iterable of
ids, read once)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Set

from ser.errors import ConfigError, SerError


def feature_names(value: object, name: str = "features") -> str:
    """`value` as `--features` spells it: "a+b" from "a+b", ["a", "b"] or ("a", "b")."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return "+".join(value)
    raise TypeError(
        f"{name} takes feature set names, as a text ('logmel80+tiny-mpnet') or a list of "
        f"texts; got {value!r}"
    )


def count(value: object, name: str) -> int:
    """`value` as a whole number: an int, or a float that is whole (2.0, never 2.7)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} takes an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{name} takes an integer, got {value!r}")
    return int(value)


def utterance_ids(ids: object, name: str = "ids") -> list[str] | None:
    """Any iterable of utterance ids, read once (a generator too), in its order; a set,
    which has none, in sorted order; None: every utterance."""
    if ids is None:
        return None
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise TypeError(f"{name} takes a list (or any iterable) of utterance ids, got {ids!r}")
    listed = sorted(ids, key=str) if isinstance(ids, Set) else list(ids)
    wrong = next((i for i in listed if not isinstance(i, str)), None)
    if wrong is not None:
        raise TypeError(f"{name} takes utterance ids (texts), got {wrong!r} among them")
    return listed


#: The flags of `ser train` that `folds` and `FeatureDataset` take as arguments.
DATA_FLAGS = dict.fromkeys(
    ("features", "classes", "protocol", "val", "seed", "memory_budget"), False
)
# A value runs to a space, ";", ")" or a comma a space follows (a list's commas are its own).
_FLAG = re.compile(r"--(no-)?([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?:=((?:[^\s,;)]|,(?=\S))+))?")
_SPAN = re.compile(r"(`[^`]*`)")
_NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?")


def python_spelled(
    message: str, arguments: Mapping[str, bool], renamed: Mapping[str, str] | None = None
) -> str:
    """`message`, written as `ser`'s command line says it, with each flag of an argument
    in `arguments` (its name -> whether it is true or false) spelled as Python passes
    it: ``--batch-size`` as ``batch_size``, ``--overwrite`` as ``overwrite=True``,
    ``--no-stack`` as ``stack=False``, ``--checkpoint=held-out`` as
    ``checkpoint='held-out'``; `renamed`: flags whose argument has another name
    (``--text`` as ``transcripts``). A command quoted whole (`` `ser store verify
    --quick f.zarr` ``) is a command to run, and keeps its flags."""
    renamed = renamed or {}

    def spelled(flag: re.Match[str]) -> str:
        negated, name = flag[1], flag[2].replace("-", "_")
        if name not in arguments or (negated and not arguments[name]):
            return flag[0]
        argument = renamed.get(name, name)
        if flag[3] is not None:  # `--checkpoint=held-out`: the value as Python gives it
            value = flag[3]
            return f"{argument}={value if _NUMBER.fullmatch(value) else repr(value)}"
        return f"{argument}={not negated}" if arguments[name] else argument

    parts = _SPAN.split(message)
    return "".join(p if " " in p and p.startswith("`") else _FLAG.sub(spelled, p) for p in parts)


@contextlib.contextmanager
def python_named(
    arguments: Mapping[str, bool], renamed: Mapping[str, str] | None = None
) -> Iterator[None]:
    """The block's `SerError`s said with `arguments`' flags spelled as Python passes them
    (`python_spelled`): a refusal shared with the command line names the argument the
    caller gave, not a flag they never typed."""
    try:
        yield
    except SerError as error:
        if error.args and isinstance(error.args[0], str):
            said = python_spelled(error.args[0], arguments, renamed)
            error.args = (said, *error.args[1:])
        raise
