"""`ser.track.mlflow_store`: MLflow's variables set only while ser calls it, a server
that does not answer said in seconds, a folder store's damaged `meta.yaml` found."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from ser.errors import ConfigError
from ser.track.mlflow_store import HTTP_LOG, RETRIES, client, damaged_meta, folder_of


def test_a_folder_store_is_a_path_or_a_file_uri_and_a_server_is_none(tmp_path: Path) -> None:
    assert folder_of(str(tmp_path)) == tmp_path
    assert folder_of(tmp_path.as_uri()) == tmp_path
    assert folder_of("relative/mlruns") == Path("relative/mlruns")
    assert folder_of("http://host:5000") is None


def test_a_server_that_stops_answering_is_said_after_a_few_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # let go: nothing listens on it
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # the user's: kept
    monkeypatch.delenv(RETRIES, raising=False)
    started = time.monotonic()
    with pytest.raises(ConfigError) as said, client(f"http://127.0.0.1:{port}") as mlflow:
        assert os.environ[RETRIES] == HTTP_LOG[RETRIES]
        mlflow.get_experiment_by_name("ser")
    assert time.monotonic() - started < 10
    assert str(said.value) == (
        f"MLflow at http://127.0.0.1:{port} stopped answering (Connection refused, 4 tries); "
        "the run's record is kept: once the server answers, the same command logs what is "
        "missing"
    )
    assert RETRIES not in os.environ  # set only while ser called MLflow
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "0"


def test_a_fault_of_ser_s_own_is_not_reworded(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), client(str(tmp_path)):
        _ = 1 / 0


def test_the_damaged_meta_yaml_is_found(tmp_path: Path) -> None:
    experiment = tmp_path / "1"
    (experiment / "abc").mkdir(parents=True)
    (experiment / "meta.yaml").write_text(
        "experiment_id: '1'\nname: ser\nartifact_location: x\nlifecycle_stage: active\n"
    )
    assert damaged_meta(tmp_path) is None
    (experiment / "abc" / "meta.yaml").write_text("run_id: abc\nexperiment_id: '1'\n")
    assert damaged_meta(tmp_path) == (
        f"{experiment / 'abc' / 'meta.yaml'} lacks user_id, start_time, end_time: restore "
        f"it, or move the run's folder {experiment / 'abc'} out of the store (what ser "
        "logged there is then logged again)"
    )
    (experiment / "meta.yaml").write_text("[1, 2")
    said = damaged_meta(tmp_path)
    assert said is not None and said.startswith(f"{experiment / 'meta.yaml'} is not YAML: ")
