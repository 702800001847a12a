"""The runner's ASR step (--text-source asr): transcribe what the store lacks under a
progress bar, and sum the transcript set up (WER against the gold transcripts) for the
report.

Apart from `run.py`, which holds the order of work; the recogniser and its transcript
set are `asr_text.py`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.extract.config import ExtractConfig, TranscriptSummary
from ser.extract.progress import progress_bar

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from ser.extract.asr_text import AsrPass


def run_asr(
    store: Any,
    asr: AsrPass,
    audio_paths: Sequence[Path | None],
    durations: Sequence[float],
    config: ExtractConfig,
    device: torch.device,
    console: Console,
) -> None:
    """Transcribe what the store lacks (in this process: one recogniser, batched)."""
    from ser.extract.asr_text import DEFAULT_ASR_BATCH, transcribe_pending

    batch_size = config.asr_batch_size or DEFAULT_ASR_BATCH.get(device.type, 8)
    say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
    with progress_bar(console, config.progress) as bar:
        done = len(store.staged_transcripts(asr.name).done)  # a resume: counted, not timed
        task = bar.add_task("asr", total=len(audio_paths), completed=done)
        advance: Callable[[int], None] = functools.partial(bar.advance, task)
        transcribe_pending(store, asr, audio_paths, durations, device, batch_size, advance, say)


def transcript_summary(store: Any, name: str, transcribed: bool) -> TranscriptSummary:
    from ser.corpus.wer import word_error_rate

    stored = store.read_transcripts(name)
    gold = [str(t) for t in store.manifest.column("transcript")]
    try:
        wer = word_error_rate(gold, list(stored.texts))
        rate, words = wer.wer, wer.words
    except ValueError:  # no gold transcript has words
        rate, words = None, 0
    return TranscriptSummary(
        name=name,
        asr_model=str(stored.attrs.get("asr_model", "")),
        transcribed=transcribed,
        failed=len(stored.failures),
        wer=rate,
        words=words,
    )
