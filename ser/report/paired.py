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

Runs trained on emotion attributes are tested on CCC instead, on the attributes both
have: each resample keeps every seed's prediction of each utterance drawn (so the
observed CCC is the pooled one) and scores each attribute's CCC and their mean, ``mean
CCC`` first; runs with classes and attributes both get both tests.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ser.report.runs import ReportError, markdown_table
from ser.runs.predictions import PredictionTable

RESAMPLES = 1000
SEED = 0
CHUNK = 100  # resamples scored at once: [CHUNK, utterances] counts in memory
METRICS = ("UA", "WA")
CCC = ("mean CCC", "CCC ")  # the attribute tests' metric names start so


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

    def p_text(self) -> str:
        """p, or ``< 0.001`` (1 / resamples) when no resample reached the other side."""
        return f"< {1 / self.resamples:g}" if self.p == 0 else f"{self.p:.3f}"


def paired_bootstrap(
    a: PredictionTable, b: PredictionTable, resamples: int = RESAMPLES, seed: int = SEED
) -> list[PairedResult]:
    """B against A on their shared utterances (the module docstring): UA and WA where
    both have classes, mean CCC and each attribute's where both have attributes."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    categorical = bool(a.classes and b.classes)
    if categorical and a.classes != b.classes:
        raise ReportError("runs of different label sets cannot be compared utterance by utterance")
    shared = tuple(name for name in a.attributes if name in b.attributes)
    if not categorical and not shared:
        raise ReportError("the two runs share no scores to compare: classes or attributes")
    held_a, held_b = set(a.utt_id.tolist()), set(b.utt_id.tolist())
    ids = sorted(held_a & held_b)
    if not ids:
        raise ReportError("the two runs tested no utterance in common")
    out = _categorical(a, b, ids, resamples, seed) if categorical else []
    if shared:
        out = _attributes(a, b, shared, ids, resamples, seed) + out
    return out


def _categorical(
    a: PredictionTable, b: PredictionTable, ids: list[str], resamples: int, seed: int
) -> list[PairedResult]:
    """UA and WA (module docstring)."""
    gold_a, score_a = _per_utterance(a, ids)
    gold_b, score_b = _per_utterance(b, ids)
    if (gold_a != gold_b).any():
        first = ids[int(np.flatnonzero(gold_a != gold_b)[0])]
        raise ReportError(f"utterance {first} has another gold label in each run")
    onehot = np.eye(len(a.classes))[gold_a]  # [N, C]
    return _bootstrap(
        lambda counts: _scores(counts, onehot, score_a, score_b), METRICS, a, b, ids,
        resamples, seed,
    )  # fmt: skip


def _attributes(
    a: PredictionTable,
    b: PredictionTable,
    shared: tuple[str, ...],
    ids: list[str],
    resamples: int,
    seed: int,
) -> list[PairedResult]:
    """Mean CCC, then each attribute's CCC, of the attributes both runs have (module
    docstring)."""
    sums_a, sums_b = _attribute_sums(a, shared, ids), _attribute_sums(b, shared, ids)
    gold_a, gold_b = (s[..., 1] / np.maximum(s[..., 0], 1) for s in (sums_a, sums_b))
    differs = ~np.isclose(gold_a, gold_b, atol=1e-6) & (sums_a[..., 0] > 0) & (sums_b[..., 0] > 0)
    if differs.any():
        first = ids[int(np.flatnonzero(differs.any(axis=0))[0])]
        raise ReportError(f"utterance {first} has another gold value in each run")
    names = ("mean CCC", *(f"CCC {name}" for name in shared))
    return _bootstrap(
        lambda counts: _ccc_scores(counts, sums_a, sums_b), names, a, b, ids, resamples,
        seed, decimals=3,
    )  # fmt: skip


def _bootstrap(
    score: Callable[[np.ndarray], np.ndarray],
    names: Sequence[str],
    a: PredictionTable,
    b: PredictionTable,
    ids: list[str],
    resamples: int,
    seed: int,
    decimals: int = 2,
) -> list[PairedResult]:
    """`score` ([R, N] utterance counts -> [R, 2 runs, metric]) of the shared utterances
    and of `resamples` resamples of them: each metric's result."""
    observed = score(np.ones((1, len(ids))))  # [1, 2, metric]
    rng = np.random.default_rng(seed)
    gaps = []
    for start in range(0, resamples, CHUNK):
        draws = rng.integers(0, len(ids), size=(min(CHUNK, resamples - start), len(ids)))
        counts = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]).astype(float)
        scored = score(counts)  # [R, run, metric]
        gaps.append(scored[:, 1] - scored[:, 0])
    gap = np.concatenate(gaps)  # [resamples, metric]
    only_one = len(set(a.utt_id.tolist()) ^ set(b.utt_id.tolist()))
    return [
        replace(
            _result(name, observed[0, :, m], gap[:, m], len(ids), only_one, resamples, seed),
            decimals=decimals,
        )
        for m, name in enumerate(names)
    ]


def _attribute_sums(table: PredictionTable, names: tuple[str, ...], ids: list[str]) -> np.ndarray:
    """[A, N, 6]: per attribute of `names` and utterance of `ids`, over its rows (seeds)
    with a gold value: count, sums of gold, pred, gold², pred², gold x pred."""
    where = {u: i for i, u in enumerate(ids)}
    keep = np.isin(table.utt_id, ids)
    at = np.array([where[u] for u in table.utt_id[keep].tolist()], dtype=np.int64)
    out = np.zeros((len(names), len(ids), 6))
    for k, name in enumerate(names):
        column = table.attributes.index(name)
        g, p = table.attr_gold[keep, column], table.attr_pred[keep, column]
        has = ~np.isnan(g)
        g, p, rows = g[has], p[has], at[has]
        for j, values in enumerate((np.ones_like(g), g, p, g * g, p * p, g * p)):
            out[k, :, j] = np.bincount(rows, weights=values, minlength=len(ids))
    return out


def _ccc_scores(counts: np.ndarray, sums_a: np.ndarray, sums_b: np.ndarray) -> np.ndarray:
    """[R, 2 runs, (mean CCC, CCC per attribute)] of resamples as utterance counts [R, N]."""
    out = []
    for sums in (sums_a, sums_b):
        n, sg, sp, sgg, spp, sgp = np.moveaxis(counts @ sums, -1, 0)  # each [A, R]
        mg, mp = sg / n, sp / n
        var_g, var_p, cov = sgg / n - mg**2, spp / n - mp**2, sgp / n - mg * mp
        ccc = (2 * cov / (var_g + var_p + (mg - mp) ** 2)).T  # [R, A]
        out.append(np.concatenate([ccc.mean(axis=1, keepdims=True), ccc], axis=1))
    return np.stack(out, axis=1)


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
    if any(r.metric.startswith(CCC) for r in results):
        legend += (
            " CCC: each run's CCC over every seed's predictions of the utterances drawn "
            "(those with a gold value); mean CCC: over the attributes."
        )
    return "\n".join([*markdown_table(head, rows), "", legend]) + "\n"
