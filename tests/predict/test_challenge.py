"""`ser predict --challenge-csv`: the MSP-Podcast challenge's submission file, task 1
(FileName,EmoClass) or task 2 (FileName,EmoAct,EmoVal,EmoDom), picked from the run."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.corpus.kinds.msp_podcast import PRIMARY
from ser.errors import ConfigError
from ser.predict.challenge import challenge_csv, task_of


def _row(name: str, label: str | None = None, error: str | None = None, **values: float):  # type: ignore[no-untyped-def]
    return SimpleNamespace(path=f"/x/{name}", label=label, attributes=values, error=error,
                           start=None)  # fmt: skip


def _result(classes=(), attributes=(), rows=()):  # type: ignore[no-untyped-def]
    return SimpleNamespace(classes=tuple(classes), attributes=tuple(attributes),
                           predictions=list(rows))  # fmt: skip


def test_task_1_writes_the_letter_of_each_of_the_8_classes() -> None:
    rows = [_row(f"f{i}.wav", code) for i, code in enumerate(PRIMARY)]
    text = challenge_csv(_result(PRIMARY, rows=rows[::-1]))
    lines = text.splitlines()
    assert lines[0] == "FileName,EmoClass"
    assert lines[1:] == [f"f{i}.wav,{letter}" for i, letter in enumerate("ASHUFDCN")]


def test_task_2_writes_the_attributes_on_the_1_to_7_scale() -> None:
    rows = [_row("b.wav", arousal=3.25, valence=8.0, dominance=0.5), _row("a.wav", arousal=4,
            valence=2, dominance=3)]  # fmt: skip
    attributes = ("arousal", "valence", "dominance")
    lines = challenge_csv(_result(attributes=attributes, rows=rows)).splitlines()
    assert lines == [
        "FileName,EmoAct,EmoVal,EmoDom",
        "a.wav,4.0000,2.0000,3.0000",
        "b.wav,3.2500,7.0000,1.0000",  # clipped to the challenge's scale
    ]


def test_runs_that_answer_no_task_or_another_class_set_are_refused() -> None:
    with pytest.raises(ConfigError, match="neither the emotion category"):
        task_of(_result(attributes=("arousal",)))
    with pytest.raises(ConfigError, match=r"8 primary emotions.*ang hap neu sad"):
        task_of(_result(("ang", "hap", "neu", "sad")))
    both = _result(PRIMARY, ("arousal", "valence", "dominance"))
    with pytest.raises(ConfigError, match="answers both tasks"):
        task_of(both)
    assert task_of(both, "1") == "1" and task_of(both, "2") == "2"
    with pytest.raises(ConfigError, match=r"--challenge-task 2"):
        task_of(_result(PRIMARY), "2")


def test_failed_or_repeated_files_write_no_submission() -> None:
    with pytest.raises(ConfigError, match=r"1 file.*not predicted.*no submission"):
        challenge_csv(_result(PRIMARY, rows=[_row("a.wav", "neu"), _row("b.wav", error="bad")]))
    with pytest.raises(ConfigError, match=r"given twice: a.wav"):
        challenge_csv(_result(PRIMARY, rows=[_row("a.wav", "neu"), _row("a.wav", "ang")]))


def _cli(run: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["predict", "--run", str(run), "--device", "cpu", *args])


def test_an_attribute_run_writes_task_2(attribute_run, trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "task2.csv"
    wavs = trained_run.wavs[:3]
    result = _cli(attribute_run, *wavs, "--text", "hi", "--challenge-csv", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["FileName"] for r in rows] == sorted(Path(w).name for w in wavs)
    assert all(1 <= float(r[c]) <= 7 for r in rows for c in ("EmoAct", "EmoVal", "EmoDom"))


def test_a_run_on_another_class_set_is_refused_in_one_line(both_run, trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "t.csv"
    args = [trained_run.wavs[0], "--text", "hi", "--challenge-csv", str(out)]
    result = _cli(both_run, *args)
    assert result.exit_code == 2 and "answers both tasks" in result.output
    assert "checkpoint(s), features" not in result.output  # refused before any prediction
    result = _cli(both_run, *args, "--challenge-task", "1")
    assert result.exit_code == 2 and "8 primary emotions" in result.output and not out.exists()
    assert _cli(both_run, *args, "--challenge-task", "2").exit_code == 0 and out.exists()
    result = _cli(both_run, *args, "--segment", "fixed:1")
    assert result.exit_code == 2 and "leave --segment out" in result.output
