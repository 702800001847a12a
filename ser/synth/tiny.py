"""Tiny random models of every encoder architecture ser extracts, for tests and the demo
(no downloads): HuBERT, MPNet, BERT and Whisper (`build_tiny_models`, the demo's), and
wav2vec2, WavLM, data2vec-audio (`save_tiny_speech`), RoBERTa, DeBERTa-v2
(`save_tiny_text`) and a sentence-transformers package (`save_tiny_sentence_transformer`).

Saved with `save_pretrained`, so `from_pretrained(folder)` takes a real model's code path;
the tokenizers know the synthetic corpus's words, so they map to real ids, not [UNK].
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    AutoConfig,
    AutoModel,
    BertConfig,
    BertModel,
    BertTokenizer,
    DebertaV2Tokenizer,
    GenerationConfig,
    HubertConfig,
    HubertModel,
    MPNetConfig,
    MPNetModel,
    MPNetTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    RobertaTokenizer,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

from ser.synth.text import VOCABULARY

HIDDEN = 32
MAX_TOKENS = 64
# Subword pieces so that any lower-case word tokenizes without [UNK].
_PIECES = [*"abcdefghijklmnopqrstuvwxyz0123456789", "s", "ed", "ing", "ly", "er"]
_PUNCTUATION = list(".,?!'-:;\"")
_MPNET_SPECIALS = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]
_ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SpeechType = Literal["hubert", "wav2vec2", "wavlm", "data2vec-audio"]
TextType = Literal["bert", "mpnet", "roberta", "deberta-v2"]


@dataclass(frozen=True)
class TinyModels:
    hubert: Path
    mpnet: Path
    bert: Path
    whisper: Path


def build_tiny_models(
    out_dir: str | Path, vocabulary: Iterable[str] = VOCABULARY, seed: int = 0
) -> TinyModels:
    """Build and save the tiny models under `out_dir`; same seed, same weights."""
    out = Path(out_dir)
    words = wordpiece_vocab(vocabulary)
    return TinyModels(
        hubert=save_tiny_hubert(out / "tiny-hubert", seed=seed),
        mpnet=_save_tiny_text("mpnet", out / "tiny-mpnet", words, seed),
        bert=_save_tiny_text("bert", out / "tiny-bert", words, seed),
        whisper=save_tiny_whisper(out / "tiny-whisper", vocabulary, seed=seed),
    )


class _Layers(TypedDict):
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int


# Every tiny encoder's transformer: 2 layers of width HIDDEN, 2 heads.
_LAYERS = _Layers(
    hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * HIDDEN
)
# Every tiny wav2vec2-family model's sizes: `_LAYERS` and the real models' 320x
# downsampling (5 * 8 * 8 samples a frame: 20 ms at 16 kHz).
_SPEECH_SIZES: dict[str, Any] = dict(
    **_LAYERS,
    conv_dim=(16, 16, 16),
    conv_kernel=(10, 8, 8),
    conv_stride=(5, 8, 8),
    num_conv_pos_embedding_groups=4,
)


def save_tiny_hubert(
    folder: str | Path, seed: int = 0, feat_extract_norm: Literal["group", "layer"] = "group"
) -> Path:
    """A 2-layer HuBERT with hidden size 32 and the real model's 320x downsampling (20 ms
    frames at 16 kHz). "group" norm (like hubert-base) is the padding-sensitive case;
    "layer" gets the pre-LN encoder that layer-norm models (hubert-large, WavLM) use."""
    config = HubertConfig(
        **_SPEECH_SIZES,
        num_conv_pos_embeddings=16,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=feat_extract_norm == "layer",
        vocab_size=8,
    )
    folder = _save(HubertModel, config, seed, Path(folder))
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    ).save_pretrained(folder)
    return folder


#: Whisper's special tokens that `generate` looks up by name.
_WHISPER_SPECIALS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|transcribe|>",
    "<|translate|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)


def save_tiny_whisper(
    folder: str | Path,
    vocabulary: Iterable[str] = VOCABULARY,
    seed: int = 0,
    encoder_layers: int = 1,
) -> Path:
    """A 1+1-layer Whisper (d_model 32, 80 mel bins; `encoder_layers` for its encoder's
    features) with a byte-level vocabulary plus one token per corpus word (" word"), so
    its random transcripts decode to words. Saved with its processor and a generation
    config: `generate` needs no hub lookup."""
    tokens = sorted(ByteLevel.alphabet())  # the 256 byte symbols (a set: sorted, fixed ids)
    tokens += sorted({"\u0120" + w.lower() for w in vocabulary} - set(tokens))
    vocab = {token: i for i, token in enumerate([*tokens, *_WHISPER_SPECIALS])}
    end, start = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(vocab),
        num_mel_bins=80,
        d_model=HIDDEN,
        encoder_layers=encoder_layers,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * HIDDEN,
        decoder_ffn_dim=2 * HIDDEN,
        max_target_positions=MAX_TOKENS,
        pad_token_id=end,
        bos_token_id=end,
        eos_token_id=end,
        decoder_start_token_id=start,
    )
    generation = GenerationConfig(
        decoder_start_token_id=start,
        eos_token_id=end,
        pad_token_id=end,
        no_timestamps_token_id=vocab["<|notimestamps|>"],
        is_multilingual=True,
        lang_to_id={"<|en|>": vocab["<|en|>"]},
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
        # A random model would emit control tokens: keep its transcripts to words and bytes,
        # and start them with a word (not the end, not a byte that may be whitespace), so
        # none is empty whatever near-tie the thread count's rounding tips.
        suppress_tokens=[vocab[t] for t in _WHISPER_SPECIALS[1:]],
        begin_suppress_tokens=[end, *range(len(ByteLevel.alphabet()))],
        max_length=MAX_TOKENS,
    )
    folder = _save(WhisperForConditionalGeneration, config, seed, Path(folder))
    generation.save_pretrained(folder)  # replaces the one derived from `config`
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    return folder


def wordpiece_vocab(vocabulary: Iterable[str]) -> list[str]:
    """Lower-cased words (split like BERT's pre-tokenizer), punctuation and "##" pieces,
    sorted; special tokens are added per model."""
    tokens: set[str] = set(_PUNCTUATION)
    tokens.update(_PIECES[:36])
    tokens.update(f"##{piece}" for piece in _PIECES)
    for word in vocabulary:
        tokens.update(re.findall(r"\w+|[^\w\s]", word.lower()))
    return sorted(tokens)


def save_tiny_speech(folder: str | Path, model_type: SpeechType, seed: int = 0) -> Path:
    """A 2-layer wav2vec2-family model with the tiny HuBERT's sizes and 20 ms frames:
    wav2vec2 (group norm, as wav2vec2-base), WavLM (layer norm, stable layer norm) or
    data2vec-audio; saved without a preprocessor config (the family's 16 kHz raw input)."""
    if model_type == "hubert":
        return save_tiny_hubert(folder, seed)
    extras: dict[str, dict[str, Any]] = {
        "wav2vec2": {"feat_extract_norm": "group", "num_conv_pos_embeddings": 16},
        "wavlm": {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "num_buckets": 32},
        "data2vec-audio": {"conv_pos_kernel_size": 5},
    }
    config = AutoConfig.for_model(model_type, **_SPEECH_SIZES, **extras[model_type])
    return _save(AutoModel.from_config, config, seed, Path(folder))


def save_tiny_text(
    folder: str | Path,
    model_type: TextType,
    vocabulary: Iterable[str] = VOCABULARY,
    seed: int = 0,
) -> Path:
    """A 2-layer text encoder (hidden 32) with its own tokenizer class: BERT and MPNet
    (WordPiece), RoBERTa (byte-level BPE: bytes and one token per word) or DeBERTa-v2
    (a Unigram vocabulary of words and letters)."""
    folder = Path(folder)
    if model_type in ("bert", "mpnet"):
        return _save_tiny_text(model_type, folder, wordpiece_vocab(vocabulary), seed)
    words = sorted({w.lower() for w in vocabulary})
    if model_type == "roberta":
        pieces = sorted(ByteLevel.alphabet())
        pieces += sorted({"\u0120" + w for w in words} - set(pieces))
        vocab = {t: i for i, t in enumerate([*_ROBERTA_SPECIALS, *pieces])}
        tokenizer: RobertaTokenizer | DebertaV2Tokenizer = RobertaTokenizer(
            vocab=vocab, merges=[], model_max_length=MAX_TOKENS
        )
        pad, offset = vocab["<pad>"], vocab["<pad>"] + 1  # positions start after padding
    else:
        unigram = [(t, 0.0) for t in _BERT_SPECIALS]
        unigram += [(f"\u2581{w}", -1.0) for w in words] + [(c, -5.0) for c in _PIECES[:36]]
        unigram += [("\u2581", -3.0)]
        tokenizer = DebertaV2Tokenizer(vocab=unigram, model_max_length=MAX_TOKENS)
        pad, offset = 0, 0
    config = AutoConfig.for_model(
        model_type,
        **_LAYERS,
        vocab_size=len(tokenizer),
        pad_token_id=pad,
        max_position_embeddings=MAX_TOKENS + offset,
    )
    _save(AutoModel.from_config, config, seed, folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_sentence_transformer(
    folder: str | Path,
    vocabulary: Iterable[str] = VOCABULARY,
    seed: int = 0,
    subfolder: str = "",
) -> Path:
    """A sentence-transformers package of a tiny MPNet (as all-mpnet-base-v2 is):
    modules.json (Transformer, mean Pooling, Normalize), 1_Pooling/config.json, and the
    transformer at the package root or in `subfolder` (`0_Transformer`, as older
    packages keep it)."""
    folder = Path(folder)
    inner = save_tiny_text(folder / subfolder, "mpnet", vocabulary, seed)
    modules = [("Transformer", subfolder), ("Pooling", "1_Pooling"), ("Normalize", "2_Normalize")]
    listing = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (kind, path) in enumerate(modules)
    ]
    pooling = {"word_embedding_dimension": HIDDEN, "pooling_mode_mean_tokens": True}
    files = {
        folder / "modules.json": listing,
        folder / "config_sentence_transformers.json": {"similarity_fn_name": "cosine"},
        folder / "1_Pooling" / "config.json": pooling,
        inner / "sentence_bert_config.json": {"max_seq_length": MAX_TOKENS},
    }
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    (folder / "2_Normalize").mkdir(exist_ok=True)
    return folder


def _save_tiny_text(
    kind: Literal["bert", "mpnet"], folder: Path, words: list[str], seed: int
) -> Path:
    """BERT, or MPNet with its own specials (its unknown token keeps BERT's spelling)."""
    bert = kind == "bert"
    specials = _BERT_SPECIALS if bert else _MPNET_SPECIALS
    vocab = {t: i for i, t in enumerate([*specials, *words])}
    pad = vocab["[PAD]" if bert else "<pad>"]
    if bert:
        config: BertConfig | MPNetConfig = BertConfig(
            **_LAYERS, vocab_size=len(vocab), pad_token_id=pad, max_position_embeddings=MAX_TOKENS
        )
    else:  # positions start after the padding index, as in RoBERTa
        config = MPNetConfig(
            **_LAYERS,
            vocab_size=len(vocab),
            pad_token_id=pad,
            bos_token_id=vocab["<s>"],
            eos_token_id=vocab["</s>"],
            max_position_embeddings=MAX_TOKENS + pad + 1,
        )
    _save(BertModel if bert else MPNetModel, config, seed, folder, add_pooling_layer=False)
    tokenizer = BertTokenizer if bert else MPNetTokenizer
    tokenizer(vocab=vocab, model_max_length=MAX_TOKENS).save_pretrained(folder)
    return folder


def _save(
    model_class: Callable[..., PreTrainedModel],
    config: PretrainedConfig,
    seed: int,
    folder: Path,
    **kwargs: object,
) -> Path:
    """Random weights drawn from `seed` without moving the global generator; saved."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config, **kwargs).eval()
    model.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    # `python -m ser.synth.tiny OUT`: what the demo runs to get local models without a download.
    import sys

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per saved file is noise in the demo
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ser.synth.tiny OUT_DIR")
    models = build_tiny_models(sys.argv[1])
    print("tiny models:", *(f"{name}={path}" for name, path in vars(models).items()))
