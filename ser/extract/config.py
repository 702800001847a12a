"""What `ser extract` asks for and what it gets back: `ExtractConfig` (one field per
option, checked when built) and the `ExtractReport` of a run.

Apart from the runner (`run.py`) so that the runner holds only the order of work; both
are re-exported from `ser.extract.run`, where callers import them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.cache.model_names import check_names
from ser.errors import ConfigError
from ser.extract.plan import DEFAULT_SHARD_SIZE
from ser.runtime.precision import check_precision, resolve_precision
from ser.runtime.threads import FOLLOW, Threads, parse_threads

if TYPE_CHECKING:
    import torch

    from ser.extract.asr import AsrOptions
    from ser.extract.text import TextSource

KINDS = ("hubert", "mpnet", "bert", "is13", "logmel")
TEXT_KINDS = ("mpnet", "bert")
TEXT_SOURCES = ("gold", "asr")


@dataclass(frozen=True)
class ExtractConfig:
    """What to extract and how; one field per `ser extract` option.

    None means the default: the extractor's own (models, layers) or the device's
    (batch budgets, see `plan.DEFAULT_BATCH_SECONDS`).
    """

    features: tuple[str, ...] = KINDS
    classes: str = "all"
    hubert_model: str | None = None
    mpnet_model: str | None = None
    bert_model: str | None = None
    layers: str | None = None  # "12", "6,9,12", "all", "last"
    names: tuple[tuple[str, str], ...] = ()  # (kind, name): feature set names (--name)
    device: str = "auto"
    precision: str = "auto"  # of the pretrained models: auto, fp32, bf16, fp16
    batch_seconds: float | None = None
    batch_tokens: int | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    workers: int | None = None
    scheduler: str | None = None
    # torch threads (each worker's); None: ser/runtime/threads.py's rule; "follow": the load's
    threads: Threads = None
    overwrite: bool = False  # replace feature sets whose provenance differs
    progress: bool = True  # disk estimate and progress bar on stderr
    text_source: str = "gold"  # "asr": text sets from the store's ASR transcripts
    asr_model: str | None = None  # Whisper id or folder (None: openai/whisper-small)
    asr_max_new_tokens: int | None = None  # None: `AsrOptions`' default
    asr_batch_size: int | None = None  # utterances per generate call (None: by device)

    def __post_init__(self) -> None:
        unknown = [kind for kind in self.features if kind not in KINDS]
        if unknown or not self.features:
            raise ConfigError(
                f"unknown feature kind(s) {', '.join(unknown) or '(none given)'}: "
                f"choose from {', '.join(KINDS)}"
            )
        if self.workers is not None and self.scheduler is not None:
            raise ConfigError("give --workers N (a local cluster) or --scheduler ADDRESS, not both")
        if self.shard_size < 1:
            raise ConfigError(f"--shard-size must be at least 1, got {self.shard_size}")
        parse_threads(self.threads)
        if self.threads == FOLLOW and (self.workers is not None or self.scheduler is not None):
            raise ConfigError(f"--threads {FOLLOW} is for one process: give a count with workers")
        check_precision(self.precision)
        check_names(self.names, self.features)
        if self.text_source not in TEXT_SOURCES:
            raise ConfigError(
                f"--text-source {self.text_source!r}: choose from {', '.join(TEXT_SOURCES)}"
            )
        asr_given = (self.asr_model, self.asr_max_new_tokens, self.asr_batch_size)
        if self.text_source == "gold" and any(v is not None for v in asr_given):
            raise ConfigError("--asr-* options need --text-source asr")
        for option, value in (("max-new-tokens", self.asr_max_new_tokens),
                              ("batch-size", self.asr_batch_size)):  # fmt: skip
            if value is not None and value < 1:
                raise ConfigError(f"--asr-{option} must be at least 1, got {value}")

    def asr_options(self) -> AsrOptions:
        """The `AsrOptions` of this run's recogniser (only with --text-source asr)."""
        from ser.extract.asr import AsrOptions  # torch and transformers: only when asked

        options = AsrOptions()
        if self.asr_model is not None:
            options = dataclasses.replace(options, model=self.asr_model)
        if self.asr_max_new_tokens is not None:
            options = dataclasses.replace(options, max_new_tokens=self.asr_max_new_tokens)
        return options

    def options(
        self, kind: str, device: torch.device | None = None, source: TextSource | None = None
    ) -> dict[str, Any]:
        """Keyword options of `build_extractor(kind, ...)` that this config sets.

        With `device`, "auto" precision is resolved for it here, once: the feature sets'
        attrs and every worker (dask workers included) then use that same precision.
        `source`: the ASR transcripts the text extractors read (--text-source asr).
        """
        precision = self.precision
        if device is not None:
            precision = resolve_precision(precision, device, "extract")
        names = dict(self.names)
        given: dict[str, dict[str, Any]] = {
            "hubert": {"model": self.hubert_model, "layers": self.layers, "precision": precision},
            "mpnet": {"model": self.mpnet_model, "precision": precision},
            "bert": {"model": self.bert_model, "precision": precision},
        }
        if kind in given:
            given[kind]["name"] = names.get(kind)
        if kind in TEXT_KINDS:
            given[kind]["transcripts"] = source
        return {key: value for key, value in given.get(kind, {}).items() if value is not None}


@dataclass(frozen=True)
class SetSummary:
    """One feature set as the store holds it after the run."""

    name: str
    rows: int
    dim: int
    dtype: str
    bytes: int
    failed: int


@dataclass(frozen=True)
class TranscriptSummary:
    """The ASR transcript set after the run, and its WER against the gold transcripts."""

    name: str
    asr_model: str
    transcribed: bool  # this run transcribed utterances (False: all were stored)
    failed: int
    wer: float | None  # None when no gold transcript has words
    words: int  # gold words the WER is over


@dataclass(frozen=True)
class ExtractReport:
    """What `extract_features` did; `exit_code` is 1 when any utterance has failed."""

    store: Path
    n_utterances: int
    sets: tuple[SetSummary, ...]
    extracted: tuple[str, ...]  # feature sets this run wrote (empty: nothing to do)
    failures: tuple[tuple[str, str, str], ...]  # (feature set, utt_id, reason)
    seconds: float
    transcripts: TranscriptSummary | None = None  # --text-source asr: the ASR step

    @property
    def nothing_to_do(self) -> bool:
        return not self.extracted and not (self.transcripts and self.transcripts.transcribed)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0
