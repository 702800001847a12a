"""`Predicted`: what a head says in `ser predict`'s outputs, with the defaults every
head has.

A prediction holds each head's outputs of one input (`Part`: [W] values, named as the
head names them), and its table, CSV, JSON and `--stream` lines are the heads' parts
side by side, in the run's head order; no writer asks which head it holds:

- `predict_columns` / `predict_cells`: its columns of the table and the CSV, and its
  cells of an input's row (empty for an input that failed); `predict_fails`: its cells
  say an input failed (the table's notes then give the error alone);
- `predict_run`: its keys of the JSON object; `predict_json`: its keys of an input's
  object there; `stream_json`: its keys of a `--stream` line; `cue`: its words in a
  segment's WebVTT cue (`--vtt`).

By default a head shows its `fields` (`ser.heads.base.Head.fields`): each plain value a
column of the table and the CSV, and all of them under the JSON's ``heads``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ser import Json


@dataclass(frozen=True)
class Part:
    """One head's predictions of one input: `values` [W] (float32, as the head reports
    them: `ser.heads.base.Head.predict`), the outputs `names`."""

    names: tuple[str, ...]
    values: np.ndarray

    def named(self) -> dict[str, float]:
        """Each output's value by name."""
        return {n: float(v) for n, v in zip(self.names, self.values, strict=True)}


@dataclass(frozen=True)
class Column:
    """A column of `ser predict`'s table (`right`: its cells right-justified) and CSV."""

    header: str
    right: bool = False


class Predicted:
    """`ser predict`'s side of `ser.heads.base.Head` (the module docstring)."""

    name: ClassVar[str]

    def fields(self, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        """Its part of a `ser predict` row of one item's predictions [W]."""
        return {self.name: {n: round(float(v), 4) for n, v in zip(names, pred, strict=True)}}

    def predict_columns(self, names: Sequence[str], as_csv: bool) -> list[Column]:
        """Its columns of the table (`as_csv`: of the CSV): each plain value of `fields`."""
        made = self.fields(np.zeros(len(names), np.float32), names)
        return [Column(k) for k, v in made.items() if not isinstance(v, Mapping)]

    def predict_cells(self, part: Part | None, names: Sequence[str], as_csv: bool) -> list[Any]:
        """Its cells of an input's row under `predict_columns` (`part`: None, the input
        failed): the table's text, the CSV's values."""
        columns = self.predict_columns(names, as_csv)
        if part is None:
            return [""] * len(columns)
        made = self.fields(part.values, names)
        return [made[c.header] if as_csv else str(made[c.header]) for c in columns]

    def predict_fails(self, names: Sequence[str]) -> bool:
        """Its table cells say that an input failed (none by default)."""
        return False

    def predict_run(self, names: Sequence[str]) -> dict[str, Json]:
        """Its keys of the JSON object: by default its name, in the list ``heads``."""
        return {"heads": [self.name]}

    def predict_json(self, part: Part | None, names: Sequence[str]) -> dict[str, Any]:
        """Its keys of an input's JSON object: by default its `fields` under ``heads``."""
        return {"heads": {} if part is None else self.fields(part.values, names)}

    def stream_json(self, part: Part | None, names: Sequence[str]) -> dict[str, Any]:
        """Its keys of a `--stream` line: by default its `fields` under ``heads``, none
        for a segment that failed."""
        return {} if part is None else self.predict_json(part, names)

    def cue(self, part: Part) -> list[str]:
        """Its words in a segment's WebVTT cue (none by default)."""
        return []


def joined(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The heads' keys of one JSON object together: lists under one key joined, objects
    merged (the further heads' ``heads``), in order."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, list):
                out[key] = [*out[key], *value]
            else:
                out[key] = {**out[key], **value}
    return out
