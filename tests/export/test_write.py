"""`ser export`: a folder that predicts alone, as its run did; what it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors import safe_open

from ser.cli import main
from ser.errors import ConfigError
from ser.export.folder import CONFIG, MODEL, load_exported
from ser.export.write import ExportConfig, export_run
from ser.predict.run import PredictConfig, predict


def _private_run(trained_run, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the predict tests' run whose record names a copy of its store: both
    can be deleted."""
    run = tmp_path / "runs" / "mit"
    shutil.copytree(trained_run.run_dir, run)
    store = tmp_path / "f.zarr"
    shutil.copytree(trained_run.store, store)
    record = json.loads((run / "run.json").read_text())
    record["store"] = str(store)
    (run / "run.json").write_text(json.dumps(record))
    return run


def _probabilities(config: PredictConfig) -> list[dict[str, float]]:
    result = predict(config)
    assert result.failed == 0
    return [p.probabilities for p in result.predictions]


def test_a_moved_export_predicts_as_its_run_with_run_and_store_gone(trained_run, tmp_path) -> None:
    run = _private_run(trained_run, tmp_path)
    wavs = tuple(trained_run.wavs[:3])
    before = _probabilities(PredictConfig(str(run), wavs, text="a b c", device="cpu"))
    out = tmp_path / "export"
    result = export_run(ExportConfig(str(run), str(out), with_encoders=True))
    assert result.members == ("seed0_session5",) and MODEL in result.files
    shutil.rmtree(run)
    shutil.rmtree(tmp_path / "f.zarr")
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(out, moved)
    shutil.rmtree(out)
    config = PredictConfig("", wavs, text="a b c", device="cpu", model=str(moved))
    after = _probabilities(config)
    for a, b in zip(before, after, strict=True):
        assert a.keys() == b.keys() and all(abs(a[c] - b[c]) < 1e-6 for c in a)
    features = load_exported(moved).checkpoints[0].features
    assert all(str(f["attrs"]["model"]).startswith(str(moved)) for f in features.values())


def test_the_weights_and_config_say_what_the_model_is(trained_run, tmp_path) -> None:
    out = tmp_path / "export"
    export_run(ExportConfig(str(trained_run.run_dir), str(out), members="final"))
    config = json.loads((out / CONFIG).read_text())
    assert config["library"] == "ser" and config["family"] == "msmser"
    assert [m["key"] for m in config["members"]] == ["final"]
    assert config["classes"] == ["neu", "hap", "sad", "ang"]
    hubert = config["features"]["tiny-hubert.L2"]
    assert hubert["layer"] == 2 and hubert["pooling"] == "frames" and hubert["precision"] == "fp32"
    assert hubert["weights_sha256"] and hubert["encoder"].endswith("tiny-hubert")
    assert config["encoders"][hubert["encoder"]]["files"] is None  # named, not copied
    assert config["run"]["record_format"] == 2 and config["ser_version"]
    with safe_open(str(out / MODEL), "pt") as f:
        assert all(k.startswith("final.") for k in f.keys())  # noqa: SIM118
        assert f.metadata()["library"] == "ser"


def test_an_encoder_neither_copied_nor_there_is_named(trained_run, tmp_path) -> None:
    out = tmp_path / "export"
    export_run(ExportConfig(str(trained_run.run_dir), str(out)))
    config = json.loads((out / CONFIG).read_text())
    gone = "/nowhere/models/tiny-hubert"
    recorded = config["features"]["tiny-hubert.L2"]["attrs"]["model"]
    config["features"]["tiny-hubert.L2"]["attrs"]["model"] = gone
    config["encoders"][gone] = config["encoders"].pop(recorded)
    (out / CONFIG).write_text(json.dumps(config))
    result = CliRunner().invoke(main, ["predict", "--model", str(out), trained_run.wavs[0]])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "tiny-hubert.L2 needs the encoder /nowhere/models/tiny-hubert" in result.output
    assert "--with-encoders" in result.output


def test_an_existing_folder_is_replaced_only_when_it_is_an_export(trained_run, tmp_path) -> None:
    run = str(trained_run.run_dir)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds other files"):
        export_run(ExportConfig(run, str(other)))
    out = tmp_path / "export"
    export_run(ExportConfig(run, str(out)))
    with pytest.raises(ConfigError, match="give --overwrite"):
        export_run(ExportConfig(run, str(out)))
    export_run(ExportConfig(run, str(out), members="final", overwrite=True))
    assert json.loads((out / CONFIG).read_text())["members"][0]["key"] == "final"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path) -> None:
    result = CliRunner().invoke(main, ["export", str(tmp_path / "nothing"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is not a run that can be exported" in result.output
