"""Faults of `ser train --track` a user meets: an MLflow server that is not there (said
in seconds, not minutes), a `--track-uri` folder that is a file or cannot be made, an
MLflow store or `mlflow.json` that cannot be read (the file named, and the mend), a
resumed run whose MLflow run was deleted (logged to a new one, and said), a TensorBoard
event file cut short (logged again, and said), and what of this machine a tracker holds
(no absolute path among MLflow's params, no host name in TensorBoard's file names).
Nothing here reaches a network: folder stores, and a closed port on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.refused import one_line, ser

IS13 = ("is13", "audio", "utterance", 7, "float32")
SMALL: tuple[str, ...] = (
    "--features",
    "is13",
    "--fusion",
    "none",
    "--classes",
    "4",
    "--epochs",
    "2",
)
SMALL += ("--batch-size", "8", "--device", "cpu", "--processes", "1", "--threads", "1")
SMALL += ("--protocol", "session5", "--name", "run")
# What MLflow's own retries took to give up on a server that is not there.
BEFORE = 249


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": IS13}, per_dialog=4)


def _train(store: Path, out: Path, *track: str | Path) -> Result:
    return ser("train", "--store", store, *SMALL, "--out", out, *track)


def _trained(store: Path, out: Path, *track: str | Path) -> Path:
    done = _train(store, out, *track)
    assert done.exit_code == 0, done.output
    return out / "run"


@pytest.fixture
def mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], Any]]:
    """`mlflow(out)`: a client of the run's default store, `<out>/mlruns`."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3's folder store
    yield lambda out: MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())


def _run_id(run_dir: Path) -> str:
    (run_id,) = json.loads((run_dir / "mlflow.json").read_text()).values()
    return str(run_id)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- an MLflow server that is not there -------------------------------------------------


def test_a_server_that_refuses_is_said_in_seconds(store: Path, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    line = one_line(_train(store, tmp_path, "--track", "mlflow", "--track-uri", uri))
    assert time.monotonic() - started < BEFORE / 5
    assert line == (
        f"error: --track-uri {uri}: no MLflow server answers there (Connection refused, 2 "
        "tries): start it (mlflow server --host HOST --port PORT) or give another --track-uri"
    )
    assert not (tmp_path / "run").exists()  # refused before anything trained


# -- a --track-uri folder MLflow can never use ------------------------------------------


def test_a_track_uri_on_a_file_says_it_is_a_file(store: Path, tmp_path: Path) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("not a store")
    for uri in (afile, afile / "mlruns", afile.as_uri()):
        line = one_line(_train(store, tmp_path, "--track", "mlflow", "--track-uri", uri))
        assert f"{afile} is a file, not a folder: give --track-uri a folder" in line
        assert "once MLflow answers" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_track_uri_that_cannot_be_created_says_so(store: Path, tmp_path: Path) -> None:
    uri = "/proc/ser-cannot/mlruns"  # no one may make a folder in /proc, root neither
    line = one_line(_train(store, tmp_path, "--track", "mlflow", "--track-uri", uri))
    assert line.startswith(f"error: MLflow's store {uri} cannot be created (")
    assert "give --track-uri a folder you can write to" in line
    assert "once MLflow answers" not in line


# -- a store or mlflow.json that cannot be read ------------------------------------------


@pytest.mark.parametrize(
    ("which", "text", "said"),
    [
        ("experiment", b"\xff\xfe name: ser", "is not UTF-8 text"),
        ("experiment", b"name: ser\n", "lacks experiment_id, artifact_location"),
        ("run", b"\xff", "is not UTF-8 text"),
        ("run", b"run_id: x\n", "lacks experiment_id, user_id, start_time"),
    ],
)
def test_a_damaged_meta_yaml_is_named_with_its_mend(
    which: str, text: bytes, said: str, store: Path, tmp_path: Path
) -> None:
    run_dir = _trained(store, tmp_path, "--track", "mlflow")
    (experiment,) = [p for p in (tmp_path / "mlruns").iterdir() if (p / _run_id(run_dir)).is_dir()]
    folder = experiment if which == "experiment" else experiment / _run_id(run_dir)
    (folder / "meta.yaml").write_bytes(text)
    line = one_line(_train(store, tmp_path, "--track", "mlflow"))
    assert f"{folder / 'meta.yaml'} {said}" in line
    assert f"restore it, or move the {which}'s folder {folder} out of the store" in line
    # The mend it names works: the folder moved away, the run is logged anew.
    folder.rename(tmp_path / "moved")
    again = _train(store, tmp_path, "--track", "mlflow")
    assert again.exit_code == 0, again.output


def test_an_mlflow_json_that_is_not_json_is_named(store: Path, tmp_path: Path) -> None:
    run_dir = _trained(store, tmp_path, "--track", "mlflow")
    (run_dir / "mlflow.json").write_text('{"file:///x": ')
    line = one_line(_train(store, tmp_path, "--track", "mlflow"))
    assert line.startswith(f"error: {run_dir / 'mlflow.json'} is not JSON (")
    assert line.endswith("delete it, and the same command logs the run whole to a new MLflow run")
    (run_dir / "mlflow.json").unlink()
    again = _train(store, tmp_path, "--track", "mlflow")
    assert again.exit_code == 0, again.output


# -- a deleted MLflow run ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "removed for good"])
def test_a_resumed_run_whose_mlflow_run_was_deleted_is_logged_anew(
    how: str, store: Path, tmp_path: Path, mlflow: Callable[[Path], Any]
) -> None:
    import shutil

    run_dir = _trained(store, tmp_path, "--track", "mlflow")
    old, client = _run_id(run_dir), mlflow(tmp_path)
    client.delete_run(old)
    if how == "removed for good":  # as `mlflow gc` leaves it
        shutil.rmtree(next((tmp_path / "mlruns").glob(f"*/{old}")))
    again = _train(store, tmp_path, "--track", "mlflow")
    assert again.exit_code == 0, again.output
    assert (
        f"MLflow run {old} at {(tmp_path / 'mlruns').resolve().as_uri()}, which "
        f"{run_dir / 'mlflow.json'} names, was deleted: logging run whole to a new MLflow run"
    ) in again.stderr
    new = client.get_run(_run_id(run_dir))
    assert new.info.run_id != old and new.info.status == "FINISHED"
    assert {"ua", "seed0-session5/train_loss", "seed0-session5/test_ua"} <= set(new.data.metrics)


# -- a TensorBoard event file cut short --------------------------------------------------


def test_a_tensorboard_event_file_cut_short_is_logged_again(store: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = _trained(store, tmp_path, "--track", "tensorboard")
    folder = run_dir / "tensorboard" / "seed0-session5"
    (events,) = folder.iterdir()
    whole = EventAccumulator(str(folder)).Reload().Scalars("train_loss")
    events.write_bytes(events.read_bytes()[: events.stat().st_size // 2])
    again = _train(store, tmp_path, "--track", "tensorboard")
    assert again.exit_code == 0, again.output
    assert (
        f"TensorBoard's {folder} has an event file cut short ({events.name}): logging it again"
        in again.stderr
    )
    logged = EventAccumulator(str(folder)).Reload().Scalars("train_loss")
    assert [(s.step, s.value) for s in logged] == [(s.step, s.value) for s in whole]
    quiet = _train(store, tmp_path, "--track", "tensorboard")  # whole now: nothing said
    assert "TensorBoard's" not in quiet.stderr


# -- what leaves the machine -------------------------------------------------------------


def test_mlflow_params_and_tags_hold_no_path_of_this_machine(
    store: Path, tmp_path: Path, mlflow: Callable[[Path], Any]
) -> None:
    run_dir = _trained(store, tmp_path, "--track", "mlflow")
    run = mlflow(tmp_path).get_run(_run_id(run_dir))
    held = {**run.data.params, **run.data.tags}
    assert run.data.params["store"] == store.name and run.data.params["out"] == tmp_path.name
    assert run.data.tags["ser.run_dir"] == "run"
    for local in (str(tmp_path), str(store.parent)):
        assert not [k for k, v in held.items() if local in v]


def test_tensorboard_files_hold_no_host_name_nor_path(store: Path, tmp_path: Path) -> None:
    run_dir = _trained(store, tmp_path, "--track", "tensorboard")
    files = [p for p in (run_dir / "tensorboard").rglob("*") if p.is_file()]
    assert files
    for path in files:  # TensorBoard's writer names them ...<time>.<host>.<pid>.<n>
        assert re.fullmatch(r"events\.out\.tfevents\.\d+\.ser\.\d+", path.name)
        assert str(tmp_path).encode() not in path.read_bytes()  # the hparams' options
