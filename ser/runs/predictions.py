"""Per-utterance test predictions of a run: ``<run>/predictions.csv`` (torch-free).

One row per (seed, fold, test utterance), every (seed, fold) of the record, stacked
members each their own rows: ``seed, fold, utt_id, speaker, row`` (the store manifest's
row), ``gold, pred`` (class names), then ``p_<class>`` per class of the run's label set
(softmax probabilities, 6 decimals), then for a run trained on emotion attributes
``gold_<name>, pred_<name>`` per attribute it trained (`ser.heads.attribute_metrics.ATTRIBUTES`'
order; the corpus's scale, 6 decimals; gold empty where the utterance has none). A run
with no categorical head has no ``p_`` columns and empty ``gold``/``pred`` cells (-1 in
the table). A run's further heads (`ser.heads.registry`: MELD's sentiment, ...) follow,
each its `Head.columns` (``sentiment_gold``, ``sentiment_<class>``...), kept as text.
Rows are in the record's fold order, then manifest order. The trainer
rewrites the file atomically after each group of folds, before ``run.json``: a fold
entry in the record has its rows in the file (a run trained before predictions were
kept has none; `missing_folds` says which, and `uneven_folds` which lost or gained rows).

>>> import numpy as np
>>> t = PredictionTable.of(("neu", "ang"), 0, "fold1", ["u1", "u2"], ["F1", "M1"], [3, 7],
...                        [0, 1], [0, 0], np.array([[0.9, 0.1], [0.6, 0.4]]))
>>> print(predictions_csv(t), end="")
seed,fold,utt_id,speaker,row,gold,pred,p_neu,p_ang
0,fold1,u1,F1,3,neu,neu,0.900000,0.100000
0,fold1,u2,M1,7,ang,neu,0.600000,0.400000
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ser.errors import ConfigError
from ser.runs.record import RunRecord

PREDICTIONS = "predictions.csv"
COLUMNS = ("seed", "fold", "utt_id", "speaker", "row", "gold", "pred")
PROBABILITY = "p_"  # + class name
GOLD, PRED = "gold_", "pred_"  # + attribute name
ARRAYS = (*COLUMNS, "probs", "attr_gold", "attr_pred", "cells")  # a table's columns as arrays


@dataclass(frozen=True, eq=False)
class PredictionTable:
    """Rows of predictions.csv, column by column (every array [N]; probs [N, C];
    attr_gold and attr_pred [N, A], A = len(attributes), gold NaN: none; gold and pred
    -1 where the run has no classes)."""

    classes: tuple[str, ...]
    seed: np.ndarray = field(repr=False)  # int64
    fold: np.ndarray = field(repr=False)  # str
    utt_id: np.ndarray = field(repr=False)  # str
    speaker: np.ndarray = field(repr=False)  # str
    row: np.ndarray = field(repr=False)  # int64, the store manifest's row
    gold: np.ndarray = field(repr=False)  # int64 class index
    pred: np.ndarray = field(repr=False)  # int64 class index
    probs: np.ndarray = field(repr=False)  # float, [N, C]
    attributes: tuple[str, ...]
    attr_gold: np.ndarray = field(repr=False)  # float, [N, A]; NaN: no gold value
    attr_pred: np.ndarray = field(repr=False)  # float, [N, A]
    further: tuple[str, ...] = ()  # the further heads' columns
    cells: np.ndarray = field(default=None, repr=False)  # type: ignore[arg-type]  # str [N, E]

    def __post_init__(self) -> None:
        if self.cells is None:  # no further head: [N, 0]
            object.__setattr__(self, "cells", np.zeros((len(self.seed), 0), dtype=str))

    @classmethod
    def of(
        cls,
        classes: Sequence[str],
        seed: int,
        fold: str,
        utt_ids: ArrayLike,
        speakers: ArrayLike,
        rows: ArrayLike,
        gold: ArrayLike,
        pred: ArrayLike,
        probs: ArrayLike,
        attributes: Sequence[str] = (),
        attr_gold: ArrayLike | None = None,
        attr_pred: ArrayLike | None = None,
        further: Sequence[str] = (),
        cells: ArrayLike | None = None,
    ) -> PredictionTable:
        """One (seed, fold)'s predictions (`utt_ids`... `pred` [N], `probs` [N, C]; the
        `attributes`' gold [N, A], NaN where none, and predictions [N, A]; the further
        heads' columns `further` and their `cells` [N, E])."""
        n = len(np.asarray(utt_ids))
        shape = (n, len(attributes))
        return cls(
            tuple(classes),
            np.full(n, seed, dtype=np.int64),
            np.full(n, fold).astype(str),
            np.asarray(utt_ids).astype(str),
            np.asarray(speakers).astype(str),
            np.asarray(rows, dtype=np.int64),
            np.asarray(gold, dtype=np.int64),
            np.asarray(pred, dtype=np.int64),
            np.asarray(probs, dtype=np.float64).reshape(n, len(classes)),
            tuple(attributes),
            _floats(attr_gold, shape),
            _floats(attr_pred, shape),
            tuple(further),
            np.asarray(cells if cells is not None else [], dtype=str).reshape(n, len(further)),
        )

    def __len__(self) -> int:
        return len(self.seed)

    def take(self, which: np.ndarray) -> PredictionTable:
        """The rows a boolean mask or an index array picks."""
        arrays = {k: getattr(self, k)[which] for k in ARRAYS}
        return PredictionTable(
            self.classes, attributes=self.attributes, further=self.further, **arrays
        )

    def runs(self) -> list[tuple[int, str]]:
        """The (seed, fold)s the table holds, in order of first row."""
        return list(dict.fromkeys(zip(self.seed.tolist(), self.fold.tolist(), strict=True)))


def concat(tables: Iterable[PredictionTable], classes: Sequence[str]) -> PredictionTable:
    """Tables of one label set and one set of attributes, one after another (none: an
    empty table)."""
    parts = list(tables)
    if any(t.classes != tuple(classes) for t in parts):
        raise ValueError("prediction tables of different label sets cannot be joined")
    if len({(t.attributes, t.further) for t in parts}) > 1:
        raise ValueError("prediction tables of different attributes or heads cannot be joined")
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return PredictionTable.of(classes, 0, "", [], [], empty, empty, empty, np.zeros((0,)))
    arrays = {k: np.concatenate([getattr(t, k) for t in parts]) for k in ARRAYS}
    return PredictionTable(
        tuple(classes), attributes=parts[0].attributes, further=parts[0].further, **arrays
    )


def predictions_csv(table: PredictionTable) -> str:
    """The table as predictions.csv's text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    pairs = [f"{side}{name}" for name in table.attributes for side in (GOLD, PRED)]
    writer.writerow([*COLUMNS, *(PROBABILITY + c for c in table.classes), *pairs, *table.further])
    names = np.asarray([*table.classes, ""])  # -1: no class (a run without a head)
    columns = [
        table.seed,
        table.fold,
        table.utt_id,
        table.speaker,
        table.row,
        names[table.gold] if len(table) else table.gold,
        names[table.pred] if len(table) else table.pred,
    ]
    # [N, 2A]: each attribute's gold then its prediction
    values = np.stack([table.attr_gold, table.attr_pred], axis=2).reshape(
        len(table), 2 * len(table.attributes)
    )
    rows = zip(
        zip(*columns, strict=True),
        table.probs.tolist(),
        values.tolist(),
        table.cells.tolist(),
        strict=True,
    )
    for fixed, probs, numbers, further in rows:
        writer.writerow([*fixed, *(f"{p:.6f}" for p in probs), *map(_number, numbers), *further])
    return buffer.getvalue()


def read_predictions(path: Path) -> PredictionTable:
    """predictions.csv as written (by any version); a file another program changed is a
    `ConfigError` naming the file and the problem."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: unreadable predictions ({e})") from e
    header = lines[0] if lines else []
    try:
        classes, attributes, further = _header(header)
        return _parse(lines[1:], classes, attributes, further, len(header))
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from e


def _header(header: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The classes, attributes and further heads' columns a header names: `COLUMNS`,
    ``p_<class>`` columns, ``gold_<name>, pred_<name>`` pairs, then the rest."""
    rest = header[len(COLUMNS) :]
    n_classes = next((i for i, h in enumerate(rest) if not h.startswith(PROBABILITY)), len(rest))
    pairs = rest[n_classes:]
    n_pairs = next((i for i, h in enumerate(pairs) if not h.startswith((GOLD, PRED))), len(pairs))
    pairs, further = pairs[:n_pairs], tuple(pairs[n_pairs:])
    attributes = tuple(h[len(GOLD) :] for h in pairs[::2])
    expected = [f"{side}{name}" for name in attributes for side in (GOLD, PRED)]
    if tuple(header[: len(COLUMNS)]) != COLUMNS or pairs != expected:
        raise ValueError(f"not a predictions file (header {','.join(header)!r})")
    return tuple(h[len(PROBABILITY) :] for h in rest[:n_classes]), attributes, further


def _parse(
    lines: list[list[str]],
    classes: tuple[str, ...],
    attributes: tuple[str, ...],
    further: tuple[str, ...],
    width: int,
) -> PredictionTable:
    # A run without classes leaves gold and pred empty: -1.
    index = {c: i for i, c in enumerate(classes)} if classes else {"": -1}
    for n, line in enumerate(lines, 2):
        if len(line) != width:
            raise ValueError(f"line {n} has {len(line)} cells, the header {width}")
        if line[5] not in index or line[6] not in index:
            raise ValueError(f"line {n}: a class outside the header's ({', '.join(classes)})")
    cols: list[Any] = list(zip(*lines, strict=True)) if lines else [()] * width
    seed, fold, utt_id, speaker, row, gold, pred = cols[: len(COLUMNS)]
    first, n = len(COLUMNS) + len(classes), len(lines)
    last = first + 2 * len(attributes)
    numbers = np.asarray([[float(v) if v else np.nan for v in c] for c in cols[first:last]])
    numbers = numbers.reshape(len(attributes), 2, n)  # [A, (gold, pred), N]
    return PredictionTable(
        classes,
        np.asarray(seed, dtype=np.int64),
        np.asarray(fold, dtype=str),
        np.asarray(utt_id, dtype=str),
        np.asarray(speaker, dtype=str),
        np.asarray(row, dtype=np.int64),
        np.asarray([index[g] for g in gold], dtype=np.int64),
        np.asarray([index[p] for p in pred], dtype=np.int64),
        np.asarray(cols[len(COLUMNS) : first], dtype=np.float64).T.reshape(n, len(classes)),
        attributes,
        numbers[:, 0].T,
        numbers[:, 1].T,
        further,
        np.asarray(cols[last:], dtype=str).T.reshape(n, len(further)),
    )


def _floats(values: ArrayLike | None, shape: tuple[int, int]) -> np.ndarray:
    """[N, A] floats, NaN where `values` is None (no attribute trained: [N, 0])."""
    if values is None:
        return np.full(shape, np.nan)
    return np.asarray(values, dtype=np.float64).reshape(shape)


def _number(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6f}"


def missing_folds(record: RunRecord, table: PredictionTable) -> list[tuple[int, str]]:
    """The record's (seed, fold)s without rows in `table`, in record order."""
    held = set(table.runs())
    wanted = [e.key for e in record.folds]
    return [key for key in wanted if key not in held]


def uneven_folds(record: RunRecord, table: PredictionTable) -> dict[tuple[int, str], str]:
    """The record's (seed, fold)s whose rows in `table` are not one a test utterance the
    record counted, each with what it holds ("seed 0 session5: 67 rows, 83 test
    utterances"), in record order. Lost or repeated lines (a file cut short, a bad copy)
    would change every score read from it; entries that recorded no sizes (older runs) are
    not checked."""
    rows = Counter(zip(table.seed.tolist(), table.fold.tolist(), strict=True))
    return {
        e.key: f"seed {e.seed} {e.fold}: {rows[e.key]} rows, {e.sizes.test} test utterances"
        for e in record.folds
        if e.sizes is not None and e.key in rows and rows[e.key] != e.sizes.test
    }
