"""Log-mel spectrogram: frame counts, padding invariance, the mel filterbank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.errors import ConfigError
from ser.extract.base import ExtractionError
from ser.extract.logmel import (
    LogmelExtractor,
    LogmelOptions,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

CPU = torch.device("cpu")


def loaded(**options: object) -> LogmelExtractor:
    extractor = LogmelExtractor(LogmelOptions(**options))  # type: ignore[arg-type]
    extractor.load(CPU)
    return extractor


def noise(*lengths: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def test_specs_carry_provenance() -> None:
    [spec] = LogmelExtractor().specs()
    attrs = spec.attrs
    assert spec.name == "logmel80" and attrs["extractor"] == "logmel"
    assert attrs["level"] == "frame" and attrs["frame_shift"] == pytest.approx(0.01)
    assert attrs["dim"] == 80 and attrs["dtype"] == "float16" and attrs["sample_rate"] == 16000
    assert (attrs["win_length"], attrs["hop_length"], attrs["n_fft"]) == (400, 160, 512)
    assert attrs["mel_scale"] == "slaney" and attrs["mel_norm"] == "slaney"
    assert attrs["fmax"] == 8000 and attrs["log"] == "ln(mel + 1e-06)"


@pytest.mark.parametrize("n_samples", [1, 159, 160, 8000, 16000])
def test_one_frame_per_10ms_plus_one(n_samples: int) -> None:
    [output] = loaded().extract(noise(n_samples))
    rows = output["logmel80"]
    assert rows.shape == (1 + n_samples // 160, 80) and rows.dtype == np.float32
    assert np.isfinite(rows).all()


def test_padding_does_not_change_outputs() -> None:
    extractor = loaded()
    inputs = noise(16000, 3333, 8000, 400)
    batched = extractor.extract(inputs)
    for wave, together in zip(inputs, batched, strict=True):
        [alone] = extractor.extract([wave])
        np.testing.assert_allclose(together["logmel80"], alone["logmel80"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("window_frames", [1, 2, 7, 50])
@pytest.mark.parametrize("options", [{}, {"hop_ms": 7.0, "n_fft": 1024}])
def test_a_long_recording_windowed_gives_the_same_frames(
    window_frames: int, options: dict[str, float]
) -> None:
    """A recording over `window_frames` goes a window at a time (bounded memory); each
    window sees the samples (or centring's zeros) its frames see whole: the same rows to
    float rounding, in a batch beside short ones too."""
    whole = loaded(**options)
    windowed = loaded(**options)
    windowed.window_frames = window_frames
    inputs = noise(16000 * 2 + 123, 160 * 37, 401, 1)
    for wave, got in zip(inputs, windowed.extract(inputs), strict=True):
        [expected] = whole.extract([wave])
        assert got["logmel80"].shape == expected["logmel80"].shape
        np.testing.assert_allclose(got["logmel80"], expected["logmel80"], atol=1e-5, rtol=0)


def test_a_long_recording_never_has_its_whole_spectrum_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extractor = loaded()
    extractor.window_frames = 20
    stft, frames = torch.stft, []

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        spec = stft(*args, **kwargs)  # type: ignore[arg-type]
        frames.append(spec.shape[-1])
        return spec

    monkeypatch.setattr(torch, "stft", counted)
    [output] = extractor.extract(noise(160 * 99))
    assert output["logmel80"].shape == (100, 80)
    assert frames == [20] * 5


def test_a_tone_lights_the_band_around_its_frequency() -> None:
    t = np.arange(8000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    [output] = loaded().extract([tone])
    band = int(np.argmax(output["logmel80"][10:-10].mean(axis=0)))
    edges = mel_to_hz(np.linspace(0, hz_to_mel(8000), 82))
    assert edges[band] < 1000 < edges[band + 2]
    silence = loaded().extract([np.zeros(1600, np.float32)])[0]["logmel80"]
    np.testing.assert_allclose(silence, np.log(1e-6), rtol=1e-6)


def test_mel_scales() -> None:
    assert hz_to_mel(1000.0) == pytest.approx(15.0)  # Slaney: 200/3 Hz per mel below 1 kHz
    assert hz_to_mel(1000.0, "htk") == pytest.approx(999.986, abs=1e-3)  # 2595 log10(1 + 10/7)
    hz = np.array([0.0, 300.0, 1000.0, 4321.0, 8000.0])
    for scale in ("slaney", "htk"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz, scale), scale), hz, atol=1e-6)


def test_filterbank_is_triangular_with_unit_area() -> None:
    bank = mel_filterbank(16000, 512, 80)
    assert bank.shape == (80, 257) and bank.dtype == np.float32
    assert (bank >= 0).all() and (bank.max(axis=1) > 0).all()
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # centres rise with the band index
    # Slaney normalisation: each triangle has unit area in Hz (wide bands sample it well).
    areas = bank.sum(axis=1) * (16000 / 512)
    np.testing.assert_allclose(areas[40:], 1.0, rtol=0.05)


def test_htk_scale_is_selectable() -> None:
    extractor = loaded(mel_scale="htk")
    assert extractor.specs()[0].attrs["mel_scale"] == "htk"
    wave = noise(4000)
    assert not np.allclose(
        extractor.extract(wave)[0]["logmel80"], loaded().extract(wave)[0]["logmel80"]
    )


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"mel bands .* fall between FFT bins"):
        loaded(n_mels=256)
    with pytest.raises(ConfigError, match="unknown mel_scale"):
        LogmelOptions(mel_scale="bark")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fmin < fmax"):
        LogmelOptions(fmax=9000)


def test_empty_audio_fails_alone() -> None:
    with pytest.raises(ExtractionError) as caught:
        loaded().extract([*noise(800), np.zeros(0, np.float32)])
    assert set(caught.value.failures) == {1}
