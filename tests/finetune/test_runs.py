"""Runs with fine-tuned inputs: they train (MSMSER, the fusion study's dialog model),
record what was tuned, resume, keep what trained in their checkpoints and predict; the
options that do not go with them are refused before a run's folder is made."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from ser.cli import main
from ser.errors import ConfigError
from ser.finetune.tuning import FineTune, load_prototype
from ser.models import ModelConfig
from ser.train.checkpoint import load_checkpoint
from ser.train.recipe import TrainConfig, train

LOW, LAST = "tiny-hubert.L1", "tiny-hubert.L2"


def _config(store: Path, out: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        store=str(store), features=(LOW, "tiny-bert"), finetune=(f"{LOW}:top=1,lr=1e-3",),
        model=ModelConfig(fusion="mit", d_model=16, heads=2, queries=4), classes="4",
        protocol="session5", epochs=2, batch_size=8, seeds=1, device="cpu", out=str(out),
        name="tuned",
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tuned_run(layered_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tuned-runs")
    train(_config(layered_store, out))
    return out / "tuned"


def test_a_run_records_what_it_tuned_and_trains_its_top_layers(tuned_run, layered_store) -> None:
    record = json.loads((tuned_run / "run.json").read_text())
    assert record["config"]["finetune"] == [f"{LOW}:top=1,lr=0.001"]
    assert "one at a time, eagerly" in record["execution"]["source"]
    sidecar = json.loads((tuned_run / "checkpoints" / "seed0_session5.json").read_text())
    (entry,) = sidecar["finetune"]
    assert (entry["input"], entry["from_layer"], entry["to_layer"]) == (LOW, 1, 2)
    assert [s.get("gather") for s in sidecar["specs"]] == ["sequence", None]
    tensors = load_file(tuned_run / "checkpoints" / "seed0_session5.safetensors")
    tops = {
        k.removeprefix("model.top_layers.0."): v for k, v in tensors.items() if "top_layers" in k
    }
    from ser.cache import FeatureStore

    attrs = dict(FeatureStore.open(layered_store).info(LOW).attrs)
    base = load_prototype(FineTune.parse(f"{LOW}:top=1"), LOW, attrs).state_dict()
    assert set(tops) == set(base)  # whole layers: every tensor of them trained
    moved = [k for k in tops if not torch.equal(tops[k], base[k])]
    assert len(moved) > len(tops) // 2  # the encoder's rate moved them


def test_a_tuned_run_resumes_without_training_again(tuned_run, layered_store) -> None:
    before = (tuned_run / "run.json").read_text()
    record = train(_config(layered_store, tuned_run.parent))
    assert [e.key for e in record.folds] == [(0, "session5")]
    assert json.loads(before)["folds"] == json.loads((tuned_run / "run.json").read_text())["folds"]


def test_a_tuned_run_resumed_frozen_is_refused(tuned_run, layered_store) -> None:
    """Without --finetune the same name is refused: it had said "already done" and
    rewritten the record as a frozen run's."""
    before = (tuned_run / "run.json").read_bytes()
    with pytest.raises(ConfigError, match=r"finetune: \['tiny-hubert.L1:top=1,lr=0.001'\] -> off"):
        train(_config(layered_store, tuned_run.parent, finetune=()))
    assert (tuned_run / "run.json").read_bytes() == before


def test_predict_runs_the_encoder_then_the_trained_top(
    tuned_run, synthetic_corpus, tmp_path
) -> None:
    ckpt = load_checkpoint(tuned_run, "seed0_session5")
    model = ckpt.build()
    assert model.top_layers is not None  # type: ignore[union-attr]
    root, _ = synthetic_corpus
    wav = next((root / "Session5" / "sentences" / "wav").rglob("*.wav"))
    table = tmp_path / "in.csv"
    table.write_text(f'path,transcript\n{wav},"I can\'t believe you did that."\n')
    result = CliRunner().invoke(
        main, ["predict", "--run", str(tuned_run), str(table), "--device", "cpu", "--json"]
    )
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("{")]
    (row,) = json.loads(line)["predictions"]
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-4


def test_the_fusion_studys_dialog_model_takes_a_tuned_input(layered_store, tmp_path) -> None:
    config = _config(
        layered_store,
        tmp_path,
        model=ModelConfig(fusion="add", fusion_at="logits"),
        finetune=(f"{LOW}:top=1,lora=2",),
        epochs=1,
        batch_size=4,
        name="dialog",
    )
    record = train(config)
    assert record.complete and record.folds[0].metrics is not None
    tensors = load_file(tmp_path / "dialog" / "checkpoints" / "seed0_session5.safetensors")
    tops = [k for k in tensors if "top_layers" in k and "layer_norm" not in k]
    assert tops and all("lora_" in k for k in tops)  # the adapters, beside the norms


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"step": "graphed"}, "--step graphed does not go with --finetune"),
        ({"members_at_once": 2}, "--members-at-once above 1 does not go with --finetune"),
        ({"finetune": (f"{LAST}:top=1",)}, "is not one of --features"),
        (
            {"features": ("tiny-hubert.L0-1",), "finetune": ("tiny-hubert.L0-1:top=1",)},
            "layered input",
        ),
        ({"finetune": (f"{LOW}:top=2",)}, r"top must be within .* layer 1 of 2, so top 1\.\.1"),
    ],
)
def test_what_does_not_go_with_it_is_refused_before_a_folder(
    layered_store, tmp_path, changes, says
) -> None:
    with pytest.raises(ConfigError, match=says):
        train(_config(layered_store, tmp_path, **changes))
    assert not (tmp_path / "tuned").exists()
