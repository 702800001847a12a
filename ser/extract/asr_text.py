"""ASR transcripts of a corpus into its store, for text features of recognised speech.

`ser extract --text-source asr --asr-model M` transcribes every utterance once with
`WhisperAsr` into the store's transcript set `asr-<model name>` (`ser.cache.transcripts`;
its provenance: the ASR model, weights checksum and decoding settings), then extracts the
text feature sets from those transcripts under `<text model>@asr-<model name>` names
(`ser.extract.options.TextSource`). Declaring comes first and is cheap (the Whisper weights
are read on the CPU for their checksum); transcribing runs only for utterances the store
does not hold yet, shortest first, `batch_size` at a time, each batch committed before
the next one starts, so a killed run resumes where it stopped.

Utterances without a readable wav get an empty transcript and a recorded failure; the
text extractors then fail them too ("empty transcript"). Whisper reads at most 30 s of
audio, so the rare longer IEMOCAP turn is transcribed from its first 30 s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.cache.model_names import set_stem
from ser.corpus.audio import AudioError, load_audio
from ser.extract.asr import SAMPLE_RATE, AsrOptions, WhisperAsr
from ser.extract.options import TextSource

#: Utterances per Whisper `generate` call (every input is padded to 30 s).
DEFAULT_ASR_BATCH = {"cpu": 8, "cuda": 32, "mps": 16}


def transcript_set_name(model: str) -> str:
    """The transcript set of an ASR model: `asr-<model name>` (see `set_stem`).

    >>> transcript_set_name("openai/whisper-small")
    'asr-whisper-small'
    """
    return f"asr-{set_stem(model)}"


@dataclass
class AsrPass:
    """The ASR step of an extraction: the recogniser, its transcript set, and whether the
    store still lacks some of its transcripts."""

    asr: WhisperAsr
    name: str
    source: TextSource
    pending: bool


def declare_asr(store: Any, options: AsrOptions, overwrite: bool = False) -> AsrPass:
    """Load the recogniser on the CPU (its weights checksum is provenance) and begin its
    transcript set: FingerprintMismatch when the store holds one with other settings."""
    asr = WhisperAsr(options)
    asr.load(torch.device("cpu"))
    name = transcript_set_name(options.model)
    attrs = {"kind": "asr", "sample_rate": SAMPLE_RATE, **asr.provenance()}
    store.begin_transcripts(name, attrs, overwrite=overwrite)
    attrs = store.transcript_attrs(name)
    return AsrPass(asr, name, TextSource.of(name, attrs), not attrs.get("complete"))


def transcribe_pending(
    store: Any,
    step: AsrPass,
    audio_paths: Sequence[Path | None],
    durations: Sequence[float],
    device: torch.device,
    batch_size: int,
    advance: Callable[[int], None],
    say: Callable[[str], None],
) -> None:
    """Transcribe the utterances the transcript set lacks, then finish it."""
    if batch_size < 1:
        raise ValueError(f"ASR batch size must be at least 1, got {batch_size}")
    done = store.staged_transcripts(step.name).done
    # Shortest first: a batch's utterances then need about the same number of tokens.
    order = np.argsort(np.asarray(durations, dtype=np.float64), kind="stable")
    todo = [int(i) for i in order if int(i) not in done]
    if todo:
        step.asr.move(device)
        model = step.asr.options.model
        say(f"loaded {set_stem(model)} (ASR, fp32 on {device}) from {model}")
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        texts, failures = _transcribe(step.asr, batch, audio_paths)
        store.write_transcripts(step.name, texts, failures)
        advance(len(batch))
    store.finish_transcripts(step.name)
    step.pending = False


def _transcribe(
    asr: WhisperAsr, batch: list[int], audio_paths: Sequence[Path | None]
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
