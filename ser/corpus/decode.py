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
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile

from ser.corpus.files import native

if TYPE_CHECKING:  # PyAV is imported where FFmpeg decodes: libsndfile reads most files
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer

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
#: A RIFF chunk's size field when the writer did not know it (a stream).
_UNKNOWN_SIZE = 0xFFFFFFFF

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


#: libsndfile's formats whose header counts the samples exactly (an MP3's or Ogg's length
#: may be estimated, and FFmpeg's containers round theirs: `SHORTFALL`).
EXACT_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "CAF", "AU"})


def exact_info(path: Path) -> AudioInfo | None:
    """What `info` says, where libsndfile reads the file and its header counts the samples
    exactly (`EXACT_FORMATS`); None for any other file, or one that cannot be read."""
    try:
        found = soundfile.info(native(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    if found.format not in EXACT_FORMATS:
        return None
    return AudioInfo(found.samplerate, found.channels, found.frames)


def info(path: Path) -> AudioInfo:
    """The audio's rate, channels and length by its header."""
    try:
        found = soundfile.info(native(path))  # its bytes: a name may not be UTF-8
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
    with soundfile.SoundFile(native(path)) as file:
        rate, frames = file.samplerate, file.frames
        first, last = (0, frames) if span is None else (round(s * rate) for s in span)
        count = -1 if span is None else max(0, last - first)  # -1: all there is
        try:
            file.seek(min(first, frames))
            samples = file.read(count, dtype="float32", always_2d=True)
        except soundfile.LibsndfileError as error:  # bad data part-way: say how far it read
            at = max(file.tell(), min(first, frames))  # -1 after a failed seek
            raise DecodeError(
                f"{_libsndfile_reason(error)} after {_read_of(at, last, rate, span)}"
            ) from error
        riff = span is None and file.format == "WAV"
    # libsndfile reads a WAV cut short after its header as a shorter file, without a word.
    if riff and (shortfall := riff_shortfall(path)) is not None:
        raise DecodeError(
            f"read {len(samples) / rate:.2f} s of the {shortfall[1]:.2f} s its header "
            "declares: the file is cut short"
        )
    _check_length(first + len(samples), last, rate, span)  # an MP3 cut short, say
    return samples, rate


def riff_shortfall(path: Path) -> tuple[float, float] | None:
    """(seconds held, seconds declared) of a RIFF/WAVE file whose data chunk declares more
    bytes than the file holds, by its header and size alone; None when it holds them all,
    declares no length (a stream) or is not RIFF/WAVE (RF64, AIFF, FLAC, ...)."""
    size, byte_rate = path.stat().st_size, 0
    with path.open("rb") as handle:
        head = handle.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while len(header := handle.read(8)) == 8:
            chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk == b"data":
                held = size - handle.tell()
                if length == _UNKNOWN_SIZE or length <= held or byte_rate == 0:
                    return None
                return held / byte_rate, length / byte_rate
            if chunk == b"fmt " and length >= 16:
                byte_rate = struct.unpack("<I", handle.read(16)[8:12])[0]
                length -= 16
            handle.seek(length + length % 2, 1)  # chunks are padded to even sizes
    return None


def _libsndfile_reason(error: soundfile.LibsndfileError) -> str:
    return error.error_string.removeprefix("Error : ").rstrip(".")


def _ffmpeg_read(path: Path, span: Span | None) -> tuple[np.ndarray, int]:
    """The stream decoded from its start, or from a little before `span` (a seek) to the
    span's end; the frames' timestamps place the span's samples."""
    with _audio_stream(path) as (container, stream):
        rate, channels = _format(stream)
        declared = _declared(stream, rate)
        origin = _samples(stream.start_time, _time_base(stream), rate) if stream.start_time else 0
        end = None if declared is None else origin + declared  # the stream's last sample + 1
        if span is None:
            start, samples = _decoded(container, stream, channels, rate, None)
            first, last = start, (start + samples.shape[1]) if end is None else end
        else:
            first, last = round(span[0] * rate), round(span[1] * rate)
            back = Fraction(first, rate) - PREROLL
            if back > 0:  # else from the start, priming frames and all, as a whole file
                container.seek(math.floor(back / _time_base(stream)), stream=stream)
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
        if span is not None:
            raise DecodeError(
                f"its audio ends at {end / rate:.2f} s, before the {wanted / rate:.2f} s the "
                "span reaches: the file is cut short or the span is wrong"
            )
        raise DecodeError(
            f"read {_read_of(end, wanted, rate, span)}: the file is cut short or damaged"
        )


def _read_of(end: int, wanted: int | None, rate: int, span: Span | None = None) -> str:
    """How far the audio was read: "3.45 s of the 6.90 s its header declares" (a span:
    "3.45 s, before the 6.90 s the span reaches")."""
    if wanted is None or wanted <= 0:
        return f"{end / rate:.2f} s"
    if span is not None:
        return f"{end / rate:.2f} s, before the {wanted / rate:.2f} s the span reaches"
    return f"{end / rate:.2f} s of the {wanted / rate:.2f} s its header declares"


def _decoded(
    container: InputContainer, stream: AudioStream, channels: int, rate: int, last: int | None
) -> tuple[int, np.ndarray]:
    """The sample index of the first frame decoded and `[channels, n]` samples from it,
    to sample `last` or the stream's end."""
    start, pieces = None, []
    for frame in _frames(container, stream, _declared(stream, rate)):
        at = _position(frame, rate)
        start = at if start is None else start
        pieces.append(_planar(frame, channels))  # [channels, frame.samples]
        if last is not None and at + frame.samples >= last:
            break
    samples = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
    return start or 0, samples


@contextmanager
def _audio_stream(path: Path) -> Iterator[tuple[InputContainer, AudioStream]]:
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


def _frames(
    container: InputContainer, stream: AudioStream, declared: int | None = None
) -> Iterator[AudioFrame]:
    """The stream's decoded frames; `DecodeError` saying where the data went bad (of the
    `declared` samples, when the header declares them)."""
    import av

    rate, end = stream.codec_context.sample_rate or 1, 0
    try:
        for frame in container.decode(stream):
            end = _position(frame, rate) + frame.samples
            yield frame
    except av.error.FFmpegError as error:
        read = _read_of(end, declared, rate)
        raise DecodeError(f"{_ffmpeg_reason(error)} after {read}") from error


def _format(stream: AudioStream) -> tuple[int, int]:
    rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if not rate or not channels:
        raise DecodeError(f"its audio stream has {rate or 'no'} Hz, {channels or 'no'} channels")
    return int(rate), int(channels)


def _declared(stream: AudioStream, rate: int) -> int | None:
    """Samples per channel the header declares for the stream; None when it does not say."""
    base = stream.time_base
    if stream.duration is None or base is None:
        return None
    return _samples(stream.duration, base, rate)


def _samples(ticks: int, base: Fraction, rate: int) -> int:
    """Samples in `ticks` of time base `base`."""
    return round(ticks * base * rate)


def _time_base(timed: AudioStream | AudioFrame) -> Fraction:
    """A stream's or frame's time base, which FFmpeg gives every stream it demuxes."""
    if timed.time_base is None:
        raise DecodeError("its audio stream has no time base: FFmpeg cannot place its samples")
    return timed.time_base


def _position(frame: AudioFrame, rate: int) -> int:
    """The sample index of a frame's first sample."""
    return 0 if frame.pts is None else _samples(frame.pts, _time_base(frame), rate)


def _planar(frame: AudioFrame, channels: int) -> np.ndarray:
    """A frame's samples as float32 `[channels, n]`."""
    array: np.ndarray = frame.to_ndarray()  # its dtype: the sample format's
    if not frame.format.is_planar:  # [1, n * channels], interleaved
        array = array.reshape(-1, channels).T
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind == "u":  # 8-bit audio is unsigned, centred on 128
        return ((array.astype(np.float32) - 128) / 128).astype(np.float32)
    return (array / -float(np.iinfo(array.dtype).min)).astype(np.float32)


def _ffmpeg_reason(error: BaseException) -> str:
    return str(getattr(error, "strerror", None) or error)
