"""`ser train`'s options as one table, and `train_config`, the library call that turns
their values into a `TrainConfig`: what `ser train` and every sweep cell call.

The table is derived, never written out: one `Option` per field of `TrainConfig` (but
`model`) and one per field of the registered families' configs (a name several families
share is one option). A model option's default is None, "the selected family's own",
except `fusion`, which selects the family. `ser train` makes its click options from the
table (`ser.commands.train`), the sweep types and checks its cells by it.

>>> config = train_config({"store": "f.zarr", "features": "hubert+mpnet", "queries": "10"})
>>> config.features, type(config.model).__name__, config.model.queries, config.val
(('hubert', 'mpnet'), 'MsmserConfig', 10, 'session')
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ser.errors import ConfigError
from ser.runtime.threads import parse_threads
from ser.train.features import parse_feature_list
from ser.train.models import FAMILIES, ModelConfig, TrainDefaults
from ser.train.models.registry import fusions
from ser.train.plan import TrainConfig

RUN, MODEL = "run", "model"  # sections; a model option of one family has its family's name
DEFAULT_FUSION = "mit"
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class Option:
    """One `ser train` option: `parse` types a value as the command line, a sweep's
    ``--fix`` or a TOML file gives it (or an already typed one)."""

    name: str
    kind: str  # "flag" | "int" | "float" | "str" | "ints" | "features" | "threads"
    help: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    section: str = RUN
    # Family -> its default, where families differ: model options, paper training settings.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    required: bool = False
    metavar: str | None = None
    envvar: str | None = None

    def parse(self, value: Any) -> Any:
        """`value` typed; ConfigError saying what the option takes."""
        if value is None:
            return None
        try:
            typed = _PARSE[self.kind](value)
        except (TypeError, ValueError):
            raise ConfigError(f"{value!r} is not {_WHAT[self.kind]}") from None
        if self.choices and typed not in self.choices:
            shown = ", ".join(str(c) for c in self.choices if c is not None)
            raise ConfigError(f"{value!r} is not one of {shown}")
        return typed


def train_options() -> dict[str, Option]:
    """The table (module docstring), from the registry as it is now."""
    table: dict[str, Option] = {}
    hints = typing.get_type_hints(TrainConfig)
    trained = {f.name for f in dataclasses.fields(TrainDefaults)}
    for f in dataclasses.fields(TrainConfig):
        if f.name == "model":
            table.update(model_options())
            continue
        paper = {n: getattr(fam.train, f.name) for n, fam in FAMILIES.items() if f.name in trained}
        option = _option(f, hints[f.name], RUN, paper)
        table[f.name] = dataclasses.replace(option, required=f.default is dataclasses.MISSING)
    return table


def model_options() -> dict[str, Option]:
    """`fusion`, then every family's config fields in registry order."""
    by_family = "; ".join(f"{'|'.join(f.config.FUSIONS)}: {f.name}" for f in FAMILIES.values())
    fusion = Option("fusion", "str", f"Picks the model family ({by_family}).", DEFAULT_FUSION,
                    fusions(), MODEL)  # fmt: skip
    shared: dict[str, dict[str, tuple[dataclasses.Field[Any], Any]]] = {}
    for family in FAMILIES.values():
        hints = typing.get_type_hints(family.config)
        for f in dataclasses.fields(family.config):
            if f.name != "fusion":
                shared.setdefault(f.name, {})[family.name] = (f, hints[f.name])
    table = {"fusion": fusion}
    for name, per_family in shared.items():
        f, hint = next(iter(per_family.values()))
        section = MODEL if len(per_family) > 1 else next(iter(per_family))
        defaults = {family: g.default for family, (g, _) in per_family.items()}
        table[name] = dataclasses.replace(_option(f, hint, section, defaults), default=None)
    return table


def train_config(values: Mapping[str, Any]) -> TrainConfig:
    """A `TrainConfig` from option values (typed, or strings as a command line gives
    them; None or left out: the default); ConfigError naming a bad one."""
    table = train_options()
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not a ser train option")
    typed = {}
    for name, value in values.items():
        try:
            typed[name] = table[name].parse(value)
        except ConfigError as e:
            raise ConfigError(f"--{name.replace('_', '-')}: {e}") from None
    model = {k: typed.get(k, o.default) for k, o in table.items() if o.section != RUN}
    run = {k: v for k, v in typed.items() if table[k].section == RUN and v is not None}
    for name in (k for k, o in table.items() if o.required and k not in run):
        raise ConfigError(f"--{name} is required")
    run["features"] = parse_feature_list(run["features"])
    return TrainConfig(model=ModelConfig(**model), **run)


def _option(f: dataclasses.Field[Any], hint: Any, section: str, defaults: dict[str, Any]) -> Option:
    meta = f.metadata
    kind = meta.get("kind") or _kind(hint)
    default = None if f.default is dataclasses.MISSING else f.default
    choices = tuple(meta.get("choices", ()))
    return Option(f.name, kind, meta.get("help", ""), default, choices, section, defaults,
                  metavar=meta.get("metavar"), envvar=meta.get("envvar"))  # fmt: skip


def _kind(hint: Any) -> str:
    """The kind of a field's type: `bool` flag, int, float, str or a tuple of ints."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [h for h in typing.get_args(hint) if h is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "ints"
    return {bool: "flag", int: "int", float: "float", str: "str"}[hint]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in TRUE + FALSE:
        return str(value).lower() in TRUE
    raise ValueError(value)


def _number(kind: type) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise TypeError(value)
        return kind(value)

    return parse


def _ints(value: Any) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(_number(int)(v) for v in items)


def _text(value: Any) -> str:
    if isinstance(value, tuple):  # a parsed feature list
        return "+".join(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(value)
    return str(value)  # a TOML number, e.g. classes = 4


_PARSE: dict[str, Callable[[Any], Any]] = {
    "flag": _flag, "int": _number(int), "float": _number(float), "str": _text,
    "ints": _ints, "features": _text, "threads": parse_threads,
}  # fmt: skip
_WHAT = {
    "flag": "true or false", "int": "an integer", "float": "a number", "str": "a text",
    "ints": "integers separated by commas", "features": "feature sets joined by '+'",
    "threads": "a thread count or 'follow'",
}  # fmt: skip
