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

>>> import numpy as np
>>> from ser.report.predictions import PredictionTable
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
from dataclasses import dataclass

import numpy as np

from ser.report.predictions import PredictionTable
from ser.report.runs import ReportError, markdown_table

RESAMPLES = 1000
SEED = 0
CHUNK = 100  # resamples scored at once: [CHUNK, utterances] counts in memory
METRICS = ("UA", "WA")


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

    def p_text(self) -> str:
        """p, or ``< 0.001`` (1 / resamples) when no resample reached the other side."""
        return f"< {1 / self.resamples:g}" if self.p == 0 else f"{self.p:.3f}"


def paired_bootstrap(
    a: PredictionTable, b: PredictionTable, resamples: int = RESAMPLES, seed: int = SEED
) -> list[PairedResult]:
    """UA and WA of B against A on their shared utterances (the module docstring)."""
    if a.classes != b.classes:
        raise ReportError("runs of different label sets cannot be compared utterance by utterance")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    held_a, held_b = set(a.utt_id.tolist()), set(b.utt_id.tolist())
    ids = sorted(held_a & held_b)
    if not ids:
        raise ReportError("the two runs tested no utterance in common")
    gold_a, score_a = _per_utterance(a, ids)
    gold_b, score_b = _per_utterance(b, ids)
    if (gold_a != gold_b).any():
        first = ids[int(np.flatnonzero(gold_a != gold_b)[0])]
        raise ReportError(f"utterance {first} has another gold label in each run")
    onehot = np.eye(len(a.classes))[gold_a]  # [N, C]
    observed = _scores(np.ones((1, len(ids))), onehot, score_a, score_b)  # [1, 2, 2]
    rng = np.random.default_rng(seed)
    gaps = []
    for start in range(0, resamples, CHUNK):
        draws = rng.integers(0, len(ids), size=(min(CHUNK, resamples - start), len(ids)))
        counts = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]).astype(float)
        scored = _scores(counts, onehot, score_a, score_b)  # [R, run, metric]
        gaps.append(scored[:, 1] - scored[:, 0])
    gap = np.concatenate(gaps)  # [resamples, metric]
    only_one = len(held_a ^ held_b)
    return [
        _result(name, observed[0, :, m], gap[:, m], len(ids), only_one, resamples, seed)
        for m, name in enumerate(METRICS)
    ]


def _per_utterance(table: PredictionTable, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Gold class [N] and the fraction of right predictions [N] of each of `ids`."""
    where = {u: i for i, u in enumerate(ids)}
    keep = np.isin(table.utt_id, ids)
    at = np.array([where[u] for u in table.utt_id[keep].tolist()], dtype=np.int64)
    hit = (table.gold[keep] == table.pred[keep]).astype(np.float64)
    right = np.bincount(at, weights=hit, minlength=len(ids))
    seen = np.bincount(at, minlength=len(ids))
    gold = np.full(len(ids), -1, dtype=np.int64)
    gold[at] = table.gold[keep]
    return gold, right / seen


def _scores(
    counts: np.ndarray, onehot: np.ndarray, score_a: np.ndarray, score_b: np.ndarray
) -> np.ndarray:
    """[R, 2 runs, (UA, WA)] of resamples given as utterance counts [R, N]."""
    support = counts @ onehot  # [R, C]
    present = support > 0
    out = []
    for score in (score_a, score_b):
        hits = counts @ (onehot * score[:, None])  # [R, C]
        recall = np.where(present, hits / np.maximum(support, 1), 0.0)
        ua = 100 * recall.sum(axis=1) / present.sum(axis=1)
        wa = 100 * hits.sum(axis=1) / counts.sum(axis=1)
        out.append(np.stack([ua, wa], axis=1))
    return np.stack(out, axis=1)


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
            scores = (f"{v:.2f}" for v in (r.a, r.b, r.gap, r.low, r.high))
            writer.writerow([r.metric, label_a, label_b, *scores, f"{r.p:.4f}",
                             r.utterances, r.only_one, r.resamples, r.seed])  # fmt: skip
        return buffer.getvalue()
    head = ["metric", f"A: {label_a}", f"B: {label_b}", "B - A", "95 % interval", "p"]
    rows = [
        [r.metric, f"{r.a:.2f}", f"{r.b:.2f}", f"{r.gap:+.2f}",
         f"[{r.low:+.2f}, {r.high:+.2f}]", r.p_text()]
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
    return "\n".join([*markdown_table(head, rows), "", legend]) + "\n"
