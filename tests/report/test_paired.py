"""The paired bootstrap between two runs' predictions (ser.report.paired)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.heads.attribute_metrics import attribute_metrics
from ser.heads.metrics import compute_metrics
from ser.report.breakdown import run_predictions
from ser.report.paired import paired_bootstrap, paired_table
from ser.report.runs import ReportError
from ser.runs.predictions import PredictionTable, concat
from tests.report.attribute_fixtures import attribute_run

CLASSES = ("neu", "hap", "sad", "ang")


def table(
    pred: np.ndarray, gold: np.ndarray, seed: int = 0, ids: list[str] | None = None
) -> PredictionTable:
    n = len(gold)
    ids = ids or [f"u{i}" for i in range(n)]
    probs = np.eye(len(CLASSES))[pred]
    return PredictionTable.of(CLASSES, seed, "f1", ids, ["s"] * n, range(n), gold, pred, probs)


def noisy(gold: np.ndarray, wrong: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flip = rng.random(len(gold)) < wrong
    return np.where(flip, (gold + 1) % len(CLASSES), gold)


GOLD = np.random.default_rng(0).integers(0, 4, 200)


def test_the_observed_scores_are_the_runs_pooled_scores() -> None:
    a = concat([table(noisy(GOLD, 0.3, s), GOLD, seed=s) for s in (0, 1)], CLASSES)
    b = table(noisy(GOLD, 0.2, 5), GOLD)
    ua, wa = paired_bootstrap(a, b, resamples=50)
    pooled_a = compute_metrics(a.gold, a.pred, CLASSES)
    pooled_b = compute_metrics(b.gold, b.pred, CLASSES)
    assert (ua.a, ua.b) == pytest.approx((pooled_a.ua, pooled_b.ua))
    assert (wa.a, wa.b) == pytest.approx((pooled_a.wa, pooled_b.wa))
    assert ua.gap == pytest.approx(ua.b - ua.a) and ua.utterances == 200 and ua.only_one == 0


def test_a_clearly_better_run_is_significant_and_the_same_runs_are_not() -> None:
    a, b = table(noisy(GOLD, 0.5, 1), GOLD), table(noisy(GOLD, 0.1, 2), GOLD)
    ua, wa = paired_bootstrap(a, b)
    assert ua.gap > 0 and ua.low > 0 and ua.p < 0.01 and wa.p < 0.01
    assert ua.p_text() == "< 0.001" if ua.p == 0 else float(ua.p_text()) < 0.01
    same = paired_bootstrap(a, a)
    assert all(r.gap == 0 and r.p == 1 and r.low == r.high == 0 for r in same)


def test_a_fixed_seed_gives_the_same_test_and_another_seed_another() -> None:
    a, b = table(noisy(GOLD, 0.3, 1), GOLD), table(noisy(GOLD, 0.28, 2), GOLD)
    assert paired_bootstrap(a, b) == paired_bootstrap(a, b)
    assert paired_bootstrap(a, b)[0].low != paired_bootstrap(a, b, seed=1)[0].low


def test_only_shared_utterances_count_and_labels_must_agree() -> None:
    a = table(GOLD[:150], GOLD[:150])
    b = table(GOLD[50:], GOLD[50:], ids=[f"u{i}" for i in range(50, 200)])
    ua = paired_bootstrap(a, b, resamples=10)[0]
    assert (ua.utterances, ua.only_one) == (100, 100)
    other = table(GOLD, (GOLD + 1) % 4)
    with pytest.raises(ReportError, match="another gold label"):
        paired_bootstrap(table(GOLD, GOLD), other)
    with pytest.raises(ReportError, match="no utterance in common"):
        paired_bootstrap(a, table(GOLD[:5], GOLD[:5], ids=list("abcde")))
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(a, b, resamples=0)


def test_the_table_says_what_was_tested() -> None:
    a, b = table(noisy(GOLD, 0.3, 1), GOLD), table(noisy(GOLD, 0.2, 2), GOLD)
    results = paired_bootstrap(a, b, resamples=100)
    md = paired_table("base", "fused", results)
    assert md.startswith("| metric | A: base | B: fused | B - A | 95 % interval | p |")
    assert "over the 200 utterances both runs tested: 100 resamples" in md
    csv = paired_table("base", "fused", results, "csv").splitlines()
    assert csv[0].startswith("metric,a,b,score_a,score_b,gap")
    assert csv[1].startswith("UA,base,fused")


def test_attribute_runs_are_tested_on_mean_ccc(tmp_path: Path) -> None:
    weak = run_predictions(attribute_run(tmp_path, "weak", skill=0.5, seeds=2))[1]
    strong = run_predictions(attribute_run(tmp_path, "strong", skill=0.95, seeds=3))[1]
    results = paired_bootstrap(weak, strong, resamples=200)
    assert [r.metric for r in results] == ["mean CCC", "CCC arousal", "CCC valence"]
    # Observed: each run's CCC over all its seeds' predictions (the pooled CCC).
    for r, name in zip(results[1:], ("arousal", "valence"), strict=True):
        a = attribute_metrics(weak.attr_gold, weak.attr_pred, weak.attributes).scores[name]
        assert r.a == pytest.approx(a.ccc, rel=1e-9) and r.decimals == 3
    assert results[0].a == pytest.approx((results[1].a + results[2].a) / 2)
    assert results[0].gap > 0 and results[0].low > 0 and results[0].p == 0
    same = paired_bootstrap(weak, weak, resamples=50)[0]
    assert same.gap == 0 and same.p == 1.0
    text = paired_table("weak", "strong", results)
    assert f"| mean CCC | {results[0].a:.3f} | {results[0].b:.3f} |" in text
    assert "CCC: each run's CCC over every seed's predictions" in text


def test_runs_with_both_heads_are_tested_on_both(tmp_path: Path) -> None:
    a = run_predictions(attribute_run(tmp_path, "a", ("arousal",), categorical=True))[1]
    b = run_predictions(attribute_run(tmp_path, "b", ("arousal",), skill=0.3, categorical=True))
    names = [r.metric for r in paired_bootstrap(a, b[1], resamples=20)]
    assert names == ["mean CCC", "CCC arousal", "UA", "WA"]
    only = run_predictions(attribute_run(tmp_path, "only", ("arousal",)))[1]
    assert [r.metric for r in paired_bootstrap(a, only, resamples=20)] == [
        "mean CCC",
        "CCC arousal",
    ]
    moved = replace(only, attr_gold=only.attr_gold + 1)
    with pytest.raises(ReportError, match="another gold value"):
        paired_bootstrap(a, moved, resamples=20)
    valence = run_predictions(attribute_run(tmp_path, "v", ("valence",)))[1]
    with pytest.raises(ReportError, match="share no scores"):
        paired_bootstrap(only, valence, resamples=20)
    two = run_predictions(attribute_run(tmp_path, "two", ("arousal", "valence")))[1]
    shared = [r.metric for r in paired_bootstrap(two, only, resamples=20)]
    assert shared == ["mean CCC", "CCC arousal"]


def test_a_head_both_runs_have_with_no_paired_test_is_named() -> None:
    """MELD's sentiment beside the category in both runs: the category is tested, and
    the table names the sentiment head as not tested."""
    import ser.heads.sentiment  # noqa: F401  (registers the head)

    columns = ("sentiment_gold", "sentiment_negative", "sentiment_neutral", "sentiment_positive")
    base = table(noisy(GOLD, 0.3, 1), GOLD)
    cells = np.asarray([["neutral", "0.1", "0.8", "0.1"]] * len(base), dtype=str)
    both = replace(base, further=columns, cells=cells)
    results = paired_bootstrap(both, both, resamples=20)
    assert [r.metric for r in results] == ["UA", "WA"] and results[0].untested == ("sentiment",)
    text = paired_table("a", "b", results)
    assert text.rstrip().endswith("Not tested: sentiment (the head has no paired test).")
    assert "Not tested" not in paired_table("a", "b", paired_bootstrap(base, both, 20))


def test_a_head_is_found_by_its_columns_whatever_they_are_named_after_it() -> None:
    """CMU-MOSEI's emotions head names its columns per emotion (``emotions_<e>_gold``):
    the paired table still names it as not tested."""
    import ser.heads.emotion_intensities  # noqa: F401  (registers the head)

    base = table(noisy(GOLD, 0.3, 1), GOLD)
    columns = ("emotions_happy_gold", "emotions_happy")
    cells = np.asarray([["1", "0.5"]] * len(base), dtype=str)
    both = replace(base, further=columns, cells=cells)
    assert paired_bootstrap(both, both, resamples=20)[0].untested == ("emotions",)
