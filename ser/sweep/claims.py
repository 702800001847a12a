"""Whether a set of runs shows the papers' claims, with the numbers: `ser claims`.

(a) fusion beats the best single modality (MSMSER's Table 2); (b) random modality masking
helps the masked tests (a ``msmser-table3`` sweep: Full against w/o RMM); (c) a run's
attribute heads learn: each attribute's CCC on the held-out side against a constant
prediction's (0), by the same rule.

`RULE` compares the gap between the sides' means with their seeds' spread, not a rank
test: with three seeds Wilcoxon's smallest two-sided p is 0.25. With n seeds a side the
spread is at least sqrt(n) standard errors of the gap (sqrt((a² + b²) / n) <= (a + b) /
sqrt(n) for stds a, b), so seed noise rarely passes. A run on an untrained Whisper's
transcripts is no result (its text is noise): `asr_check` reports it as a check of the
ASR path. Runs trained on emotion attributes are compared on an attribute score as well:
``ccc_mean`` (the mean of the attributes' CCC), ``ccc_<attribute>`` or
``pearson_<attribute>`` (higher is better; MAE, lower, is not offered).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.errors import SerError
from ser.heads.attribute_metrics import ATTRIBUTES, MEAN
from ser.heads.attribute_report import run_attributes
from ser.heads.metrics import mean_std, mean_std_text
from ser.heads.recorded import record_heads
from ser.heads.registry import HEADS
from ser.heads.reported import shown as head_label
from ser.report.runs import asr_wer_label, run_label
from ser.runs.record import RunRecord

CATEGORICAL = ("ua", "wa", "f1")
# An attribute score of the fold entries' `attributes`, as `AttributeMetrics.flat` names it.
ATTRIBUTE_METRICS = (MEAN, *(f"{s}_{a}" for s in ("ccc", "pearson") for a in ATTRIBUTES))
METRICS = (*CATEGORICAL, *ATTRIBUTE_METRICS)
WIDTH = 92  # the summary's wrapped lines
RMM_TABLE = "msmser-table3"
# (b)'s comparisons: the test, the cell the paper says is better, the cell it beats.
RMM_PAIRS = (
    ("only text", "Full (only text)", "w/o RMM (only text)"),
    ("only audio", "Full (only audio)", "w/o RMM (only audio)"),
)
RULE = (
    "a claim is shown when the gap (mean of the side the paper says is better minus the "
    "other's) is larger than the spread (the sum of both sides' sample std over seeds); "
    "reversed when the gap is below minus the spread; else not shown. Each seed scores "
    "the mean over its folds; at least 2 seeds a side, since one seed has no spread."
)


class ClaimsError(SerError):
    """Runs or a sweep that cannot answer a claim (missing cells, no folds, no ASR)."""


@dataclass(frozen=True)
class Scores:
    """One side of a comparison: a label and its per-seed scores (percent)."""

    label: str
    values: tuple[float, ...]
    decimals: int = 2  # an attribute score's: 3

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0]

    @property
    def std(self) -> float:
        return mean_std(self.values)[1]

    def text(self) -> str:
        if self.decimals == 2:
            shown = mean_std_text(self.mean, self.std, self.n)  # one seed: "(n = 1)", no ± 0.00
            return shown if self.n == 1 else f"{shown} (n = {self.n})"
        if self.n == 1:
            return f"{self.mean:.{self.decimals}f} (n = 1)"
        return f"{self.mean:.{self.decimals}f} ± {self.std:.{self.decimals}f} (n = {self.n})"


@dataclass(frozen=True)
class Verdict:
    """`better` (the side the paper says wins) against `other`, judged by `RULE`."""

    test: str
    better: Scores
    other: Scores

    @property
    def gap(self) -> float:
        return self.better.mean - self.other.mean

    @property
    def spread(self) -> float:
        return self.better.std + self.other.std

    @property
    def status(self) -> str:
        if min(self.better.n, self.other.n) < 2:
            return "too few seeds"
        if self.gap > self.spread:
            return "shown"
        return "reversed" if self.gap < -self.spread else "not shown"


@dataclass(frozen=True)
class Claim:
    title: str
    verdicts: tuple[Verdict, ...]


@dataclass(frozen=True)
class AsrCheck:
    """A run over ASR text reported as a check of the ASR path, not as a result."""

    label: str
    asr_models: tuple[str, ...]
    wer: str  # percent, as `ser report` prints it
    ua: Scores
    chance: float


def seed_scores(run: RunRecord, metric: str = "ua", label: str | None = None) -> Scores:
    """The run's per-seed scores: each seed's mean over its folds, in seed order."""
    if not known(metric):
        raise ClaimsError(
            f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}, or a further "
            f"head's <head>_<score> ({', '.join(sorted(HEADS))})"
        )
    by_seed: dict[int, list[float]] = {}
    decimals = 2
    try:
        heads = record_heads([run])
        for entry in run.folds:  # the number of whichever head has it (`Head.number`)
            found = [(h, h.number(h.recorded(entry), metric)) for h in heads]
            head, value = next(((h, v) for h, v in found if v is not None), (None, None))
            if head is None or value is None:
                raise KeyError(metric)
            by_seed.setdefault(entry.seed, []).append(float(value))
            decimals = head.decimals
    except (KeyError, TypeError, ValueError, SerError) as e:
        raise ClaimsError(f"run {run.name!r}: a fold entry lacks its {metric} ({e})") from e
    if not by_seed:
        raise ClaimsError(f"run {run.name!r} has no finished fold")
    values = tuple(sum(v) / len(v) for _, v in sorted(by_seed.items()))
    return Scores(label or run_label(run), values, decimals)


def fusion_claim(fused: RunRecord, singles: Sequence[RunRecord], metric: str = "ua") -> Claim:
    """(a): the fused run against the single-modality run with the highest mean."""
    if not singles:
        raise ClaimsError("claim (a) needs at least one single-modality run")
    best = max((seed_scores(run, metric, _labelled(run)) for run in singles), key=lambda s: s.mean)
    verdict = Verdict(
        "fused vs best single modality", seed_scores(fused, metric, _labelled(fused)), best
    )
    return Claim("(a) fusion beats the best single modality", (verdict,))


def rmm_claim(sweep_dir: Path, metric: str = "ua") -> Claim:
    """(b): Full against w/o RMM in the msmser-table3 cells of the sweep in `sweep_dir`."""
    from ser.sweep.results import load_sweeps  # reads cell records (imports the trainer)

    cells = [r for s in load_sweeps(sweep_dir) for r in s["results"] if r.row["table"] == RMM_TABLE]
    if not cells:
        raise ClaimsError(f"{sweep_dir}: no {RMM_TABLE} cells; run `ser sweep {RMM_TABLE}`")
    verdicts = tuple(
        Verdict(test, *(_cell_scores(cells, row, metric, sweep_dir) for row in sides))
        for test, *sides in RMM_PAIRS
    )
    return Claim(f"(b) random modality masking helps the masked tests ({RMM_TABLE})", verdicts)


def attribute_claim(run: RunRecord) -> Claim:
    """(c): the run's CCC per attribute it trained, and their mean, against 0 (what a
    constant prediction scores) over its seeds."""
    scored = [a for a in run_attributes([run]) if a in ATTRIBUTES]
    if not scored:
        raise ClaimsError(f"run {run.name!r} was not trained on emotion attributes")
    verdicts = []
    for metric in (*(f"ccc_{a}" for a in scored), *((MEAN,) if len(scored) > 1 else ())):
        ours = seed_scores(run, metric, run_label(run))
        constant = Scores("a constant prediction", (0.0,) * ours.n, 3)
        verdicts.append(Verdict(metric_label(metric), ours, constant))
    return Claim(
        "(c) the attribute heads learn (CCC above a constant prediction's 0)", tuple(verdicts)
    )


def _cell_scores(cells: Sequence[Any], row: str, metric: str, where: Path) -> Scores:
    found = [c for c in cells if c.row["row"] == row and not c.row.get("column")]
    if len(found) != 1:
        many = "several cells (a --grid, or several --store?)" if found else "no cell"
        raise ClaimsError(f"{where}: {many} for {RMM_TABLE} row {row!r}; need exactly one")
    if found[0].run is None:
        raise ClaimsError(f"{where}: {RMM_TABLE} row {row!r} has not run yet")
    return seed_scores(found[0].run, metric, row)


def asr_check(run: RunRecord) -> AsrCheck:
    """The run over ASR text as a check of the ASR path: its WER and UA beside chance."""
    entries = run.asr
    if not entries:
        raise ClaimsError(f"run {run.name!r} was not trained on ASR text (no 'asr')")
    models = tuple(sorted({str(e.asr_model) for e in entries.values()}))
    chance = 100.0 / max(len(run.classes), 1)
    return AsrCheck(run_label(run), models, asr_wer_label(run), seed_scores(run, "ua"), chance)


def claims_text(claims: Sequence[Claim], asr: AsrCheck | None, metric: str | None = "ua") -> str:
    """The closing summary: the rule, each claim's numbers and verdict, the ASR check;
    `metric`: what claims (a), (b) and the ASR check score (None: none of them is made,
    each claim names its own metrics)."""
    scored = "" if metric is None else f": {metric_label(metric)}"
    head = f"The papers' claims on these runs{scored}, mean ± std over seeds."
    lines = [head, *textwrap.wrap(f"Rule: {RULE}", WIDTH)]
    for claim in claims:
        lines += ["", claim.title]
        for v in claim.verdicts:
            lines += _verdict_lines(v)
    if asr is not None:
        lines += ["", *_asr_lines(asr)]
    return "\n".join(lines) + "\n"


def known(metric: str) -> bool:
    """Whether claims compare `metric`: one of `METRICS`, or a further head's number
    (``sentiment_wf1``: `ser.heads.registry`)."""
    return metric in METRICS or metric.partition("_")[0] in HEADS


def metric_label(metric: str) -> str:
    """``UA (%)``, ``mean CCC``, ``CCC arousal``, ``Pearson's r valence``, ``sentiment
    WF1``."""
    if metric in CATEGORICAL:
        return f"{metric.upper()} (%)"
    if metric.partition("_")[0] in HEADS:
        return head_label(metric)
    if metric == MEAN:
        return "mean CCC"
    score, attribute = metric.split("_", 1)
    shown = "CCC" if score == "ccc" else "Pearson's r"
    return f"{shown} {attribute}"


def _verdict_lines(v: Verdict) -> list[str]:
    width = max(len(v.better.label), len(v.other.label))
    sides = [f"    {s.label:<{width}}  {s.text()}" for s in (v.better, v.other)]
    if v.status == "too few seeds":
        last = (
            "    one seed has no spread: it cannot show a difference "
            "(--seeds 3; sweeps: --fix seeds=3)"
        )
    else:
        d = v.better.decimals
        last = f"    gap {v.gap:+.{d}f}, spread {v.spread:.{d}f}"
    return [f"  {v.test}: {v.status.upper()}", *sides, last]


def _asr_lines(check: AsrCheck) -> list[str]:
    text = (
        f"ASR path check, not a result: {check.label}, trained on transcripts from "
        f"{', '.join(check.asr_models)} (WER {check.wer or '?'} %): UA {check.ua.text()}, "
        f"chance {check.chance:.2f}. An untrained (random) Whisper's text is noise: a WER "
        "near or above 100 % and UA near chance are expected; the run checks that the ASR "
        "path works end to end."
    )
    return textwrap.wrap(text, WIDTH)


def _labelled(run: RunRecord) -> str:
    return f"{run_label(run)} ({run.config.get('features', '?')})"
