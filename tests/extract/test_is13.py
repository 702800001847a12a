"""openSMILE functionals: one float32 row of 6373 per utterance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.errors import ConfigError
from ser.extract.base import ExtractionError
from ser.extract.is13 import Is13Extractor, Is13Options

CPU = torch.device("cpu")


def half_second(seed: int = 0) -> np.ndarray:
    t = np.arange(8000) / 16000
    noise = np.random.default_rng(seed).standard_normal(8000)
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.01 * noise).astype(np.float32)


@pytest.fixture(scope="module")
def is13() -> Is13Extractor:
    extractor = Is13Extractor()
    extractor.load(CPU)
    return extractor


def test_one_row_of_6373_functionals(is13: Is13Extractor) -> None:
    outputs = is13.extract([half_second(0), half_second(1)])
    assert len(outputs) == 2
    rows = outputs[0]["is13"]
    assert rows.shape == (1, 6373) and rows.dtype == np.float32
    assert np.isfinite(rows).all()
    assert not np.array_equal(rows, outputs[1]["is13"])


def test_specs_carry_provenance(is13: Is13Extractor) -> None:
    [spec] = is13.specs()
    attrs = spec.attrs
    assert spec.name == "is13" and attrs["extractor"] == "is13"
    assert attrs["level"] == "utterance" and attrs["frame_shift"] is None
    assert attrs["dim"] == 6373 and attrs["dtype"] == "float32"
    assert attrs["sample_rate"] == 16000 and is13.sample_rate == 16000
    assert attrs["opensmile_config"] == "IS13" and attrs["opensmile_version"]


def test_compare2016_is_selectable() -> None:
    extractor = Is13Extractor(Is13Options(feature_set="compare2016"))
    [spec] = extractor.specs()
    assert spec.name == "compare2016" and spec.attrs["opensmile_config"] == "ComParE_2016"
    extractor.load(CPU)
    [output] = extractor.extract([half_second()])
    assert output["compare2016"].shape == (1, spec.attrs["dim"])


def test_too_short_audio_fails_alone(is13: Is13Extractor) -> None:
    with pytest.raises(ExtractionError) as caught:
        is13.extract([half_second(), np.zeros(500, np.float32), np.zeros(0, np.float32)])
    assert set(caught.value.failures) == {1, 2}
    assert "500 samples < 960" in caught.value.failures[1]


def test_unknown_feature_set_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown openSMILE feature set 'is09'"):
        Is13Options(feature_set="is09")  # type: ignore[arg-type]
