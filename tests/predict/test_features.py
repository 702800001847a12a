"""Re-creating extractors from provenance (ser.predict.features) and predict's batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.errors import FingerprintMismatch
from ser.extract.registry import build_extractor
from ser.predict.features import (
    check_reproduces,
    extract_all,
    extractors_for,
    options_from_attrs,
)

CPU = torch.device("cpu")


def test_logmel_options_round_trip_through_its_attrs() -> None:
    made = build_extractor("logmel", n_mels=40, hop_ms=12.5, win_ms=30.0, fmin=20.0)
    spec = made.specs()[0]
    again = build_extractor("logmel", **options_from_attrs(spec.attrs))
    assert again.specs()[0].attrs == spec.attrs


def test_extractors_for_rebuilds_and_checks(tiny_models) -> None:
    hubert = build_extractor("hubert", model=str(tiny_models.hubert), layers="2", precision="fp32")
    spec = hubert.specs()[0]
    features = {spec.name: {"fingerprint": "f", "attrs": {**spec.attrs, "complete": True}}}
    (made,) = extractors_for(features, CPU)
    assert made.names == {spec.name: spec.name} and made.extractor.kind == "hubert"
    layer1 = build_extractor("hubert", model=str(tiny_models.hubert), layers="1")
    with pytest.raises(FingerprintMismatch, match=r"layer: 2 -> 1"):
        check_reproduces(spec.name, spec.attrs, layer1)
    assert check_reproduces("ours.L1", {**spec.attrs, "layer": 1}, layer1) == "tiny-hubert.L1"
    with pytest.raises(FingerprintMismatch, match=r"precision: \"bf16\" -> \"fp32\""):
        check_reproduces(spec.name, {**spec.attrs, "precision": "bf16"}, made.extractor)


def test_the_layer_sets_of_one_model_come_from_one_extractor(tiny_models) -> None:
    hubert = build_extractor("hubert", model=str(tiny_models.hubert), layers="all")
    logmel = build_extractor("logmel").specs()[0]
    features = {s.name: {"fingerprint": "f", "attrs": s.attrs} for s in hubert.specs()}
    features[logmel.name] = {"fingerprint": "f", "attrs": logmel.attrs}
    assert len(features) == 4  # the tiny HuBERT's layers 0-2 and log-mel
    made = extractors_for(features, CPU)
    assert [r.extractor.kind for r in made] == ["hubert", "logmel"]
    assert made[0].names == {f"tiny-hubert.L{n}": f"tiny-hubert.L{n}" for n in range(3)}
    assert made[0].extractor.options.layers == "0,1,2"  # type: ignore[attr-defined]
    rows = extract_all(made[0].extractor, [np.zeros(8000, np.float32)], {}, CPU)[0]
    assert rows is not None and sorted(rows) == sorted(made[0].names)


def test_extract_all_fails_bad_inputs_alone() -> None:
    logmel = build_extractor("logmel")
    logmel.load(CPU)
    inputs = [
        np.zeros(1600, np.float32),
        np.zeros(16000, np.float32),
        np.full(800, np.nan, np.float32),
    ]
    failed = {1: "given"}
    rows = extract_all(logmel, inputs, failed, CPU)
    assert rows[0] is not None and rows[0]["logmel80"].shape == (11, 80)
    assert rows[1] is None and failed[1] == "given"
    assert rows[2] is None and failed[2].startswith("logmel: ") and "NaN" in failed[2]
