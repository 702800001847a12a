"""Audio decoding: any file soundfile reads, or a part of one (`Clip`), as float32 mono
at the rate a model wants.

soundfile decodes (a clip: only its frames), channels are averaged, soxr resamples (no
torchaudio).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from ser.errors import SerError


class AudioError(SerError):
    """An audio file is missing, unreadable or empty."""


@dataclass(frozen=True)
class Clip:
    """Seconds `start` to `end` of the audio file `path`: an utterance that is a part of
    a longer recording."""

    path: Path
    start: float
    end: float

    def __str__(self) -> str:
        return f"{self.path} [{self.start:g}-{self.end:g} s]"


AudioSource = str | Path | Clip


def source_path(source: AudioSource) -> Path:
    """The file an audio source is in."""
    return source.path if isinstance(source, Clip) else Path(source)


def load_audio(source: AudioSource, sample_rate: int) -> np.ndarray:
    """Decode `source` (a file, or a clip of one) to float32 mono `[n_samples]` at
    `sample_rate` Hz."""
    path = source_path(source)
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)")
    try:
        samples, rate = _read(path, source if isinstance(source, Clip) else None)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        reason = str(error).replace(f"Error opening {str(path)!r}: ", "")
        raise AudioError(f"cannot decode audio file {path}: {reason}") from error
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise AudioError(f"audio {source} is empty (0 samples)")
    mono = samples.mean(axis=1, dtype=np.float32)  # [n]
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _read(path: Path, clip: Clip | None) -> tuple[np.ndarray, int]:
    """[n, channels] float32 samples of the file, or of the clip's frames only, and the rate."""
    if clip is None:
        return soundfile.read(path, dtype="float32", always_2d=True)
    with soundfile.SoundFile(path) as file:
        first, last = round(clip.start * file.samplerate), round(clip.end * file.samplerate)
        file.seek(min(first, file.frames))
        return file.read(max(0, last - first), dtype="float32", always_2d=True), file.samplerate
