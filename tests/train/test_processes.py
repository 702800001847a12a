"""A run's members on processes side by side (ser.train.processes): the pieces, and a run
on processes that equals the same pieces trained in one process, bit for bit. The rule
that chooses them: tests/runtime/test_execution.py."""

from __future__ import annotations

import doctest
import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
import torch

import ser.train.plan as plan_module
import ser.train.processes as processes_module
from ser.corpus.registry import KINDS
from ser.errors import ConfigError, WorkerLost
from ser.models import ModelConfig
from ser.runs.fold_entry import FoldEntry
from ser.runs.record import RunRecord
from ser.runtime.execution import Execution
from ser.train.checkpoint import checkpoint_dir, fold_key, load_checkpoint
from ser.train.processes import pieces, train_pieces
from ser.train.recipe import Progress, TrainConfig, resolve, train, train_group
from tests.processes import killed_midway, ser_command
from tests.stores import labelled_store
from tests.train.conftest import small_config

CPU = torch.device("cpu")
SETS = {
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}


def test_doctests() -> None:
    assert doctest.testmod(processes_module).failed == 0


def test_pieces_cut_each_group_in_order() -> None:
    assert pieces([list(range(7))], 2) == [[0, 1, 2, 3], [4, 5, 6]]
    assert pieces([[0], [1], [2]], 2) == [[0], [1], [2]]
    assert pieces([[0, 1], list(range(2, 11))], 3) == [[0], [1], [2, 3, 4], [5, 6, 7], [8, 9, 10]]


def test_processes_refused_off_the_cpu_and_below_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = TrainConfig(
        store=str(tmp_path / "s.zarr"), features=("is13",), model=ModelConfig(fusion="mit")
    )
    with pytest.raises(ConfigError, match="--processes must be at least 1"):
        resolve(replace(base, processes=0), KINDS["iemocap"])
    monkeypatch.setattr(plan_module, "pick_device", lambda _: torch.device("cuda"))
    monkeypatch.setattr(plan_module, "resolve_precision", lambda *a: "fp32")
    with pytest.raises(ConfigError, match="--processes 2 trains on the CPU"):
        resolve(replace(base, processes=2), KINDS["iemocap"])
    resolve(replace(base, processes=1), KINDS["iemocap"])


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "features.zarr"
    labelled_store(path, SETS, per_dialog=8)
    return path


def dialog_run(store: Path, out: Path, **changes: Any) -> TrainConfig:
    """The fusion study's dialog model, small, with dropout on: 4 seeds of session 5."""
    model = ModelConfig(
        fusion="attention", fusion_at="middle", loss="perspective", d_model=8, heads=2
    )
    base = small_config(store, out, features=("is13", "bert-tiny"), model=model, epochs=3)
    base = replace(base, protocol="session5", val="none", batch_size=4, seeds=4, threads=1)
    return replace(base, **{"name": "dialog", **changes})


class Lines(Progress):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ended: list[tuple[int, str]] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def fold_end(self, seed: int, fold: str, entry: FoldEntry) -> None:
        self.ended.append((seed, fold))


def results(record: RunRecord) -> list[FoldEntry]:
    """The record's entries without their timings."""
    return [replace(e, seconds=0.0, curves={}) for e in record.folds]


def states(run_dir: Path, record: RunRecord) -> list[dict[str, torch.Tensor]]:
    keys = [fold_key(*e.key) for e in record.folds]
    return [load_checkpoint(run_dir, key).state for key in keys]


class Pooled(NamedTuple):
    record: RunRecord
    lines: Lines
    run_dir: Path


@pytest.fixture(scope="module")
def pooled(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Pooled:
    """`dialog_run` on 2 processes x 1 thread, complete, with its progress lines; read only
    (a test that changes the run copies its folder): one pool's start shared by the tests
    that compare it with one process and resume it."""
    out = tmp_path_factory.mktemp("pooled")
    lines = Lines()
    return Pooled(train(dialog_run(store_path, out, processes=2), lines), lines, out / "dialog")


@pytest.mark.slow
def test_a_pooled_run_is_the_same_pieces_in_one_process(
    pooled: Pooled, store_path: Path, tmp_path: Path
) -> None:
    """2 processes x 1 thread cut the 4 stacked seeds into [0, 1] and [2, 3]: the same
    groups `members_at_once=2` makes in one 1-thread process, so the same numbers, bit for
    bit, dropout included; the record says how it was trained, in the same order."""
    record, lines, pooled_dir = pooled
    here = train(dialog_run(store_path, tmp_path / "here", processes=1, members_at_once=2))
    assert record.execution.processes == 2 and record.execution.source == "--processes 2"
    assert record.threads.count == 1 and record.complete
    assert here.execution.processes == 1
    assert [e.stacked for e in record.folds] == [2, 2, 2, 2]
    assert results(record) == results(here)
    curves = [json.dumps([e.curves.to_json() for e in r.folds]) for r in (record, here)]
    assert curves[0] == curves[1]  # (as text: NaN, no validation, is no NaN's equal)
    for a, b in zip(
        states(pooled_dir, record), states(tmp_path / "here" / "dialog", here), strict=True
    ):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    csv = (pooled_dir / "predictions.csv").read_text()
    assert csv == (tmp_path / "here" / "dialog" / "predictions.csv").read_text()
    assert any(line.startswith("training as 2 processes x 1 torch thread") for line in lines.lines)
    assert any("epoch 3/3" in line for line in lines.lines)  # the processes' epoch lines
    assert sorted(lines.ended) == [(s, "session5") for s in range(4)]


@pytest.mark.slow
def test_a_pooled_run_resumes_with_the_jobs_it_lacks(
    pooled: Pooled, store_path: Path, tmp_path: Path
) -> None:
    """A run stopped after its first piece (the pooled run's folder, copied, with its
    last piece taken out): the resume trains seeds 2 and 3 only, on the processes again,
    and keeps seeds 0 and 1 as they were."""
    first, _, pooled_dir = pooled
    run_dir = tmp_path / "dialog"
    shutil.copytree(pooled_dir, run_dir)
    cfg = dialog_run(store_path, tmp_path, processes=2)
    record = json.loads((run_dir / "run.json").read_text())
    record["folds"], record["complete"] = record["folds"][:2], False
    (run_dir / "run.json").write_text(json.dumps(record))
    for seed in (2, 3):
        (checkpoint_dir(run_dir) / f"{fold_key(seed, 'session5')}.safetensors").unlink()
    lines = Lines()
    again = train(cfg, lines)
    assert sorted(lines.ended) == [(2, "session5"), (3, "session5")]
    assert [e.seed for e in again.folds] == [0, 1, 2, 3] and again.complete
    assert results(again)[:2] == results(first)[:2]
    assert [e.stacked for e in again.folds] == [2, 2, 1, 1]  # each alone in its process


class StopAtTheSecond(Progress):
    """Ctrl-C in the calling process as the second piece comes back."""

    def __init__(self) -> None:
        self.ended = 0

    def fold_end(self, seed: int, fold: str, entry: FoldEntry) -> None:
        self.ended += 1
        if self.ended == 2:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_a_stopped_pooled_run_keeps_its_finished_pieces(store_path: Path, tmp_path: Path) -> None:
    cfg = dialog_run(store_path, tmp_path, processes=2, seeds=3, members_at_once=1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, StopAtTheSecond())
    record = json.loads((tmp_path / "dialog" / "run.json").read_text())
    assert len(record["folds"]) == 1 and not record["complete"]
    lines = Lines()
    again = train(cfg, lines)
    assert len(lines.ended) == 2 and again.complete
    assert sorted(e.seed for e in again.folds) == [0, 1, 2]


@pytest.mark.slow
def test_a_process_that_dies_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """A pool process that cannot start (here: its run's store is gone; in life, killed
    for memory) breaks the pool: that is a `WorkerLost` saying how to go on."""
    config = dialog_run(tmp_path / "gone.zarr", tmp_path)
    run = SimpleNamespace(config=config)
    jobs = [[SimpleNamespace(run=run, seed=0, k=0)], [SimpleNamespace(run=run, seed=1, k=0)]]
    two = Execution(2, 1, "--processes 2")
    with pytest.raises(WorkerLost, match="run the same command again"):
        train_pieces([run], jobs, two, Progress(), lambda *a: None, train_group)  # type: ignore[list-item, arg-type]


@pytest.mark.slow
def test_a_killed_pooled_run_leaves_no_process_behind(store_path: Path, tmp_path: Path) -> None:
    """`ser train --processes 2` killed with SIGKILL once both processes train: they end
    with it (ser.runtime.orphans)."""
    args = ["train", "--store", store_path, "--features", "is13", "--fusion", "none"]
    args += ["--classes", "4", "--epochs", "5000", "--seeds", "2", "--batch-size", "8"]
    args += ["--device", "cpu", "--processes", "2", "--out", tmp_path]

    def training(output: str) -> bool:  # each process's first epoch line
        return output.count("epoch 1/") >= 2

    left, output = killed_midway(ser_command(*args), training, tmp_path / "log", processes=2)
    assert left == [], "\n".join([*left, output])
    assert "training as 2 processes" in output
