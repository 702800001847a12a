"""Streamed rows (`--memory-budget`) under the ways a step runs: members stacked
(`--members-at-once`), graphed and compiled steps, training processes (`--processes`).
A streamed side takes as many steps an epoch as in memory whatever its seed
(`windowed_plans` carries a window's partial batch into the next window), so members of
other seeds stack step for step, each reading its own seed's windows; without randomness
they train as each alone, the graphed and compiled runs as the eager one, and processes
as one process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
import ser.train.batches as batches_module
import ser.train.engine.steps as steps_module
from ser.errors import ConfigError
from ser.models.batch import InputSpec
from ser.runs.record import RunRecord
from ser.train.batches import Batches, windowed_plans
from ser.train.recipe import TrainConfig, train
from tests.growth import assert_linear
from tests.stores import labelled_store
from tests.train.engine.test_steps import SETS
from tests.train.engine.test_steps import config as steps_config
from tests.train.test_memory_budget import loaded

FRAMES = "hubert-tiny.L2"
#: Streams the frames (22.8 KiB) with two members' batches and windows; holds the tokens.
BUDGET = "40KB"


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of tiny chunks (21 frame rows) and 48 utterances a dialog: the frames
    stream under `BUDGET` with two members stacked, and cross many windows."""
    path = tmp_path_factory.mktemp("chunked") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        labelled_store(path, SETS, per_dialog=48)
    return path


@pytest.fixture(scope="module")
def alone(chunked: Path, tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """The two seeds trained one after another in this one process, on one thread: what
    stacked members and training processes are each compared with."""
    out = tmp_path_factory.mktemp("alone")
    return train(config(chunked, out, members_at_once=1, processes=1, threads=1))


def config(store: Path, out: Path, **changes: object) -> TrainConfig:
    """tests/train/engine/test_steps.py's tiny MSMSER without randomness, two seeds, its
    frames streamed."""
    step = str(changes.pop("step", "eager"))
    streamed = {"seeds": 2, "memory_budget": BUDGET, "members_at_once": 1} | changes
    return replace(steps_config(store, out, step), **streamed)  # type: ignore[arg-type]


def assert_same_training(a: RunRecord, b: RunRecord) -> None:
    """Each (seed, fold)'s curves and selected epoch, to float rounding."""
    assert [(f.seed, f.fold) for f in a.folds] == [(f.seed, f.fold) for f in b.folds]
    for x, y in zip(a.folds, b.folds, strict=True):
        for curve in ("train_loss", "val_loss", "val_ua"):
            np.testing.assert_allclose(x.curves[curve], y.curves[curve], rtol=1e-5, atol=1e-6)
        assert x.best_epoch == y.best_epoch


def test_a_streamed_side_takes_as_many_steps_whatever_its_seed(chunked: Path) -> None:
    """Before, each window's last batch was partial: a side's steps an epoch followed its
    seed's windows, and members of two seeds could not stack."""
    data = loaded(chunked, "12KB")
    assert data.features[FRAMES].stream is not None
    spec = InputSpec(FRAMES, "audio", 6, "sequence")
    positions = np.arange(0, len(data), 3)  # a side of 160 utterances
    for seed in range(6):
        side = Batches(data, positions, [spec], "utterance", 7, shuffle=True, seed=seed)
        plans = side.plans()
        assert len(plans) == len(side) == -(-len(positions) // 7)
        sizes = sorted(len(p.positions) for p in plans)
        assert sizes[1:] == [7] * (len(plans) - 1)  # one batch of the rest (the last window's)
        taken = np.concatenate([p.positions for p in plans])
        assert sorted(taken.tolist()) == positions.tolist()  # each utterance once


def test_stacked_members_stream_as_each_alone(
    chunked: Path, alone: RunRecord, tmp_path: Path
) -> None:
    """Two seeds stacked, each reading its own windows through the frames' cache, train
    as each alone under the same budget (without randomness)."""
    stacked = train(config(chunked, tmp_path / "stacked", members_at_once=2))
    for record in (stacked, alone):
        assert record.config["streamed"] == [FRAMES]
    assert stacked.execution is not None and stacked.execution.stacked == 2
    assert "streamed" in str(stacked.execution.memory)
    assert_same_training(stacked, alone)


def test_a_budget_too_small_for_the_stacked_members_says_so(chunked: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="or lower --members-at-once 8") as refused:
        train(config(chunked, tmp_path, members_at_once=8, seeds=8))
    assert "cannot hold this run even streamed" in str(refused.value)
    assert not (tmp_path / "runs").exists()


def test_a_graphed_run_streams_as_the_eager_one(chunked: Path, tmp_path: Path) -> None:
    """On the CPU the graphed path runs each step on its copies of a streamed batch (a
    GPU replays its graph there): the eager run's numbers, padded shapes and all."""
    eager = train(config(chunked, tmp_path / "eager", step="eager", seeds=1))
    graphed = train(config(chunked, tmp_path / "graphed", step="graphed", seeds=1))
    assert graphed.execution is not None and graphed.execution.step == "graphed"
    assert graphed.config["streamed"] == [FRAMES]
    assert_same_training(eager, graphed)


@pytest.mark.slow  # as tests/train/engine/test_steps.py's compiled runs: tracing takes seconds
def test_a_compiled_run_streams_as_the_eager_one(
    chunked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traced with torch.compile's "eager" backend, whole graphs only, as
    tests/train/engine/test_steps.py traces them."""
    monkeypatch.setattr(steps_module, "BACKEND", "eager")
    monkeypatch.setattr(steps_module, "FULLGRAPH", True)
    monkeypatch.setattr(batches_module, "SHORT_ROWS", 0)
    torch.compiler.reset()
    eager = train(config(chunked, tmp_path / "eager", step="eager", seeds=1))
    compiled = train(config(chunked, tmp_path / "compiled", step="compiled", seeds=1))
    assert compiled.execution is not None and compiled.execution.compiled
    assert compiled.config["streamed"] == [FRAMES]
    assert_same_training(eager, compiled)


@pytest.mark.slow  # as tests/train/test_processes.py's runs: each process imports torch anew
def test_training_processes_stream_as_one_process(
    chunked: Path, alone: RunRecord, tmp_path: Path
) -> None:
    """Each process places its rows under the asked budget as one process does (the
    budget, not what is free, decides), so its members draw the same windows: the same
    numbers. Before, `--processes 2` was refused."""
    two = train(config(chunked, tmp_path / "two", processes=2, threads=1))
    assert two.execution is not None and two.execution.processes == 2
    assert "(each of the 2 processes)" in two.execution.memory
    assert two.config["streamed"] == [FRAMES]
    assert_same_training(alone, two)


def test_planning_a_streamed_side_grows_linearly_with_its_utterances() -> None:
    """MSP-Podcast's 150,000 utterances in 16-utterance chunks: a window's positions were
    found by scanning every utterance once a window, quadratic in the utterances."""

    def prepare(n: int) -> Callable[[], object]:
        blocks, lengths = np.arange(n) // 16, {"a": np.full(n, 10)}
        return lambda: windowed_plans(np.arange(n), lengths, 32, np.random.default_rng(0), blocks)

    assert_linear(prepare, 50_000, "planning a streamed side's windows")
