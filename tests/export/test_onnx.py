"""`ser export --onnx` and `ser predict --runtime onnx`: onnxruntime gives torch's
predictions; what does not export says why in one line; nothing of this machine (no
absolute path, user or host name) is in the exported folder, which predicts alone."""

from __future__ import annotations

import getpass
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest
from click.testing import CliRunner

from ser.cli import main
from ser.errors import ConfigError
from ser.export.folder import CONFIG, ONNX
from ser.export.onnx_encoder import refusal
from ser.predict.run import PredictConfig, predict
from tests.refused import ser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"
#: The line that introduces the docs' script, which this file runs.
SCRIPT_MARK = "predict_onnx.py"


def _predictions(folder: Path, wavs: list[str], runtime: str) -> list[dict[str, float]]:
    config = PredictConfig("", tuple(wavs), device="cpu", model=str(folder), runtime=runtime)
    result = predict(config)
    assert result.failed == 0
    return [p.probabilities for p in result.predictions]


def test_onnxruntime_predicts_as_torch(onnx_folder, trained_run) -> None:
    wavs = trained_run.wavs  # the demo corpus's utterances of the run's test session
    torch_side = _predictions(onnx_folder, wavs, "torch")
    onnx_side = _predictions(onnx_folder, wavs, "onnx")
    gaps = [abs(a[c] - b[c]) for a, b in zip(torch_side, onnx_side, strict=True) for c in a]
    assert len(gaps) == 4 * len(wavs) and max(gaps) < 1e-4


def test_the_graphs_take_any_batch_and_length(onnx_folder) -> None:
    config = json.loads((onnx_folder / CONFIG).read_text())
    encoder = next(iter(config["onnx"]["encoders"].values()))
    graphs = {"head": config["onnx"]["head"]["file"], "encoder": encoder["file"]}
    for path in (onnx_folder / ONNX / f for f in graphs.values()):
        inputs = onnx.load(str(path), load_external_data=False).graph.input
        for value in inputs:
            dims = value.type.tensor_type.shape.dim
            assert dims[0].dim_param, f"{path.name}: {value.name} has a fixed batch"
            if len(dims) > 1:
                assert dims[1].dim_param, f"{path.name}: {value.name} has a fixed length"


def test_a_changed_graph_is_refused(onnx_folder, tmp_path, trained_run) -> None:
    copy = tmp_path / "model"
    shutil.copytree(onnx_folder, copy)
    head = copy / ONNX / "head.onnx"
    head.write_bytes(head.read_bytes() + b"\0")
    with pytest.raises(ConfigError, match=r"head\.onnx is not the graph exported"):
        _predictions(copy, trained_run.wavs[:1], "onnx")


def test_what_does_not_export_says_why(text_dialog_run, tmp_path) -> None:
    out = tmp_path / "exports" / "model"
    result = CliRunner().invoke(main, ["export", str(text_dialog_run), str(out), "--onnx"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "dialog-context model (dialog" in result.output
    assert not (tmp_path / "exports").exists() or list((tmp_path / "exports").iterdir()) == []
    whisper = refusal(
        {"modality": "audio", "model": "openai/whisper-small", "model_type": "whisper"}
    )
    assert whisper is not None and "Whisper" in whisper


def test_the_docs_script_predicts_without_torch(onnx_folder, trained_run, tmp_path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split(SCRIPT_MARK, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / SCRIPT_MARK
    script.write_text(block)
    wav = trained_run.wavs[0]
    check = (
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], "
        "run_name='__main__'); assert 'torch' not in sys.modules, 'the script loaded torch'"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, str(script), str(onnx_folder), wav],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    ours = _predictions(onnx_folder, [wav], "onnx")[0]
    assert printed.keys() == ours.keys() and all(abs(printed[c] - ours[c]) < 1e-5 for c in ours)


# -- nothing of this machine in the export, and the folder alone ---------------------------


def _machine(
    trained_run: Any, tiny_models: Any, audio_run: Path, corpus: Path
) -> dict[str, re.Pattern[str]]:
    """What names this machine: the folders the run, its corpus and its models came from,
    the home folder, the user (as a path's or an address's part), the host, and a source
    file's absolute path (the ONNX exporter's stack traces)."""
    user = re.escape(getpass.getuser())
    found = {
        "model folder": re.escape(str(tiny_models.hubert.parent)),
        "corpus": re.escape(str(corpus)),
        "source file": r'File "(/|[A-Za-z]:\\)',
        "install": re.escape(str(Path(sys.prefix))),
        "store": re.escape(str(trained_run.store)),
        "run": re.escape(str(audio_run)),
        "home": re.escape(str(Path.home())) + r"(?![\w-])",
        "user": rf"[/\\~]{user}(?![\w-])|(?<![\w-]){user}@",
        "host": rf"(?<![\w-]){re.escape(socket.gethostname())}(?![\w-])",
    }
    return {what: re.compile(pattern) for what, pattern in found.items()}


def _texts(folder: Path) -> dict[str, str]:
    """Every text file of the folder, and each ONNX graph's metadata (the model's and its
    nodes': the exporter's stack traces name source files)."""
    texts = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".onnx":
            graph = onnx.load(str(path))
            nodes = [*graph.graph.node, *(n for f in graph.functions for n in f.node)]
            props = [*graph.metadata_props, *graph.graph.metadata_props]
            props += [p for n in nodes for p in n.metadata_props]
            texts[str(path)] = "\n".join(
                [f"{p.key}={p.value}" for p in props]
                + [graph.doc_string, graph.producer_name]
                + [n.doc_string for n in nodes]
            )
        elif path.is_file():
            try:
                texts[str(path)] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # weights
    return texts


def test_nothing_of_this_machine_is_in_an_export(
    onnx_folder: Path, trained_run: Any, tiny_models: Any, audio_run: Path, synthetic_corpus: Any
) -> None:
    machine = _machine(trained_run, tiny_models, audio_run, synthetic_corpus[0])
    leaks = [
        f"{Path(path).relative_to(onnx_folder)}: {what} ({match.group(0)})"
        for path, text in _texts(onnx_folder).items()
        for what, pattern in machine.items()
        if (match := pattern.search(text))
    ]
    assert not leaks, "\n".join(leaks)
    config = json.loads((onnx_folder / CONFIG).read_text())
    assert list(config["encoders"]) == ["tiny-hubert"]
    assert config["features"]["tiny-hubert.L2"]["encoder"] == "tiny-hubert"


def test_the_public_folder_predicts_alone(
    onnx_folder: Path, trained_run: Any, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(onnx_folder, moved)
    result = ser("predict", "--model", moved, trained_run.wavs[0], "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["failed"] == 0
