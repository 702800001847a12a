"""Records as every earlier version of ser wrote them (tests/runs/fixtures/, its README
names the commit that wrote each): each reads, reports what the ser before `ser.runs`
printed for it (`report.csv`, `by_class.txt`: captured from that ser), and a
read -> write -> read round trip keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.runs.migrate import FORMAT, current
from ser.runs.predictions import PREDICTIONS, predictions_csv, read_predictions
from ser.runs.record import RECORD, read, write

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = sorted(p.parent.name for p in FIXTURES.glob(f"*/{RECORD}"))
WITH_PREDICTIONS = sorted(p.parent.name for p in FIXTURES.glob(f"*/{PREDICTIONS}"))


def report(*args: str | Path) -> str:
    result = CliRunner().invoke(main, ["report", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_format_has_a_fixture() -> None:
    formats = {json.loads((FIXTURES / n / RECORD).read_text()).get("format", 1) for n in RUNS}
    assert formats == set(range(1, FORMAT + 1))
    assert len(RUNS) == 7 and len(WITH_PREDICTIONS) == 5


@pytest.mark.parametrize("name", RUNS)
def test_a_record_reports_as_before(name: str) -> None:
    run = FIXTURES / name
    assert report(run, "--format", "csv") == (run / "report.csv").read_text()


@pytest.mark.parametrize("name", WITH_PREDICTIONS)
def test_its_predictions_break_down_as_before(name: str) -> None:
    run = FIXTURES / name
    assert report(run, "--by", "class") == (run / "by_class.txt").read_text()


@pytest.mark.parametrize("name", RUNS)
def test_every_key_reads_into_its_field(name: str) -> None:
    """Written back, a record is its file brought to today's format, key for key and
    value for value: every key was read (none lost, none invented)."""
    path = FIXTURES / name / RECORD
    made = current(json.loads(path.read_text()), path)
    assert _text(read(path).to_json()) == _text(made)
    assert read(path).extra == {} and all(e.extra == {} for e in read(path).folds)


def _text(obj: object) -> str:
    return json.dumps(obj, sort_keys=True)  # NaN as NaN: equal to itself


@pytest.mark.parametrize("name", RUNS)
def test_a_round_trip_keeps_it(name: str, tmp_path: Path) -> None:
    record = read(FIXTURES / name / RECORD)
    assert record.folds and record.summary is not None
    again = read(write(tmp_path / RECORD, record))
    assert again == record
    written = json.loads((tmp_path / RECORD).read_text())
    assert written["format"] == FORMAT and written == record.to_json()
    assert report(tmp_path, "--format", "csv") == (FIXTURES / name / "report.csv").read_text()


@pytest.mark.parametrize("name", WITH_PREDICTIONS)
def test_its_predictions_round_trip(name: str) -> None:
    path = FIXTURES / name / PREDICTIONS
    assert predictions_csv(read_predictions(path)) == path.read_text()
