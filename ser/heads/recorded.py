"""The heads run records and predictions.csv tables hold, as `ser report` reads them.

Every head `ser.heads.targets.Targets` can build (the category, the attributes, then the
registered ones: `KINDS`) says itself whether a record or a table holds it
(`Head.of_records`, `Head.of_predictions`), in the order of a run's outputs. A record
naming a head this ser does not know (a newer ser's, or one registered elsewhere) is a
`ReportError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ser.errors import ReportError
from ser.heads.attributes import AttributeHead
from ser.heads.emotion import EmotionHead
from ser.heads.registry import HEADS
from ser.heads.reported import EntryView, RecordView, Reported, TableView

#: The heads `ser.heads.targets.Targets` holds itself, before the registered ones.
BUILT_IN: tuple[type[Reported], ...] = (EmotionHead, AttributeHead)


def kinds() -> tuple[type[Reported], ...]:
    """Every head a run can have: the category, the attributes, the registered heads."""
    return (*BUILT_IN, *HEADS.values())


def record_heads(runs: Sequence[RecordView], shown: bool = False) -> tuple[Reported, ...]:
    """The heads any of the run records `runs` scored, each as they scored it together
    (the attributes any of them has); `shown`: with those a table always shows
    (`Reported.always_shown`)."""
    further: dict[str, type[Reported]] = {}
    for run in runs:  # the further heads in the order the records hold them
        for name in dict.fromkeys(n for e in run.folds for n in e.heads):
            if name not in HEADS:
                raise ReportError(f"run {run.name!r} scored a head {name!r} this ser does not know")
            further.setdefault(name, HEADS[name])
    heads = [(kind, kind.of_records(runs)) for kind in (*BUILT_IN, *further.values())]
    return tuple(
        head if head is not None else kind()
        for kind, head in heads
        if head is not None or (shown and kind.always_shown)
    )


def run_heads(run: RecordView) -> tuple[Reported, ...]:
    """The heads the run record scored."""
    return record_heads([run])


def table_heads(table: TableView) -> tuple[Reported, ...]:
    """The heads a predictions.csv table (`ser.runs.predictions.PredictionTable`) holds."""
    return tuple(h for kind in kinds() if (h := kind.of_predictions(table)) is not None)


@dataclass(frozen=True)
class _OneFold:
    """One fold entry as a run record holding it alone (what `record_heads` reads)."""

    folds: tuple[EntryView, ...]
    name: str = "fold entry"
    classes: tuple[str, ...] = ()
    summary: None = None
    pooled: None = None


def entry_heads(entry: EntryView) -> tuple[Reported, ...]:
    """The heads one fold entry (`ser.runs.fold_entry.FoldEntry`) scored."""
    return record_heads([_OneFold((entry,))])
