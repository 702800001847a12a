"""Whisper ASR (ser.extract.asr) with the tiny random Whisper: batched, deterministic,
provenance that changes with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.errors import ConfigError
from ser.extract.asr import AsrOptions, WhisperAsr
from ser.synth.tiny import save_tiny_whisper

CPU = torch.device("cpu")


def test_batch_matches_one_at_a_time_and_is_deterministic(tiny_models) -> None:
    asr = WhisperAsr(AsrOptions(model=str(tiny_models.whisper), max_new_tokens=6))
    asr.load(CPU)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (8000, 16000, 24000)]
    batch = asr.transcribe(waves)
    assert batch == [asr.transcribe([w])[0] for w in waves]
    assert batch == asr.transcribe(waves)
    assert all(text.strip() for text in batch)  # the tiny model never emits nothing
    assert asr.transcribe([]) == []


def test_provenance_names_the_model_and_its_weights(tiny_models, tmp_path) -> None:
    a = WhisperAsr(AsrOptions(model=str(tiny_models.whisper)))
    b = WhisperAsr(AsrOptions(model=str(save_tiny_whisper(tmp_path / "w", seed=1))))
    a.load(CPU)
    b.load(CPU)
    pa, pb = a.provenance(), b.provenance()
    assert pa["asr_model"] == str(tiny_models.whisper) and pa["asr_decoding"] == "greedy"
    assert pa["asr_weights_sha256"] != pb["asr_weights_sha256"]


def test_missing_model_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        WhisperAsr(AsrOptions(model=str(tmp_path / "nope"))).load(CPU)


def test_transcribe_before_load_is_refused() -> None:
    with pytest.raises(RuntimeError, match="load"):
        WhisperAsr().transcribe([np.zeros(10, np.float32)])
