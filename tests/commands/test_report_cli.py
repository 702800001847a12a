"""`ser report --by` and `--paired`: tables from the runs' predictions.csv."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ser.cli import main
from tests.stores import labelled_store


def ser(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    store = out / "features.zarr"
    labelled_store(store, {"is13": ("is13", "audio", "utterance", 7, "float32")})
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
