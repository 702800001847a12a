"""The published CMU-MOSI and CMU-MOSEI sentiment-score numbers of MulT (Tsai et al., ACL
2019), MISA (Hazarika et al., ACM MM 2020) and Self-MM (Yu et al., AAAI 2021), shown beside
ours for runs on those corpora (`ser report`).

The numbers are package data (``published/cmu_sentiment.csv``, one line per number). The
papers' own tables could not be read where the file was made, so every number there is a
reprint that cites the paper, kept only where two reprints agree (its `source` and
`second_source`); a metric no two reprints agree on is left out, never filled in. The
`setting` and `features` of each paper are read from its public code (MulT's data
loader, MISA's model, Self-MM's config): other features than a ser store's, so a row is
context beside ours, never a same-features comparison.

>>> [p.model for p in published_sentiment("cmu-mosei")]
['MulT', 'MISA', 'Self-MM']
>>> published_sentiment("cmu-mosei")[2].values["mae"]
0.53
>>> published_sentiment("iemocap")
[]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from ser.cache import FeatureStore
from ser.errors import SerError
from ser.report.leaderboard import read_rows
from ser.runs.record import RunRecord

FILE = "cmu_sentiment.csv"
CORPORA = ("cmu-mosi", "cmu-mosei")
#: The head whose metrics the rows hold (`ser.heads.sentiment_score`).
HEAD = "sentiment-score"
#: Its metrics as the tables show them, in the papers' order.
COLUMNS = MappingProxyType(
    {
        "acc2_has0": "Acc-2 (has0)",
        "f1_has0": "F1 (has0)",
        "acc2_non0": "Acc-2 (non0)",
        "f1_non0": "F1 (non0)",
        "acc7": "Acc-7",
        "mae": "MAE",
        "corr": "Corr",
    }
)
NOTE = (
    "Published rows: other features than ours (named in each row), reprinted numbers that "
    "two reprints agree on (ser/report/published/cmu_sentiment.csv names both); a metric "
    "left blank had no two agreeing reprints. Context beside ours, not a same-features "
    "comparison."
)


@dataclass(frozen=True)
class PublishedSentiment:
    """One paper's numbers on one corpus: `values` by metric (percent for accuracies and
    F1, as printed), where they were read (`sources`), its setting and features."""

    corpus: str
    model: str
    paper: str
    arxiv: str
    setting: str
    features: str
    values: Mapping[str, float]
    sources: Mapping[str, tuple[str, str]]


def published_sentiment(corpus: str) -> list[PublishedSentiment]:
    """The published rows of `corpus` ("cmu-mosi", "cmu-mosei"), in the file's order; []
    for another corpus."""
    return [p for p in _rows() if p.corpus == corpus]


@cache
def _rows() -> tuple[PublishedSentiment, ...]:
    grouped: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in read_rows(FILE):
        grouped.setdefault((row["corpus"], row["model"]), []).append(row)
    return tuple(
        PublishedSentiment(
            corpus,
            model,
            lines[0]["paper"],
            lines[0]["arxiv"],
            lines[0]["setting"],
            lines[0]["features"],
            MappingProxyType({r["metric"]: float(r["value"]) for r in lines}),
            MappingProxyType({r["metric"]: (r["source"], r["second_source"]) for r in lines}),
        )
        for (corpus, model), lines in grouped.items()
    )


def value_text(metric: str, value: float | None) -> str:
    """A number as the papers print it: MAE and Corr to three decimals, the rest to two."""
    if value is None:
        return ""
    return f"{value:.3f}" if metric in ("mae", "corr") else f"{value:.2f}"


def published_md(corpus: str) -> str:
    """The corpus's published rows as a Markdown table (its note first); "" for none."""
    found = published_sentiment(corpus)
    if not found:
        return ""
    lines = [NOTE, "", "| published | features | " + " | ".join(COLUMNS.values()) + " |"]
    lines.append("|---|---|" + "---|" * len(COLUMNS))
    for p in found:
        cells = [value_text(m, p.values.get(m)) for m in COLUMNS]
        lines.append(f"| {p.model} ({p.paper}) | {p.features} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def runs_md(runs: Sequence[RunRecord]) -> str:
    """After `ser report`'s table of runs: the published rows of each CMU-MOSI or
    CMU-MOSEI store a run trained the sentiment score on ("" for none; a store that no
    longer opens is passed over: the rows are context, not the report)."""
    corpora = []
    for run in runs:
        if run.store and any(HEAD in entry.heads for entry in run.folds):
            try:
                corpus = FeatureStore.open(run.store).corpus
                corpora.append((corpus.name, corpus.title))
            except (SerError, OSError):
                continue
    parts = [
        f"### Published on {title}: the sentiment score\n\n{published_md(name)}"
        for name, title in dict.fromkeys(corpora)
        if name in CORPORA
    ]
    return "\n".join(parts)
