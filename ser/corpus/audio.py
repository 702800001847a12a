"""Audio decoding: any file soundfile reads, as float32 mono at the rate a model wants.

soundfile decodes, channels are averaged, soxr resamples (no torchaudio).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from ser.errors import SerError


class AudioError(SerError):
    """An audio file is missing, unreadable or empty."""


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode `path` to float32 mono `[n_samples]` at `sample_rate` Hz."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)  # [n, channels]
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        reason = str(error).replace(f"Error opening {str(path)!r}: ", "")
        raise AudioError(f"cannot decode audio file {path}: {reason}") from error
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise AudioError(f"audio file {path} is empty (0 samples)")
    mono = samples.mean(axis=1, dtype=np.float32)  # [n]
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)
