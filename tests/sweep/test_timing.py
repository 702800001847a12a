"""`ser sweep --dry-run`'s timed probe (`ser.sweep.timing`): a family no trained cell
calibrates is timed on this machine, its set-up and data read counted, its first step
left out of the pace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import ser.sweep.estimate as estimate_module
import ser.train.recipe as recipe
from ser.errors import ConfigError
from ser.sweep.cells import resolve_cells
from ser.sweep.estimate import UNCALIBRATED, estimate_sweep
from ser.sweep.spec import load_spec
from ser.sweep.timing import Timed, _Enough, _Watch, time_cell


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def unimodal_cells(store: Path, out: Path, **fixed: str) -> list[Any]:
    spec = out.parent / "uni.toml"
    lines = "".join(f"{key} = '{value}'\n" for key, value in fixed.items())
    spec.write_text(
        "[fixed]\nfusion = 'none'\nfeatures = 'is13'\nepochs = 3\nprotocol = 'session5'\n"
        f"classes = '4'\nseeds = '2'\n{lines}[[cells]]\nlabel = 'audio'\n"
    )
    return resolve_cells(load_spec(str(spec)).cells, str(store), out)


def test_a_probe_leaves_the_first_step_out_of_the_pace_and_counts_the_set_up() -> None:
    clock = Clock()
    watch = _Watch(clock, steps=3)
    clock.now = 4.0  # the run's data read
    watch.fold_start(0, "session5", epochs=10)
    clock.now = 14.0  # its set-up and first step: 100 x the others
    watch.step("train", 1, 50)
    with pytest.raises(_Enough):
        for done in range(2, 50):
            clock.now = 14.0 + 0.1 * (done - 1)
            watch.step("train", done, 50)
    timed = watch.timed(epochs=10, passes=1)
    assert isinstance(timed, Timed)
    assert (timed.load, timed.setup, timed.epoch) == pytest.approx((4.0, 9.9, 5.0))
    # 4 s read once, then per member 9.9 s of set-up and 10 epochs of 50 steps of 0.1 s
    assert timed.seconds(members=5) == pytest.approx(4.0 + 5 * (9.9 + 50.0))


def test_a_whole_epoch_seen_counts_its_validation() -> None:
    clock = Clock()
    watch = _Watch(clock)
    watch.fold_start(0, "session5", epochs=4)
    for done, at in ((1, 5.0), (2, 6.0), (3, 7.0)):
        clock.now = at
        watch.step("train", done, 3)
    clock.now = 9.0  # 2 s of validation
    with pytest.raises(_Enough):
        watch.epoch(1, 4, 1.0, 50.0)
    timed = watch.timed(epochs=4, passes=1)
    assert isinstance(timed, Timed) and timed.epoch == pytest.approx(5.0)  # 3 steps + 2 s


def test_a_family_without_trained_cells_is_estimated_from_its_probe(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unimodal MLP's FLOPs are a small model's: its cells trained 8-30x slower than
    their estimate, which counted neither a run's data read nor a member's set-up nor a
    step's own overhead. Timed, the cell's estimate is what its probe measured."""
    cells = unimodal_cells(store_path, tmp_path)
    rough = estimate_sweep(cells, tmp_path)
    measured = Timed(load=3.0, setup=4.0, epoch=2.0, epochs=3)
    monkeypatch.setattr(estimate_module, "time_cell", lambda cell, passes: measured)
    timed = estimate_sweep(cells, tmp_path, probe=True)
    members = cells[0].members
    assert timed.cells[0].seconds == pytest.approx(3.0 + members * (4.0 + 2.0 * 3))
    assert rough.cells[0].seconds * 8 < timed.cells[0].seconds  # the rough one: far below
    assert timed.note() == "from 1 timed probe(s) on this machine"
    assert (
        "unimodal: timed on audio: 3.0 s of data read, 4.0 s of set-up" in timed.probed["unimodal"]
    )


def test_a_real_probe_times_a_cell_and_one_that_cannot_train_says_why(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (cell,) = unimodal_cells(store_path, tmp_path / "out")
    timed = time_cell(cell)
    assert isinstance(timed, Timed) and timed.epoch > 0 and timed.epochs == 3
    assert not (tmp_path / "out").exists()  # a dry run writes nothing

    def refused(config: Any, progress: Any) -> None:
        raise ConfigError("the device cuda is not available")

    monkeypatch.setattr(recipe, "train", refused)
    said = estimate_sweep([cell], tmp_path / "out", probe=True)
    assert said.probed["unimodal"] == (
        "unimodal: cannot time a probe of audio (the device cuda is not available)"
    )
    assert said.note() == UNCALIBRATED
