"""MPNet token-level last hidden states (MSMSER's linguistic features)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ser.cache.model_names import check_set_name
from ser.extract.text import TextEncoderExtractor, TextSource
from ser.runtime.precision import check_precision


@dataclass(frozen=True)
class MpnetOptions:
    """model: a Hugging Face id or local folder; max_tokens: cut transcripts at this many
    tokens, <s> and </s> included (None: the model's limit, 512 for mpnet-base);
    precision: auto, fp32, bf16 or fp16 (see `ser.extract.base`); name: the feature
    set's name (None: the model's id, see `ser.cache.model_names.set_stem`); transcripts: the
    store's transcript set to read instead of the gold transcripts (None: gold; the set
    is then named `<name>@<transcript set>`, see `ser.extract.text`)."""

    model: str = "microsoft/mpnet-base"
    max_tokens: int | None = None
    precision: str = "auto"
    name: str | None = None
    transcripts: TextSource | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.name is not None:
            check_set_name(self.name)


class MpnetExtractor(TextEncoderExtractor):
    """Feature set `<model name>`: `[n_tokens, hidden]` per transcript, <s> and </s>
    rows kept (an empty transcript gives 2 rows).

    >>> import tempfile
    >>> from ser.synth.tiny import build_tiny_models
    >>> models = build_tiny_models(tempfile.mkdtemp(), ["hello", "world"])
    >>> mpnet = MpnetExtractor(MpnetOptions(model=str(models.mpnet)))
    >>> [spec.name for spec in mpnet.specs()]
    ['tiny-mpnet']
    >>> import torch; mpnet.load(torch.device("cpu"))
    >>> mpnet.extract([""])[0]["tiny-mpnet"].shape
    (2, 32)
    """

    kind: ClassVar[str] = "mpnet"

    def __init__(self, options: MpnetOptions | None = None) -> None:
        self.options = options or MpnetOptions()
        options = self.options
        super().__init__(
            options.model, options.max_tokens, options.precision, options.name, options.transcripts
        )
