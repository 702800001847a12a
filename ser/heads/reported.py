"""`Reported`: what a head says in `ser report`, with the defaults every head has.

A run record's fold entries keep each head's test metrics (`recorded`: under the entry's
``heads`` by name, by default); `ser report` reads them through the run's heads and
never asks which head it holds:

- `of_records` / `of_predictions`: the head as run records or a predictions.csv table
  hold it (None: they do not);
- `summary`, `pooled`: its numbers' mean ± std over seeds (`flat` of each fold's
  metrics, as `ser.heads.metrics.summarize` takes UA's) and its pooled metrics (`pool`);
- `report_header` / `report_cells` / `report_legend`: its columns of the table (by
  default each number's mean, then its pooled value), `score_column`: the column a
  sweep's table shows of it;
- `breakdowns`, `breakdown_keys` / `breakdown_rows` / `breakdown_header` /
  `breakdown_cells`: its part of `ser report --by` (by default none, and the table says
  so); `paired`: its paired bootstrap between two runs (`--paired`; by default none);
- `plot_run`, `plot_predictions`: its figures for `--plots` (of the record's pooled
  metrics, of predictions.csv);
- `json_summary`, `json_fold`: its numbers in `ser train --json` (its summary's, a fold
  entry's).

Heads sit below `ser.runs`, so they read a run record (`ser.runs.record.RunRecord`) and
a predictions.csv table (`ser.runs.predictions.PredictionTable`) through the protocols
here, `RecordView` and `TableView`: exactly what heads read of them, which the record's
types have structurally (mypy checks it where a record is passed in).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

import numpy as np

from ser import Json
from ser.errors import ReportError
from ser.heads.attribute_metrics import AttributeMetrics
from ser.heads.metrics import Metrics, mean_std_text, over_seeds

if TYPE_CHECKING:  # plots only: matplotlib takes a second to import
    from matplotlib.figure import Figure

#: A head's metrics: the category's `Metrics`, the attributes' `AttributeMetrics`, a
#: JSON object for a head that keeps them as one (`Reported.read`, `Reported.write`).
S = TypeVar("S")

#: What a run's summary holds under a key (`ser.runs.summary.Summary`'s values).
SummaryValue = float | int | str | None


class ScoreView(Protocol):
    """A score's mean and std in a run's summary (`ser.runs.summary.Score`)."""

    @property
    def mean(self) -> float | None: ...
    @property
    def std(self) -> float | None: ...


class SummaryView(Protocol):
    """A run's summary (`ser.runs.summary.Summary`): its scores, and its JSON's keys."""

    @property
    def scores(self) -> Mapping[str, ScoreView]: ...
    def get(self, key: str, /) -> SummaryValue: ...
    def items(self) -> Iterable[tuple[str, SummaryValue]]: ...


class EntryView(Protocol):
    """A fold entry (`ser.runs.fold_entry.FoldEntry`) as heads read it."""

    @property
    def seed(self) -> int: ...
    @property
    def metrics(self) -> Metrics | None: ...
    @property
    def attributes(self) -> AttributeMetrics | None: ...
    @property
    def heads(self) -> Mapping[str, Mapping[str, Json]]: ...


class RecordView(Protocol):
    """A run record (`ser.runs.record.RunRecord`) as heads read it."""

    @property
    def name(self) -> str: ...
    @property
    def classes(self) -> tuple[str, ...]: ...
    @property
    def folds(self) -> Sequence[EntryView]: ...
    @property
    def summary(self) -> SummaryView | None: ...
    @property
    def pooled(self) -> Metrics | None: ...


class TableView(Protocol):
    """A predictions.csv table (`ser.runs.predictions.PredictionTable`), or some of its
    rows, as heads read it: a row per prediction."""

    @property
    def classes(self) -> tuple[str, ...]: ...
    @property
    def attributes(self) -> tuple[str, ...]: ...
    @property
    def further(self) -> tuple[str, ...]: ...
    @property
    def seed(self) -> np.ndarray: ...
    @property
    def utt_id(self) -> np.ndarray: ...
    @property
    def gold(self) -> np.ndarray: ...
    @property
    def pred(self) -> np.ndarray: ...
    @property
    def attr_gold(self) -> np.ndarray: ...
    @property
    def attr_pred(self) -> np.ndarray: ...


@dataclass(frozen=True)
class Paired:
    """A head's paired test of two runs: the metrics it scores (`names`), `score` of
    resamples as utterance counts [R, N] -> [R, 2 runs, len(names)], their decimals, and
    what the table's legend adds of them."""

    names: tuple[str, ...]
    score: Callable[[np.ndarray], np.ndarray]
    decimals: int = 2
    legend: str = ""


class Reported(Generic[S]):
    """`ser report`'s side of `ser.heads.base.Head` (the module docstring); `S`: the
    type of its metrics."""

    name: ClassVar[str]
    score_key: ClassVar[str | None]
    score_name: ClassVar[str]
    #: It is the run's category (`ser.heads.base.Head.category`).
    category: ClassVar[bool] = False
    #: Its columns are in every table, "-" for a run without it (the category's, which
    #: every paper's table has).
    always_shown: ClassVar[bool] = False
    #: The decimals its numbers show (a CCC's: 3).
    decimals: ClassVar[int] = 2
    #: The `--by` breakdowns it has cells of ("speaker", "class"); none: the breakdown
    #: table says it has none.
    breakdowns: ClassVar[tuple[str, ...]] = ()
    #: It draws a figure of a run's predictions.csv (`plot_predictions`).
    plots_predictions: ClassVar[bool] = False
    #: Its numbers in `ser train --json`'s summary (`json_summary`), each a score's mean
    #: or with ``_std`` its std; none: every one its name prefixes.
    json_keys: ClassVar[tuple[str, ...]] = ()

    # Each head reads its own metrics (`flat`, `score`, `pool`), of its own type `S`.
    def flat(self, metrics: S) -> dict[str, float]:
        raise NotImplementedError

    def pool(self, folds: Sequence[S]) -> S:
        raise NotImplementedError

    def read(self, held: Mapping[str, Json], where: str) -> S:
        """Its metrics as a fold entry's ``heads`` holds them (`write`'s JSON object):
        by default that object itself, for a head whose metrics are one."""
        return cast(S, held)

    def write(self, metrics: S) -> dict[str, Json]:
        """Its metrics as a fold entry's ``heads`` holds them: by default the metrics
        themselves, for a head whose metrics are a JSON object."""
        return cast(dict[str, Json], metrics)

    def plot(self, fig: Figure, pooled: S, title: str) -> bool:
        """Draw its pooled metrics into `fig` (a matplotlib `Figure`) for `ser report
        --plots`; False: it has no plot (the default)."""
        return False

    @classmethod
    def of_records(cls, runs: Sequence[RecordView]) -> Reported | None:
        """This head as the run records `runs` scored it (built with no arguments where a
        fold entry holds metrics under its name); None: none of them did."""
        scored = any(cls.name in e.heads for run in runs for e in run.folds)
        return cls() if scored else None

    @classmethod
    def of_predictions(cls, table: TableView) -> Reported | None:
        """This head as a predictions.csv table holds it (its columns, each named
        ``<name>_...``: `Head.columns`); None: the table has none of it."""
        return cls() if any(c.startswith(f"{cls.name}_") for c in table.further) else None

    def recorded(self, entry: EntryView) -> S | None:
        """Its test metrics in a run record's fold entry (None: none)."""
        held = entry.heads.get(self.name)
        return self.read(held, f"seed {entry.seed}'s {self.name!r} metrics") if held else None

    def folds(self, run: RecordView) -> list[tuple[int, S]]:
        """(seed, metrics) of every fold entry of `run` holding its metrics."""
        return [(e.seed, m) for e in run.folds if (m := self.recorded(e)) is not None]

    def summary(self, run: RecordView, recorded: Mapping[str, Any]) -> dict[str, Any]:
        """Mean ± std over seeds of its numbers ({}: none), for the run's summary beside
        what the trainer `recorded` of every head."""
        pairs = [(seed, self.flat(m)) for seed, m in self.folds(run)]
        return over_seeds(pairs) if pairs else {}

    def pooled(self, run: RecordView) -> S | None:
        """Its metrics of every fold's test predictions together (None: none)."""
        folds = [m for _, m in self.folds(run)]
        return self.pool(folds) if folds else None

    def json_summary(self, summary: SummaryView) -> dict[str, SummaryValue]:
        """Its numbers in `ser train --json` of the run's `summary`
        (`ser.runs.summary.Summary`): its `json_keys`', by default every one its name
        prefixes."""
        if self.json_keys:
            return {k: summary_number(summary, k) for k in self.json_keys}
        return {k: v for k, v in summary.items() if k.startswith(f"{self.name}_")}

    def json_fold(self, entry: EntryView) -> dict[str, SummaryValue]:
        """Its numbers of a fold entry in `ser train --json`'s folds (none by default)."""
        return {}

    def number(self, metrics: S | None, key: str) -> float | None:
        """Its number `key` (a `flat` key) of a fold's `metrics`; None: not one it has."""
        return None if metrics is None else self.flat(metrics).get(key)

    def score_column(self) -> str | None:
        """The `flat` key of its `score` (tables of sweeps show it); None: none."""
        return f"{self.name}_{self.score_key}" if self.score_key else None

    def score_label(self) -> str:
        """`score_column` as a table's header reads it."""
        return f"{self.name} {self.score_name}"

    def console_columns(self) -> tuple[tuple[str, str], ...]:
        """(`flat` key, header) of its numbers in `ser train`'s fold lines and summary
        table: by default its score's."""
        key = self.score_column()
        return () if key is None else ((key, self.score_label()),)

    def report_header(self, runs: Sequence[RecordView], as_csv: bool) -> list[str]:
        """Its columns of `ser report`'s table of `runs`: each number's mean (CSV: and
        std), then each pooled value."""
        keys = self._keys(runs)
        if as_csv:
            means = [c for k in keys for c in (f"mean_{k}", f"mean_{k}_std")]
            return means + [f"pooled_{k}" for k in keys]
        return [f"mean {shown(k)}" for k in keys] + [f"pooled {shown(k)}" for k in keys]

    def report_cells(
        self, run: RecordView, runs: Sequence[RecordView], summary: Mapping[str, Any], as_csv: bool
    ) -> list[str]:
        """The run's cells under `report_header` ("-", CSV: empty, where it lacks one);
        `summary`: the run's, every head's numbers."""
        mine, none = self.summary(run, {}), "" if as_csv else "-"
        pooled = {} if (p := self.pooled(run)) is None else self.flat(p)
        n, keys, cells = int(mine.get("n", 0)), self._keys(runs), []
        for key in keys:
            mean, std = mine.get(key), mine.get(f"{key}_std")
            if as_csv:
                cells += [self._number(mean, none), self._number(std, none) if n > 1 else ""]
            elif mean is None or std is None:
                cells.append(none)
            else:
                cells.append(mean_std_text(float(mean), float(std), n, self.decimals))
        return cells + [self._number(pooled.get(key), none) for key in keys]

    def report_legend(self, runs: Sequence[RecordView]) -> str:
        """What the table's legend says of its columns ("": nothing)."""
        return ""

    def breakdown_keys(self, table: TableView, by: str) -> list[str] | None:
        """The rows it defines of a `--by` breakdown other than by speaker (the
        category's classes); None: it defines none."""
        return None

    def breakdown_rows(self, table: TableView, by: str, key: str) -> np.ndarray:
        """The rows [N] of `table` under the breakdown's row `key` (`breakdown_keys`)."""
        raise ReportError(f"--by {by}: the {self.name} head defines no rows of it")

    def breakdown_header(self, label: str, by: str, fmt: str) -> list[str]:
        """The columns of its cells in a breakdown by `by` of the run `label`."""
        return []

    def breakdown_cells(self, rows: TableView, by: str, key: str, fmt: str) -> list[str]:
        """Its cells of a breakdown row, of the predictions `rows` under it."""
        return []

    def breakdown_legend(self, by: str) -> str:
        """What the breakdown's legend says of its cells ("": nothing)."""
        return ""

    def shared(self, a: TableView, b: TableView) -> Reported | None:
        """What of it both predictions.csv tables hold, `a` (its own) and `b`, for
        `--paired`; None: `b` holds none of it; `ReportError`: they cannot be compared."""
        return self if type(self).of_predictions(b) is not None else None

    def paired(self, a: TableView, b: TableView, ids: list[str]) -> Paired | None:
        """Its paired test of predictions.csv tables `a` and `b` on the utterances `ids`
        both tested; None: it has none (the default)."""
        return None

    @property
    def plot_name(self) -> str:
        """What its plot files are named after (``<run>_<plot_name>.png``)."""
        return self.name

    def plot_run(self, fig: Figure, run: RecordView, title: str) -> bool:
        """Draw its figure of a run record into `fig` (`plot` of its pooled metrics);
        False: it has none."""
        pooled = self.pooled(run)
        return pooled is not None and self.plot(fig, pooled, title)

    def plot_predictions(self, fig: Figure, table: TableView, title: str) -> bool:
        """Draw its figure of a run's predictions.csv `table` into `fig`; False: none."""
        return False

    def _keys(self, runs: Sequence[RecordView]) -> list[str]:
        """Its numbers any of `runs` has pooled values of, in their order."""
        pooled = [self.pooled(run) for run in runs]
        return list(dict.fromkeys(k for p in pooled if p is not None for k in self.flat(p)))

    def _number(self, value: float | None, none: str) -> str:
        return none if value is None or math.isnan(value) else f"{value:.{self.decimals}f}"


def summary_number(summary: SummaryView, key: str) -> float:
    """A score's mean in a run's `summary` (`ser.runs.summary.Summary`), or with
    ``_std`` its std (NaN: not recorded)."""
    score = summary.scores[key.removesuffix("_std")]
    value = score.std if key.endswith("_std") else score.mean
    return math.nan if value is None else float(value)


def shown(key: str) -> str:
    """``sentiment_wf1`` -> ``sentiment WF1``, ``multilabel_micro_f1`` -> ``multilabel
    micro F1``, ``multilabel_map`` -> ``multilabel mAP``; other words as they are
    (``emotions_wa_sad`` -> ``emotions WA sad``).

    >>> shown("sentiment-score_acc2_has0"), shown("emotions_f1_mean")
    ('sentiment-score Acc-2 has0', 'emotions F1 mean')
    """
    name, _, score = key.partition("_")
    words = [WORDS.get(w, w.upper() if w in UPPER else w) for w in score.split("_")]
    return " ".join([name, *words])


#: A score's abbreviations, upper case in a table's header.
UPPER = frozenset({"ua", "wa", "f1", "wf1", "mae", "mse", "rmse", "ccc", "auc"})
#: How a score's words read in a table's header where upper case would not do.
WORDS = {"map": "mAP", "acc2": "Acc-2", "acc7": "Acc-7", "corr": "Corr"}
