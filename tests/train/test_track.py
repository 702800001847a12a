"""`ser train --track`: each member's curves, the run's options and its scores, as the
run record holds them, read back from TensorBoard's event files and MLflow's store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.errors import ConfigError
from ser.runs.record import RunRecord, read
from ser.track.tracking import member, options
from ser.train.recipe import train

from .conftest import small_config


@pytest.fixture(scope="module")
def tensorboard_run(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """A run trained untracked, then run again by `ser train --track tensorboard`: the
    option is no part of the run's identity, and a finished run's members are logged."""
    out = tmp_path_factory.mktemp("tensorboard")
    record = train(small_config(store_path, out, epochs=3))
    args = ["train", "--store", str(store_path), "--features", "is13", "--fusion", "none"]
    args += ["--classes", "4", "--protocol", "loso", "--epochs", "3", "--batch-size", "8"]
    args += ["--lr", "0.01", "--seeds", "1", "--device", "cpu", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--track", "tensorboard"])
    assert result.exit_code == 0, result.output
    again = read(out / record.name / "run.json")
    assert again.folds == record.folds  # nothing trained again
    return again


def _events(run: RunRecord, folder: str) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(
        str(Path(run.config["out"]) / run.name / "tensorboard" / folder)
    ).Reload()


def test_tensorboard_holds_each_member_s_curves_and_test_scores(tensorboard_run: RunRecord) -> None:
    for entry in tensorboard_run.folds:
        events = _events(tensorboard_run, member(entry))
        for key in ("train_loss", "val_loss", "val_ua", "val_wa"):
            scalars = events.Scalars(key)
            assert [s.step for s in scalars] == list(entry.curves.epoch or ())
            assert [s.value for s in scalars] == pytest.approx(entry.curves[key], rel=1e-6)
        assert entry.metrics is not None
        (ua,) = events.Scalars("test_ua")
        assert (ua.step, ua.value) == (entry.best_epoch, pytest.approx(entry.metrics.ua, rel=1e-6))


def test_tensorboard_holds_the_options_as_hparams_beside_the_mean_scores(
    tensorboard_run: RunRecord,
) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = _events(tensorboard_run, "scores")
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert set(hparams) == set(tensorboard_run.config)
    assert hparams["lr"].number_value == pytest.approx(0.01)
    assert hparams["features"].string_value == "is13"
    assert tensorboard_run.summary is not None
    (ua,) = events.Scalars("ua")
    assert ua.value == pytest.approx(tensorboard_run.summary["ua"], rel=1e-6)


@pytest.fixture(scope="module")
def mlflow_run(store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """A run with its --final model tracked from its start to MLflow's default store,
    then run again."""
    out = tmp_path_factory.mktemp("mlflow")
    config = small_config(store_path, out, track="mlflow", epochs=3, final=True)
    record = train(config)
    assert train(config).folds == record.folds  # finished: nothing trained, nothing logged
    return record


@pytest.fixture
def mlflow(mlflow_run: RunRecord, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The client of the run's store and its one MLflow run."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3's folder store
    client = MlflowClient(tracking_uri=(Path(mlflow_run.config["out"]) / "mlruns").as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "ser"]
    (run,) = client.search_runs([experiment.experiment_id])
    yield client, run


def test_mlflow_holds_one_run_with_the_options_as_params(
    mlflow_run: RunRecord, mlflow: Any
) -> None:
    _, run = mlflow
    assert run.info.run_name == mlflow_run.name and run.info.status == "FINISHED"
    assert run.data.params == {k: str(v) for k, v in options(mlflow_run).items()}
    assert run.data.params["lr"] == "0.01"


def test_mlflow_holds_each_member_s_curves_once_and_the_scores(
    mlflow_run: RunRecord, mlflow: Any
) -> None:
    client, run = mlflow
    for entry in mlflow_run.folds:
        for key in ("train_loss", "val_loss", "val_ua"):
            history = client.get_metric_history(run.info.run_id, f"{member(entry)}/{key}")
            assert [m.step for m in history] == list(entry.curves.epoch or ())  # once
            assert [m.value for m in history] == pytest.approx(entry.curves[key])
        assert entry.metrics is not None
        test = run.data.metrics[f"{member(entry)}/test_f1"]
        assert test == pytest.approx(entry.metrics.f1)
    assert mlflow_run.summary is not None
    for key in ("ua", "wa", "f1"):
        assert run.data.metrics[key] == pytest.approx(mlflow_run.summary[key])


def test_mlflow_holds_the_final_model_s_training_loss_once(
    mlflow_run: RunRecord, mlflow: Any
) -> None:
    client, run = mlflow
    final = mlflow_run.final
    assert final is not None and final.curves is not None
    assert final.curves.epoch == tuple(range(1, final.epochs + 1))
    history = client.get_metric_history(run.info.run_id, "final/train_loss")
    assert [m.step for m in history] == list(final.curves.epoch)  # once
    assert [m.value for m in history] == pytest.approx(final.curves["train_loss"])


def test_tensorboard_holds_the_final_model_s_training_loss(
    store_path: Path, tmp_path: Path
) -> None:
    config = small_config(store_path, tmp_path, track="tensorboard", epochs=2, final=True)
    record = train(replace(config, protocol="session5"))
    assert record.final is not None and record.final.curves is not None
    scalars = _events(record, "final").Scalars("train_loss")
    assert [s.step for s in scalars] == list(record.final.curves.epoch or ())
    assert [s.value for s in scalars] == pytest.approx(record.final.curves["train_loss"], rel=1e-6)


@pytest.mark.parametrize("kind", ["tensorboard", "mlflow"])
def test_a_tracker_not_installed_is_refused_before_training(
    kind: str, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, kind, None)  # its import fails
    with pytest.raises(ConfigError, match=rf"--track {kind} needs .* pip install 'ser\[track\]'"):
        train(small_config(store_path, tmp_path, track=kind))
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_a_tracking_uri_without_mlflow_is_refused(store_path: Path, tmp_path: Path) -> None:
    config = small_config(store_path, tmp_path, track="tensorboard", track_uri="http://host:5000")
    with pytest.raises(ConfigError, match="is MLflow's: give --track mlflow"):
        train(config)
