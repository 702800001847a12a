"""What `ser extract` asks for and what it gets back: `ExtractConfig` (one field per
option, checked when built) and the `ExtractReport` of a run (callers import both from
`ser.extract.run`, which holds the order of work).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.errors import ConfigError
from ser.extract.plan import DEFAULT_SHARD_SIZE
from ser.extract.registry import check_names, default_kinds, kind, parse_kinds
from ser.extract.views import View, parse_augment
from ser.runtime.precision import check_precision
from ser.runtime.threads import parse_threads

if TYPE_CHECKING:
    from ser.cache import FeatureStore

TEXT_SOURCES = ("gold", "asr")


@dataclass(frozen=True)
class ExtractConfig:
    """What to extract and how; one field per `ser extract` option (None: the kind's or
    the device's default). `options`: each kind's options given, e.g. `{"hubert": {"model":
    "facebook/hubert-large-ll60k", "layers": "9,12", "name": "ours"}}`."""

    features: tuple[str, ...] = field(default_factory=default_kinds)
    classes: str = "all"
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    device: str = "auto"
    precision: str = "auto"  # of the pretrained models: auto, fp32, bf16, fp16
    batch_seconds: float | None = None
    batch_tokens: int | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    workers: int | None = None
    scheduler: str | None = None
    processes: int | None = None  # local processes per kind (None: `ser.runtime.execution`'s)
    threads: int | None = None  # torch threads (each worker's); None: runtime/threads.py's rule
    overwrite: bool = False  # replace feature sets whose provenance differs
    repair: bool = False  # re-extract what of complete sets is damaged (`FeatureStore.damage`)
    progress: bool = True  # disk estimate and progress bar on stderr
    text_source: str = "gold"  # "asr": text sets from the store's ASR transcripts
    asr_model: str | None = None  # Whisper id or folder (None: openai/whisper-small)
    asr_max_new_tokens: int | None = None  # None: `AsrOptions`' default
    asr_batch_size: int | None = None  # utterances per generate call (None: by device)
    corpus: str | None = None  # the corpus kind (`ser.corpus.registry`); None: guessed
    audio_root: Path | None = None  # where an EmoBox corpus's wavs are; None: its default
    augment: tuple[str, ...] = ()  # --augment values: views of each audio set (`views.py`)

    def __post_init__(self) -> None:
        parse_kinds(self.features)
        for name in self.options:
            if name not in self.features:
                raise ConfigError(f"options for {name}, which is not in --features")
        for name in self.features:  # speech and text need a model named
            kind(name).make_options(**self.options.get(name, {}))
        check_names(
            ((k, o["name"]) for k, o in self.options.items() if o.get("name")), self.features
        )
        if self.workers is not None and self.scheduler is not None:
            raise ConfigError("give --workers N (a local cluster) or --scheduler ADDRESS, not both")
        if self.processes is not None and (self.workers or self.scheduler):
            raise ConfigError("give --processes N or a dask cluster (--workers, --scheduler)")
        if self.processes is not None and self.processes < 1:
            raise ConfigError(f"--processes must be at least 1, got {self.processes}")
        if self.shard_size < 1:
            raise ConfigError(f"--shard-size must be at least 1, got {self.shard_size}")
        parse_threads(self.threads)
        check_precision(self.precision)
        parse_augment(self.augment)
        if self.text_source not in TEXT_SOURCES:
            raise ConfigError(
                f"--text-source {self.text_source!r}: choose from {', '.join(TEXT_SOURCES)}"
            )
        asr_given = (self.asr_model, self.asr_max_new_tokens, self.asr_batch_size)
        if self.text_source == "gold" and any(v is not None for v in asr_given):
            raise ConfigError("--asr-* options need --text-source asr")
        for option, value in (
            ("max-new-tokens", self.asr_max_new_tokens),
            ("batch-size", self.asr_batch_size),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"--asr-{option} must be at least 1, got {value}")

    @property
    def views(self) -> tuple[View, ...]:
        """The views `augment` asks for, each extracted beside every audio set."""
        return parse_augment(self.augment)


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
    # (name this version gives, stored name): sets found by fingerprint under older names
    found: tuple[tuple[str, str], ...] = ()
    repaired: tuple[str, ...] = ()  # --repair: a line per set whose damage was re-extracted
    # (utt_id or file, problem): what reading the corpus met (`ser corpus summary`'s)
    corpus_problems: tuple[tuple[str, str], ...] = ()

    @property
    def nothing_to_do(self) -> bool:
        transcribed = self.transcripts and self.transcripts.transcribed
        return not self.extracted and not transcribed and not self.repaired

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def make_report(
    store: FeatureStore,
    names: list[str],
    extracted: list[str],
    started: float,
    transcripts: TranscriptSummary | None = None,
) -> ExtractReport:
    """The report of a run that wrote `extracted` of the sets `names` (`started`: its
    `time.perf_counter()` when it began)."""
    sets: list[SetSummary] = []
    failures: list[tuple[str, str, str]] = []
    ids = store.manifest.utt_ids
    for name in names:
        info, failed = store.info(name), store.failures(name)
        failures.extend((name, utt_id, reason) for utt_id, reason in failed)
        shape = (int(info.rows), int(info.dim), str(info.dtype), int(info.bytes))
        sets.append(SetSummary(name, *shape, len(failed)))
    if transcripts is not None:  # utterances the recogniser could not transcribe
        stored = store.read_transcripts(transcripts.name)
        failures[:0] = [
            (transcripts.name, str(ids[i]), r) for i, r in sorted(stored.failures.items())
        ]
    return ExtractReport(
        store=Path(store.path),
        n_utterances=len(ids),
        sets=tuple(sets),
        extracted=tuple(extracted),
        failures=tuple(failures),
        seconds=time.perf_counter() - started,
        transcripts=transcripts,
    )
