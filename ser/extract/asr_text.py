"""ASR transcripts of a corpus into its store's transcript set `asr-<model name>`, for
text features of recognised speech (`ser extract --text-source asr`; docs/dev/extract.md).

Each batch is committed before the next starts, so a killed run resumes where it stopped.
Whisper reads at most 30 s of audio: the rare longer utterance is transcribed from its
first 30 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.console import Console

from ser.cache import FeatureStore
from ser.cache.fingerprint import fingerprint, plain_json
from ser.cache.model_names import set_stem
from ser.corpus.audio import AudioError, AudioSource, decoders, load_audio
from ser.corpus.wer import transcripts_wer
from ser.extract.asr import SAMPLE_RATE, AsrOptions, WhisperAsr
from ser.extract.config import ExtractConfig, TranscriptSummary
from ser.extract.loading import describe_load
from ser.extract.options import TextSource
from ser.extract.progress import progress_bar

#: Utterances per Whisper `generate` call (every input is padded to 30 s).
DEFAULT_ASR_BATCH = {"cpu": 8, "cuda": 32, "mps": 16}


@dataclass(frozen=True)
class AsrPass:
    """The ASR step: the recogniser, its transcript set, and whether the store lacks some."""

    asr: WhisperAsr
    name: str
    source: TextSource
    pending: bool


def declare_asr(store: FeatureStore, config: ExtractConfig) -> AsrPass:
    """Load the run's recogniser on the CPU (its checksum is provenance), begin its set."""
    given: dict[str, Any] = {"model": config.asr_model, "max_new_tokens": config.asr_max_new_tokens}
    asr = WhisperAsr(AsrOptions(**{k: v for k, v in given.items() if v is not None}))
    asr.load(torch.device("cpu"))
    name = f"asr-{set_stem(asr.options.model)}"  # asr-<model name>, e.g. asr-whisper-small
    attrs = {"kind": "asr", "sample_rate": SAMPLE_RATE, "decoder": decoders(), **asr.provenance()}
    if not config.overwrite:  # a set an older ser named otherwise: found by fingerprint
        name = _stored_as(store, attrs) or name
    store.begin_transcripts(name, attrs, overwrite=config.overwrite)
    attrs = store.transcript_attrs(name)
    return AsrPass(asr, name, TextSource.of(name, attrs), not attrs.get("complete"))


def _stored_as(store: FeatureStore, attrs: dict[str, Any]) -> str | None:
    """The first (sorted) transcript set of the store with the fingerprint of `attrs`."""
    wanted = fingerprint(plain_json(attrs, "transcript set"))
    sets = sorted(store.transcript_sets())
    return next((n for n in sets if fingerprint(store.transcript_attrs(n)) == wanted), None)


def run_asr(
    store: FeatureStore,
    step: AsrPass,
    audio_paths: Sequence[AudioSource | None],
    durations: Sequence[float],
    config: ExtractConfig,
    device: torch.device,
    console: Console,
) -> None:
    """Transcribe, in this process, the utterances the set lacks, then finish it."""
    batch_size = config.asr_batch_size or DEFAULT_ASR_BATCH.get(device.type, 8)
    done = store.staged_transcripts(step.name).done
    # Shortest first: a batch's utterances then need about the same number of tokens.
    order = np.argsort(np.asarray(durations, dtype=np.float64), kind="stable")
    todo = [int(i) for i in order if int(i) not in done]
    if todo:
        step.asr.move(device)
        model = step.asr.options.model
        line = describe_load(set_stem(model), "ASR", "fp32", str(device), model)
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    with progress_bar(console, config.progress) as bar:
        # A resume: what is done counts, but is not timed.
        task = bar.add_task("asr", total=len(audio_paths), completed=len(done))
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            texts, failures = _transcribe(step.asr, batch, audio_paths)
            store.write_transcripts(step.name, texts, failures)
            bar.advance(task, len(batch))
    store.finish_transcripts(step.name)


def _transcribe(
    asr: WhisperAsr, batch: list[int], audio_paths: Sequence[AudioSource | None]
) -> tuple[dict[int, str], dict[int, str]]:
    waves: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    for index in batch:
        path = audio_paths[index]
        if path is None:
            failures[index] = "wav missing from the corpus"
            continue
        try:
            waves[index] = load_audio(path, SAMPLE_RATE)
        except AudioError as error:
            failures[index] = str(error)
    texts = asr.transcribe(list(waves.values()))
    return dict(zip(waves, texts, strict=True)), failures


def transcript_summary(store: FeatureStore, name: str, transcribed: bool) -> TranscriptSummary:
    """The transcript set for the report: its failures and WER against the gold text."""
    stored = store.read_transcripts(name)
    try:
        wer = transcripts_wer(store.manifest, stored)
        rate, words = wer.wer, wer.words
    except ValueError:  # no gold transcript has words
        rate, words = None, 0
    model = str(stored.attrs.get("asr_model", ""))
    return TranscriptSummary(name, model, transcribed, len(stored.failures), rate, words)
