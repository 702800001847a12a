"""`ser report --by` and `--paired`: tables from the runs' predictions.csv."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from ser.cli import main
from ser.commands.train import summary_table
from ser.report.runs import load_run
from tests.report.attribute_fixtures import attribute_run


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(labelled_stores: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    store = labelled_stores({"is13": ("is13", "audio", "utterance", 7, "float32")})
    for name, seeds, epochs in (("one", "1", "1"), ("two", "2", "3")):
        result = ser(
            "train", "--store", store, "--features", "is13", "--fusion", "none",
            "--classes", "4", "--protocol", "session5", "--epochs", epochs, "--batch-size", "8",
            "--lr", "0.01", "--device", "cpu", "--seeds", seeds, "--out", out, "--name", name,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    return out


def test_report_breaks_runs_down_and_tests_them_paired(runs: Path) -> None:
    by = ("--by", "class", "--by", "speaker")
    result = ser("report", runs / "one", runs / "two", *by, "--paired")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("| run | features")  # the table first, as without the options
    assert "| class | n | one | two |" in out and "| neu | " in out
    assert "| speaker | n | one UA / WA | two UA / WA |" in out and "| Ses05F | " in out
    assert "| metric | A: one | B: two | B - A | 95 % interval | p |" in out
    assert "paired bootstrap over the 10 utterances both runs tested: 1000 resamples" in out
    again = ser("report", runs / "one", runs / "two", "--paired", "--format", "csv")
    assert again.exit_code == 0 and "metric,a,b,score_a" in again.stdout


def test_paired_takes_two_runs_and_needs_their_predictions(runs: Path) -> None:
    three = ser("report", runs / "one", runs / "two", runs / "one", "--paired")
    assert three.exit_code == 2 and "--paired compares two runs, got 3" in three.stderr
    (runs / "two" / "predictions.csv").rename(runs / "kept.csv")
    try:
        lost = ser("report", runs / "one", runs / "two", "--by", "class")
        assert lost.exit_code == 2 and "kept no per-utterance predictions" in lost.stderr
    finally:
        (runs / "kept.csv").rename(runs / "two" / "predictions.csv")


@pytest.mark.slow
def test_report_runs_on_attributes_with_breakdown_paired_test_and_plots(tmp_path: Path) -> None:
    va = attribute_run(tmp_path, "va", skill=0.6)
    both = attribute_run(tmp_path, "both", skill=0.9, categorical=True)
    plots = tmp_path / "plots"
    result = ser("report", va, both, "--by", "speaker", "--paired", "--plots", plots)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "| va | is13 | none | loso |" in out and "mean CCC (mean)" in out
    assert "| speaker | n | va CCC arousal / valence | both UA / WA | both CCC arousal" in out
    assert "| mean CCC | " in out and "| UA |" not in out  # va has no classes to test
    for name in ("va_attributes.png", "both_attributes.png", "both_confusion.png"):
        assert (plots / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    assert not (plots / "va_confusion.png").exists()
    by_class = ser("report", va, "--by", "class")
    assert by_class.exit_code == 2 and "none of the runs has any" in by_class.stderr


def test_the_train_summary_table_of_an_attribute_run(tmp_path: Path) -> None:
    console = Console(width=200, record=True)
    console.print(summary_table(load_run(attribute_run(tmp_path, "va", seeds=1))))
    text = console.export_text()
    assert "va (loso, attributes)" in text  # not "0 classes"
    mean = next(line for line in text.splitlines() if "│   mean │" in line)
    cells = [c.strip() for c in mean.split("│")[3:7]]
    assert cells[:3] == ["-", "-", "-"]  # no UA, WA, F1 without a class
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", cells[3])  # the CCC, 3 decimals


def test_report_calibration_table_and_reliability_diagrams(runs: Path, tmp_path: Path) -> None:
    plain = ser("report", runs / "one", runs / "two")
    result = ser("report", runs / "one", runs / "two", "--calibration", "--plots", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(plain.stdout)  # the table as without the option
    rest = result.stdout[len(plain.stdout) :]
    head = "| run | ECE (top label, 15 bins) | n | temperature | JSD to votes |"
    assert head in rest and re.search(r"\| one \| \d+\.\d\d \| 10 \| - \| - \| - \| - \|", rest)
    assert "15 equal-width bins of confidence" in rest
    for name in ("one_reliability.png", "two_reliability.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    without = ser("report", runs / "one", "--plots", tmp_path / "plain")
    assert not list((tmp_path / "plain").glob("*_reliability.png"))  # pinned plots stay
    assert without.exit_code == 0
    as_csv = ser("report", runs / "one", "--calibration", "--format", "csv")
    assert "run,ece,n,temperature,jsd_votes,jsd_majority,voted\none," in as_csv.stdout
