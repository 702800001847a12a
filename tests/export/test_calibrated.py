"""A `--calibrate temperature` run exported: each member's T in config.json, read back
with the folder, and the ONNX head's class logits divided by it before the softmax."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.export.folder import CONFIG, load_exported
from ser.export.onnx_head import Head, example_inputs
from ser.export.write import ExportConfig, export_run
from ser.heads.calibration import scaled_softmax
from ser.train.calibration import logits_of
from tests.train.test_calibration import _calibrated, _store


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("calibrated-export")
    run_dir = _calibrated(_store(root / "s.zarr"), root / "runs")
    (entry,) = json.loads((run_dir / "run.json").read_text())["folds"]
    export_run(ExportConfig(str(run_dir), str(root / "model")))
    return root / "model", float(entry["temperature"])


def test_the_members_temperature_is_exported_and_read_back(exported: tuple[Path, float]) -> None:
    folder, temperature = exported
    config = json.loads((folder / CONFIG).read_text())
    (member,) = config["members"]
    assert member["temperature"] == temperature
    assert "members[i].temperature" in config["heads"][0]["calibration"]
    (ckpt,) = load_exported(folder).checkpoints
    assert ckpt.temperature == temperature != 1.0


def test_the_onnx_head_divides_the_logits_by_the_temperature(
    exported: tuple[Path, float],
) -> None:
    folder, temperature = exported
    (ckpt,) = load_exported(folder).checkpoints
    older = replace(ckpt, meta={k: v for k, v in ckpt.meta.items() if k != "temperature"})
    inputs = example_inputs(ckpt)
    with torch.no_grad():
        scaled = Head([ckpt]).eval()(*inputs)[0].numpy()
        plain = Head([older]).eval()(*inputs)[0].numpy()
    expected = scaled_softmax(logits_of(plain), temperature)
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    assert not np.allclose(scaled, plain, atol=1e-4)
