"""`ser claims` through click's runner, on run folders written by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ser.cli import main
from tests.report.attribute_fixtures import attribute_run

ASR = {"mpnet@asr-w": {"transcripts": "asr-w", "asr_model": "tiny-whisper", "wer": 0.98}}


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def run_dir(out: Path, name: str, uas: list[float], **extra: Any) -> Path:
    """``<out>/<name>/run.json`` whose seed s scored uas[s] (UA) on its one fold."""
    folds = [{"seed": s, "fold": "session5", "metrics": {"ua": ua, "wa": ua}}
             for s, ua in enumerate(uas)]  # fmt: skip
    record = {"name": name, "config": {"features": name}, "protocol": "session5",
              "classes": ["ang", "hap", "neu", "sad"], "folds": folds, **extra}  # fmt: skip
    (out / name).mkdir(parents=True)
    (out / name / "run.json").write_text(json.dumps(record))
    return out / name


def test_claims_prints_the_rule_the_verdict_and_the_asr_check(tmp_path: Path) -> None:
    result = ser(
        "claims",
        "--fused", run_dir(tmp_path, "mit", [70.0, 71.0, 72.0]),
        "--single", run_dir(tmp_path, "audio", [40.0, 41.0, 42.0]),
        "--single", run_dir(tmp_path, "text", [69.0, 71.0, 73.0]),
        "--asr-check", run_dir(tmp_path, "asr_check", [25.0, 26.0, 24.0], asr=ASR),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Rule: a claim is shown when the gap" in result.output
    assert "fused vs best single modality: NOT SHOWN" in result.output  # text: gap 0
    assert "text (text)  71.00 ± 2.00 (n = 3)" in result.output
    flat = " ".join(result.output.split())  # the ASR check is wrapped text
    assert "ASR path check, not a result: asr_check" in flat and "(WER 98.00 %)" in flat


def test_claims_metric_option_reads_that_metric(tmp_path: Path) -> None:
    fused = run_dir(tmp_path, "mit", [70.0, 72.0])
    single = run_dir(tmp_path, "text", [60.0, 62.0])
    result = ser("claims", "--fused", fused, "--single", single, "--metric", "wa")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("The papers' claims on these runs: WA (%)")


def test_claims_needs_both_sides_of_a_and_something_to_do(tmp_path: Path) -> None:
    fused = run_dir(tmp_path, "mit", [70.0])
    assert "needs --fused and at least one --single" in ser("claims", "--fused", fused).output
    assert ser("claims").exit_code == 2


def test_claims_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    result = ser("claims", "--asr-check", run_dir(tmp_path, "gold", [60.0]))
    assert result.exit_code == 2
    assert result.output.strip() == "error: run 'gold' was not trained on ASR text (no 'asr')"


def test_claims_on_an_attribute_score(tmp_path: Path) -> None:
    fused = attribute_run(tmp_path, "fused", skill=0.95, seeds=3)
    single = attribute_run(tmp_path, "single", skill=0.3, seeds=3)
    result = ser("claims", "--fused", fused, "--single", single, "--metric", "ccc_mean")
    assert result.exit_code == 0, result.output
    assert "claims on these runs: mean CCC" in result.stdout and "SHOWN" in result.stdout


def test_claims_on_attribute_heads_learning(tmp_path: Path) -> None:
    run = attribute_run(tmp_path, "attributes", skill=0.9, seeds=3)
    result = ser("claims", "--attributes", run)
    assert result.exit_code == 0, result.output
    assert "(c) the attribute heads learn" in result.stdout
    # no claim scored by --metric was made: the heading names none (it said "UA (%)")
    assert result.stdout.startswith("The papers' claims on these runs, mean ± std")
    assert "mean CCC: SHOWN" in result.stdout and "a constant prediction" in result.stdout
    refused = ser("claims", "--attributes", run_dir(tmp_path, "cat", [60.0, 61.0]))
    assert refused.exit_code != 0 and "not trained on emotion attributes" in refused.output
