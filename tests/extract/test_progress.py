"""`ser extract`'s progress display: a live bar on a terminal only."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from ser.extract.progress import Underway, print_estimate, progress_bar
from ser.runtime.progress import CountLines, on_terminal


def test_a_file_gets_plain_lines_even_where_rich_is_told_to_colour_it() -> None:
    # What FORCE_COLOR=1 does to `ser extract 2>log`: rich takes the file for a terminal.
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=40)
    assert console.is_terminal and not on_terminal(console)
    times = iter([0.0, 1.0, 2.0, 3.0])
    with progress_bar(console, True, 30, lambda: next(times)) as bar:
        assert isinstance(bar, CountLines)
        task = bar.add_task("logmel", total=30)
        for _ in range(3):
            bar.advance(task, 10)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()  # no cursor or colour codes in the log
    assert [line.split(" utterances")[0] for line in lines] == ["logmel: 10/30", "logmel: 30/30"]


def test_quiet_shows_nothing() -> None:
    out = io.StringIO()
    with progress_bar(Console(file=out), enabled=False) as bar:
        bar.advance(bar.add_task("hubert", total=3), 3)
    assert out.getvalue() == ""


def test_no_sets_to_write_is_no_estimate(tmp_path: Path) -> None:
    """A repair alone writes no new set: it crashed in `max()` of no sizes."""
    out = io.StringIO()
    print_estimate(Console(file=out), [], tmp_path / "f.zarr")
    assert out.getvalue() == ""
    print_estimate(Console(file=out, width=80), [("logmel80", 2**20)], tmp_path / "f.zarr")
    assert "logmel80" in out.getvalue() and "1.0 MiB" in out.getvalue()


def test_the_live_bar_shows_a_task_s_unit_in_its_rate() -> None:
    from rich.progress import Progress

    from ser.runtime.progress import RateColumn

    bar = Progress()
    bytes_task = bar.add_task("sha256", total=8, unit="MiB")
    utterances = bar.add_task("emb", total=8)
    column = RateColumn()
    assert column.render(bar.tasks[bytes_task]).plain == "-- MiB/s"
    assert column.render(bar.tasks[utterances]).plain == "-- utt/s"


def test_a_long_recording_is_said_under_way_with_what_is_left_at_the_pass_s_pace() -> None:
    """Batches (0, 1), (2,), (3,): u2 is 40 minutes, which the bar by utterances would
    stand still on. Each reading of the clock a second; the first batch's 20 s of audio
    land in 4 s (5 audio seconds a second), so u2's 2400 s take about 480."""
    now = iter(range(1000))
    underway = Underway(
        Console(file=io.StringIO()), "logmel", [(0, 1), (2,), (3,)], [10.0, 10.0, 2400.0, 5.0],
        ["u0", "u1", "u2", "u3"], frozenset({2}), after=10.0, interval=30.0,
        clock=lambda: float(next(now)),
    )  # fmt: skip
    assert underway.line() is None  # (0, 1) holds no long recording
    for _ in range(2):
        next(now)
    underway.done()  # at 4 s: u2 waited on from now
    assert underway.line() is None  # 1 s under way
    for _ in range(9):
        next(now)
    said = underway.line()  # 11 s under way
    assert said == "logmel: u2 (40:00 of audio) under way 0:11, about 7:49 left at the pass's pace"
    assert underway.line() is None  # said again only after `interval`
    for _ in range(30):
        next(now)
    assert underway.line() == (
        "logmel: u2 (40:00 of audio) under way 0:43, about 7:17 left at the pass's pace"
    )
    underway.done()
    for _ in range(20):
        next(now)
    assert underway.line() is None  # u3 is short


def test_a_first_batch_s_long_recording_has_no_pace_to_go_by() -> None:
    now = iter(range(0, 1000, 20))
    underway = Underway(
        Console(file=io.StringIO()), "is13", [(0,)], [1800.0], ["talk"], frozenset({0}),
        clock=lambda: float(next(now)),
    )  # fmt: skip
    assert (
        underway.line()
        == "is13: talk (30:00 of audio) under way 0:20 (the pass's first batch: no pace yet)"
    )
