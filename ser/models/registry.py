"""The model families, one `Family` entry each (`register`), and the family a user's
options select: the one whose config takes the `fusion` given with the options its
`FUSIONS` ask for ("concat" with --fusion-at is the fusion study's, without it MSMSER's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ser import Registry
from ser.errors import ConfigError
from ser.models.base import SerModel
from ser.models.config import FamilyConfig, TrainDefaults, as_flag
from ser.runtime.cost import FamilyCost


@dataclass(frozen=True)
class Family:
    """A model family: its config class, its model (one member: `model(config, inputs,
    n_classes)`), its paper's training settings and what it costs to train (what
    `ser.runtime.execution` reads to share the machine; unmeasured unless stated) and
    `tiny`, the options of a small model of it that draws no random numbers (dropout 0):
    what the test suite trains every registered family with (`tiny_config`)."""

    name: str
    config: type[FamilyConfig]
    model: Callable[..., SerModel]
    train: TrainDefaults
    cost: FamilyCost = dataclasses.field(default_factory=FamilyCost)
    tiny: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def help(self) -> str:
        """Its heading in `ser train --help`: the first line of its config's docstring."""
        return (self.config.__doc__ or self.name).strip().splitlines()[0].rstrip(".")

    def tiny_config(self) -> FamilyConfig:
        """Its config at `tiny`'s options (a family stating none: its first fusion at its
        defaults, whose dropout makes two trainings of one member differ)."""
        return self.config(**{"fusion": next(iter(self.config.FUSIONS)), **self.tiny})


FAMILIES: Registry[Family] = Registry("model family")
_NONE = object()


def register(family: Family) -> Family:
    """Add a family (its options appear in `ser train` and the sweep); `ValueError` for
    a `--fusion` value another family already takes with the same options: `select`
    would choose that one, and the new family could never train."""
    for other in FAMILIES.values():
        for fusion, given in family.config.FUSIONS.items():
            taken = other.config.FUSIONS.get(fusion)
            if other.name != family.name and taken is not None and set(taken) == set(given):
                with_options = f" with {', '.join(given)}" if given else ""
                raise ValueError(
                    f"model family {family.name!r} takes --fusion {fusion}{with_options}, "
                    f"which the family {other.name!r} takes already: choose another value"
                )
    return FAMILIES.add(family)


def costs(names: Iterable[str]) -> dict[str, FamilyCost]:
    """Each registered family of `names` with its cost, as the execution policy takes them
    (ConfigError for a name not registered)."""
    wanted = sorted(set(names))
    unknown = [name for name in wanted if name not in FAMILIES]
    if unknown:
        raise ConfigError(f"unknown model family {unknown[0]!r}: not one of {', '.join(FAMILIES)}")
    return {name: FAMILIES[name].cost for name in wanted}


def fusions() -> tuple[str, ...]:
    """Every `--fusion` value, in registry order."""
    return tuple(dict.fromkeys(f for family in FAMILIES.values() for f in family.config.FUSIONS))


def select(options: Mapping[str, Any]) -> Family:
    """The family `options` select (module docstring); ConfigError for an unknown fusion."""
    fusion = str(options.get("fusion"))
    takes = [f for f in FAMILIES.values() if fusion in f.config.FUSIONS]
    if not takes:
        raise ConfigError(f"unknown fusion {options.get('fusion')!r}; choose {'|'.join(fusions())}")
    meets = [f for f in takes if all(options.get(o) for o in f.config.FUSIONS[fusion])]
    return max(meets or takes, key=lambda f: len(f.config.FUSIONS[fusion]))


def ModelConfig(**options: Any) -> FamilyConfig:  # the name its call sites know
    """The selected family's config (module docstring)."""
    given = {k: v for k, v in options.items() if v is not None}
    family = select(given)
    names = {f.name for f in dataclasses.fields(family.config)}
    config = family.config(**{k: v for k, v in given.items() if k in names})
    for name, value in given.items():
        # A property every config has (loss, eval_mask) may be given at its value.
        if name not in names and getattr(config, name, _NONE) != value:
            raise ConfigError(f"{as_flag(name, value)} does not apply to {config.where}")
    return config


def family_of(config: FamilyConfig) -> Family:
    for family in FAMILIES.values():
        if type(config) is family.config:
            return family
    raise ConfigError(f"{type(config).__name__} is not the config of a registered model family")


def config_record(config: FamilyConfig) -> dict[str, Any]:
    """The config as JSON-ready values (tuples as lists) with its family's name."""
    fields = dataclasses.asdict(config)
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
    return {"family": family_of(config).name, **plain}


def config_from_record(record: Mapping[str, Any]) -> FamilyConfig:
    """`config_record` read back; a record without a family name (written before each
    family had its own config) by the family its options select. Other keys are ignored."""
    name = record.get("family")
    family = select(record) if name is None else FAMILIES.get(str(name))
    if family is None:
        raise ConfigError(f"unknown model family {name!r}: not one of {', '.join(FAMILIES)}")
    names = {f.name for f in dataclasses.fields(family.config)}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names
    }
    return family.config(**values)
