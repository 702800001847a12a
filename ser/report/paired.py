"""A paired bootstrap between two runs on the utterances both tested (`ser report --paired`).

Seeds retrain the model; utterances are the sample. Each run's score on an utterance is
the fraction of its predictions of it (one per seed) that are right, so a run of 3 seeds
and one of 5 compare on the same footing, and with every utterance once per seed a run's
UA and WA here are its pooled scores. The test resamples utterances with replacement
(`RESAMPLES` times, generator seeded with `SEED`: the same p for the same files), scores
UA (mean over the classes in the resample of the mean score of its utterances) and WA
for both runs on each resample, and reports the gap B - A, its 95 % percentile interval
and the two-sided p: twice the smaller share of resamples whose gap is <= 0 or >= 0 (at
most 1; none: ``< 1/RESAMPLES``). An utterance tested by one run only is left out and
counted; one whose gold label differs between the runs is a `ReportError` (another
corpus, label set or manifest).

That is the category's test (`Head.paired`: what a head scores of each resample); each
head both runs have tests its own way, the category's last. Runs trained on emotion
attributes are tested on CCC, on the attributes both have: each resample keeps every
seed's prediction of each utterance drawn (so the observed CCC is the pooled one) and
scores each attribute's CCC and their mean, ``mean CCC`` first; runs with classes and
attributes both get both tests. A head both runs have with no paired test is named
under the table; two runs sharing no head with one are a `ReportError` naming theirs.

>>> import numpy as np
>>> from ser.runs.predictions import PredictionTable
>>> gold = np.arange(40) % 2
>>> a = PredictionTable.of(("neu", "ang"), 0, "f1", [f"u{i}" for i in range(40)],
...     ["s"] * 40, range(40), gold, np.where(np.arange(40) < 30, gold, 1 - gold),
...     np.eye(2)[gold])
>>> b = PredictionTable.of(("neu", "ang"), 0, "f1", a.utt_id, a.speaker, a.row, gold, gold,
...     np.eye(2)[gold])
>>> ua = paired_bootstrap(a, b)[0]
>>> ua.a, ua.b, ua.gap, ua.p_text()
(75.0, 100.0, 25.0, '< 0.001')
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

import numpy as np

from ser.heads.recorded import table_heads
from ser.heads.reported import Paired
from ser.report.runs import ReportError, markdown_table
from ser.runs.predictions import PredictionTable

RESAMPLES = 1000
SEED = 0
CHUNK = 100  # resamples scored at once: [CHUNK, utterances] counts in memory


@dataclass(frozen=True)
class PairedResult:
    """One metric of the paired bootstrap (percent): A's and B's scores, B - A, its 95 %
    interval, the two-sided p, on `utterances` shared ones (`only_one`: tested by one)."""

    metric: str
    a: float
    b: float
    gap: float
    low: float
    high: float
    p: float
    utterances: int
    only_one: int
    resamples: int
    seed: int
    decimals: int = 2  # CCC's: 3
    legend: str = ""  # what the table says of the head's test
    untested: tuple[str, ...] = ()  # the heads both runs have with no paired test

    def p_text(self) -> str:
        """p, or ``< 0.001`` (1 / resamples) when no resample reached the other side."""
        return f"< {1 / self.resamples:g}" if self.p == 0 else f"{self.p:.3f}"


def paired_bootstrap(
    a: PredictionTable, b: PredictionTable, resamples: int = RESAMPLES, seed: int = SEED
) -> list[PairedResult]:
    """B against A on their shared utterances (the module docstring): each head both
    have, its `Head.paired` test."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    shared = [s for h in table_heads(a) if (s := h.shared(a, b)) is not None]
    if not shared:
        named = "; ".join(f"{x}: {', '.join(h.name for h in table_heads(t)) or 'none'}"
                          for x, t in (("A", a), ("B", b)))  # fmt: skip
        raise ReportError(f"the two runs share no scores to compare (their heads: {named})")
    held_a, held_b = set(a.utt_id.tolist()), set(b.utt_id.tolist())
    ids = sorted(held_a & held_b)
    if not ids:
        raise ReportError("the two runs tested no utterance in common")
    tests = [(h, test) for h in shared if (test := h.paired(a, b, ids)) is not None]
    untested = tuple(h.name for h in shared if all(h is not t for t, _ in tests))
    if not tests:
        raise ReportError(f"--paired: no paired test for the {', '.join(untested)} head")
    out = []
    for _, test in sorted(tests, key=lambda pair: pair[0].category):  # the category's last
        out += _bootstrap(test, a, b, ids, resamples, seed, untested)
    return out


def _bootstrap(
    test: Paired,
    a: PredictionTable,
    b: PredictionTable,
    ids: list[str],
    resamples: int,
    seed: int,
    untested: tuple[str, ...],
) -> list[PairedResult]:
    """`test.score` ([R, N] utterance counts -> [R, 2 runs, metric]) of the shared
    utterances and of `resamples` resamples of them: each metric's result."""
    observed = test.score(np.ones((1, len(ids))))  # [1, 2, metric]
    rng = np.random.default_rng(seed)
    gaps = []
    for start in range(0, resamples, CHUNK):
        draws = rng.integers(0, len(ids), size=(min(CHUNK, resamples - start), len(ids)))
        counts = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]).astype(float)
        scored = test.score(counts)  # [R, run, metric]
        gaps.append(scored[:, 1] - scored[:, 0])
    gap = np.concatenate(gaps)  # [resamples, metric]
    only_one = len(set(a.utt_id.tolist()) ^ set(b.utt_id.tolist()))
    return [
        replace(
            _result(name, observed[0, :, m], gap[:, m], len(ids), only_one, resamples, seed),
            decimals=test.decimals, legend=test.legend, untested=untested,
        )
        for m, name in enumerate(test.names)
    ]  # fmt: skip


def _result(
    name: str,
    observed: np.ndarray,
    gap: np.ndarray,
    utterances: int,
    only_one: int,
    resamples: int,
    seed: int,
) -> PairedResult:
    low, high = np.percentile(gap, [2.5, 97.5])
    p = min(1.0, 2 * min(float(np.mean(gap <= 0)), float(np.mean(gap >= 0))))
    a, b = float(observed[0]), float(observed[1])
    return PairedResult(
        name, a, b, b - a, float(low), float(high), p, utterances, only_one, resamples, seed
    )


def paired_table(label_a: str, label_b: str, results: list[PairedResult], fmt: str = "md") -> str:
    """The test's table (markdown with what it did under it, or CSV)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["metric", "a", "b", "score_a", "score_b", "gap", "low", "high", "p",
                         "utterances", "only_one", "resamples", "seed"])  # fmt: skip
        for r in results:
            scores = (f"{v:.{r.decimals}f}" for v in (r.a, r.b, r.gap, r.low, r.high))
            writer.writerow([r.metric, label_a, label_b, *scores, f"{r.p:.4f}",
                             r.utterances, r.only_one, r.resamples, r.seed])  # fmt: skip
        return buffer.getvalue()
    head = ["metric", f"A: {label_a}", f"B: {label_b}", "B - A", "95 % interval", "p"]
    rows = [
        [r.metric, f"{r.a:.{r.decimals}f}", f"{r.b:.{r.decimals}f}", f"{r.gap:+.{r.decimals}f}",
         f"[{r.low:+.{r.decimals}f}, {r.high:+.{r.decimals}f}]", r.p_text()]
        for r in results
    ]  # fmt: skip
    first = results[0]
    left = f"; {first.only_one} tested by one run only, left out" if first.only_one else ""
    legend = (
        f"paired bootstrap over the {first.utterances} utterances both runs tested{left}: "
        f"{first.resamples} resamples of utterances (generator seed {first.seed}); a run's "
        "score on an utterance: the share of its seeds' predictions that are right. p: "
        "two-sided, twice the smaller share of resamples with B - A <= 0 or >= 0."
    )
    legend += "".join(dict.fromkeys(r.legend for r in results))
    if first.untested:
        legend += f" Not tested: {', '.join(first.untested)} (the head has no paired test)."
    return "\n".join([*markdown_table(head, rows), "", legend]) + "\n"
