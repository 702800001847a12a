"""The heads a `--target` can name beside the category and the attributes (which
`ser.heads.targets.Targets` holds itself): a head class per name, registered with one
line (`register`). A head's class builds with no arguments; one that takes options
(`EmotionIntensitiesHead`'s `emotions_as`) names them in its class's `options`, each a
keyword parameter of its constructor and a field of `ser.heads.targets.Targets` of the
same name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ser import Registry
from ser.errors import ConfigError
from ser.heads.base import Head

HEADS: Registry[type[Head]] = Registry("head")
#: Make a head class nameable in `--target` by its `name` (the same class twice: no-op).
register = HEADS.add


def head_of(name: str, options: Mapping[str, Any] | None = None) -> Head:
    """The registered head `name`, built with those of `options` it takes (`options_of`)."""
    if name not in HEADS:
        raise ConfigError(f"no head named {name!r}: registered {', '.join(sorted(HEADS))}")
    given = options or {}
    return HEADS[name](**{k: given[k] for k in options_of(name) if k in given})


def options_of(name: str) -> tuple[str, ...]:
    """The options the registered head `name` takes (its class's `options`; none where
    it names none)."""
    return HEADS[name].options
