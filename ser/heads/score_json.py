"""Reading a score's JSON object (a fold entry's ``metrics``, an attribute's scores):
each value of the type it must be, or a `ReportError` that names where and the key.

The score types themselves (`ser.heads.metrics.Metrics`,
`ser.heads.attribute_metrics.AttributeScores`) own their `to_json` and `from_json`; these
are the checks both read with.

>>> number({"ua": 70}, "ua", "metrics"), number({"ua": None}, "ua", "metrics", null=True)
(70.0, nan)
>>> number({"ua": "high"}, "ua", "metrics")
Traceback (most recent call last):
ser.errors.ReportError: metrics, 'ua' must be a number, got 'high'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ser import Json
from ser.errors import ReportError


def json_object(obj: object, where: str) -> dict[str, Json]:
    """`obj` if it is a JSON object; `ReportError` naming `where` if not."""
    if not isinstance(obj, dict):
        raise ReportError(f"{where}: must be a JSON object, got {type(obj).__name__}")
    return obj


def lacking(obj: Mapping[str, Json], keys: Iterable[str], where: str) -> None:
    """`ReportError` naming `where` and the `keys` that `obj` lacks, if any."""
    if missing := [k for k in keys if k not in obj]:
        raise ReportError(f"{where}: lacks {', '.join(missing)}")


def number(obj: Mapping[str, Json], key: str, where: str, null: bool = False) -> float:
    """``obj[key]`` as a float; with `null`, a JSON null reads as NaN (`math.nan` itself,
    so that two reads of one record compare equal)."""
    return to_float(obj[key], f"{where}, {key!r}", null)


def to_float(value: Json, where: str, null: bool = False) -> float:
    """`value` as a float (see `number`)."""
    if null and (value is None or (isinstance(value, float) and math.isnan(value))):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{where} must be a number, got {value!r}")
    return float(value)


def integer(value: Json, where: str) -> int:
    """`value` as an int; `ReportError` naming `where` for another type."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(f"{where} must be an integer, got {value!r}")
    return value


def unknown(obj: Mapping[str, Json], known: Iterable[str]) -> dict[str, Json]:
    """The keys of `obj` that are not `known`: a newer ser's, kept and written back."""
    names = set(known)
    return {k: v for k, v in obj.items() if k not in names}


def nan_to_null(value: float) -> float | None:
    """A score as JSON holds it: NaN (undefined) is null."""
    return None if math.isnan(value) else value
