"""The record's parts to and from JSON by their fields' types, so that each part is
only its frozen dataclass: `decode` reads a JSON object into one (a key the class does
not know goes into its `extra`, written back), `encode` writes one back, leaving out
the fields that hold None but for those its `ALWAYS` names (a key older writers did not
write stays unwritten).

Field types it reads: int, float, str, bool, another such dataclass, ``X | None``,
``tuple[X, ...]``, ``Mapping[str, X]`` and `Json` (any JSON value, as it is).

>>> from dataclasses import dataclass, field
>>> @dataclass(frozen=True, kw_only=True)
... class Part:
...     count: int
...     source: str | None = None
...     extra: Mapping[str, Json] = field(default_factory=dict)
>>> part = decode(Part, {"count": 2, "gone": True}, "threads")
>>> part, encode(part)
(Part(count=2, source=None, extra={'gone': True}), {'count': 2, 'gone': True})
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, Union

from ser import Json as Json  # the alias lives below heads; records name it from here
from ser.errors import ReportError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
EXTRA = "extra"


def decode(cls: type[T], obj: object, where: str) -> T:
    """The dataclass `cls` a JSON object `obj` holds; `ReportError` naming `where` and
    the key for a value of another type, or a missing key."""
    if not isinstance(obj, dict):
        raise ReportError(f"{where}: must be a JSON object, got {type(obj).__name__}")
    hints = _hints(typing.cast(type, cls))  # a type[T] is hashable, which mypy misses
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {
        name: read_value(hints[name], obj[name], f"{where}, {name!r}")
        for name in known - {EXTRA}
        if name in obj
    }
    if lacking := [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in values and f.name != EXTRA and _required(f)
    ]:
        raise ReportError(f"{where}: lacks {', '.join(lacking)}")
    if EXTRA in known:
        values[EXTRA] = {k: v for k, v in obj.items() if k not in known or k == EXTRA}
    return cls(**values)


def encode(part: object) -> Json:
    """`part` (a dataclass decoded or made, a mapping, a tuple, a value) as JSON."""
    writes = getattr(part, "to_json", None)
    if callable(writes):  # a part that writes itself
        return typing.cast(Json, writes())
    if dataclasses.is_dataclass(part) and not isinstance(part, type):
        return encode_fields(part)
    if isinstance(part, Mapping):
        return {str(k): encode(v) for k, v in part.items()}
    if isinstance(part, tuple | list):
        return [encode(v) for v in part]
    return typing.cast(Json, part)


def encode_fields(part: DataclassInstance) -> dict[str, Json]:
    """The dataclass `part`'s fields as a JSON object, by the rules of `encode` (for a
    part whose `to_json` writes its fields so)."""
    always: frozenset[str] = getattr(part, "ALWAYS", frozenset())
    out: dict[str, Json] = {}
    for f in dataclasses.fields(part):
        value = getattr(part, f.name)
        if f.name == EXTRA:
            out.update({k: encode(v) for k, v in value.items()})
        elif value is not None or f.name in always:
            out[f.name] = encode(value)
    return out


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, globalns=_namespace(cls))


def _namespace(cls: type) -> dict[str, Any]:
    import sys

    return {**vars(sys.modules[cls.__module__]), "Json": Json, "Mapping": Mapping}


# Any: the value read is of the type the type form `kind` names, which a signature
# cannot say of a form known only when the program runs.
def read_value(kind: object, value: object, where: str) -> Any:
    """`value` read as the type `kind` (see the module doc); `ReportError` naming
    `where` for another."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Json or kind is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        for kind in rest[:-1]:  # the first type that reads it
            try:
                return read_value(kind, value, where)
            except ReportError:
                continue
        return read_value(rest[-1], value, where)
    if origin is tuple:
        return tuple(read_value(args[0], v, where) for v in _list(value, where))
    if origin in (Mapping, dict) or kind in (Mapping, dict):
        if not isinstance(value, dict):
            raise ReportError(f"{where} must be a JSON object")
        inner = args[1] if args else Any
        return {str(k): read_value(inner, v, f"{where}[{k!r}]") for k, v in value.items()}
    reads = getattr(kind, "from_json", None)
    if callable(reads):  # a part that reads itself
        return reads(value, where)
    if dataclasses.is_dataclass(kind):
        return decode(kind, value, where)  # type: ignore[arg-type]
    return _scalar(kind, value, where)


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ReportError(f"{where} must be a JSON list")
    return value


def _scalar(kind: object, value: object, where: str) -> object:
    wanted = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
    }
    if kind not in ok:
        return value
    if not ok[kind]:
        raise ReportError(f"{where} must be {wanted[kind]}, got {value!r}")
    return float(value) if kind is float else value  # type: ignore[arg-type]
