"""`ser.sweep.claims`: per-seed scores, the rule's verdicts, and the summary's wording.

Run records and a sweep folder are written by hand with only the fields the module reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ser.heads.attribute_metrics import AttributeMetrics
from ser.heads.metrics import Metrics
from ser.runs.fold_entry import FoldEntry
from ser.runs.record import RunRecord
from ser.sweep.claims import (
    RMM_PAIRS,
    RULE,
    ClaimsError,
    Scores,
    Verdict,
    asr_check,
    attribute_claim,
    claims_text,
    fusion_claim,
    rmm_claim,
    seed_scores,
)


def record_json(name: str, uas: list[float], folds: int = 1, **extra: Any) -> dict[str, Any]:
    """A run.json whose seed s scored uas[s] on each of its `folds` folds (wa = ua - 1)."""
    entries = [{"seed": s, "fold": f"f{f}", "metrics": {"ua": ua, "wa": ua - 1.0}}
               for s, ua in enumerate(uas) for f in range(folds)]  # fmt: skip
    return {"name": name, "config": {"features": name}, "protocol": "session5",
            "classes": ["ang", "hap", "neu", "sad"], "folds": entries, **extra}  # fmt: skip


def run(name: str, uas: list[float], folds: int = 1, **extra: Any) -> RunRecord:
    """`record_json`'s record, as the record's reader gives it."""
    return RunRecord.from_json(record_json(name, uas, folds, **extra))


def verdict(better: list[float], other: list[float]) -> Verdict:
    return Verdict("t", Scores("a", tuple(better)), Scores("b", tuple(other)))


def test_seed_scores_average_each_seeds_folds_in_seed_order() -> None:
    record = run("r", [0, 0])
    folds = (
        FoldEntry(2, "a", Metrics.from_json({"ua": 60.0})),
        FoldEntry(1, "a", Metrics.from_json({"ua": 50.0})),
        FoldEntry(2, "b", Metrics.from_json({"ua": 70.0})),
    )
    record = replace(record, folds=folds)
    assert seed_scores(record).values == (50.0, 65.0)
    assert seed_scores(run("r", [60.0, 62.0]), "wa").values == (59.0, 61.0)


def test_seed_scores_refuse_a_run_without_folds_or_an_unknown_metric() -> None:
    with pytest.raises(ClaimsError, match="no finished fold"):
        seed_scores(run("r", []))
    with pytest.raises(ClaimsError, match="unknown metric"):
        seed_scores(run("r", [60.0]), "acc")
    with pytest.raises(ClaimsError, match="lacks its ua"):
        seed_scores(RunRecord("r", {}, "loso", [], folds=[FoldEntry(0, "f1")]))


def test_the_rule_needs_the_gap_above_the_summed_spread() -> None:
    # sample stds 1.0 each: spread 2.0
    assert verdict([62.0, 63.0, 64.0], [58.0, 59.0, 60.0]).status == "shown"  # gap 4.0
    assert verdict([61.0, 62.0, 63.0], [59.0, 60.0, 61.0]).status == "not shown"  # 2.0: not above
    assert verdict([58.0, 59.0, 60.0], [62.0, 63.0, 64.0]).status == "reversed"  # gap -4.0
    assert verdict([70.0], [50.0]).status == "too few seeds"  # one seed has no spread
    v = verdict([62.0, 63.0, 64.0], [58.0, 59.0, 60.0])
    assert (v.gap, v.spread) == pytest.approx((4.0, 2.0))


def test_fusion_claim_compares_with_the_best_single_modality() -> None:
    claim = fusion_claim(
        run("mit", [70.0, 72.0, 71.0]),
        [run("audio_only", [40.0, 41.0, 42.0]), run("text_only", [60.0, 61.0, 62.0])],
    )
    (v,) = claim.verdicts
    assert v.other.label == "text_only (text_only)" and v.status == "shown"
    with pytest.raises(ClaimsError, match="single-modality"):
        fusion_claim(run("mit", [70.0]), [])


def write_sweep(out: Path, uas: Mapping[str, list[float] | None], grid: int = 1) -> Path:
    """A msmser-table3 sweep folder: row label -> per-seed UAs (None: not run)."""
    cells = []
    for i, (label, values) in enumerate(uas.items()):
        for g in range(grid):
            key = f"cell{i}_{g}"
            cells.append({"table": "msmser-table3", "label": label, "row": label,
                          "column": None, "key": key})  # fmt: skip
            if values is not None:
                path = out / "cells" / key / "run.json"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps(record_json(label, values)))
    (out / "sweeps").mkdir(parents=True)
    manifest = {"name": "msmser-table3", "tables": [], "cells": cells}
    (out / "sweeps" / "msmser-table3.json").write_text(json.dumps(manifest))
    return out


TABLE3 = {
    "Full (only text)": [60.0, 61.0, 62.0],
    "w/o RMM (only text)": [50.0, 51.0, 52.0],
    "Full (only audio)": [45.0, 50.0, 55.0],
    "w/o RMM (only audio)": [44.0, 49.0, 54.0],
}


def test_rmm_claim_reads_full_against_without_rmm_per_masked_test(tmp_path: Path) -> None:
    claim = rmm_claim(write_sweep(tmp_path / "sweep", TABLE3))
    text, audio = claim.verdicts
    assert [v.test for v in claim.verdicts] == [test for test, _, _ in RMM_PAIRS]
    assert (text.better.label, text.other.label) == ("Full (only text)", "w/o RMM (only text)")
    assert text.status == "shown" and audio.status == "not shown"  # gap 1 < spread 10


def test_rmm_claim_names_missing_unrun_and_repeated_cells(tmp_path: Path) -> None:
    partial = {k: v for k, v in TABLE3.items() if k != "w/o RMM (only audio)"}
    with pytest.raises(ClaimsError, match="no cell for msmser-table3 row 'w/o RMM"):
        rmm_claim(write_sweep(tmp_path / "a", partial))
    with pytest.raises(ClaimsError, match="has not run yet"):
        rmm_claim(write_sweep(tmp_path / "b", {**TABLE3, "Full (only text)": None}))
    with pytest.raises(ClaimsError, match="several cells"):
        rmm_claim(write_sweep(tmp_path / "c", TABLE3, grid=2))
    with pytest.raises(ClaimsError, match="no msmser-table3 cells"):
        rmm_claim(write_sweep(tmp_path / "d", {}))


ASR = {"mpnet@asr-w": {"transcripts": "asr-w", "asr_model": "tiny-whisper", "wer": 1.25}}


def test_asr_check_reports_wer_and_chance_and_refuses_gold_runs() -> None:
    check = asr_check(run("asr_check", [26.0, 24.0], asr=ASR))
    assert (check.asr_models, check.wer, check.chance) == (("tiny-whisper",), "125.00", 25.0)
    assert check.ua.values == (26.0, 24.0)
    with pytest.raises(ClaimsError, match="not trained on ASR text"):
        asr_check(run("gold", [60.0]))


def test_the_summary_states_the_rule_each_verdict_and_labels_the_asr_run_a_check() -> None:
    claim = fusion_claim(run("mit", [70.0, 72.0]), [run("text_only", [60.0, 62.0])])
    text = claims_text([claim], asr_check(run("asr_check", [26.0, 24.0], asr=ASR)))
    assert " ".join(text.split()).count(" ".join(f"Rule: {RULE}".split())) == 1
    assert (
        "  fused vs best single modality: SHOWN\n"
        "    mit (mit)              71.00 ± 1.41 (n = 2)\n"
        "    text_only (text_only)  61.00 ± 1.41 (n = 2)\n"
        "    gap +10.00, spread 2.83\n"
    ) in text
    flat = " ".join(text.split())
    assert "ASR path check, not a result: asr_check, trained on transcripts from" in flat
    assert "tiny-whisper (WER 125.00 %): UA 25.00 ± 1.41 (n = 2), chance 25.00." in flat


def test_one_seed_is_said_to_show_nothing() -> None:
    claim = fusion_claim(run("mit", [90.0]), [run("text_only", [10.0])])
    text = claims_text([claim], None)
    fused = f"    {'mit (mit)':<21}  90.00 (n = 1)\n"  # padded to 'text_only (text_only)'
    assert f"fused vs best single modality: TOO FEW SEEDS\n{fused}" in text
    assert "one seed has no spread: it cannot show a difference (--seeds 3; sweeps: --fix" in text
    assert "ASR path check" not in text


def attribute_record(name: str, cccs: list[float], arousal_only: bool = False) -> RunRecord:
    """A run on attributes alone whose seed s scored CCC cccs[s] on arousal (valence 0.2
    less) on each of two folds."""

    def scores(c: float) -> dict[str, Any]:
        both = {"arousal": c, "valence": c - 0.2}
        kept = {"arousal": c} if arousal_only else both
        return {a: {"ccc": v, "pearson": v + 0.1, "mae": 1 - v, "n": 20} for a, v in kept.items()}

    entries = [FoldEntry(s, f"f{f}", attributes=AttributeMetrics.from_json(scores(c), "test"))
               for s, c in enumerate(cccs) for f in range(2)]  # fmt: skip
    return RunRecord(name, {"features": name}, "loso", [], folds=entries)


def test_claims_compare_runs_on_attribute_scores() -> None:
    fused = attribute_record("mit", [0.70, 0.72, 0.71])
    singles = [attribute_record("audio", [0.60, 0.61, 0.62]), attribute_record("text", [0.5] * 3)]
    assert seed_scores(fused, "ccc_mean").values == pytest.approx((0.6, 0.62, 0.61))
    assert seed_scores(fused, "pearson_valence").values == pytest.approx((0.6, 0.62, 0.61))
    claim = fusion_claim(fused, singles, "ccc_arousal")
    (v,) = claim.verdicts
    assert v.other.label.startswith("audio") and v.status == "shown"
    text = claims_text([claim], None, "ccc_arousal")
    assert "claims on these runs: CCC arousal, mean ± std" in text
    assert "0.710 ± 0.010 (n = 3)" in text and "gap +0.100, spread 0.020" in text
    assert "mean CCC," in claims_text([fusion_claim(fused, singles, "ccc_mean")], None, "ccc_mean")
    with pytest.raises(ClaimsError, match="lacks its ccc_valence"):
        seed_scores(attribute_record("a", [0.5], arousal_only=True), "ccc_valence")
    with pytest.raises(ClaimsError, match="lacks its ua"):
        seed_scores(fused, "ua")  # a run on attributes alone has no categorical score


def test_attribute_heads_learning_against_a_constant_prediction() -> None:
    learnt = attribute_claim(attribute_record("mlp", [0.40, 0.45, 0.50]))
    assert [v.test for v in learnt.verdicts] == ["CCC arousal", "CCC valence", "mean CCC"]
    assert [v.status for v in learnt.verdicts] == ["shown", "shown", "shown"]
    assert learnt.verdicts[0].other.values == (0.0, 0.0, 0.0)
    noise = attribute_claim(attribute_record("noise", [0.25, -0.05, 0.10], arousal_only=True))
    (only,) = noise.verdicts  # one attribute: no mean of them
    assert only.status == "not shown"  # gap 0.10 below the spread 0.15
    text = claims_text([learnt], None)
    assert "(c) the attribute heads learn" in text and "gap +0.450, spread 0.050" in text
    with pytest.raises(ClaimsError, match="not trained on emotion attributes"):
        attribute_claim(
            RunRecord(
                "c", {}, "loso", ["neu"], folds=[FoldEntry(0, "f", Metrics.from_json({"ua": 1.0}))]
            )
        )
