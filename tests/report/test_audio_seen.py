"""`ser report`'s column of test audio seen in training (ser.report.audio_seen)."""

from __future__ import annotations

from ser.report.audio_seen import add_column, audio_seen_label
from ser.runs.data import AudioSeen, Data
from ser.runs.record import RunRecord


def run(name: str, seen: dict | None) -> RunRecord:
    data = Data(utterances=0, audio_seen=None if seen is None else AudioSeen(**seen))
    return RunRecord(name, {}, "loso", (), data=data)


def test_the_column_shows_where_some_run_tested_training_audio() -> None:
    runs = [
        run("heard", {"seen": 3, "tested": 120, "share": 0.025}),
        run("old", {"seen": None, "tested": 120, "unknown": "no prints"}),
        run("before", None),
    ]
    header, cells = ["name"], [["heard"], ["old"], ["before"]]
    legend = add_column(runs, header, cells, "md")
    assert header == ["name", "test audio seen in training"]
    assert [row[-1] for row in cells] == ["3/120 (2.5 %)", "?", "-"]
    assert "predates audio prints" in legend
    header, cells = ["name"], [["heard"], ["old"], ["before"]]
    add_column(runs, header, cells, "csv")
    assert header[-1] == "audio_seen" and cells[2][-1] == ""


def test_no_column_where_no_run_found_any() -> None:
    runs = [run("clean", {"seen": 0, "tested": 10, "share": 0.0}), run("old", {"seen": None,
            "tested": 10})]  # fmt: skip
    header, cells = ["name"], [["clean"], ["old"]]
    assert add_column(runs, header, cells, "md") == "" and header == ["name"]
    assert audio_seen_label(runs[1]) == "?" and audio_seen_label(run("x", None)) == ""
