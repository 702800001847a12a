"""load_audio: decode any container (a clip: its span), downmix, resample, and clear
errors for bad files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from ser.corpus import decode
from ser.corpus.audio import (
    AudioError,
    AudioInfo,
    Clip,
    audio_info,
    cut_short,
    decoders,
    load_audio,
)
from ser.errors import SerError
from ser.synth.encode import write_encoded


def sine(hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_mono_at_the_target_rate_is_returned_unchanged(tmp_path: Path) -> None:
    wave = sine(440, 0.25, 16000)
    soundfile.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    loaded = load_audio(tmp_path / "a.wav", 16000)
    assert loaded.dtype == np.float32
    assert loaded.shape == (4000,)
    np.testing.assert_array_equal(loaded, wave)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path: Path) -> None:
    left = sine(440, 0.5, 44100, amplitude=0.8)
    stereo = np.stack([left, 0.5 * left], axis=1)  # [n, 2]: mono mean is 0.75 * left
    soundfile.write(tmp_path / "stereo.wav", stereo, 44100, subtype="FLOAT")

    loaded = load_audio(str(tmp_path / "stereo.wav"), 16000)

    assert loaded.ndim == 1 and loaded.dtype == np.float32
    assert abs(len(loaded) - 8000) <= 1
    middle = loaded[1000:-1000]  # away from the resampler's edges
    assert np.abs(middle).max() == pytest.approx(0.6, abs=0.01)
    spectrum = np.abs(np.fft.rfft(loaded))
    peak_hz = np.argmax(spectrum) * 16000 / len(loaded)
    assert peak_hz == pytest.approx(440, abs=4)


def test_pcm16_is_scaled_to_plus_minus_one(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "pcm.wav", sine(200, 0.1, 16000, 0.9), 16000, subtype="PCM_16")
    loaded = load_audio(tmp_path / "pcm.wav", 16000)
    assert np.abs(loaded).max() == pytest.approx(0.9, abs=1e-3)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match=r"nope\.wav.*does not exist"):
        load_audio(missing, 16000)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"not a wav file at all" * 10)
    with pytest.raises(AudioError, match=r"cannot decode audio file .*garbage\.wav"):
        load_audio(bad, 16000)


def test_zero_byte_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"zero\.wav is empty"):
        load_audio(tmp_path / "zero.wav", 16000)


def test_wav_without_samples_is_empty(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "silent.wav", np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(AudioError, match=r"silent\.wav is empty \(0 samples\)"):
        load_audio(tmp_path / "silent.wav", 16000)


def _pcm_wav(path: Path, seconds: float) -> bytes:
    soundfile.write(path, sine(300, seconds, 16000), 16000, subtype="PCM_16")
    return path.read_bytes()


def test_a_wav_cut_short_after_its_header_says_how_much_it_read(tmp_path: Path) -> None:
    """libsndfile reads such a file as a shorter one: only its header tells."""
    whole = _pcm_wav(tmp_path / "whole.wav", 2.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: 44 + 2 * 16000])  # its header kept, 1 of its 2 s of samples
    expected = f"cannot decode audio file {cut}: read 1.00 s of the 2.00 s its header declares"
    with pytest.raises(AudioError) as error:
        load_audio(cut, 16000)
    assert str(error.value) == f"{expected}: the file is cut short"
    assert cut_short(cut) == (
        f"audio file {cut} is cut short: it holds 1.00 s of the 2.00 s its header declares"
    )
    # A clip within what it holds is whole: a recording's earlier utterances are fine.
    np.testing.assert_array_equal(
        load_audio(Clip(cut, 0.25, 0.75), 16000),
        load_audio(tmp_path / "whole.wav", 16000)[4000:12000],
    )
    assert cut_short(tmp_path / "whole.wav") is None


def test_a_streamed_wav_of_unknown_length_is_read_whole(tmp_path: Path) -> None:
    streamed = bytearray(_pcm_wav(tmp_path / "a.wav", 0.5))
    at = streamed.index(b"data") + 4
    streamed[at : at + 4] = (0xFFFFFFFF).to_bytes(4, "little")  # a writer that did not know
    (tmp_path / "a.wav").write_bytes(bytes(streamed))
    assert len(load_audio(tmp_path / "a.wav", 16000)) == 8000
    assert cut_short(tmp_path / "a.wav") is None


def test_a_flac_that_stops_decoding_says_how_far_it_read(tmp_path: Path) -> None:
    flac = tmp_path / "a.flac"
    soundfile.write(flac, np.random.default_rng(0).normal(0, 0.1, 32000), 16000)
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    with pytest.raises(AudioError) as error:
        load_audio(flac, 16000)
    said = str(error.value)
    assert said.startswith(f"cannot decode audio file {flac}: ") and "\n" not in said
    assert re.search(r" after [01]\.\d\d s of the 2\.00 s its header declares$", said), said
    with pytest.raises(AudioError, match=r" after [01]\.\d\d s, before the 1\.90 s the span"):
        load_audio(Clip(flac, 0.25, 1.9), 16000)  # an utterance of a recording: its span


def test_audio_error_is_a_ser_error() -> None:
    assert issubclass(AudioError, SerError)


# Containers: made here with FFmpeg's encoders (PyAV), read back as 16 kHz mono matching
# the same signal read from a wav. FLAC, Ogg (Opus) and MP3 are libsndfile's to decode,
# MP4 and M4A (AAC) FFmpeg's.
CONTAINERS = [
    (".flac", 48000, 2), (".ogg", 48000, 1), (".mp3", 44100, 2), (".mp3", 22050, 1),
    (".mp4", 48000, 2), (".mp4", 22050, 1), (".m4a", 44100, 1), (".m4a", 22050, 2),
]  # fmt: skip


def _two_tones(rate: int, channels: int, seconds: float = 1.0) -> np.ndarray:
    """440 Hz and 1 kHz, `[n, channels]`; a second channel at half the first's level."""
    mono = sine(440, seconds, rate, 0.5) + sine(1000, seconds, rate, 0.2)
    return np.stack([mono, 0.5 * mono], axis=1) if channels == 2 else mono[:, None]


@pytest.mark.parametrize(("suffix", "rate", "channels"), CONTAINERS)
def test_every_container_decodes_to_16k_mono_like_its_wav(
    tmp_path: Path, suffix: str, rate: int, channels: int
) -> None:
    samples = _two_tones(rate, channels)
    encoded = write_encoded(tmp_path / f"a{suffix}", samples, rate)
    soundfile.write(tmp_path / "a.wav", samples, rate, subtype="FLOAT")

    loaded, reference = load_audio(encoded, 16000), load_audio(tmp_path / "a.wav", 16000)

    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(len(loaded) - 16000) <= 16  # 1 s, as its header says
    assert np.corrcoef(loaded[:16000], reference[:16000])[0, 1] > 0.99  # aligned, same sound
    energy = np.sqrt(np.mean(reference**2))
    assert np.sqrt(np.mean(loaded**2)) == pytest.approx(energy, rel=0.1)
    peak_hz = np.argmax(np.abs(np.fft.rfft(loaded))) * 16000 / len(loaded)
    assert peak_hz == pytest.approx(440, abs=2)
    assert audio_info(encoded) == AudioInfo(rate, channels, audio_info(encoded).frames)
    assert audio_info(encoded).seconds == pytest.approx(1.0, abs=0.01)
    np.testing.assert_array_equal(load_audio(encoded, 16000), loaded)  # deterministic


def test_surround_is_averaged_over_its_channels(tmp_path: Path) -> None:
    """A 5.1 AAC stream (a film's sound) is the mean of its six channels; AAC keeps only
    the lows of the fourth (LFE), so 440 Hz is the mean of the other five, times 5/6."""
    tone = sine(440, 1.0, 48000, 0.5)
    gains = np.array([1.0, 0.9, 0.8, 0.0, 0.6, 0.5], np.float32)
    clip = write_encoded(tmp_path / "surround.mp4", tone[:, None] * gains, 48000)
    assert audio_info(clip) == AudioInfo(48000, 6, 48000)
    loaded, expected = load_audio(clip, 16000), sine(440, 1.0, 16000, 0.5 * gains.mean())
    assert np.corrcoef(loaded[1000:-1000], expected[1000:-1000])[0, 1] > 0.99
    assert np.std(loaded) == pytest.approx(np.std(expected), rel=0.05)


def test_a_clip_of_an_mp4_is_its_span_alone(tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(3 * rate) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 300 * t**2))  # no two spans alike
    clip = write_encoded(tmp_path / "dia0_utt0.mp4", np.stack([chirp, chirp / 2], 1), rate)
    whole, _ = decode.read(clip)

    early, _ = decode.read(clip, (0.1, 0.5))  # decoded from the start, as the whole file
    part, part_rate = decode.read(clip, (1.1, 2.35))  # after a seek

    np.testing.assert_array_equal(early, whole[round(0.1 * rate) : round(0.5 * rate)])
    assert part_rate == rate and part.shape == (round(1.25 * rate), 2)
    # the decoder's state before the seek differs a little: far below the codec's error
    np.testing.assert_allclose(part, whole[round(1.1 * rate) : round(2.35 * rate)], atol=1e-3)
    resampled = load_audio(Clip(clip, 1.1, 2.35), 16000)
    assert len(resampled) == round(1.25 * 16000)
    np.testing.assert_array_equal(load_audio(Clip(clip, 1.1, 2.35), 16000), resampled)
    np.testing.assert_array_equal(load_audio(Clip(clip, 0.0, 3.0), 16000), load_audio(clip, 16000))
    with pytest.raises(AudioError, match=r"ends at 3.00 s, before the 5.00 s the span reaches"):
        load_audio(Clip(clip, 2.0, 5.0), 16000)


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _garbled(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:64] + np.random.default_rng(1).bytes(len(data) - 64)[: middle - 64] + data[middle:]


# An MP3 or Ogg stream resyncs past garbled bytes, as every player does, and an Ogg cut
# short is a shorter stream (it declares no length): those decode.
@pytest.mark.parametrize(
    ("suffix", "damage"),
    [
        *[(suffix, _cut) for suffix in (".mp4", ".m4a", ".mp3")],
        *[(suffix, _garbled) for suffix in (".mp4", ".m4a", ".ogg")],
        *[(suffix, lambda _: b"\x00garbage" * 500) for suffix in (".mp4", ".m4a", ".ogg", ".mp3")],
    ],
)
def test_a_damaged_file_is_one_line_naming_it(tmp_path: Path, suffix: str, damage: Any) -> None:
    path = write_encoded(tmp_path / f"bad{suffix}", _two_tones(48000, 2), 48000)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(AudioError, match=rf"cannot decode audio file .*bad\{suffix}: \S") as error:
        load_audio(path, 16000)
    assert "\n" not in str(error.value)


def test_an_mp4_that_stops_decoding_says_how_far_it_read(tmp_path: Path) -> None:
    path = write_encoded(tmp_path / "bad.m4a", _two_tones(48000, 2), 48000)
    path.write_bytes(_garbled(path.read_bytes()))
    with pytest.raises(AudioError, match=r" after 0\.\d\d s of the 1\.00 s its header declares$"):
        load_audio(path, 16000)


def test_decoders_name_both_libraries_and_their_versions() -> None:
    assert re.fullmatch(r"soundfile [\d.]+ / libsndfile [\d.]+; av [\d.]+ / ffmpeg \S+", decoders())


def test_a_stream_without_a_time_base_is_a_decode_error_not_a_type_error() -> None:
    from fractions import Fraction
    from types import SimpleNamespace

    with pytest.raises(decode.DecodeError, match="no time base"):
        decode._time_base(SimpleNamespace(time_base=None))  # type: ignore[arg-type]
    assert decode._time_base(SimpleNamespace(time_base=Fraction(1, 48000))) == Fraction(1, 48000)  # type: ignore[arg-type]
