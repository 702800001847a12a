"""Audio decoding: a file of any common container (WAV, FLAC, Ogg, MP3, MP4/M4A with AAC,
...), or a part of one (`Clip`), as float32 mono at the rate a model wants.

`ser.corpus.decode` decodes (libsndfile, else FFmpeg; a clip: only its span, after a seek),
channels are averaged, soxr resamples once (no torchaudio). The same bytes always give the
same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from ser.corpus.decode import (
    AudioInfo,
    DecodeError,
    decoders,
    exact_info,
    info,
    read,
    riff_shortfall,
)
from ser.corpus.files import FOLDER, not_a_file, shown
from ser.errors import SerError

__all__ = [
    "AudioError",
    "AudioInfo",
    "AudioSource",
    "Clip",
    "Counted",
    "Lengths",
    "audio_info",
    "count_decoded",
    "cut_short",
    "decode_mono",
    "decoded_length",
    "decoders",
    "exact_info",
    "length_by_header",
    "load_audio",
    "resampled_length",
    "source_path",
]


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
        return f"{shown(self.path)} [{self.start:g}-{self.end:g} s]"


AudioSource = str | Path | Clip


def source_path(source: AudioSource) -> Path:
    """The file an audio source is in."""
    return source.path if isinstance(source, Clip) else Path(source)


def audio_info(path: str | Path) -> AudioInfo:
    """The rate, channels and length of a file's audio by its header; `AudioError` saying
    why it cannot be read."""
    path = _existing(Path(path))
    try:
        return info(path)
    except DecodeError as error:
        raise AudioError(f"cannot decode audio file {shown(path)}: {error}") from error


def cut_short(path: str | Path) -> str | None:
    """What is wrong with a WAV that ends before the audio its header declares, by its
    header and size alone (None: whole, or not RIFF/WAVE): what a corpus read or a
    segmenter can afford to ask of every file."""
    shortfall = riff_shortfall(Path(path))
    if shortfall is None:
        return None
    held, declared = shortfall
    return (
        f"audio file {shown(path)} is cut short: it holds {held:.2f} s of the {declared:.2f} s "
        "its header declares"
    )


def load_audio(source: AudioSource, sample_rate: int) -> np.ndarray:
    """Decode `source` (a file, or a clip of one) to float32 mono `[n_samples]` at
    `sample_rate` Hz; `AudioError` naming the file for one that cannot be read whole
    (missing, empty, undecodable, or ending before its header or the clip says, with how
    much was read)."""
    mono, rate = decode_mono(source)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def decode_mono(source: AudioSource) -> tuple[np.ndarray, int]:
    """`load_audio` of `source` at its file's own rate, never resampled: float32 mono
    `[n_samples]` and that rate."""
    path = _existing(source_path(source))
    span = (source.start, source.end) if isinstance(source, Clip) else None
    try:
        samples, rate = read(path, span)  # [n, channels]
    except DecodeError as error:
        raise AudioError(f"cannot decode audio file {shown(path)}: {error}") from error
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise AudioError(f"audio {shown(str(source))} is empty (0 samples)")
    # One channel is already mono: its mean would copy a long recording's samples whole.
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    return mono, rate


@dataclass(frozen=True, slots=True)  # one an utterance: 150,000 of them for MSP-Podcast
class Counted:
    """A source's length counted by decoding it (`count_decoded`): `samples` mono at its
    file's `rate`; 0 samples where it does not decode."""

    rate: int
    samples: int

    def at(self, sample_rate: int) -> int:
        """The samples `load_audio(source, sample_rate)` gives (0: it refuses the source)."""
        return resampled_length(self.samples, self.rate, sample_rate) if self.samples else 0


#: Sources' lengths counted by decoding them, by source.
Lengths = dict[AudioSource, Counted]


def count_decoded(source: AudioSource) -> Counted:
    """The length of `source` as `load_audio` decodes it, exact whatever its header says
    (an MP3's or Ogg's length may be estimated, FFmpeg's containers round theirs): the
    one way to know it is to decode it; 0 samples where it cannot be."""
    try:
        mono, rate = decode_mono(source)
    except AudioError:
        return Counted(0, 0)
    return Counted(rate, len(mono))


def decoded_length(source: AudioSource, sample_rate: int) -> int | None:
    """The samples `load_audio(source, sample_rate)` gives, by the file's header alone (0:
    none, which `load_audio` refuses); None where the header cannot say it exactly (a
    format FFmpeg decodes or whose length is estimated: `decode.EXACT_FORMATS`) or the
    file cannot be read."""
    found = exact_info(source_path(source))
    return None if found is None else length_by_header(found, source, sample_rate)


def length_by_header(found: AudioInfo, source: AudioSource, sample_rate: int) -> int:
    """`decoded_length` of `source`, whose file's header says `found` (`exact_info`)."""
    n = found.frames
    if isinstance(source, Clip):  # as `decode.read` cuts a span: its ends rounded to samples
        first, last = round(source.start * found.rate), round(source.end * found.rate)
        n = max(0, min(last, n) - min(first, n))
    return resampled_length(n, found.rate, sample_rate)


def resampled_length(n: int, rate: float, sample_rate: float) -> int:
    """Samples soxr gives of `n` samples at `rate` resampled to `sample_rate`: the nearest
    integer to n * sample_rate / rate, a half rounded up (what soxr computes)."""
    if rate == sample_rate:
        return n
    return math.floor(n * sample_rate / rate + 0.5)


def _existing(path: Path) -> Path:
    why = not_a_file(path)
    if why is not None:
        said = f"is {why}" if why == FOLDER else "does not exist"
        raise AudioError(f"audio file {shown(path)} {said}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {shown(path)} is empty (0 bytes)")
    return path
