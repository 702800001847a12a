"""`ser train`'s options as one table derived from `TrainConfig`'s declaration and the
registered families' configs (never written out), and `train_config`, the library call
that turns option values into a `TrainConfig`: what `ser train`, the Python API and every
sweep cell call.

>>> config = train_config({"store": "f.zarr", "features": "hubert+mpnet", "queries": "10"})
>>> config.features, type(config.model).__name__, config.model.queries, config.val
(('hubert', 'mpnet'), 'MsmserConfig', 10, 'next-group')
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ser.errors import ConfigError
from ser.finetune.tuning import parse_all
from ser.models import FAMILIES, Family, ModelConfig, TrainDefaults
from ser.models.config import field_defaults
from ser.models.registry import fusions
from ser.runtime.threads import parse_threads
from ser.train import options
from ser.train.features import parse_feature_list

RUN, MODEL = "run", "model"  # sections; a model option of one family has its family's name
FLAGS = {"true": True, "1": True, "yes": True, "on": True}
FLAGS |= {"false": False, "0": False, "no": False, "off": False}
# A field's bounds (`ser.models.config.option`'s metadata): (fails, says) per kind.
RANGES = {
    "least": (lambda v, b: v < b, "at least"),
    "above": (lambda v, b: v <= b, "above"),
    "below": (lambda v, b: v >= b, "below"),
}
#: What an option's value is: bool, int, float, str, tuple (of ints), "features" or "threads".
Kind = type | str
WHAT: dict[Kind, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a text",
    tuple: "integers joined by commas",
    "features": "feature sets joined by '+'",
    "finetune": "SET:top=K[,lora=R,...]",
}


@dataclass(frozen=True)
class Option:
    """One `ser train` option."""

    name: str
    # Kind's value; Any as callers look it up in tables keyed by type alone (ser train's click
    # metavars)
    kind: Any
    help: str
    default: object = None
    choices: tuple[object, ...] = ()
    section: str = RUN  # RUN, MODEL (an option of several families) or a family's name
    defaults: Mapping[str, object] = field(default_factory=dict)  # family -> its own default
    required: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)  # metavar, envvar, bounds

    def parse(self, value: object) -> object:
        """`value` (a string, a TOML value or a typed one) typed; ConfigError if it is not."""
        try:
            typed = None if value is None else _parse(self.kind, value)
        except ConfigError:  # a kind's own parser's words (a ValueError too): kept
            raise
        except (TypeError, ValueError, KeyError, OverflowError):  # inf is no integer
            raise ConfigError(f"{value!r} is not {WHAT[self.kind]}") from None
        typed = self.meta.get("aliases", {}).get(typed, typed)
        if typed is not None and self.choices and typed not in self.choices:
            shown = ", ".join(str(c) for c in self.choices if c is not None)
            raise ConfigError(f"{value!r} is not one of {shown}")
        if isinstance(typed, int | float) and not isinstance(typed, bool):
            _check_range(typed, self.meta)
        return typed


def train_options() -> dict[str, Option]:
    """The table (module docstring), from the registry as it is now."""
    config = options.TrainConfig  # looked up when called: a test may declare another
    hints, table = typing.get_type_hints(config), {}
    paper = {f.name for f in dataclasses.fields(TrainDefaults)}  # a family's own default
    for f in dataclasses.fields(config):
        if f.name == "model":
            table.update(model_options())
            continue
        own = {n: getattr(fam.train, f.name) for n, fam in FAMILIES.items() if f.name in paper}
        table[f.name] = _option(f, hints[f.name], RUN, own, f.default is dataclasses.MISSING)
    return table


def model_options() -> dict[str, Option]:
    """`fusion`, then the families' config fields in registry order."""
    which = "; ".join(f"{'|'.join(f.config.FUSIONS)}: {f.name}" for f in FAMILIES.values())
    fusion = Option("fusion", str, f"Picks the model family ({which}).", "mit", fusions(), MODEL)
    table, owners = {"fusion": fusion}, dict[str, list[Family]]()
    first = dict[str, dataclasses.Field[Any]]()  # each field as its first family declares it
    for family in FAMILIES.values():
        for f in dataclasses.fields(family.config):
            owners.setdefault(f.name, []).append(family)
            first.setdefault(f.name, f)
    run = {f.name for f in dataclasses.fields(options.TrainConfig)}
    for name, families in owners.items():
        if name in run:  # `ser train --NAME` would set the run's, never the family's
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"the model family {families[0].name!r} declares an option {name!r}, which "
                f"is ser train's own {flag}: rename the family's option"
            )
    hints = {fam.config: typing.get_type_hints(fam.config) for fam in FAMILIES.values()}
    defaults = {fam.config: field_defaults(fam.config) for fam in FAMILIES.values()}
    for name, families in list(owners.items())[1:]:  # after fusion, every config's first
        own = {family.name: defaults[family.config][name] for family in families}
        section = MODEL if len(families) > 1 else families[0].name
        option = _option(first[name], hints[families[0].config][name], section, own)
        table[name] = dataclasses.replace(option, default=None)
    return table


def train_config(values: Mapping[str, object]) -> options.TrainConfig:
    """A `TrainConfig` from option values (typed, or strings as a command line gives
    them; None or left out: the default); ConfigError naming a bad one."""
    table = train_options()
    typed: dict[str, Any] = {}  # each option's own type: TrainConfig's fields check them
    for name, value in values.items():
        if name not in table:
            raise ConfigError(f"{name!r} is not a ser train option")
        try:
            typed[name] = table[name].parse(value)
        except ConfigError as e:  # a --finetune message begins with the value it names
            joint = " " if table[name].kind == "finetune" else ": "
            raise ConfigError(f"--{name.replace('_', '-')}{joint}{e}") from None
    model = {k: typed.get(k, o.default) for k, o in table.items() if o.section != RUN}
    run = {k: v for k, v in typed.items() if table[k].section == RUN and v is not None}
    for name in (k for k, o in table.items() if o.required and k not in run):
        raise ConfigError(f"--{name} is required")
    run["features"] = parse_feature_list(run["features"])
    return options.TrainConfig(model=ModelConfig(**model), **run)


def _option(
    f: dataclasses.Field[Any],
    hint: object,
    section: str,
    own: Mapping[str, object],
    required: bool = False,
) -> Option:
    meta = f.metadata
    if "kind" not in meta and typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [h for h in typing.get_args(hint) if h is not type(None)]  # X | None: X
    # tuple[int, ...]: tuple; a type hint, or the field's own word ("features", "threads")
    kind = cast(Kind, meta.get("kind") or typing.get_origin(hint) or hint)
    help, choices = meta.get("help", ""), meta.get("choices", ())
    return Option(
        f.name,
        kind,
        help() if callable(help) else help,
        None if required else f.default,
        tuple(choices() if callable(choices) else choices),
        section,
        own,
        required,
        {k: meta[k] for k in ("metavar", "envvar", "aliases", *RANGES) if k in meta},
    )


def _parse(kind: Kind, value: object) -> object:
    if kind == "threads":
        return parse_threads(cast("str | int | None", value))  # else its own error
    if kind is tuple:  # of ints: "32,64" or a list
        items = value.split(",") if isinstance(value, str) else cast("Iterable[object]", value)
        return tuple(_parse(int, v) for v in items)
    if kind is bool:
        return value if isinstance(value, bool) else FLAGS[str(value).lower()]
    if isinstance(value, bool):  # true is no number and no name
        raise TypeError(value)
    if kind == "finetune":  # one value or several (a repeated option, a TOML list)
        texts = [value] if isinstance(value, str) else cast("Iterable[str]", value)
        return tuple(t.spelled for t in parse_all(list(texts)))
    if kind in (str, "features"):
        return "+".join(value) if isinstance(value, tuple) else str(value)  # TOML's 4: "4"
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)  # 2.7 epochs is no count: never truncated to 2
    number = cast("Callable[[object], float]", kind)(value)  # int or float
    if kind is float and not math.isfinite(number):  # NaN passes every range check
        raise ValueError(value)
    return number


def _check_range(value: float, meta: Mapping[str, Any]) -> None:
    """`value` within the option's bounds (`RANGES`), else `ConfigError`."""
    for key, (fails, says) in RANGES.items():
        if key in meta and fails(value, meta[key]):
            raise ConfigError(f"must be {says} {meta[key]}, got {value}")
