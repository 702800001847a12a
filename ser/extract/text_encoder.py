"""Token-level last hidden states of a Hugging Face text encoder: one kind, registered as
`mpnet` (MSMSER's linguistic features) and `bert` (Wu et al. mean-pool them; Zhou et al.
classify), each with its paper's model (`ser.extract.registry`).

Special tokens are kept: every transcript gives [CLS] (or <s>) first and [SEP] (or </s>)
last, so an empty transcript still has 2 rows, and a trainer that wants words only drops
the first and last row. Transcripts over `max_tokens` are cut at the end. Padding is on the
right with an attention mask, so a batch gives the same rows as one transcript at a time.
Transcripts other than the gold ones (a `TextSource`) name and fingerprint the set apart.

>>> import tempfile, torch
>>> from ser.extract.registry import build_extractor
>>> from ser.synth.tiny import build_tiny_models
>>> models = build_tiny_models(tempfile.mkdtemp(), ["hello", "world"])
>>> bert = build_extractor("bert", model=str(models.bert))
>>> bert.lengths(["hello world", ""]), [spec.name for spec in bert.specs()]
([4, 2], ['tiny-bert'])
>>> bert.load(torch.device("cpu"))
>>> bert.extract(["hello world"])[0]["tiny-bert"].shape
(4, 32)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ser.cache.fingerprint import model_location
from ser.cache.model_names import check_set_name
from ser.errors import ConfigError
from ser.extract.base import (
    ExtractionError,
    FeatureSetSpec,
    PretrainedExtractor,
    base_attrs,
    load_pretrained,
)
from ser.extract.options import KindOptions, TextSource, option
from ser.runtime.precision import autocast

# Tokenizers without a real limit report a huge model_max_length.
_NO_LIMIT = 1_000_000


@dataclass(frozen=True)
class TextEncoderOptions(KindOptions):
    """max_tokens: start and end tokens included (None: the model's limit); name: the set's
    name (None: the model's id); transcripts: a transcript set of the store (None: gold)."""

    model: str = option("", "model (hub id or folder)", "kind", metavar="ID_OR_DIR")
    max_tokens: int | None = None
    precision: str = "auto"
    name: str | None = None
    transcripts: TextSource | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("a text encoder needs a model (a hub id or a folder)")
        if self.name is not None:
            check_set_name(self.name)

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str:
        return f"{stem}@{attrs['transcripts']}" if attrs.get("text_source") == "asr" else stem

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        source = TextSource.recorded(attrs) if attrs.get("text_source") == "asr" else None
        return {**super().from_attrs(attrs), "transcripts": source}


class TextEncoderExtractor(PretrainedExtractor):
    """One feature set named after the model: `[n_tokens, hidden]` per transcript."""

    modality = "text"
    options: TextEncoderOptions
    model_kwargs: ClassVar[dict[str, Any]] = {"add_pooling_layer": False}

    @cached_property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.options.model, "tokenizer")
        # Left padding would shift BERT's absolute positions.
        tokenizer.padding_side = "right"
        return tokenizer

    @cached_property
    def max_tokens(self) -> int:
        """Most tokens per transcript, special tokens included."""
        limit = int(self.tokenizer.model_max_length)
        if limit >= _NO_LIMIT:
            # RoBERTa-style position ids start after the padding index: keep 2 spare.
            limit = int(self.config.max_position_embeddings) - 2
        wanted = self.options.max_tokens
        if wanted is None:
            return limit
        if not 2 <= wanted <= limit:
            raise ConfigError(
                f"max_tokens {wanted} out of range for {self.options.model}: use 2..{limit} "
                "(two of them are the start and end tokens)"
            )
        return wanted

    @cached_property
    def _specs(self) -> tuple[FeatureSetSpec, ...]:
        import transformers

        attrs = base_attrs(
            self.kind,
            "text",
            "token",
            self.config.hidden_size,
            "float16",
            frame_shift=None,
            sample_rate=None,
            model=model_location(self.options.model),  # a folder: found from anywhere
            model_type=self.config.model_type,
            weights_sha256=self.weights_checksum(),
            tokenizer_sha256=self._tokenizer_checksum(),
            layer=int(self.config.num_hidden_layers),
            special_tokens="kept",
            max_tokens=self.max_tokens,
            truncation="end",
            precision=self.precision,
            transformers_version=transformers.__version__,
        )
        if self.options.transcripts is not None:
            attrs.update(self.options.transcripts.provenance())
        return (FeatureSetSpec(TextEncoderOptions.set_name(self.stem, attrs), attrs),)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        self._check(texts)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        return [len(ids) for ids in encoded["input_ids"]]

    def extract(self, batch: Sequence[str]) -> list[dict[str, np.ndarray]]:
        import torch

        self._check(batch)
        model, name = self.model, self._specs[0].name
        encoded = self.tokenizer(
            list(batch),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        ).to(self.device)
        n_tokens = encoded["attention_mask"].sum(dim=1).tolist()  # [B]
        with torch.inference_mode(), autocast(self.device, self.precision):
            hidden = model(**encoded).last_hidden_state  # [B, N, D]
            hidden = hidden.float().cpu().numpy()
        return [{name: hidden[i, :n].copy()} for i, n in enumerate(n_tokens)]

    def _check(self, texts: Sequence[str]) -> None:
        failures = {
            i: f"transcript must be a string, got {type(text).__name__}"
            for i, text in enumerate(texts)
            if not isinstance(text, str)
        }
        if failures:
            raise ExtractionError(failures)

    def _tokenizer_checksum(self) -> str:
        """sha256 of the vocabulary and settings: another tokenizer gives other features."""
        vocab = sorted(self.tokenizer.get_vocab().items())
        settings = {
            "class": type(self.tokenizer).__name__,
            "lowercase": getattr(self.tokenizer, "do_lower_case", None),
        }
        blob = json.dumps([vocab, settings], ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()
