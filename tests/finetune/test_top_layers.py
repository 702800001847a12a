"""The top layers of every architecture, run on cached rows, give what the extractor
stores as the higher layer.

The reference is ser's own extractor (`ser.extract`, fp32), so the tests hold its layer
convention (layer 0 the first layer's input; Whisper's last after the final LayerNorm,
stable-layer-norm wav2vec2-family models' before it), on a batch of two lengths padded
together. Tolerance: atol 1e-5 (values are O(1) after the layers' LayerNorms). The top
layers run the same float32 ops as the full model, but on another batch shape (the
extractor runs a text batch, a Whisper window or a speech utterance alone or padded
otherwise), so matrix products may round differently, by ~1e-7; a padded row leaking
into attention, a missing norm or a wrong position bias moves outputs by ~1e-1.
"""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from ser.errors import ConfigError
from ser.extract.registry import build_extractor
from ser.finetune.top_layers import (
    ARCHITECTURES,
    TopLayers,
    load_top_layers,
    lora,
    merged_encoder,
)
from ser.synth.text import VOCABULARY
from ser.synth.tiny import save_tiny_hubert, save_tiny_speech, save_tiny_text, save_tiny_whisper

ATOL = 1e-5
SPEECH = ["hubert", "hubert-stable", "wav2vec2", "wav2vec2-stable", "data2vec-audio", "wavlm"]
SPEECH += ["wavlm-post"]
TEXT = ["bert", "roberta", "mpnet"]
WHISPER_LAYERS = 3
WINDOW = 480_000  # Whisper's 30 s at 16 kHz


def _variant(folder: Path, source: Path, seed: int, **changes: object) -> Path:
    """A tiny model of `source`'s config with `changes` (the other norm placement)."""
    config = AutoConfig.from_pretrained(source)
    for key, value in changes.items():
        setattr(config, key, value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        AutoModel.from_config(config).eval().save_pretrained(folder)
    return folder


def _build(name: str, root: Path) -> Path:
    folder = root / f"tiny-{name}"
    if name == "hubert-stable":
        return save_tiny_hubert(folder, seed=1, feat_extract_norm="layer")
    if name == "wav2vec2-stable":
        base = save_tiny_speech(root / "base-wav2vec2", "wav2vec2", seed=2)
        stable = {"feat_extract_norm": "layer", "do_stable_layer_norm": True}
        return _variant(folder, base, 2, **stable)
    if name == "wavlm-post":
        base = save_tiny_speech(root / "base-wavlm", "wavlm", seed=3)
        return _variant(folder, base, 3, feat_extract_norm="group", do_stable_layer_norm=False)
    if name == "whisper":
        return save_tiny_whisper(folder, seed=4, encoder_layers=WHISPER_LAYERS)
    if name in (*TEXT, "deberta-v2"):
        return save_tiny_text(folder, name, seed=5)  # type: ignore[arg-type]
    return save_tiny_speech(folder, name, seed=6)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """name -> folder of its tiny model, each built once, when first asked for."""
    root = tmp_path_factory.mktemp("finetune-models")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = _build(name, root)
        return built[name]

    return get


@pytest.fixture(scope="module")
def stored(tiny):
    """(name, family, inputs) -> the extractor's rows of every layer: [layer][input] float32,
    extracted once."""
    done: dict[str, list[list[np.ndarray]]] = {}

    def get(name: str, family: str, inputs: list) -> list[list[np.ndarray]]:
        if name not in done:
            model = str(tiny(name))
            extractor = build_extractor(family, model=model, layers="all", precision="fp32")
            extractor.load(torch.device("cpu"))
            rows = extractor.extract(inputs)
            done[name] = [[r[spec.name] for r in rows] for spec in extractor.specs()]
        return done[name]

    return get


def _padded(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths as [B, T, D] zero-padded and their mask [B, T]."""
    frames = max(len(r) for r in rows)
    x = torch.zeros(len(rows), frames, rows[0].shape[1])
    for i, r in enumerate(rows):
        x[i, : len(r)] = torch.from_numpy(r)
    lengths = torch.tensor([len(r) for r in rows])
    return x, torch.arange(frames)[None] < lengths[:, None]


def _check_exact(top: TopLayers, low: list[np.ndarray], high: list[np.ndarray]) -> None:
    x, mask = _padded(low)
    with torch.no_grad():
        out = top(x, mask)
    assert out.shape == x.shape
    for i, expected in enumerate(high):
        n = len(expected)
        torch.testing.assert_close(out[i, :n], torch.from_numpy(expected), atol=ATOL, rtol=0)
        assert not out[i, n:].any()  # padded rows are zero


def _waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 11200)]


CUTS = [(1, 1), (0, 2), (0, 1)]  # (cached layer, k): the top one, all, one short of the top


@pytest.mark.parametrize("name", SPEECH)
@pytest.mark.parametrize(("low", "k"), CUTS)
def test_speech_top_layers_give_the_stored_layer(tiny, stored, name: str, low: int, k: int) -> None:
    layers = stored(name, "speech", _waves())
    assert len({len(r) for r in layers[low]}) == 2  # two lengths: padding matters
    top = load_top_layers(str(tiny(name)), low, k)
    assert (top.from_layer, top.to_layer, top.n_layers) == (low, low + k, 2)
    _check_exact(top, layers[low], layers[low + k])


@pytest.mark.parametrize("name", TEXT)
@pytest.mark.parametrize(("low", "k"), CUTS)
def test_text_top_layers_give_the_stored_layer(tiny, stored, name: str, low: int, k: int) -> None:
    texts = [" ".join(VOCABULARY[:3]), " ".join(VOCABULARY[3:12])]
    layers = stored(name, "text", texts)
    assert len({len(r) for r in layers[low]}) == 2
    _check_exact(load_top_layers(str(tiny(name)), low, k), layers[low], layers[low + k])


@pytest.mark.parametrize(("low", "k"), [(2, 1), (1, 2), (0, 3), (0, 1), (1, 1)])
def test_whisper_top_layers_give_the_stored_layer_for_whole_windows(
    tiny, stored, low: int, k: int
) -> None:
    """A 30 s utterance keeps its whole window: exact, with the final LayerNorm only at the
    top; batched with a shorter one, the mask keeps the padding out of its rows."""
    rng = np.random.default_rng(1)
    waves = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (WINDOW, WINDOW // 3)]
    layers = stored("whisper", "speech", waves)
    top = load_top_layers(str(tiny("whisper")), low, k)
    assert (top.norm is not None) == (low + k == WHISPER_LAYERS) and top.caveat is not None
    x, mask = _padded(layers[low])
    short = len(layers[low][1])
    with torch.no_grad():
        out = top(x, mask)
        alone = top(x[1:, :short], mask[1:, :short])
    whole = torch.from_numpy(layers[low + k][0])
    torch.testing.assert_close(out[0], whole, atol=ATOL, rtol=0)
    torch.testing.assert_close(out[1, :short], alone[0], atol=ATOL, rtol=0)


def _layer_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["hubert", "wavlm", "mpnet", "bert", "whisper"])
def test_only_the_kept_layers_are_held(tiny, name: str) -> None:
    folder = tiny(name)
    full = AutoModel.from_pretrained(folder)
    full = full.encoder if name == "whisper" else full
    model_type = "whisper" if name == "whisper" else full.config.model_type
    layers = full.get_submodule(ARCHITECTURES[model_type].layers)
    low = len(layers) - 1
    top = load_top_layers(str(folder), low)
    expected = _layer_count(layers[low])
    if name == "wavlm":  # the first layer's relative position bias table
        expected += _layer_count(layers[0].attention.rel_attn_embed)
    if name == "mpnet":  # the encoder's relative position bias table
        expected += _layer_count(full.encoder.relative_attention_bias)
    if name == "whisper":  # the encoder's final LayerNorm
        expected += _layer_count(full.layer_norm)
    assert _layer_count(top) == expected < _layer_count(full)


def test_the_rest_of_the_model_is_freed(tiny) -> None:
    """Nothing holds the layers below, the front end or the positional conv once loaded."""
    from transformers.models.hubert.modeling_hubert import HubertFeatureEncoder

    def front_ends() -> int:
        gc.collect()
        return sum(isinstance(o, HubertFeatureEncoder) for o in gc.get_objects())

    before = front_ends()
    top = load_top_layers(str(tiny("hubert")), 1)
    assert front_ends() == before and len(top.layers) == 1


def test_kept_layers_train_and_norms_may_freeze(tiny) -> None:
    folder = str(tiny("mpnet"))
    top = load_top_layers(folder, 1)
    assert all(p.requires_grad for n, p in top.named_parameters() if "bias_source" not in n)
    assert not any(p.requires_grad for p in top.bias_source.parameters())  # shared below
    assert all(p.requires_grad for p in load_top_layers(folder, 0).parameters())
    frozen = load_top_layers(folder, 1, freeze_norms=True)
    norms = {n for n, p in frozen.named_parameters() if "LayerNorm" in n}
    assert norms and not any(p.requires_grad for n, p in frozen.named_parameters() if n in norms)
    x, mask = torch.randn(2, 5, 32), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    frozen.train()
    frozen(x, mask).sum().backward()
    trained = [n for n, p in frozen.named_parameters() if p.requires_grad]
    assert trained and all(frozen.get_parameter(n).grad is not None for n in trained)


@pytest.mark.parametrize("name", ["hubert", "wavlm", "whisper", "bert", "mpnet"])
def test_lora_starts_as_the_frozen_layers_and_trains_only_adapters(tiny, name: str) -> None:
    top = load_top_layers(str(tiny(name)), 1, 1)
    x, mask = torch.randn(2, 6, 32), torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    with torch.no_grad():
        before = top(x, mask)
        adapted = lora(top, rank=2, alpha=4)
        torch.testing.assert_close(adapted(x, mask), before, atol=1e-6, rtol=0)
        trained = [n for n, p in adapted.named_parameters() if p.requires_grad]
        assert trained and all("lora_" in n for n in trained)
        for n in trained:  # the adapters are on the path: B != 0 changes the output
            if "lora_B" in n:
                adapted.get_parameter(n).fill_(0.1)
        assert not torch.allclose(adapted(x, mask), before, atol=1e-3)


def test_lora_on_wavlm_attention_is_refused(tiny) -> None:
    top = load_top_layers(str(tiny("wavlm")), 1)
    with pytest.raises(ConfigError, match="change nothing") as error:
        lora(top, targets=["q_proj", "v_proj"])
    assert "\n" not in str(error.value)


def test_a_kind_without_layers_is_refused_in_one_line(tiny) -> None:
    with pytest.raises(ConfigError, match="is13 features are not an encoder") as error:
        load_top_layers(str(tiny("hubert")), 1, kind_name="is13")
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="deberta-v2 model") as error:
        load_top_layers(str(tiny("deberta-v2")), 1)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="is a speech model, not one the text kind") as error:
        load_top_layers(str(tiny("hubert")), 1, kind_name="text")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("low", "k"), [(2, None), (-1, 1), (1, 2), (0, 0)])
def test_layers_out_of_range_are_refused(tiny, low: int, k: int | None) -> None:
    with pytest.raises(ConfigError, match="layer") as error:
        load_top_layers(str(tiny("bert")), low, k)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "family"), [(n, "speech") for n in SPEECH] + [(n, "text") for n in TEXT]
)
def test_a_merged_encoder_computes_its_trained_top_layers(
    tiny, stored, tmp_path, name: str, family: str
) -> None:
    """LoRA-adapted top layers (adapters moved off zero) put back into the whole encoder:
    the extractor of the saved model gives the layer the top layers make of the stored one
    below, and that layer unchanged."""
    texts = [" ".join(VOCABULARY[:3]), " ".join(VOCABULARY[3:12])]
    inputs = _waves() if family == "speech" else texts
    layers = stored(name, family, inputs)
    top = lora(load_top_layers(str(tiny(name)), 0, 1), rank=2, alpha=4)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for param in top.parameters():
            if param.requires_grad:
                param.normal_(0.0, 0.2)
    merged = str(tmp_path / "merged")
    shutil.copytree(tiny(name), merged)  # its tokenizer or feature extractor's settings too
    merged_encoder(str(tiny(name)), [top], family).save_pretrained(merged)
    extractor = build_extractor(family, model=merged, layers="all", precision="fp32")
    extractor.load(torch.device("cpu"))
    rows = extractor.extract(inputs)
    again = [[r[spec.name] for r in rows] for spec in extractor.specs()]
    for a, b in zip(again[0], layers[0], strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
    _check_exact(top, layers[0], again[1])


def test_whisper_is_not_written_back(tiny) -> None:
    with pytest.raises(ConfigError, match="Whisper's encoder without its decoder"):
        merged_encoder(str(tiny("whisper")), [], "speech")
