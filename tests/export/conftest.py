"""An audio-only run exported whole (`--with-encoders --onnx`), once per session: the
ONNX exporter takes ~10 s a graph on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def onnx_folder(audio_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ser.export.write import ExportConfig, export_run

    out = tmp_path_factory.mktemp("onnx-export") / "model"
    export_run(ExportConfig(str(audio_run), str(out), with_encoders=True, onnx=True))
    return out
