"""Training progress: the heartbeat during long epochs (an injected clock), the loop's step
hooks, stages, and what a stacked fold's seconds are."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.models import ModelConfig
from ser.runtime.progress import EpochLines
from ser.track.progress import Heartbeat, Progress
from ser.train.recipe import train

from .conftest import small_config


class Recorder(Progress):
    """Every hook call, in order; heartbeat lines apart."""

    def __init__(self, shows_epochs: bool = False) -> None:
        self.shows_epochs = shows_epochs
        self.calls: list[tuple[Any, ...]] = []
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.calls.append(("message", text))

    def stage(self, n: int, total: int, name: str) -> None:
        self.calls.append(("stage", n, total, name))

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        self.calls.append(("epoch", epoch, epochs))

    def step(self, phase: str, done: int, total: int | None) -> None:
        self.calls.append(("step", phase, done, total))

    def heartbeat(self, text: str) -> None:
        self.lines.append(text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def beat(heart: Heartbeat, clock: Clock, at: float, phase: str, done: int, total: int) -> None:
    clock.now = at
    heart.step(phase, done, total)


def test_a_long_first_epoch_gets_an_early_estimate_then_a_line_a_minute() -> None:
    clock, inner = Clock(), Recorder(shows_epochs=True)
    heart = Heartbeat(inner, interval=60, first=15, clock=clock)
    heart.fold_start(0, "fold1", epochs=4)
    beat(heart, clock, 5, "train", 1, 10)
    beat(heart, clock, 13, "train", 2, 10)
    assert inner.lines == []  # 13 s in: nothing yet
    beat(heart, clock, 21, "train", 3, 10)
    # 8 s a step (step 1 held 5 s of it: set-up under a step, said as none) x 10 steps x 4
    # epochs, 3 steps done: 37 steps, 4:56 left
    assert inner.lines == [
        "seed 0 fold1: epoch 1/4, training step 3/10, 8.00 s a step, set-up 0:00, "
        "elapsed 0:21, eta ~4:56"
    ]
    beat(heart, clock, 80, "train", 9, 10)  # 59 s after the last line
    beat(heart, clock, 82, "train", 10, 10)
    beat(heart, clock, 84, "val", 1, 2)
    assert len(inner.lines) == 2 and "training step 10/10" in inner.lines[1]
    clock.now = 85.0
    heart.epoch(1, 4, 1.0, 50.0)  # the front end shows it: the minute starts again
    beat(heart, clock, 144, "train", 5, 10)
    assert len(inner.lines) == 2
    beat(heart, clock, 146, "val", 2, 2)
    # epoch 1 took 85 - 5 + 8 = 88 s without its set-up: 3 more take 264, 61 of them
    # spent; a validation step took 1 s
    assert inner.lines[2] == (
        "seed 0 fold1: epoch 2/4, validation step 2/2, 1.00 s a step, elapsed 2:26, eta ~3:23"
    )
    assert ("step", "val", 2, 2) in inner.calls  # every hook reaches the front end


def test_a_first_step_100x_the_others_leaves_the_eta_right_and_says_the_set_up() -> None:
    """The first ETA was timed on step 1, which holds the set-up: "eta ~2:07:09" for an
    88-second fold."""
    clock, inner = Clock(), Recorder(shows_epochs=True)
    heart = Heartbeat(inner, interval=60, first=0, clock=clock)
    heart.fold_start(0, "fold1", epochs=4)
    beat(heart, clock, 10.0, "train", 1, 100)
    assert inner.lines == []  # no steady step timed yet: no estimate from step 1
    beat(heart, clock, 10.1, "train", 2, 100)
    # 0.1 s a step, 398 training steps left: 40 s (step 1's pace said 2010 s)
    assert inner.lines == [
        "seed 0 fold1: epoch 1/4, training step 2/100, 0.10 s a step, set-up 0:10, "
        "elapsed 0:10, eta ~0:40"
    ]
    for done in range(3, 101):
        beat(heart, clock, 10.0 + 0.1 * (done - 1), "train", done, 100)
    clock.now = 20.9  # 1 s of validation: 11 s an epoch without the set-up
    heart.epoch(1, 4, 1.0, 50.0)
    assert heart.left(20.9) == pytest.approx(3 * 11.0)  # not 3 x 20.9 (its set-up in each)


def test_epoch_lines_leave_the_set_up_out_of_their_eta() -> None:
    said: list[str] = []
    clock = Clock()
    lines = EpochLines(said.append, interval=0, clock=clock)
    lines.start("seed 0 fold1")
    for done in range(1, 101):  # set-up and step 1: 10 s; then 0.1 s a step
        clock.now = 10.0 + 0.1 * (done - 1)
        lines.step("train", done)
    clock.now = 20.9  # 1 s of validation
    lines.epoch(1, 10, 1.0, 50.0)
    # 9 epochs of 11 s: 1:39 (timed from the fold's start: 9 x 20.9 s, 3:08)
    assert said == [
        "seed 0 fold1: epoch 1/10  loss 1.000  val UA 50.0  set-up 0:10  elapsed 0:21  eta 1:39"
    ]


def test_messages_and_heartbeat_lines_reach_the_front_end() -> None:
    inner = Recorder()
    heart = Heartbeat(inner, clock=Clock())
    heart.message("dropped 1 utterance(s): no rows")
    heart.heartbeat("a line")
    assert inner.calls == [("message", "dropped 1 utterance(s): no rows")]
    assert inner.lines == ["a line"]


def test_each_stage_has_its_own_clock_and_eta() -> None:
    clock, inner = Clock(), Recorder()
    heart = Heartbeat(inner, interval=60, first=15, clock=clock)
    heart.fold_start(0, "fold1", epochs=2)
    beat(heart, clock, 30, "train", 1, 4)  # stage 1's steps: 10 s each
    beat(heart, clock, 40, "train", 2, 4)
    clock.now = 100.0
    heart.stage(2, 3, "text alone")
    for done in range(1, 5):  # its first step 11 s, then 3 s each: its own pace
        beat(heart, clock, 108 + 3 * done, "train", done, 4)
    assert inner.lines[-1] == (
        "seed 0 fold1, stage 2 of 3 (text alone): epoch 1/2, training step 3/4, "
        "3.00 s a step, elapsed 0:17, stage eta ~0:15"
    )
    assert ("stage", 2, 3, "text alone") in inner.calls


def test_without_epochs_shown_a_line_comes_every_minute_however_short_the_epochs() -> None:
    """`ser sweep` shows no epochs: its first minute of training is not silent."""
    clock, inner = Clock(), Recorder(shows_epochs=False)
    heart = Heartbeat(inner, interval=60, first=15, clock=clock)
    heart.fold_start(0, "fold1", epochs=200)
    for second in range(1, 130):
        beat(heart, clock, second, "train", 1, 1)
        clock.now = second + 0.5
        heart.epoch(second, 200, 1.0, 50.0)
    assert [line.split("elapsed ")[1].split(",")[0] for line in inner.lines] == ["1:00", "2:00"]


def test_a_later_stage_counts_its_time_from_the_last_stage_s_end() -> None:
    """Plain epoch lines of stage 2 said "elapsed 0:00"."""
    times = iter([0.0, 10.0, 20.0, 35.0])
    said: list[str] = []
    lines = EpochLines(said.append, interval=0, clock=lambda: next(times))
    lines.start("seed 0 fold1")
    lines.epoch(1, 2, 1.0, 50.0)
    lines.epoch(2, 2, 1.0, 50.0)
    lines.epoch(1, 2, 1.0, 50.0)  # stage 2 began at 20 s
    assert said[-1].endswith("elapsed 0:15  eta 0:15")


def test_the_loop_tells_every_step_and_stage(store_path: Path, tmp_path: Path) -> None:
    model = ModelConfig(fusion="late-prob", d_model=8, cnn_channels=(4, 4, 4, 4, 4))
    both = {"features": ("hubert", "bert"), "protocol": "session5", "epochs": 2}
    cfg = small_config(store_path, tmp_path, model=model, **both)
    progress = Recorder()
    record = train(cfg, progress)
    stages = [c[1:] for c in progress.calls if c[0] == "stage"]
    assert stages == [(1, 3, "audio alone"), (2, 3, "text alone"), (3, 3, "the whole model")]
    steps = [c[1:] for c in progress.calls if c[0] == "step"]
    assert {phase for phase, _, _ in steps} == {"train", "val", "test"}
    for _, done, total in steps:
        assert total is not None and 1 <= done <= total
    # each epoch's training steps run to their total: 3 stages x 2 epochs
    assert sum(1 for phase, done, total in steps if phase == "train" and done == total) == 6
    assert record.folds[0].stacked == 1  # one member: its own time


def test_a_stacked_fold_says_its_seconds_are_a_share(store_path: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from ser.commands import train as train_cli
    from ser.track.console import ConsoleProgress

    record = train(small_config(store_path, tmp_path, epochs=1, members_at_once=8))  # 5 as one
    entries = record.folds
    assert [e.stacked for e in entries] == [5] * 5
    assert len({e.seconds for e in entries}) == 1  # the model's time / 5, each
    console = Console(record=True, width=200)
    progress = ConsoleProgress(console, live=False)
    progress.fold_end(0, "fold1", entries[0])
    whole = f"{5 * entries[0].seconds:.1f} s for 5 stacked members, {entries[0].seconds:.1f} s"
    assert f"{whole} a member)" in console.export_text()
    console.print(train_cli.summary_table(record))
    assert "its stacked model's time / the members trained in it" in console.export_text()


def test_ser_train_prints_heartbeats(store_path: Path, tmp_path: Path, monkeypatch: Any) -> None:
    from ser.cli import main
    from ser.commands import train as train_cli

    # A heartbeat at every step: the run itself takes well under a minute.
    monkeypatch.setattr(train_cli, "Heartbeat", functools.partial(Heartbeat, interval=0, first=0))
    args = ["train", "--store", str(store_path), "--features", "is13", "--fusion", "none"]
    args += ["--classes", "4", "--protocol", "session5", "--epochs", "2", "--batch-size", "8"]
    args += ["--device", "cpu", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    beats = [line for line in result.stderr.splitlines() if " step " in line]
    assert beats and beats[0].startswith("seed 0 session5: epoch 1/2, training step 1/")


def test_progress_lines_name_a_stacked_group_by_its_seeds() -> None:
    import doctest

    import ser.track.progress as progress_module
    from ser.track.progress import fold_label

    assert fold_label(2, "session5") == "seed 2 session5"
    stacked = "fold1..fold5 x seeds 0-1 (10 members stacked)"
    assert fold_label(0, stacked) == stacked  # not "seed 0 fold1..fold5 x seeds 0-1"
    one_seed = "session5 x seed 0 (6 members stacked, 6 runs)"
    assert fold_label(0, one_seed) == one_seed
    assert doctest.testmod(progress_module).failed == 0
