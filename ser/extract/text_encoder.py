"""Token-level hidden states of any Hugging Face text encoder (BERT, RoBERTa, MPNet,
DeBERTa, a sentence-transformers package): the `text` kind (`--text-model`), registered
again as `mpnet` (MSMSER's linguistic features) and `bert` (Wu et al. mean-pool them; Zhou
et al. classify), each with its paper's model (`ser.extract.registry`).

Special tokens are kept: every transcript gives [CLS] (or <s>) first and [SEP] (or </s>)
last, so an empty transcript still has 2 rows, and a trainer that wants words only drops
the first and last row. Transcripts over `max_tokens` are cut at the end. Padding is on the
right with an attention mask, so a batch gives the same rows as one transcript at a time.
Transcripts other than the gold ones (a `TextSource`) name and fingerprint the set apart.

Layers (`--layers`, `layer_sets.py`): the model's last layer is the set `<model name>` (as
the papers' sets always were), layer n of the others `<model name>.L<n>` (its attrs add
`n_layers`); `--pool` adds `.mean` / `.meanstd` per layer, over all of an utterance's token
rows (a sentence-transformers package's mean pooling, before its Normalize module, is the
last layer's `.mean`). ASR-text sets end in `@<transcripts>`: `<name>.L3.mean@asr-x`. A
sentence-transformers package is read from its `modules.json`: its Transformer module at
the package root or in a subfolder (`0_Transformer/`, as older packages have).

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
>>> text = build_extractor("text", model=str(models.bert), layers="1-2", pool="mean")
>>> [spec.name for spec in text.specs()]
['tiny-bert.L1', 'tiny-bert.L1.mean', 'tiny-bert', 'tiny-bert.mean']
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.cache.model_names import looks_like_path
from ser.errors import ConfigError
from ser.extract.base import ExtractionError, FeatureSetSpec, load_pretrained
from ser.extract.device_rows import Hidden
from ser.extract.layer_sets import LayerExtractor, LayerOptions, describe, settle_options
from ser.extract.options import TextSource
from ser.runtime.attention import attention_backends
from ser.runtime.precision import autocast

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Tokenizers without a real limit report a huge model_max_length.
_NO_LIMIT = 1_000_000


@dataclass(frozen=True)
class TextEncoderOptions(LayerOptions):
    """layers: `layers.parse_layers`; pool: pooled views ("" none, "mean", "meanstd",
    "mean,meanstd"); pooled_only: no token sets; max_tokens: start and end tokens included
    (None: the model's limit); name: the sets' name stem (None: the model's id);
    transcripts: a transcript set of the store (None: gold)."""

    max_tokens: int | None = None
    precision: str = "auto"
    name: str | None = None
    transcripts: TextSource | None = None

    def __post_init__(self) -> None:
        settle_options(self, "text", self.name)

    @classmethod
    def set_name(cls, stem: str, attrs: Mapping[str, Any]) -> str:
        # The last layer keeps the bare stem (no n_layers in its attrs), as sets always had.
        name = f"{stem}.L{attrs.get('layer')}" if "n_layers" in attrs else stem
        name += f".{attrs['pool']}" if attrs.get("pool") else ""
        return f"{name}@{attrs['transcripts']}" if attrs.get("text_source") == "asr" else name

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        source = TextSource.recorded(attrs) if attrs.get("text_source") == "asr" else None
        layers = {"layers": str(attrs["layer"])} if "layer" in attrs else {}
        return {**super().from_attrs(attrs), **layers, "transcripts": source}


def transformer_folder(model: str) -> str:
    """Where a sentence-transformers package (a folder with modules.json) keeps its
    Transformer module: the package itself or a subfolder (`0_Transformer`); else `model`."""
    if not looks_like_path(model):
        return model
    folder = Path(model).expanduser()
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return model  # not a package: an ordinary model folder
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and str(module.get("type", "")).endswith(".Transformer"):
            path = str(module.get("path") or "")
            return str(folder / path) if path else model
    raise ConfigError(f"{folder / 'modules.json'} names no Transformer module to extract from")


class TextEncoderExtractor(LayerExtractor):
    """One feature set per layer (and pooled view): `[n_tokens, hidden]` per transcript."""

    modality = "text"
    options: TextEncoderOptions

    @property
    def source(self) -> str:
        return transformer_folder(self.options.model)

    def model_options(self) -> dict[str, Any]:
        from transformers import MODEL_MAPPING

        # No pooler: the features are hidden states (and the checksum stays the one the
        # papers' sets recorded); DeBERTa has none to leave out.
        # Any: transformers types the mapping's values as a class or a pair of classes.
        model_class: Any = MODEL_MAPPING[type(self.config)]
        takes = "add_pooling_layer" in inspect.signature(model_class).parameters
        return {"add_pooling_layer": False} if takes else {}

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.source, "tokenizer")
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

        n_layers = self.n_layers
        common = self._model_attrs(
            "token",
            self.config.hidden_size,
            None,
            None,
            tokenizer_sha256=self._tokenizer_checksum(),
        )
        settings = {
            "special_tokens": "kept",
            "max_tokens": self.max_tokens,
            "truncation": "end",
            "precision": self.precision,
            "transformers_version": transformers.__version__,
        }
        source = self.options.transcripts
        asr = source.provenance() if source is not None else {}
        layers = [
            {**common, "layer": layer}
            | ({"n_layers": n_layers} if layer != n_layers else {})
            | settings
            | asr
            for layer in self.layers
        ]
        return self._layer_specs(layers)

    def _load_detail(self) -> str:
        if self.layers == (self.n_layers,) and not self.options.pool:
            return "last layer"
        return describe(self.layers, self.options.pool)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        self._check(texts)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        return [len(ids) for ids in encoded["input_ids"]]

    def _hidden(self, batch: Sequence[str]) -> Hidden:
        """The chosen layers' token rows, padded: [B, L, N, D], and each text's count."""
        import torch
        from torch.nn.attention import sdpa_kernel

        self._check(batch)
        model, last = self.model, self.n_layers
        encoded = self.tokenizer(
            list(batch),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        n_tokens = encoded["attention_mask"].sum(dim=1).tolist()  # [B], on the host
        inner = {"output_hidden_states": True} if set(self.layers) - {last} else {}
        with (
            torch.inference_mode(),
            autocast(self.device, self.precision),
            sdpa_kernel(attention_backends()),
        ):
            out = model(**encoded.to(self.device), **inner)
            states = [
                out.last_hidden_state if layer == last else out.hidden_states[layer]
                for layer in self.layers
            ]
            return Hidden(torch.stack(states, dim=1), n_tokens)  # [B, L, N, D]

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
