"""A run's summary (`RunRecord.summary`, `ser.heads.metrics.over_seeds`): over how many
seeds, whether its spread is over seeds or folds, over how many values (`n`), and each
score's mean and spread, by the score's name (its head's: ``ua``, ``ccc_mean``,
``sentiment_wf1`` ...; heads are pluggable, so the names are not fixed).

As run.json holds it, and as readers that index it by name see it (it is a read-only
mapping of that JSON): ``seeds``, ``std_over``, ``n``, then ``<score>`` and
``<score>_std`` per score; a key that is neither stays in `extra`.

>>> s = Summary.from_json({"seeds": 2, "std_over": "seeds", "n": 2, "ua": 70.0, "ua_std": 1.5})
>>> s.n, s.scores["ua"], s["ua_std"], list(s)
(2, Score(mean=70.0, std=1.5), 1.5, ['seeds', 'std_over', 'n', 'ua', 'ua_std'])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ser.errors import ReportError
from ser.heads.reported import SummaryValue as Value  # what a summary's keys hold
from ser.runs.codec import Json

STD = "_std"


@dataclass(frozen=True)
class Score:
    """A score's mean over seeds (or folds) and its sample std (None: not recorded)."""

    mean: float | None
    std: float | None = None


@dataclass(frozen=True)
class Summary(Mapping[str, Value]):
    """Over `seeds` seeds (`std_over`: "seeds" or "folds", `n` values; None in records
    from before they were kept) the `scores` by name."""

    seeds: int | None = None
    std_over: str | None = None
    n: int | None = None
    scores: Mapping[str, Score] = field(default_factory=dict)
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: object, where: str = "summary") -> Summary:
        """The summary in the JSON object `obj`; `ReportError` naming `where` for a
        value of another type."""
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: must be a JSON object")
        rest = dict(obj)
        seeds, std_over, n = (rest.pop(k, None) for k in ("seeds", "std_over", "n"))
        scores = {}
        for key in [k for k in rest if not k.endswith(STD) and f"{k}{STD}" in rest]:
            mean, std = rest.pop(key), rest.pop(f"{key}{STD}")
            scores[key] = Score(_number(mean, where, key), _number(std, where, key + STD))
        return cls(
            None if seeds is None else _count(seeds, where, "seeds"),
            None if std_over is None else str(std_over),
            None if n is None else _count(n, where, "n"),
            scores,
            rest,
        )

    def to_json(self) -> dict[str, Json]:
        return dict(self.items())

    def _flat(self) -> dict[str, Value | Json]:
        head = {"seeds": self.seeds, "std_over": self.std_over, "n": self.n}
        out: dict[str, Value | Json] = {k: v for k, v in head.items() if v is not None}
        for name, score in self.scores.items():
            out[name], out[f"{name}{STD}"] = score.mean, score.std
        return {**out, **self.extra}

    def __getitem__(self, key: str) -> Value:
        return self._flat()[key]  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat())

    def __len__(self) -> int:
        return len(self._flat())


def _number(value: object, where: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{where}: {key!r} must be a number, got {value!r}")
    return float(value)


def _count(value: object, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(f"{where}: {key!r} must be a whole number, got {value!r}")
    return value
