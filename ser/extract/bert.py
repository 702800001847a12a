"""BERT token-level last hidden states (Wu et al. mean-pool them; Zhou et al. classify)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ser.cache.model_names import check_set_name
from ser.extract.text import TextEncoderExtractor, TextSource
from ser.runtime.precision import check_precision


@dataclass(frozen=True)
class BertOptions:
    """model: a Hugging Face id or local folder; max_tokens: cut transcripts at this many
    tokens, [CLS] and [SEP] included (None: the model's limit, 512 for bert-base);
    precision: auto, fp32, bf16 or fp16 (see `ser.extract.base`); name: the feature
    set's name (None: the model's id, see `ser.cache.model_names.set_stem`); transcripts: the
    store's transcript set to read instead of the gold transcripts (None: gold; the set
    is then named `<name>@<transcript set>`, see `ser.extract.text`)."""

    model: str = "bert-base-uncased"
    max_tokens: int | None = None
    precision: str = "auto"
    name: str | None = None
    transcripts: TextSource | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.name is not None:
            check_set_name(self.name)


class BertExtractor(TextEncoderExtractor):
    """Feature set `<model name>`: `[n_tokens, hidden]` per transcript, [CLS] and [SEP]
    rows kept (an empty transcript gives 2 rows).

    >>> import tempfile
    >>> from ser.synth.tiny import build_tiny_models
    >>> models = build_tiny_models(tempfile.mkdtemp(), ["hello", "world"])
    >>> bert = BertExtractor(BertOptions(model=str(models.bert)))
    >>> bert.lengths(["hello world", ""])
    [4, 2]
    >>> import torch; bert.load(torch.device("cpu"))
    >>> bert.extract(["hello world"])[0]["tiny-bert"].shape
    (4, 32)
    """

    kind: ClassVar[str] = "bert"

    def __init__(self, options: BertOptions | None = None) -> None:
        self.options = options or BertOptions()
        options = self.options
        super().__init__(
            options.model, options.max_tokens, options.precision, options.name, options.transcripts
        )
