"""Speech found by silero-vad (`--segment vad`): each stretch of speech is a segment.

silero-vad carries its model in its package (no download) and needs only torch; its own
`read_audio` wants torchaudio, so it is given ser's decoding at 16 kHz instead. A file is
searched a block at a time (`BLOCK_SECONDS`), so an hour is never decoded whole; speech
running over a block's end is cut there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ser.corpus.audio import Clip, load_audio
from ser.errors import ConfigError

#: silero-vad's rate (it also takes 8 kHz; 16 kHz is what ser decodes for speech models).
SAMPLE_RATE = 16000
#: Audio searched for speech at once (seconds): ten minutes, 38 MB of float32.
BLOCK_SECONDS = 600.0


@dataclass(frozen=True)
class VadOptions:
    """How speech becomes segments (seconds; `--min-segment` ... `--pad`)."""

    min_segment: float = 0.5  # shorter speech is dropped
    max_segment: float = 10.0  # longer speech is split (at a pause where it has one)
    merge_gap: float = 0.3  # shorter pauses do not end a segment
    pad: float = 0.1  # kept before and after each stretch of speech

    def check(self) -> None:
        if not 0 < self.min_segment <= self.max_segment:
            raise ConfigError(
                f"need 0 < --min-segment <= --max-segment, got {self.min_segment} and "
                f"{self.max_segment}"
            )
        if self.merge_gap < 0 or self.pad < 0:
            raise ConfigError("--merge-gap and --pad are seconds, 0 or more")


class SileroModel(Protocol):
    """silero-vad's model: a window's speech probability; `reset_states` starts a stream."""

    def __call__(self, x: torch.Tensor, sr: int) -> torch.Tensor: ...

    def reset_states(self) -> None: ...


@dataclass
class SileroVad:
    """`--segment vad`: the model, loaded once at the first file."""

    options: VadOptions = field(default_factory=VadOptions)
    _model: SileroModel | None = None

    def cut(self, path: Path, duration: float) -> list[tuple[float, float]]:
        """(start, end) seconds of the speech in `path` (`duration` seconds long)."""
        spans: list[tuple[float, float]] = []
        start = 0.0
        while start < duration:
            end = min(start + BLOCK_SECONDS, duration)
            wave = load_audio(Clip(path, start, end), SAMPLE_RATE)  # [n]
            spans += [(start + a, start + b) for a, b in self._speech(wave)]
            start = end
        return spans

    def _speech(self, wave: np.ndarray) -> list[tuple[float, float]]:
        from silero_vad import get_speech_timestamps

        o = self.options
        found = get_speech_timestamps(
            torch.from_numpy(wave),
            self._loaded(),
            sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=round(o.min_segment * 1000),
            max_speech_duration_s=o.max_segment,
            min_silence_duration_ms=round(o.merge_gap * 1000),
            speech_pad_ms=round(o.pad * 1000),
        )
        return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in found]

    def _loaded(self) -> SileroModel:
        if self._model is None:
            try:
                from silero_vad import load_silero_vad
            except ImportError:
                raise ConfigError(
                    "--segment vad needs silero-vad: pip install 'silero-vad>=6,<7'"
                ) from None
            self._model = load_silero_vad()
        return self._model
