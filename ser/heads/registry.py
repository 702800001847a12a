"""The heads a `--target` can name beside the category and the attributes (which
`ser.heads.targets.Targets` holds itself): a head class per name, registered with one
line (`register`). A head's class builds with no arguments."""

from __future__ import annotations

from ser.errors import ConfigError
from ser.heads.base import Head

HEADS: dict[str, type[Head]] = {}


def register(head: type[Head]) -> type[Head]:
    """Make `head` nameable in `--target` by its `name`; a name taken twice is an error."""
    known = HEADS.get(head.name)
    if known is not None and known is not head:
        raise ConfigError(f"a head named {head.name!r} is registered already ({known.__name__})")
    HEADS[head.name] = head
    return head


def head_of(name: str) -> Head:
    """The registered head `name`, built."""
    if name not in HEADS:
        raise ConfigError(f"no head named {name!r}: registered {', '.join(sorted(HEADS))}")
    return HEADS[name]()
