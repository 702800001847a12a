"""Runs that differ only in how they are tested train once (ser.train.group).

MSMSER's Table 3 tests one trained model three ways: unmasked, without its audio and
without its text (`eval_mask`). Those runs train one member for each (seed, fold), test it
once per mask and record each run as it would be alone: the same curves, selected epoch
and test scores as the run trained by itself, with its randomness (dropout, RMM) on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import ser.train.engine.fitting as fitting_module
import ser.train.recipe as run_module
from ser.models import ModelConfig
from ser.runs.record import RunRecord
from ser.train.recipe import TrainConfig, train, train_many
from tests.stores import labelled_store
from tests.train.spies import Groups

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
MASKS = (None, "audio", "text")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "features.zarr"
    labelled_store(path, SETS, per_dialog=8)
    return path


def config(store: Path, out: Path, mask: str | None, **changes: Any) -> TrainConfig:
    model = ModelConfig(fusion="mit", d_model=8, heads=2, queries=3, layers=1, eval_mask=mask)
    base = TrainConfig(
        store=str(store),
        features=("hubert-tiny.L2", "bert-tiny"),
        model=model,
        classes="4",
        protocol="session5",
        epochs=3,
        batch_size=4,
        lr=1e-2,
        seeds=2,
        device="cpu",
        out=str(out),
        name=f"masked_{mask}",
        members_at_once=64,
        calibrate="temperature",
    )
    return replace(base, **changes)


def selections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The members each `select` call trains, as the calls happen."""
    calls: list[int] = []
    original = fitting_module.select

    def counting(ensemble, members, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(members))
        return original(ensemble, members, *args, **kwargs)

    monkeypatch.setattr(fitting_module, "select", counting)
    return calls


def same_run(together: RunRecord, alone: RunRecord) -> None:
    """Everything the record keeps of training and testing, but the seconds it took."""
    for a, b in zip(together.folds, alone.folds, strict=True):
        assert (a.seed, a.fold, a.best_epoch) == (b.seed, b.fold, b.best_epoch)
        assert a.curves == b.curves
        assert a.metrics == b.metrics
        assert a.temperature == b.temperature
        assert a.stacked == b.stacked == 2  # the two seeds, stacked either way


def test_runs_that_differ_only_in_their_test_mask_train_once(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = selections(monkeypatch)
    groups = Groups()
    configs = [config(store_path, tmp_path / "together", m) for m in MASKS]
    together = train_many(configs, groups)
    assert trained == [2]  # one stack of the two seeds, for the three runs
    assert groups.started == ["session5 x seeds 0-1 (2 members for 3 runs)"]

    trained.clear()
    for mask, record in zip(MASKS, together, strict=True):
        alone = train(config(store_path, tmp_path / "alone", mask))
        same_run(record, alone)
    assert trained == [2, 2, 2]
    scores = {str(m): r.folds[0].metrics for m, r in zip(MASKS, together, strict=True)}
    assert scores["None"] != scores["audio"]  # each tested its own way


def test_members_trained_one_after_another_still_train_once(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member at a time (the CPU's default for MSMSER): a group per training, each
    holding the runs that share it."""
    trained = selections(monkeypatch)
    train_many([config(store_path, tmp_path, m, members_at_once=1) for m in MASKS])
    assert trained == [1, 1]  # seed 0's member, then seed 1's, for the three runs


def test_runs_that_train_otherwise_do_not_share(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another patience selects another epoch, another RMM is another model: each trains
    its own members."""
    trained = selections(monkeypatch)
    configs = [
        config(store_path, tmp_path, None),
        config(store_path, tmp_path, "audio", patience=1),
        config(
            store_path,
            tmp_path,
            "text",
            model=ModelConfig(
                fusion="mit", d_model=8, heads=2, queries=3, layers=1, eval_mask="text", rmm=False
            ),
        ),
    ]
    train_many(configs)
    assert sum(trained) == 6


def test_on_processes_a_shared_training_stays_in_one_piece(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Members cut into a piece per process: the jobs that share a training go together,
    or each process would train it again."""
    cut: list[list[list[Any]]] = []
    monkeypatch.setattr(run_module, "train_on_processes", lambda runs, jobs, *_: cut.append(jobs))
    train_many([config(store_path, tmp_path, m, processes=2) for m in MASKS])
    (pieces,) = cut
    masks = [[(j.seed, j.run.config.model.eval_mask) for j in piece] for piece in pieces]
    assert masks == [[(seed, m) for m in MASKS] for seed in (0, 1)]
