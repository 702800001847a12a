"""`ser sweep --track`: every cell it trains logged as a run, its options as parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.sweep.cells import resolve_cells, tracked
from ser.sweep.spec import load_spec
from ser.track.tracking import Tracking

from .conftest import PARAMS, TINY


@pytest.mark.slow  # two cells trained by the command: ~20 s on a busy machine
def test_each_cell_is_an_mlflow_run_with_its_options(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    spec = tmp_path / "two.toml"  # Table 2's Text and Audio rows: a cell trains in seconds
    spec.write_text(
        'preset = "msmser-table2"\n[[cells]]\nlabel = "Text"\nfeatures = "{text}"\n'
        '[[cells]]\nlabel = "Audio"\nfeatures = "{audio}"\n'
    )
    out = tmp_path / "sweep"
    args = ["sweep", str(spec), "--store", str(store_path), "--out", str(out)]
    args += [x for k, v in TINY.items() for x in ("--fix", f"{k}={v}")]
    args += [x for k, v in PARAMS.items() for x in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(main, [*args, "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3's folder store
    client = MlflowClient(tracking_uri=(out / "mlruns").as_uri())  # the sweep's, by default
    (experiment,) = [e for e in client.search_experiments() if e.name == "ser"]
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    records = {p.parent.name: json.loads(p.read_text()) for p in out.glob("cells/*/run.json")}
    assert set(runs) == set(records) and len(runs) == 2
    for name, record in records.items():
        params = runs[name].data.params
        assert params["features"] == record["config"]["features"]
        assert params["d_model"] == "8" and params["epochs"] == "2"
        assert runs[name].data.metrics["ua"] == pytest.approx(record["summary"]["ua"])


def test_a_tracking_uri_without_mlflow_is_refused(store_path: Path, tmp_path: Path) -> None:
    args = ["sweep", "msmser-table2", "--store", str(store_path), "--out", str(tmp_path)]
    result = CliRunner().invoke(main, [*args, "--track-uri", "http://host:5000"])
    assert result.exit_code == 2 and "is MLflow's: give --track mlflow" in result.output


def test_tracked_cells_keep_their_keys_and_log_to_the_sweep_s_store(
    store_path: Path, tmp_path: Path
) -> None:
    spec = load_spec("msmser-table2", params=PARAMS, fixed=TINY)
    cells = resolve_cells(spec.cells[:2], str(store_path), tmp_path)
    logged = tracked(cells, Tracking.of("mlflow", None, tmp_path))
    assert [c.key for c in logged] == [c.key for c in cells]
    uri = (tmp_path / "mlruns").resolve().as_uri()  # not one in <out>/cells
    assert {(c.config.track, c.config.track_uri) for c in logged} == {("mlflow", uri)}
    assert tracked(cells, None) == cells
