"""A fold entry's test scores and a record's pooled scores as run.json keeps them: the
category's (`CategoryScores`, what `ser.heads.metrics.Metrics.to_dict` writes) and the
attributes' (`AttributeScoresRecord`, what `AttributeMetrics.to_dict` writes).

They are the record's own types, not `Metrics` / `AttributeMetrics` themselves: a record
is written back key for key as its writer wrote it, so a key an older ser did not write
(`wf1`, `f1_seen`) stays unwritten here (None), where `Metrics.from_dict` computes it;
`to_metrics` gives the computing type. A key this version does not know stays in
`extra` and is written back.

>>> s = CategoryScores.from_json({"wa": 75.0, "ua": 75.0, "f1": 73.3, "n": 4,
...                               "per_class_recall": {"neu": 50.0, "hap": None},
...                               "confusion": [[1, 1], [0, 2]], "newer": 1}, "metrics")
>>> s.ua, s.per_class_recall, s.wf1, s.extra
(75.0, {'neu': 50.0, 'hap': None}, None, {'newer': 1})
>>> list(s.to_json())
['wa', 'ua', 'f1', 'per_class_recall', 'confusion', 'n', 'newer']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ser.errors import ReportError
from ser.heads.attribute_metrics import AttributeMetrics, AttributeScores
from ser.heads.metrics import Metrics
from ser.runs.codec import Json, decode, encode_fields


@dataclass(frozen=True, kw_only=True)
class CategoryScores:
    """The category's scores of a fold's test side (or of every fold's, pooled), in
    percent: WA, UA, macro F1, each class's recall (None: a class absent from the
    truth), the confusion [truth][prediction] and `n` utterances scored; WF1 and
    `f1_seen` (None: a record from before they were kept). Every ser wrote all of the
    first six; a field None is a key the record does not hold."""

    wa: float | None = None
    ua: float | None = None
    f1: float | None = None
    per_class_recall: Mapping[str, float | None] | None = None
    confusion: tuple[tuple[int, ...], ...] | None = None
    n: int | None = None
    wf1: float | None = None
    f1_seen: float | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: Metrics) -> CategoryScores:
        """`metrics` as the trainer records them."""
        return decode(cls, metrics.to_dict(), "metrics")

    @classmethod
    def from_json(cls, obj: object, where: str) -> CategoryScores:
        """The scores in the JSON object `obj`; `ReportError` naming `where` and the key
        for a value of another type."""
        return decode(cls, obj, where)

    def to_json(self) -> dict[str, Json]:
        """As run.json holds them, keys in `Metrics.to_dict`'s order."""
        return encode_fields(self)

    def score(self, key: str) -> float | None:
        """The score `key` (``ua``, ``wa``, ``f1``, ``wf1``, ``f1_seen``); None: not held,
        or not one of them."""
        value = getattr(self, key) if key in _SCORES else None
        return None if value is None else float(value)

    def to_metrics(self, where: str = "metrics") -> Metrics:
        """The `Metrics` they are (WF1 and `f1_seen` computed from the confusion where not
        held); `ReportError` naming `where` for scores lacking what it needs."""
        try:
            return Metrics.from_dict(self.to_json())
        except (KeyError, TypeError, ValueError) as e:
            raise ReportError(f"{where}: the category's scores lack {e}") from e


@dataclass(frozen=True, kw_only=True)
class AttributeScoresRecord:
    """One attribute's `AttributeScores` as a record holds them: CCC, Pearson's r and
    MAE (NaN where undefined: null in JSON), over `n` utterances, and the moments they
    came from (NaN: null; None: not held)."""

    ccc: float
    pearson: float
    mae: float
    n: int
    mean_gold: float | None = None
    mean_pred: float | None = None
    var_gold: float | None = None
    var_pred: float | None = None
    cov: float | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: object, where: str) -> AttributeScoresRecord:
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: must be a JSON object, got {type(obj).__name__}")
        nulls = {k: math.nan for k in _NUMBERS if k in obj and obj[k] is None}
        return _same_nan(decode(cls, {**obj, **nulls}, where))

    def to_json(self) -> dict[str, Json]:
        return {k: None if _is_nan(v) else v for k, v in encode_fields(self).items()}

    def to_scores(self) -> AttributeScores:
        return AttributeScores.from_dict(self.to_json())


@dataclass(frozen=True)
class AttributesRecord:
    """Each attribute's scores by name, in the order trained: a fold entry's
    ``attributes`` (`AttributeMetrics.to_dict`). Its JSON has no key of its own: each
    is an attribute's name."""

    scores: Mapping[str, AttributeScoresRecord]

    @classmethod
    def of(cls, metrics: AttributeMetrics) -> AttributesRecord:
        """`metrics` as the trainer records them."""
        return cls.from_json(metrics.to_dict(), "attributes")

    @classmethod
    def from_json(cls, obj: object, where: str) -> AttributesRecord:
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: must be a JSON object, got {type(obj).__name__}")
        return cls(
            {str(k): AttributeScoresRecord.from_json(v, f"{where}[{k!r}]") for k, v in obj.items()}
        )

    def to_json(self) -> dict[str, Json]:
        return {name: s.to_json() for name, s in self.scores.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.scores)

    def to_metrics(self) -> AttributeMetrics:
        """The `AttributeMetrics` they are (a moment not held reads as NaN)."""
        return AttributeMetrics({name: s.to_scores() for name, s in self.scores.items()})


_SCORES = frozenset({"wa", "ua", "f1", "wf1", "f1_seen"})
_NUMBERS = ("ccc", "pearson", "mae", "mean_gold", "mean_pred", "var_gold", "var_pred", "cov")


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _same_nan(scores: AttributeScoresRecord) -> AttributeScoresRecord:
    """`scores` with each NaN `math.nan` itself: NaN is unequal to every other NaN, so
    two reads of one record compare equal only through the one object."""
    # Any: every field named is a float one, which replace()'s ** cannot tell mypy.
    nans: dict[str, Any] = {
        f.name: math.nan for f in fields(scores) if _is_nan(getattr(scores, f.name))
    }
    return replace(scores, **nans) if nans else scores
