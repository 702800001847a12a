"""Training on every stored layer of an encoder (`--features <stem>.L*`): every family
takes the layered input, the run record keeps the sets and each fold's learnt weights,
and the weighted sum learns which layer carries the label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.models import FAMILIES, FeatureInfo, ModelConfig
from ser.runs.record import Layered
from ser.train.recipe import train
from tests.registries import registered_families, tiny_features
from tests.stores import add_layer_sets, labelled_store
from tests.train.conftest import small_config

AUDIO = ("hubert", "audio", "frame", 6, "float16")
TEXT = ("bert", "text", "token", 5, "float16")
# What each registered family's small model (`Family.tiny`) trains on: the layered
# pair, as `ser train --features` names it, or the one layered set it takes.
LAYERED = (
    (FeatureInfo("tiny-hubert.L*", "audio", "frame", 6, 4),
     FeatureInfo("tiny-bert.L*", "text", "token", 5, 3)),
    (FeatureInfo("tiny-hubert.L*", "audio", "frame", 6, 4),),
    (FeatureInfo("tiny-bert.L*", "text", "token", 5, 3),),
)  # fmt: skip
# Beyond every registered family: layers pooled to vectors in the store.
VARIANTS: dict[str, tuple[tuple[str, ...], Any]] = {
    "unimodal-pooled": (("tiny-hubert.L1-3.mean",), ModelConfig(fusion="none", d_model=8)),
}


def model_of(family: str) -> tuple[tuple[str, ...], Any]:
    if family in VARIANTS:
        return VARIANTS[family]
    return tiny_features(family, LAYERED), FAMILIES[family].tiny_config()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "layers.zarr"
    store = labelled_store(path, {})
    add_layer_sets(store, "tiny-hubert", AUDIO, range(4))
    add_layer_sets(
        store, "tiny-hubert", (*AUDIO[:2], "utterance", 6, "float16"), range(4), pool="mean"
    )
    add_layer_sets(store, "tiny-bert", TEXT, range(3))  # its last layer: `tiny-bert`
    return path


@pytest.mark.slow
@pytest.mark.parametrize("family", [*registered_families(), *VARIANTS])
def test_every_family_trains_on_layered_inputs_and_records_their_weights(
    family: str, store_path: Path, tmp_path: Path
) -> None:
    features, model = model_of(family)
    config = small_config(
        store_path, tmp_path, features=features, model=model, protocol="session5", epochs=2
    )
    record = train(config)
    inputs = {"tiny-hubert.L*": "tiny-hubert.L0-3", "tiny-bert.L*": "tiny-bert.L0-2",
              "tiny-hubert.L1-3.mean": "tiny-hubert.L1-3.mean"}  # fmt: skip
    names = [inputs[f] for f in features]
    assert list(record.layers) == names and list(record.fingerprints) == names
    if "tiny-bert.L0-2" in names:
        assert record.layers["tiny-bert.L0-2"] == Layered(
            sets=("tiny-bert.L0", "tiny-bert.L1", "tiny-bert"), layers=(0, 1, 2)
        )
    (fold,) = record.folds
    assert list(fold.layer_weights) == names
    for name in names:
        weights = fold.layer_weights[name]
        assert len(weights) == len(record.layers[name].layers)
        assert sum(weights) == pytest.approx(1.0) and min(weights) > 0
    assert train(config).folds == record.folds  # resumed: nothing trained again


def test_a_plain_run_records_no_layers(store_path: Path, tmp_path: Path) -> None:
    config = small_config(store_path, tmp_path, features=("tiny-hubert.L2",), protocol="session5")
    record = train(config)
    on_disk = record.to_json()
    assert "layers" not in on_disk and "layer_weights" not in on_disk["folds"][0]


@pytest.mark.slow
def test_the_weighted_sum_prefers_the_one_layer_that_carries_the_label(tmp_path: Path) -> None:
    store = labelled_store(tmp_path / "s.zarr", {})
    add_layer_sets(store, "enc", AUDIO, range(4), informative=2, signal=1.0)  # others: noise
    config = small_config(
        tmp_path / "s.zarr", tmp_path, features=("enc.L*",), epochs=40, val="none"
    )
    record = train(config)
    weights = np.array([fold.layer_weights["enc.L0-3"] for fold in record.folds])
    assert weights.shape == (5, 4)  # 5 folds x 4 layers
    assert (weights.argmax(axis=1) == 2).all()  # every fold's largest: the informative one
    assert weights[:, 2].mean() > 1.5 / 4  # well above the 1/L it started from
