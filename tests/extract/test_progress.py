"""`ser extract`'s progress display: a live bar on a terminal only."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from ser.extract.progress import print_estimate, progress_bar
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
