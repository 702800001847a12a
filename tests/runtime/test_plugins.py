"""Plugins: a model family kept in a module of the user's own, named in `SER_PLUGINS` or
installed with an entry point in the group `ser.plugins`, is registered before any
command reads a registry and trains through `ser train` like ser's own; a plugin that
fails to load is one line naming it. `ser` runs in this process as a user types it (the
plugins load when a command is looked up, and `ser train` reads its options from the
registry then), its plugin modules and what they register gone when each test ends; the
Python API's import, which loads them once a process, runs in a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ser.models import FAMILIES
from tests.refused import one_line, ser

# The user's own package: the family of docs/dev/add-family.md, "A family of your own".
PLUGIN = '''
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ser.models import Family, FamilyConfig, FeatureInfo, ModelOutput, SerModel, TrainDefaults
from ser.models import register
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import option, specs
from ser.models.nn.blocks import MLP


@dataclass(frozen=True)
class MeanLogitsConfig(FamilyConfig):
    """An MLP per feature set, their logits averaged: --fusion mean-logits."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {"mean-logits": ()}
    hidden: int = option(8, "Hidden width of each set's MLP.", least=1)

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        return "utterance", specs(features, "vector")


class MeanLogits(SerModel):
    def __init__(self, config, inputs, n_classes):
        super().__init__(config, inputs)
        self.mlps = nn.ModuleList(MLP(s.dim, config.hidden, n_classes, 0.0) for s in inputs)

    def forward(self, batch: Batch) -> ModelOutput:
        logits = [mlp(batch.x[s.name]) for mlp, s in zip(self.mlps, self.inputs, strict=True)]
        return ModelOutput(torch.stack(logits).mean(dim=0))  # [B, C]


register(Family("mean_logits", MeanLogitsConfig, MeanLogits, TrainDefaults(2, 8, 1e-2, 0.0)))
'''
TRAIN = ("train", "--features", "is13", "--fusion", "mean-logits", "--hidden", "4")
TRAIN += ("--classes", "4", "--protocol", "session5", "--device", "cpu", "--threads", "1")


@pytest.fixture(scope="module")
def store(labelled_stores: Callable[..., Path]) -> Path:
    return labelled_stores({"is13": ("is13", "audio", "utterance", 7, "float32")})


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's folder of plugin modules, on the path; `SER_PLUGINS` unset until a test
    names them. The modules imported from it and the families they registered are gone
    when the test ends, as though its `ser` had been a process of its own."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SER_PLUGINS", raising=False)
    families = set(FAMILIES)
    yield tmp_path
    for name in set(FAMILIES) - families:
        FAMILIES.pop(name)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_a_family_named_in_ser_plugins_trains(
    store: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "my_family.py").write_text(PLUGIN)
    monkeypatch.setenv("SER_PLUGINS", "my_family")
    out = folder / "runs"
    done = ser(*TRAIN, "--store", store, "--out", out)
    assert done.exit_code == 0, done.output
    (record,) = out.glob("*/run.json")
    config = json.loads(record.read_text())["config"]
    assert (config["family"], config["hidden"]) == ("mean_logits", 4)
    helped = ser("train", "--help")
    assert "mean-logits" in helped.stdout and "--hidden" in helped.stdout


def test_an_installed_entry_point_is_loaded(store: Path, folder: Path) -> None:
    """A package installed with `[project.entry-points."ser.plugins"]`: its metadata on
    the path is what pip leaves, so the family trains without SER_PLUGINS."""
    (folder / "my_family.py").write_text(PLUGIN)
    info = folder / "my_family-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-family\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ser.plugins]\nmean_logits = my_family\n")
    out = folder / "runs"
    done = ser(*TRAIN, "--store", store, "--out", out, "--epochs", "1")
    assert done.exit_code == 0, done.output
    assert json.loads(next(out.glob("*/run.json")).read_text())["config"]["family"] == (
        "mean_logits"
    )


def test_a_broken_plugin_is_one_line(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SER_PLUGINS", "no_such_plugin")
    line = one_line(ser("train", "--help"))
    assert line == (
        "error: plugin 'no_such_plugin' (from SER_PLUGINS) failed to load: "
        "ModuleNotFoundError: No module named 'no_such_plugin'"
    )
    (folder / "raising.py").write_text("raise RuntimeError('the GPU build is missing')\n")
    monkeypatch.setenv("SER_PLUGINS", "raising")
    failed = ser("store", "info", folder)
    assert failed.exit_code == 2 and "Traceback" not in failed.output
    assert failed.stderr.strip() == (
        "error: plugin 'raising' (from SER_PLUGINS) failed to load: "
        "RuntimeError: the GPU build is missing"
    )


def test_the_python_api_loads_the_plugins_too(tmp_path: Path) -> None:
    """`import ser` loads them once a process: a fresh one, this one has imported ser."""
    (tmp_path / "my_family.py").write_text(PLUGIN)
    script = "import ser; from ser.models import FAMILIES; ser.open_store; print(list(FAMILIES))"
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "SER_PLUGINS": "my_family"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "mean_logits" in done.stdout


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ],
)
def test_a_plugin_that_exits_is_one_line_and_ser_goes_on_to_say_so(
    folder: Path, monkeypatch: pytest.MonkeyPatch, source: str, why: str
) -> None:
    (folder / "leaving.py").write_text(source)
    monkeypatch.setenv("SER_PLUGINS", "leaving")
    failed = ser("store", "info", folder)
    assert failed.exit_code == 2 and "Traceback" not in failed.output
    assert failed.stderr.strip() == (
        f"error: plugin 'leaving' (from SER_PLUGINS) failed to load: {why}"
    )


def test_a_plugin_s_print_never_reaches_stdout(
    store: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "chatty.py").write_text("print('hello from a plugin')\n")
    monkeypatch.setenv("SER_PLUGINS", "chatty")
    done = ser("store", "info", store, "--json")
    assert done.exit_code == 0, done.output
    json.loads(done.stdout)  # the command's JSON alone
    assert "hello from a plugin" in done.stderr


LOADING = "error: plugin 'claiming' (from SER_PLUGINS) failed to load: "


def _claiming(change: tuple[str, str]) -> str:
    """The family plugin with `change` made to it (its model's width fixed: no option)."""
    return PLUGIN.replace(*change).replace("config.hidden", "8")


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            _claiming(('{"mean-logits": ()}', '{"mit": ()}')),
            "model family 'mean_logits' takes --fusion mit, which the family 'msmser' takes",
        ),
        (
            _claiming(("hidden: int = option(8,", "epochs: int = option(8,")),
            "the model family 'mean_logits' declares an option 'epochs', which is ser "
            "train's own --epochs",
        ),
        (
            "import dataclasses\nfrom ser.extract.registry import KINDS\n"
            "KINDS.add(dataclasses.replace(KINDS['logmel']))\n",
            LOADING + "ValueError: extractor kind 'logmel' is registered already",
        ),
        (
            "import copy\nfrom ser.corpus.registry import KINDS\n"
            "KINDS.add(copy.copy(KINDS['crema-d']))\n",
            LOADING + "ValueError: corpus kind 'crema-d' is registered already",
        ),
        (
            "from ser.heads.registry import HEADS\n"
            "HEADS.add(type('Mine', (HEADS['sentiment'],), {}))\n",
            LOADING + "ValueError: head 'sentiment' is registered already",
        ),
    ],
)
def test_a_plugin_that_claims_a_built_in_name_is_refused_naming_both(
    folder: Path, monkeypatch: pytest.MonkeyPatch, source: str, said: str
) -> None:
    """A family, a `--fusion` value, a `ser train` option, an extractor kind, a corpus
    kind or a head of ser's own, claimed: one line naming the plugin and the name."""
    (folder / "claiming.py").write_text(source)
    monkeypatch.setenv("SER_PLUGINS", "claiming")
    failed = ser("train", "--help")
    assert failed.exit_code == 2 and "Traceback" not in failed.output, failed.output
    line = failed.stderr.strip()
    assert line.startswith("error: ") and said in line and len(line.splitlines()) == 1
