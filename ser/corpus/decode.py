"""The decoders behind `ser.corpus.audio`: libsndfile (soundfile) for the formats it knows
(WAV, FLAC, Ogg Vorbis and Opus, MP3, AIFF, ...), FFmpeg (PyAV) for every other one (MP4
and M4A with AAC, WebM, MKV, ...). A file goes to FFmpeg only when libsndfile does not
recognise its format or encoding, so which decoder reads a file depends on its bytes alone.

Why two and not FFmpeg for all: FFmpeg (PyAV) decodes a 16 kHz wav in 12 times
libsndfile's time and reads its header in 95 times (it probes the file; 4 ms a file:
benchmarks/bench_decode.py), and a corpus read looks at every header; the wavs of stores
made before decode to the same numbers.

Both give `[n_samples, channels]` float32 at the file's own rate, integer samples scaled
to ±1 as libsndfile scales them (by 2^(bits-1)).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

# libsndfile's SF_ERR_UNRECOGNISED_FORMAT and SF_ERR_UNSUPPORTED_ENCODING: FFmpeg's turn.
_NOT_LIBSNDFILES = (1, 4)
#: Seconds decoded before a clip's start and dropped: an AAC frame overlaps the one before
#: it, so the decoder needs a few frames (21 ms each at 48 kHz) to give the samples a
#: whole-file decode gives.
PREROLL = Fraction(1, 4)
#: Seconds, and the part of the length, a header may declare beyond the samples decoded
#: before the file counts as cut short: containers round their length and an MP3 without
#: a length in its header has it estimated; a truncated file loses far more.
SHORTFALL = (0.1, 0.05)

Span = tuple[float, float]  # seconds: start, end


class DecodeError(Exception):
    """A file's audio cannot be decoded; the message is the reason, one line."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says of its audio."""

    rate: int
    channels: int
    frames: int  # samples per channel

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate > 0 else 0.0


def info(path: Path) -> AudioInfo:
    """The audio's rate, channels and length by its header."""
    try:
        found = soundfile.info(str(path))
        return AudioInfo(found.samplerate, found.channels, found.frames)
    except soundfile.LibsndfileError as error:
        if error.code not in _NOT_LIBSNDFILES:
            raise DecodeError(_libsndfile_reason(error)) from error
    except (RuntimeError, TypeError, ValueError) as error:
        raise DecodeError(str(error)) from error
    with _audio_stream(path) as (container, stream):
        rate, channels = _format(stream)
        frames = _declared(stream, rate)
        if frames is None:  # no length in the header: count the samples
            frames = sum(frame.samples for frame in _frames(container, stream))
        return AudioInfo(rate, channels, frames)


def read(path: Path, span: Span | None = None) -> tuple[np.ndarray, int]:
    """`[n, channels]` float32 samples of the file (or of seconds `span` of it) and the rate."""
    try:
        return _libsndfile_read(path, span)
    except soundfile.LibsndfileError as error:
        if error.code not in _NOT_LIBSNDFILES:
            raise DecodeError(_libsndfile_reason(error)) from error
    except (RuntimeError, TypeError, ValueError) as error:
        raise DecodeError(str(error)) from error
    return _ffmpeg_read(path, span)


def decoders() -> str:
    """The decoders and their versions, as provenance records them."""
    import av

    return (
        f"soundfile {soundfile.__version__} / libsndfile {soundfile.__libsndfile_version__}; "
        f"av {av.__version__} / ffmpeg {av.ffmpeg_version_info}"
    )


def _libsndfile_read(path: Path, span: Span | None) -> tuple[np.ndarray, int]:
    with soundfile.SoundFile(path) as file:
        rate, frames = file.samplerate, file.frames
        first, last = (0, frames) if span is None else (round(s * rate) for s in span)
        file.seek(min(first, frames))
        count = -1 if span is None else max(0, last - first)  # -1: all there is
        samples = file.read(count, dtype="float32", always_2d=True)
    _check_length(first + len(samples), last, rate, span)  # an MP3 cut short, say
    return samples, rate


def _libsndfile_reason(error: soundfile.LibsndfileError) -> str:
    return error.error_string.rstrip(".")


def _ffmpeg_read(path: Path, span: Span | None) -> tuple[np.ndarray, int]:
    """The stream decoded from its start, or from a little before `span` (a seek) to the
    span's end; the frames' timestamps place the span's samples."""
    with _audio_stream(path) as (container, stream):
        rate, channels = _format(stream)
        declared = _declared(stream, rate)
        origin = _samples(stream.start_time, stream, rate) if stream.start_time else 0
        end = None if declared is None else origin + declared  # the stream's last sample + 1
        if span is None:
            start, samples = _decoded(container, stream, channels, rate, None)
            first, last = start, (start + samples.shape[1]) if end is None else end
        else:
            first, last = round(span[0] * rate), round(span[1] * rate)
            back = Fraction(first, rate) - PREROLL
            if back > 0:  # else from the start, priming frames and all, as a whole file
                container.seek(math.floor(back / stream.time_base), stream=stream)
            start, samples = _decoded(container, stream, channels, rate, last)
    if end is not None:  # AAC pads its last frame: what follows the stream's end goes
        samples = samples[:, : max(0, end - start)]
    _check_length(start + samples.shape[1], last, rate, span)
    kept = samples[:, max(0, first - start) : max(0, last - start)]  # [channels, n]
    return np.ascontiguousarray(kept.T, dtype=np.float32), rate


def _check_length(end: int, wanted: int, rate: int, span: Span | None) -> None:
    """`DecodeError` when the audio decoded ends well before the end its header declares
    (or the span reaches)."""
    seconds, part = SHORTFALL
    if wanted - end > seconds * rate + part * wanted:
        ends = "its header declares" if span is None else "the span reaches"
        raise DecodeError(
            f"its audio ends at {end / rate:.2f} s, before the {wanted / rate:.2f} s {ends}: "
            "the file is cut short or damaged"
        )


def _decoded(
    container: Any, stream: Any, channels: int, rate: int, last: int | None
) -> tuple[int, np.ndarray]:
    """The sample index of the first frame decoded and `[channels, n]` samples from it,
    to sample `last` or the stream's end."""
    start, pieces = None, []
    for frame in _frames(container, stream):
        at = _position(frame, rate)
        start = at if start is None else start
        pieces.append(_planar(frame, channels))  # [channels, frame.samples]
        if last is not None and at + frame.samples >= last:
            break
    samples = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
    return start or 0, samples


@contextmanager
def _audio_stream(path: Path) -> Iterator[tuple[Any, Any]]:
    """The opened container and its first audio stream; `DecodeError` for neither."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise DecodeError(_ffmpeg_reason(error)) from error
    with container:
        if not container.streams.audio:
            raise DecodeError(f"no audio stream in it (FFmpeg reads it as {container.format.name})")
        yield container, container.streams.audio[0]


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    """The stream's decoded frames; `DecodeError` saying where the data went bad."""
    import av

    seconds = 0.0
    try:
        for frame in container.decode(stream):
            seconds = (frame.pts or 0) * float(frame.time_base or 0)
            yield frame
    except av.error.FFmpegError as error:
        raise DecodeError(f"{_ffmpeg_reason(error)} (its audio near {seconds:.2f} s)") from error


def _format(stream: Any) -> tuple[int, int]:
    rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if not rate or not channels:
        raise DecodeError(f"its audio stream has {rate or 'no'} Hz, {channels or 'no'} channels")
    return int(rate), int(channels)


def _declared(stream: Any, rate: int) -> int | None:
    """Samples per channel the header declares for the stream; None when it does not say."""
    if stream.duration is None or stream.time_base is None:
        return None
    return _samples(stream.duration, stream, rate)


def _samples(ticks: int, stream: Any, rate: int) -> int:
    """Samples in `ticks` of the stream's time base."""
    return round(ticks * stream.time_base * rate)


def _position(frame: Any, rate: int) -> int:
    """The sample index of a frame's first sample."""
    return 0 if frame.pts is None else round(frame.pts * frame.time_base * rate)


def _planar(frame: Any, channels: int) -> np.ndarray:
    """A frame's samples as float32 `[channels, n]`."""
    array = frame.to_ndarray()
    if not frame.format.is_planar:  # [1, n * channels], interleaved
        array = array.reshape(-1, channels).T
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind == "u":  # 8-bit audio is unsigned, centred on 128
        return ((array.astype(np.float32) - 128) / 128).astype(np.float32)
    return (array / -float(np.iinfo(array.dtype).min)).astype(np.float32)


def _ffmpeg_reason(error: BaseException) -> str:
    return str(getattr(error, "strerror", None) or error)
