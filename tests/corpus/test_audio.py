"""load_audio: decode, downmix, resample, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.corpus.audio import AudioError, load_audio
from ser.errors import SerError


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


def test_audio_error_is_a_ser_error() -> None:
    assert issubclass(AudioError, SerError)
