"""Recordings too long for an extractor that takes them in one piece (openSMILE's
functionals, a wav2vec2-family encoder): refused before they are decoded, one reason
naming the file and the limit, the rest extracted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import ser.extract.is13 as is13
import ser.extract.shards as shards
import ser.extract.wav2vec2 as wav2vec2
from ser.cache import FeatureStore
from ser.extract.base import ExtractionError
from ser.extract.registry import build_extractor
from ser.synth.tiny import save_tiny_hubert
from tests.refused import ser

RATE = 16000


def noise(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def corpus(folder: Path) -> Path:
    for name, seconds in (("short", 1.0), ("long", 3.0)):
        soundfile.write(folder / f"{name}.wav", noise(seconds), RATE)
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "utt_id,wav,label,speaker\nshort,short.wav,neu,spk1\nlong,long.wav,ang,spk2\n"
    )
    return manifest


def test_is13_refuses_a_recording_over_its_limit_before_decoding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(is13, "MAX_SECONDS", 2.0)
    decoded: list[str] = []
    load_audio = shards.load_audio

    def counted(source: Path, rate: int) -> np.ndarray:
        decoded.append(str(source))
        return load_audio(source, rate)

    monkeypatch.setattr(shards, "load_audio", counted)
    store = tmp_path / "f.zarr"
    args = ("extract", corpus(tmp_path), "--corpus", "manifest", "--store", store)
    done = ser(*args, "--features", "is13", "--processes", "1", "--quiet")
    assert done.exit_code == 1, done.output
    features = FeatureStore.open(store)
    [(utt, reason)] = features.failures("is13")
    assert utt == "long" and "\n" not in reason
    assert reason.startswith(f"audio file {tmp_path / 'long.wav'}: 3.0 s of audio is over the 2 s ")
    assert "is13 takes in one piece" in reason and "start and end" in reason
    assert [Path(s).name for s in decoded] == ["short.wav"]  # the long one never decoded
    short = list(features.manifest.utt_ids).index("short")
    assert features.read("is13").utterance(short).shape == (1, 6373)


def test_a_wav2vec2_encoder_refuses_audio_over_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wav2vec2, "MAX_SECONDS", 2.0)
    extractor = build_extractor("speech", model=str(save_tiny_hubert(tmp_path / "tiny-hubert")))
    extractor.load(torch.device("cpu"))
    with pytest.raises(ExtractionError) as refused:
        extractor.extract([noise(1.0), noise(3.0)])
    assert list(refused.value.failures) == [1]
    assert refused.value.failures[1].startswith("3.0 s of audio is over the 2 s speech takes")
    assert len(extractor.extract([noise(1.0)])) == 1
