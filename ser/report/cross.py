"""Train x test tables of cross-corpus runs: a row per training corpus, a column per test
corpus, UA (then WA and macro F1) as `ser report` writes a mean; EmoBox's published
cross-corpus accuracy (its Table 5, `ser.report.leaderboard`) beside ours where the pair
and the encoder are EmoBox's.

A cell is a `CrossCell`: a cross-corpus run (`ser train --test-store`; its record's
`cross` names both corpora), or on the diagonal a run on one corpus under its own
protocol. `ser report RUN...` makes them from run records (`cells_of_runs`: the cross
runs, and runs on one of their stores as that corpus's diagonal), `ser sweep
cross-corpus` from its cells; either way a table per model (features, family and
settings: `CrossCell.model`).

>>> cell = CrossCell("IEMOCAP", "MELD", None, ("iemocap", "meld"), "microsoft/wavlm-large")
>>> cell.published().value, cell.published().source
(39.06, 'EmoBox Table 5')
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ser.corpus.kinds.emobox_corpora import emobox_corpus
from ser.heads.metrics import mean_std_text
from ser.report.leaderboard import Published, emobox_cross
from ser.report.runs import markdown_table, run_summary, settings_label
from ser.runs.record import RunRecord

METRICS = {"ua": "UA", "wa": "WA", "f1": "macro F1"}
LEGEND = (
    "Rows: the corpus trained on (all of it, its validation carved from it); columns: the "
    "corpus tested on (its utterances of the emotions both have); the diagonal: the corpus "
    "under its own protocol. Mean ± std over seeds (one seed: over its folds). EmoBox: its "
    "Table 5's accuracy on its balanced test sets (4 emotions) for the same encoder; ours "
    "test every utterance of the shared classes unless the test store is EmoBox's set."
)


@dataclass(frozen=True)
class CrossCell:
    """One (training corpus, test corpus) pair: the report's names of both (`train`,
    `test`), the run (None: not run yet), the corpus kind and the store of each (what
    EmoBox's names are looked up by), the encoder its features came from (None: not one
    encoder), and the model it trained (one table per model)."""

    train: str
    test: str
    run: RunRecord | None
    corpora: tuple[str, ...]  # (training, test) corpus kinds
    encoder: str | None = None
    model: str = ""
    stores: tuple[str, ...] = ()  # (training, test) store paths

    def published(self) -> Published | None:
        """EmoBox's cross-corpus accuracy of this pair and encoder, if it has one."""
        if self.encoder is None or self.train == self.test:
            return None
        recorded = self.run.cross if self.run is not None else None
        stores = self.stores or ("", "")
        names = [
            (recorded.side(side).emobox if recorded else None) or _emobox(kind, store)
            for side, kind, store in zip(("train", "test"), self.corpora, stores, strict=True)
        ]
        if None in names:
            return None
        return emobox_cross(str(names[0]), str(names[1]), self.encoder)

    def score(self, metric: str) -> tuple[float, float, int] | None:
        """(mean, std, n) of the run, None before it has a fold (or without the metric:
        a run on emotion attributes alone)."""
        if self.run is None or (not self.run.summary and not self.run.folds):
            return None
        s = run_summary(self.run)
        if s.get(metric) is None:
            return None
        return float(s[metric]), float(s.get(f"{metric}_std", 0.0)), int(s["n"])


def _emobox(kind: str, store: str) -> str | None:
    """EmoBox's name of a corpus: its kind's, else its store's (an EmoBox store named
    after EmoBox's corpus, `meld.zarr`)."""
    return emobox_corpus(kind) or (emobox_corpus(Path(store).stem) if store else None)


@dataclass(frozen=True)
class CrossTable:
    """A model's cells: `names` the corpora in order (rows train, columns test)."""

    model: str
    names: tuple[str, ...]
    cells: dict[tuple[str, str], CrossCell] = field(default_factory=dict)

    @property
    def trained(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if any(k[0] == n for k in self.cells))

    @property
    def tested(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if any(k[1] == n for k in self.cells))


def cross_tables(cells: Sequence[CrossCell]) -> list[CrossTable]:
    """A table per model of `cells` (first come first), corpora in order of appearance."""
    tables: dict[str, CrossTable] = {}
    for cell in cells:
        table = tables.setdefault(cell.model, CrossTable(cell.model, ()))
        names = tuple(dict.fromkeys([*table.names, cell.train, cell.test]))
        table = CrossTable(cell.model, names, {**table.cells, (cell.train, cell.test): cell})
        tables[cell.model] = table
    return list(tables.values())


def cross_run(run: RunRecord) -> bool:
    """Whether `run` trained on one store and tested on another."""
    return bool(run.cross)


def run_model(run: RunRecord) -> str:
    """What a run trained, as a table per model groups runs: features, family, settings
    (not class weights: a corpus's default, MELD's balanced, differs from another's)."""
    config = run.config
    settings = settings_label(run, frozenset({"class_weights"}))
    shown = f" ({settings})" if settings else ""
    return f"{config.get('features')} {config.get('fusion')}{shown}"


def cells_of_runs(runs: Sequence[RunRecord]) -> list[CrossCell]:
    """The cross-corpus runs among `runs` as cells, and the runs on one of their stores
    (not cross-corpus) as that corpus's diagonal; [] without a cross-corpus run."""
    crossed = [r for r in runs if cross_run(r)]
    corpora: dict[str, tuple[str, str]] = {}  # store -> (title, kind)
    for run in crossed:
        for side in ("train", "test"):
            part = run.cross.side(side)  # type: ignore[union-attr]
            corpora.setdefault(part.store, (part.title, part.corpus))
    names = _names(corpora)
    cells = []
    for run in runs:
        if cross_run(run):
            a, b = run.cross.train.store, run.cross.test.store  # type: ignore[union-attr]
            encoders = list((run.cross.train.encoders or {}).values())  # type: ignore[union-attr]
            encoder = encoders[0] if len(encoders) == 1 and encoders[0] else None
        elif run.store in corpora:
            a = b = str(run.store)
            encoder = None
        else:
            continue
        kinds = (corpora[a][1], corpora[b][1])
        cells.append(CrossCell(names[a], names[b], run, kinds, encoder, run_model(run), (a, b)))
    return cells


def _names(corpora: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Each store's name in the tables: its corpus's title, with the store's stem where
    two stores hold one kind."""
    titles = [title for title, _ in corpora.values()]
    return {
        path: title if titles.count(title) == 1 else f"{title} ({Path(path).stem})"
        for path, (title, _) in corpora.items()
    }


def tables_md(tables: Sequence[CrossTable]) -> str:
    """Each table's UA, WA and macro F1 as markdown train x test grids, `LEGEND` last."""
    parts = []
    for table in tables:
        for metric, shown in METRICS.items():
            model = f": {table.model}" if table.model else ""
            parts.append(f"### {shown}, train (rows) x test (columns){model}")
            parts += ["", *_grid(table, metric), ""]
    return "\n".join([*parts, LEGEND]) + "\n"


def _grid(table: CrossTable, metric: str) -> list[str]:
    head = ["train \\ test", *table.tested]
    rows = []
    for train in table.trained:
        row = [train]
        for test in table.tested:
            cell = table.cells.get((train, test))
            row.append("-" if cell is None else _cell_text(cell, metric))
        rows.append(row)
    return markdown_table(head, rows)


def _cell_text(cell: CrossCell, metric: str) -> str:
    score = cell.score(metric)
    ours = "not run" if score is None else mean_std_text(*score)
    published = cell.published() if metric == "ua" else None
    return ours if published is None else f"{ours}; EmoBox {published.value:.2f}"


def tables_csv(tables: Sequence[CrossTable]) -> str:
    """A line per cell: model, train, test, each metric's mean and std, n, EmoBox's."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    head = ["model", "train", "test"]
    head += [f"{k}{s}" for m in METRICS for k, s in ((f"mean_{m}", ""), (f"mean_{m}", "_std"))]
    writer.writerow([*head, "n", "emobox_accuracy", "run"])
    for table in tables:
        for (train, test), cell in table.cells.items():
            scores = [cell.score(m) for m in METRICS]
            values = [v for s in scores for v in (("", "") if s is None else _two(s))]
            n = "" if scores[0] is None else str(scores[0][2])
            published = cell.published()
            emobox = "" if published is None else f"{published.value:.2f}"
            name = "" if cell.run is None else cell.run.name
            writer.writerow([table.model, train, test, *values, n, emobox, name])
    return buffer.getvalue()


def _two(score: tuple[float, float, int]) -> tuple[str, str]:
    mean, std, n = score
    return f"{mean:.2f}", f"{std:.2f}" if n > 1 else ""
