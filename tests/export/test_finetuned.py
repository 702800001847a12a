"""`ser export` of a fine-tuned run: with its encoders, the encoder holds the member's
trained top layers (LoRA folded in) and predicts as the run; what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ser.errors import ConfigError
from ser.export.folder import CARD, CONFIG
from ser.export.merged import check_finetuned
from ser.export.write import ExportConfig, export_run
from ser.finetune.tuning import top_layers
from ser.predict.run import PredictConfig, predict
from ser.train.checkpoint import load_checkpoint

KEY = "seed0_session5"
ATTENTION = "encoder.layers.1.attention"  # the layer the run trained (its cached layer 1's next)


@pytest.fixture(scope="module")
def merged(finetuned_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finetuned-export") / "model"
    export_run(ExportConfig(str(finetuned_run), str(out), with_encoders=True))
    return out


def _base(finetuned_run: Path) -> str:
    attrs = load_checkpoint(finetuned_run, KEY).features["tiny-hubert.L1"]["attrs"]
    return str(attrs["model"])


def test_the_merged_weights_are_the_base_ones_plus_lora_s_product(finetuned_run, merged) -> None:
    from safetensors.torch import load_file

    base = load_file(str(Path(_base(finetuned_run)) / "model.safetensors"))
    done = load_file(str(merged / "encoders" / "tiny-hubert" / "model.safetensors"))
    state = load_checkpoint(finetuned_run, KEY).state
    for proj in ("q_proj", "v_proj"):
        adapter = f"top_layers.0.layers.0.attention.{proj}.lora_%s.default.weight"
        product = state[adapter % "B"] @ state[adapter % "A"] * 2.0  # alpha 8 / rank 4
        assert product.abs().max() > 0  # the adapters trained
        weight = f"{ATTENTION}.{proj}.weight"
        assert torch.allclose(done[weight], base[weight] + product, atol=1e-6)
    layer = "encoder.layers.1."  # the trained layer's norms trained beside the adapters
    norms = [k for k in base if k.startswith(layer) and "layer_norm" in k]
    assert norms
    for k in norms:
        assert torch.equal(done[k], state[k.replace(layer, "top_layers.0.layers.0.")])
    untouched = [k for k in base if not k.startswith(ATTENTION) and k not in norms]
    assert all(torch.equal(done[k], base[k]) for k in untouched)


def test_the_merged_encoder_computes_the_trained_model_s_layers(finetuned_run, merged) -> None:
    from transformers import AutoModel

    base = AutoModel.from_pretrained(_base(finetuned_run)).eval()
    tuned = AutoModel.from_pretrained(str(merged / "encoders" / "tiny-hubert")).eval()
    model = load_checkpoint(finetuned_run, KEY).build()
    (_, top, _), *_ = top_layers(model).tops()  # type: ignore[union-attr]
    wave = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        below = base(wave, output_hidden_states=True).hidden_states
        ours = tuned(wave, output_hidden_states=True).hidden_states
        trained = top(below[1], torch.ones(below[1].shape[:2], dtype=torch.bool))
    assert torch.equal(ours[1], below[1])  # the cached layer: untouched
    assert torch.allclose(ours[2], trained, atol=1e-5)


def test_config_and_card_say_what_was_fine_tuned(finetuned_run, merged) -> None:
    config = json.loads((merged / CONFIG).read_text())
    entry = config["encoders"]["tiny-hubert"]
    recorded = config["features"]["tiny-hubert.L1"]["weights_sha256"]
    assert entry["finetuned"]["base_weights_sha256"] == recorded != entry["weights_sha256"]
    assert entry["finetuned"]["member"] == KEY
    assert config["members"][0]["finetune"][0]["merged"] is True
    card = (merged / CARD).read_text()
    assert (
        "- Fine-tuned: tiny-hubert.L1's encoder layer 2 with LoRA rank 4 (alpha 8) on q_proj, "
        "v_proj (lr 0.0001, warm-up 10 % of steps)." in card
    )
    assert f"(LoRA folded in), weights sha256 {entry['weights_sha256'][:12]}." in card


def test_the_folder_predicts_as_its_run(finetuned_run, merged, synthetic_corpus) -> None:
    root, _ = synthetic_corpus
    wavs = tuple(sorted(str(p) for p in (root / "Session5" / "sentences").rglob("*.wav"))[:2])
    run = predict(PredictConfig(str(finetuned_run), wavs, device="cpu")).predictions
    folder = predict(PredictConfig("", wavs, device="cpu", model=str(merged))).predictions
    for a, b in zip(run, folder, strict=True):
        assert all(abs(a.probabilities[c] - b.probabilities[c]) < 1e-5 for c in a.probabilities)


def test_what_a_fine_tuned_run_cannot_export_is_one_line(finetuned_run, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^--onnx: the run fine-tuned tiny-hubert\.L1.s"):
        export_run(ExportConfig(str(finetuned_run), str(tmp_path / "o"), onnx=True))
    ckpt = load_checkpoint(finetuned_run, KEY)
    with pytest.raises(ConfigError, match="each of the 2 members trained its own top layers"):
        check_finetuned([ckpt, ckpt], with_encoders=True, onnx=False)
    check_finetuned([ckpt, ckpt], with_encoders=False, onnx=False)  # the base named: fine


def test_a_folder_without_encoders_rebuilds_the_layers_on_a_stand_in(
    finetuned_run, synthetic_corpus, tmp_path
) -> None:
    root, _ = synthetic_corpus
    wavs = tuple(sorted(str(p) for p in (root / "Session5" / "sentences").rglob("*.wav"))[:1])
    out = tmp_path / "model"
    export_run(ExportConfig(str(finetuned_run), str(out)))
    assert json.loads((out / CONFIG).read_text())["members"][0]["finetune"][0]["from_layer"] == 1
    run = predict(PredictConfig(str(finetuned_run), wavs, device="cpu")).predictions
    given = PredictConfig("", wavs, device="cpu", model=str(out), encoders=(_base(finetuned_run),))
    folder = predict(given).predictions
    for a, b in zip(run, folder, strict=True):
        assert all(abs(a.probabilities[c] - b.probabilities[c]) < 1e-5 for c in a.probabilities)
