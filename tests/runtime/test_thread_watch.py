"""Thread counts that follow other processes during a run (ser.runtime.thread_watch), and where
`ser train` records the changes."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

import ser.runtime.thread_watch as watch_module
import ser.runtime.threads as threads_module
from ser.runtime.thread_watch import Change, Sample, ThreadWatch, read_sample


def samples(*windows: tuple[float, float, float]) -> Any:
    """A reader over two cores: each window (seconds, cores busy in all, cores ours)
    follows the last; ticks at 100 a second per core."""
    idle = total = own = 0
    at = 0.0
    out = [Sample({0: (0, 0), 1: (0, 0)}, 0, 0.0)]
    for seconds, busy, ours in windows:
        ticks = round(100 * seconds)
        total += ticks
        idle += round(ticks * (2 - busy) / 2)
        own += round(ticks * ours)
        at += seconds
        out.append(Sample({0: (idle, total), 1: (idle, total)}, own, at))
    return iter(out).__next__


def watch(reader: Any, *, ceiling: int = 2, current: int = 2, applied: list[int]) -> ThreadWatch:
    return ThreadWatch(ceiling=ceiling, current=current, cpus=[0, 1], apply=applied.append,
                       reader=reader)  # fmt: skip


def test_a_competitor_that_starts_takes_a_thread_and_gives_it_back() -> None:
    applied: list[int] = []
    w = watch(samples((5, 1.2, 1.2), (5, 2.0, 1.1), (5, 2.0, 1.0), (5, 1.0, 1.0)), applied=applied)
    assert w.check() is None  # alone: our 1.2 cores of 1.2 busy
    down = w.check()  # someone else took 0.9 of a core
    assert down == Change(count=1, previous=2, others=pytest.approx(0.9))
    assert w.check() is None  # still there: stays at 1
    up = w.check()  # gone: only our own core is busy
    assert up is not None and (up.previous, up.count) == (1, 2)
    assert applied == [1, 2] and w.current == 2 and len(w.changes) == 2
    assert "other processes kept 0.9 of this run's cores busy" in down.describe()


def test_never_above_the_ceiling_nor_below_one() -> None:
    applied: list[int] = []
    w = watch(samples((5, 1.0, 1.0), (5, 2.0, 0.0)), ceiling=1, current=1, applied=applied)
    assert w.check() is None  # a free core, but the budget is one thread
    assert w.check() is None  # both cores someone else's: still one thread
    assert applied == []


def test_short_windows_are_pooled_with_the_next() -> None:
    applied: list[int] = []
    # 0.3 s with a competitor is too short to judge; pooled with the next 0.9 s it counts.
    w = watch(samples((0.3, 2.0, 1.0), (0.9, 2.0, 1.0)), applied=applied)
    assert w.check() is None and applied == []
    change = w.check()
    assert change is not None and change.count == 1 and change.others == pytest.approx(1.0)


def test_without_proc_nothing_is_watched() -> None:
    w = ThreadWatch(ceiling=2, current=2, cpus=[0], apply=lambda n: None, reader=lambda: None)
    assert w.check() is None
    with pytest.raises(ValueError, match="at least 1"):
        ThreadWatch(ceiling=0, current=1, reader=lambda: None)


def test_proc_files_are_parsed(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 0 0 0\ncpu0 10 0 5 80 5 0 0 0 0 0\ncpu1 1 0 1 7 1 0 0 0\n")
    own = tmp_path / "self_stat"  # a command name with a space and a parenthesis
    own.write_text("42 (ser (x) y) R " + " ".join(["0"] * 10) + " 17 8 0 0\n")
    sample = read_sample(stat, own)
    assert sample is not None
    assert sample.cores == {0: (85, 100), 1: (8, 10)} and sample.own == 25
    assert read_sample(tmp_path / "missing", own) is None
    real = read_sample()  # this machine's
    assert real is not None and real.own >= 0 and real.cores


def test_only_a_run_that_follows_the_load_may_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    from ser.runtime.thread_watch import watch_for
    from ser.runtime.threads import CpuBudget, default_threads, following_load, set_torch_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
    assert default_threads(two, brief=True).ceiling is None  # fixed for the run
    assert watch_for(default_threads(two, brief=True), "cpu") is None
    assert following_load(two, brief=True, idle=0.9).ceiling == 2  # capped at the start
    assert watch_for(following_load(two, brief=True, idle=0.9), "cpu") is not None
    assert watch_for(following_load(two, brief=True, idle=0.9), "cuda") is None
    assert default_threads(two, threads=1).ceiling is None
    monkeypatch.setattr(threads_module.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(threads=2, cgroup_root=Path("/nonexistent")).ceiling is None
    finally:
        torch.set_num_threads(before)


class FakeWatch:
    """Says a competitor arrived after the second epoch it is asked about."""

    made: ClassVar[list[FakeWatch]] = []

    def __init__(self, *, ceiling: int, current: int) -> None:
        self.ceiling, self.current, self.calls = ceiling, current, 0
        FakeWatch.made.append(self)

    def check(self) -> Change | None:
        self.calls += 1
        return Change(1, 2, 1.0) if self.calls == 2 else None


def test_train_says_and_records_each_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ser.runtime.threads import ThreadChoice
    from tests.train.test_run import Recorder, build_store, config

    store = tmp_path / "features.zarr"
    build_store(store)
    monkeypatch.setattr("ser.runtime.thread_watch.ThreadWatch", FakeWatch)
    monkeypatch.setattr(
        "ser.train.run.set_torch_threads",
        lambda threads=None: ThreadChoice(2, "test", 2 if threads == "follow" else None),
    )
    FakeWatch.made.clear()
    progress = Recorder()
    follow = config(store, tmp_path / "runs", protocol="session5", epochs=3, threads="follow")
    record = train_run(follow, progress)
    assert len(FakeWatch.made) == 1 and FakeWatch.made[0].calls == 3
    assert any(m.startswith("after epoch 2: torch threads 2 -> 1") for m in progress.messages)
    (change,) = record["threads"]["changes"]
    assert change["epoch"] == 2 and change["count"] == 1 and change["previous"] == 2
    assert change["group"].startswith("session5")  # the fold (group) the change came in
    assert record["threads"]["follows_load"] is True
    assert "results depend on the machine's load" in progress.messages[0]
    FakeWatch.made.clear()
    default = train_run(config(store, tmp_path / "runs", protocol="session5", epochs=2, name="d"))
    assert FakeWatch.made == [] and "changes" not in default["threads"]
    assert default["threads"]["follows_load"] is False


def train_run(cfg: Any, progress: Any = None) -> dict[str, Any]:
    from ser.train.run import train

    return train(cfg, progress)


def test_doctests() -> None:
    assert doctest.testmod(watch_module).failed == 0
