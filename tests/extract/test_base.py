"""Shared extractor pieces: input checks, checksums, freezing, load errors, precision."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ser.errors import ConfigError, SerError
from ser.extract.base import (
    ExtractionError,
    check_audio,
    freeze_for_inference,
    load_pretrained,
    weights_checksum,
)
from ser.extract.registry import build_extractor
from ser.extract.speech import SpeechExtractor, SpeechOptions
from ser.runtime.precision import AUTO, autocast


def test_weights_checksum_is_stable_and_sees_every_weight() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    first = weights_checksum(model)
    assert first == weights_checksum(model)
    assert len(first) == 64
    copy = pickle.loads(pickle.dumps(model))
    assert weights_checksum(copy) == first
    with torch.no_grad():
        copy[1].bias[0] += 1e-6
    assert weights_checksum(copy) != first


def test_check_audio_lists_every_bad_input() -> None:
    good = np.zeros(400, np.float32)
    batch = [good, np.zeros(10, np.float32), good, np.zeros((400, 2), np.float32)]
    batch.append(np.full(400, np.nan, np.float32))
    with pytest.raises(ExtractionError) as caught:
        check_audio(batch, 400, "a test model")
    failures = caught.value.failures
    assert set(failures) == {1, 3, 4}
    assert failures[1] == (
        "audio too short for a test model: 0.001 s, under the 0.025 s it takes (10 samples < 400)"
    )
    assert "mono" in failures[3] and "NaN" in failures[4]
    assert isinstance(caught.value, SerError)
    with pytest.raises(ExtractionError, match=r": 0\.040 s, under the 0\.060 s it takes"):
        check_audio([np.zeros(320, np.float32)], 480, "openSMILE", sample_rate=8000)
    assert "input 1:" in str(caught.value)


def test_missing_model_folder_is_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ConfigError, match=r"model folder .*no-such-model does not exist"):
        load_pretrained(lambda name: name, missing, "model")


def test_folder_without_a_model_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    extractor = SpeechExtractor(SpeechOptions(model=str(tmp_path / "empty")))
    with pytest.raises(ConfigError, match=r"empty holds no loadable model config"):
        extractor.specs()


def test_unknown_hub_id_offline_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    extractor = build_extractor("bert", model="nobody-here/no-such-model")
    with pytest.raises(ConfigError, match=r"'nobody-here/no-such-model'.*no cached copy.*offline"):
        extractor.specs()


@pytest.mark.parametrize("model", ["hubert", "mpnet", "bert"])
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_freeze_for_inference_changes_no_output_bit(
    tiny_models, model: str, precision: str
) -> None:
    from transformers import AutoModel

    folder = getattr(tiny_models, model)
    reference, frozen = (AutoModel.from_pretrained(folder).eval() for _ in range(2))
    dtype = {"bf16": torch.bfloat16, "fp32": None}[precision]
    freeze_for_inference(frozen, dtype)
    if model == "hubert":
        # The weight-normalised positional conv now holds its computed weight.
        assert not parametrize.is_parametrized(frozen.encoder.pos_conv_embed.conv)
        inputs = {"input_values": torch.randn(2, 4000)}
    else:
        inputs = {"input_ids": torch.randint(5, 40, (2, 9))}
    if dtype is not None:
        assert {
            p.dtype for m in frozen.modules() if isinstance(m, nn.Linear) for p in m.parameters()
        } == {dtype}
    with torch.inference_mode(), autocast(torch.device("cpu"), precision):
        expected = reference(**inputs).last_hidden_state
        got = frozen(**inputs).last_hidden_state
    assert torch.equal(expected, got)


def test_load_keeps_the_checksum_of_the_weights_as_loaded(tiny_models) -> None:
    extractor = SpeechExtractor(SpeechOptions(model=str(tiny_models.hubert), precision="bf16"))
    before = extractor.weights_checksum()
    fresh = SpeechExtractor(SpeechOptions(model=str(tiny_models.hubert), precision="bf16"))
    fresh.load(torch.device("cpu"))
    assert fresh.weights_checksum() == before
    assert fresh.specs()[0].attrs["weights_sha256"] == before


def test_reloading_for_another_precision_starts_from_the_checkpoint(
    tiny_models, monkeypatch: pytest.MonkeyPatch
) -> None:
    wave = [np.sin(np.arange(8000, dtype=np.float32) / 7.0)]
    fp32 = SpeechExtractor(SpeechOptions(model=str(tiny_models.hubert), precision="fp32"))
    fp32.load(torch.device("cpu"))
    expected = fp32.extract(wave)[0]
    auto = SpeechExtractor(SpeechOptions(model=str(tiny_models.hubert), precision="auto"))
    monkeypatch.setitem(AUTO, ("extract", "cpu"), ("bf16",))
    auto.load(torch.device("cpu"))  # frozen for bf16: linear weights stored in bf16
    assert auto.precision == "bf16"
    monkeypatch.setitem(AUTO, ("extract", "cpu"), ("fp32",))
    auto.load(torch.device("cpu"))  # now "auto" means fp32: float32 weights again
    assert auto.precision == "fp32"
    got = auto.extract(wave)[0]
    assert all(np.array_equal(got[name], expected[name]) for name in expected)
