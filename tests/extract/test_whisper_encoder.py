"""The speech kind on Whisper's encoder: 30 s windows, frames of real audio only, layers
as HF's hidden states (tiny random Whisper, 2 encoder layers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModel, WhisperFeatureExtractor

from ser.errors import ConfigError
from ser.extract.base import ExtractionError
from ser.extract.registry import build_extractor
from ser.extract.speech import SpeechExtractor
from ser.synth.tiny import save_tiny_whisper

CPU = torch.device("cpu")
RATE = 16000


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_whisper(
        tmp_path_factory.mktemp("whisper") / "tiny-whisper-enc", encoder_layers=2
    )


def loaded(folder: Path, **options: Any) -> SpeechExtractor:
    extractor = build_extractor("speech", model=str(folder), precision="fp32", **options)
    assert isinstance(extractor, SpeechExtractor)
    extractor.load(CPU)
    return extractor


def wave(seconds: float, seed: int = 0) -> np.ndarray:
    n = round(seconds * RATE)
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_specs_record_the_window(folder: Path) -> None:
    extractor = build_extractor("speech", model=str(folder), layers="all", pool="mean")
    names = [spec.name for spec in extractor.specs()]
    assert names == [f"tiny-whisper-enc.L{n}{view}" for n in range(3) for view in ("", ".mean")]
    attrs = extractor.specs()[0].attrs
    assert attrs["extractor"] == "speech" and attrs["model_type"] == "whisper"
    assert attrs["frame_shift"] == pytest.approx(0.02) and attrs["sample_rate"] == RATE
    assert (attrs["n_layers"], attrs["n_mels"], attrs["window_seconds"]) == (2, 80, 30.0)
    assert "normalize" not in attrs and "feat_extract_norm" not in attrs
    assert len(attrs["weights_sha256"]) == 64


def test_both_sides_of_the_30s_window(folder: Path) -> None:
    extractor = loaded(folder, layers="all")
    short, long = wave(20.0), wave(45.0, seed=1)
    together = extractor.extract([short, long])
    for n in range(3):
        assert together[0][f"tiny-whisper-enc.L{n}"].shape == (1000, 32)  # 20 s of 20 ms
        assert together[1][f"tiny-whisper-enc.L{n}"].shape == (2250, 32)  # 30 s + 15 s
    [first] = extractor.extract([long[: 30 * RATE]])  # its first window extracted alone
    [second] = extractor.extract([long[30 * RATE :]])  # and its second
    [alone] = extractor.extract([short])
    for n in range(3):
        name = f"tiny-whisper-enc.L{n}"
        np.testing.assert_allclose(together[1][name][:1500], first[name], atol=1e-5, rtol=0)
        np.testing.assert_allclose(together[1][name][1500:], second[name], atol=1e-5, rtol=0)
        np.testing.assert_allclose(together[0][name], alone[name], atol=1e-5, rtol=0)


def test_layers_are_hfs_hidden_states_of_the_padded_window(folder: Path) -> None:
    extractor = loaded(folder, layers="all")
    audio = wave(7.3)
    [ours] = extractor.extract([audio])
    mel = WhisperFeatureExtractor.from_pretrained(folder)(
        [audio], sampling_rate=RATE, return_tensors="pt"
    ).input_features  # padded to 30 s, as Whisper always is
    encoder = AutoModel.from_pretrained(folder).eval().get_encoder()
    with torch.inference_mode():
        output = encoder(mel, output_hidden_states=True)
    hidden = output.hidden_states
    assert len(hidden) == 3 and torch.equal(
        hidden[2], output.last_hidden_state
    )  # after its LayerNorm
    kept = len(audio) // 320
    for n, state in enumerate(hidden):
        np.testing.assert_allclose(
            ours[f"tiny-whisper-enc.L{n}"], state[0, :kept].numpy(), atol=1e-5
        )


def test_a_tail_under_one_frame_adds_nothing(folder: Path) -> None:
    extractor = loaded(folder)
    [out] = extractor.extract([wave(30.0 + 100 / RATE)])
    assert out["tiny-whisper-enc.L2"].shape == (1500, 32)


def test_too_short_fails_alone(folder: Path) -> None:
    extractor = loaded(folder)
    with pytest.raises(ExtractionError) as caught:
        extractor.extract([wave(1.0), np.zeros(300, np.float32)])
    assert set(caught.value.failures) == {1} and "300 samples < 320" in caught.value.failures[1]


def test_encoder_stops_at_the_highest_layer_asked_for(folder: Path) -> None:
    extractor = loaded(folder, layers="1")
    calls = [0, 0]
    layers = extractor.model.layers  # type: ignore[union-attr]
    hooks = [
        layer.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, layer in enumerate(layers)
    ]
    try:
        [out] = extractor.extract([wave(3.0)])
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [1, 0] and out["tiny-whisper-enc.L1"].shape == (150, 32)


def test_only_the_encoder_is_kept_and_checksummed(folder: Path) -> None:
    from ser.extract.base import weights_checksum

    extractor = loaded(folder)
    assert type(extractor.model).__name__ == "WhisperEncoder"
    encoder = AutoModel.from_pretrained(folder).get_encoder()
    assert extractor.specs()[0].attrs["weights_sha256"] == weights_checksum(encoder)


def test_normalize_is_for_wav2vec2_models(folder: Path) -> None:
    with pytest.raises(ConfigError, match="normalize option is for wav2vec2-family"):
        build_extractor("speech", model=str(folder), normalize=True).specs()


def test_batches_are_planned_by_whole_windows(folder: Path) -> None:
    from ser.extract.plan import plan_shards

    whisper = build_extractor("speech", model=str(folder))
    assert [whisper.padded_seconds(s) for s in (0.5, 4.0, 30.0, 45.0)] == [30.0, 30, 30, 60]
    assert build_extractor("logmel").padded_seconds(4.0) == 4.0
    # The GPU's 240 padded seconds hold 8 utterances of 4 s, not 60 (60 windows of 30 s).
    padded = [whisper.padded_seconds(4.0)] * 60
    sizes = [len(b) for b in plan_shards(padded, 240.0, 256).shards[0].batches]
    assert sizes == [8] * 7 + [4]


def test_a_long_recording_goes_a_few_windows_at_a_time(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows never see each other, so running them fewer at a time (a recording of hours
    never holds all its windows' attention) gives the same frames."""
    import ser.extract.whisper_encoder as whisper_encoder

    extractor = loaded(folder)
    long = wave(75.0)  # 3 windows
    [together] = extractor.extract([long])
    calls: list[int] = []
    encode = whisper_encoder.WhisperFrames._encode

    def counted(self: Any, encoder: Any, mel: torch.Tensor, top: int) -> list[torch.Tensor]:
        calls.append(int(mel.shape[0]))
        return encode(self, encoder, mel, top)

    monkeypatch.setattr(whisper_encoder, "WINDOWS_PER_CALL", 2)
    monkeypatch.setattr(whisper_encoder.WhisperFrames, "_encode", counted)
    [apart] = extractor.extract([long])
    assert calls == [2, 1]
    for name, rows in together.items():
        assert rows.shape == apart[name].shape == (3750, 32)
        np.testing.assert_allclose(apart[name], rows, atol=1e-5, rtol=1e-5)
