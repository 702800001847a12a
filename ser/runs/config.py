"""A run's config as its record keeps it (`RunRecord.config`, written by
`ser.train.record.config_record` from the declaration of `ser train`'s options): a
read-only mapping of the JSON object run.json holds, its keys in their order, the model
family's options flattened beside its `family`. An option that was off is null, and
records written before every option was recorded lack it: `config.get(key)` reads both
as None. A reader that needs a typed value reads it where it uses it, through `typed`
(or `text`, `texts`), which names the file and the key of a value of another type
(`ReportError`).

>>> c = RunConfig.from_json({"features": "is13", "family": "unimodal", "d_model": 64,
...                          "epochs": 3, "seeds": [0, 1], "finetune": None})
>>> c["features"], c.typed("epochs", int), c.typed("seeds", tuple[int, ...]), c.texts("finetune")
('is13', 3, (0, 1), ())
>>> list(c)
['features', 'family', 'd_model', 'epochs', 'seeds', 'finetune']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from ser.errors import ReportError
from ser.runs.codec import Json, read_value


# The values are Any: looked up by name, a key holds whichever JSON value its option
# gives it (a count, a flag, a list, an object).
class RunConfig(Mapping[str, Any]):
    """The config's JSON object, read only, in its order; `where` names it in errors
    (its file and key)."""

    __slots__ = ("_values", "where")

    def __init__(self, values: Mapping[str, Json] | None = None, where: str = "config") -> None:
        self._values = MappingProxyType(dict(values or {}))
        self.where = where

    @classmethod
    def from_json(cls, obj: object, where: str = "config") -> RunConfig:
        """The config in the JSON object `obj`; `ReportError` naming `where` for another
        JSON value."""
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: 'config' must be a JSON object")
        return cls(obj, where)

    def to_json(self) -> dict[str, Json]:
        return dict(self._values)

    def typed(self, key: str, kind: object) -> Any:
        """The value at `key` read as the type `kind` (`ser.runs.codec.read_value`: a
        tuple from a list, ...); None where it is null or absent; `ReportError` naming
        the file and the key for a value of another type."""
        value = self._values.get(key)
        return None if value is None else read_value(kind, value, f"{self.where}, {key!r}")

    def text(self, key: str) -> str | None:
        """The text at `key` (None: null or absent)."""
        return self.typed(key, str)

    def texts(self, key: str) -> tuple[str, ...]:
        """The list of texts at `key` (none: null or absent), e.g. `finetune`."""
        return self.typed(key, tuple[str, ...]) or ()

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # a mapping of JSON values

    def __repr__(self) -> str:
        return f"RunConfig({dict(self._values)!r})"
