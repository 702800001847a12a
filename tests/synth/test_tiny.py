"""Tiny random models: loadable through from_pretrained, real tokenizers, deterministic."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoTokenizer

from ser.synth.tiny import (
    TinyModels,
    build_tiny_models,
    save_tiny_hubert,
    save_tiny_sentence_transformer,
    save_tiny_speech,
    save_tiny_text,
    save_tiny_whisper,
    wordpiece_vocab,
)

WORDS = ["hello", "world", "Happy", "don't", "excited"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_tiny_models(tmp_path_factory.mktemp("tiny"), WORDS, seed=0)


def test_models_are_tiny(tmp_path: Path) -> None:
    # Size, not seconds: the suite builds them often, and a timed test fails when busy.
    build_tiny_models(tmp_path, WORDS, seed=3)
    weights = {p.parent.name: p.stat().st_size for p in tmp_path.rglob("*.safetensors")}
    assert weights and all(size < 1_000_000 for size in weights.values()), weights


def test_models_round_trip_through_from_pretrained(tiny: TinyModels) -> None:
    assert type(AutoModel.from_pretrained(tiny.hubert)).__name__ == "HubertModel"
    no_pooler = {"add_pooling_layer": False}
    assert type(AutoModel.from_pretrained(tiny.mpnet, **no_pooler)).__name__ == "MPNetModel"
    assert type(AutoModel.from_pretrained(tiny.bert, **no_pooler)).__name__ == "BertModel"
    for folder in (tiny.hubert, tiny.mpnet, tiny.bert):
        assert AutoConfig.from_pretrained(folder).hidden_size == 32
        assert AutoConfig.from_pretrained(folder).num_hidden_layers == 2


def test_hubert_has_20ms_frames_and_group_norm(tiny: TinyModels) -> None:
    config = AutoConfig.from_pretrained(tiny.hubert)
    assert math.prod(config.conv_stride) == 320
    assert config.feat_extract_norm == "group"
    assert AutoFeatureExtractor.from_pretrained(tiny.hubert).sampling_rate == 16000


def test_layer_norm_variant(tmp_path: Path) -> None:
    folder = save_tiny_hubert(tmp_path / "h", feat_extract_norm="layer")
    config = AutoConfig.from_pretrained(folder)
    assert config.feat_extract_norm == "layer" and config.do_stable_layer_norm


@pytest.mark.parametrize(
    ("which", "first", "last"), [("bert", "[CLS]", "[SEP]"), ("mpnet", "<s>", "</s>")]
)
def test_tokenizer_uses_the_vocabulary(tiny: TinyModels, which: str, first: str, last: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(getattr(tiny, which))
    ids = tokenizer("Hello excited world")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens == [first, "hello", "excited", "world", last]
    assert tokenizer.unk_token_id not in ids
    # A word outside the vocabulary splits into pieces instead of [UNK].
    pieces = tokenizer.convert_ids_to_tokens(
        tokenizer("zebra", add_special_tokens=False)["input_ids"]
    )
    assert len(pieces) > 1 and tokenizer.unk_token not in pieces
    # Punctuated words of the vocabulary split like BERT's pre-tokenizer.
    assert tokenizer.tokenize("don't") == ["don", "'", "t"]


def test_mpnet_padding_index_matches_its_tokenizer(tiny: TinyModels) -> None:
    # MPNet derives position ids from the padding index: a mismatch would make padding
    # change the outputs.
    tokenizer = AutoTokenizer.from_pretrained(tiny.mpnet)
    assert AutoConfig.from_pretrained(tiny.mpnet).pad_token_id == tokenizer.pad_token_id


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    a = build_tiny_models(tmp_path / "a", WORDS, seed=0)
    b = build_tiny_models(tmp_path / "b", WORDS, seed=0)
    c = build_tiny_models(tmp_path / "c", WORDS, seed=1)
    for name in ("hubert", "mpnet", "bert"):
        # Text models are saved without the (unused) pooler, as the extractors load them.
        kwargs = {} if name == "hubert" else {"add_pooling_layer": False}
        weights = [
            AutoModel.from_pretrained(getattr(m, name), **kwargs).state_dict() for m in (a, b, c)
        ]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
        assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    # Whisper's byte tokens keep their ids: the same seed transcribes to the same words.
    files = [{p.name: p.read_bytes() for p in m.whisper.iterdir()} for m in (a, b)]
    assert files[0] == files[1]


def test_building_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_models(tmp_path, WORDS)
    assert torch.equal(torch.rand(3), expected)


def test_wordpiece_vocab_is_sorted_and_unique() -> None:
    vocab = wordpiece_vocab(["b", "a", "a", "It's"])
    assert vocab == sorted(set(vocab))
    assert {"a", "b", "it", "'", "s", "##s"} <= set(vocab)


def test_default_vocabulary_is_the_synthetic_corpus(tmp_path: Path) -> None:
    from ser.synth.text import VOCABULARY

    models = build_tiny_models(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(models.bert)
    word = VOCABULARY[0].lower()
    assert tokenizer.tokenize(word) == [word]


@pytest.mark.parametrize(
    ("model_type", "model_class"),
    [
        ("wav2vec2", "Wav2Vec2Model"),
        ("wavlm", "WavLMModel"),
        ("data2vec-audio", "Data2VecAudioModel"),
    ],
)
def test_every_speech_architecture(tmp_path: Path, model_type: str, model_class: str) -> None:
    folder = save_tiny_speech(tmp_path / model_type, model_type)  # type: ignore[arg-type]
    config = AutoConfig.from_pretrained(folder)
    assert (config.model_type, config.hidden_size, math.prod(config.conv_stride)) == (
        model_type, 32, 320,
    )  # fmt: skip
    assert type(AutoModel.from_pretrained(folder)).__name__ == model_class


@pytest.mark.parametrize(
    ("model_type", "first", "last"), [("roberta", "<s>", "</s>"), ("deberta-v2", "[CLS]", "[SEP]")]
)
def test_every_text_architecture(tmp_path: Path, model_type: str, first: str, last: str) -> None:
    folder = save_tiny_text(tmp_path / model_type, model_type, WORDS)  # type: ignore[arg-type]
    assert AutoConfig.from_pretrained(folder).model_type == model_type
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("hello world")["input_ids"])
    assert tokens[0] == first and tokens[-1] == last and tokenizer.unk_token not in tokens
    assert tokenizer.model_max_length == 64


def test_whisper_encoder_depth(tmp_path: Path) -> None:
    folder = save_tiny_whisper(tmp_path / "w", WORDS, encoder_layers=2)
    config = AutoConfig.from_pretrained(folder)
    assert (config.encoder_layers, config.decoder_layers) == (2, 1)


@pytest.mark.parametrize("subfolder", ["", "0_Transformer"])
def test_sentence_transformers_package_layouts(tmp_path: Path, subfolder: str) -> None:
    import json

    package = save_tiny_sentence_transformer(tmp_path / "pkg", WORDS, subfolder=subfolder)
    modules = json.loads((package / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert modules[0]["path"] == subfolder
    pooling = json.loads((package / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and pooling["word_embedding_dimension"] == 32
    inner = package / subfolder
    assert AutoConfig.from_pretrained(inner).model_type == "mpnet"
    assert (inner / "sentence_bert_config.json").is_file()
    assert (package / "config.json").is_file() == (subfolder == "")
