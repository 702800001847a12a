"""`ser predict` through the encoder kinds' new sets: a run trained on a pooled layer set
and one on Whisper-encoder frames re-create their features for new wavs (their provenance:
layer, pool, Whisper windows) and reproduce the runs' own test predictions; sets of one
encoder that differ in layer or pool are made by one extractor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from ser.cache import FeatureStore
from ser.extract.registry import build_extractor
from ser.extract.run import ExtractConfig, extract_features
from ser.predict.features import extractors_for
from ser.predict.run import PredictConfig, predict
from ser.synth.corpus import SynthConfig, write_corpus
from ser.synth.tiny import save_tiny_whisper

CPU = torch.device("cpu")
POOLED, WHISPER = "tiny-hubert.L1.mean", "tiny-whisper-p.L1"


@pytest.fixture(scope="module")
def store(tiny_models: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("layer-sets")
    root = work / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(dialogs_per_session=1, utterances_per_dialog=(8, 10), seed=5))
    whisper = save_tiny_whisper(work / "tiny-whisper-p", encoder_layers=2)
    config = ExtractConfig(
        features=("hubert", "speech"),
        options={
            "hubert": {"model": str(tiny_models.hubert), "layers": "1", "pool": "mean",
                       "pooled_only": True},
            "speech": {"model": str(whisper), "layers": "1"},
        },
        classes="4", device="cpu", precision="fp32", progress=False,
    )  # fmt: skip
    extract_features(root, work / "f.zarr", config, console=Console(quiet=True))
    return root, work / "f.zarr"


def _trained(store: Path, feature: str, out: Path) -> Path:
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    train(
        TrainConfig(
            store=str(store), features=(feature,), model=ModelConfig(fusion="none"),
            classes="4", protocol="session5", epochs=2, batch_size=4, seeds=1, device="cpu",
            out=str(out), name="run",
        )
    )  # fmt: skip
    return out / "run"


@pytest.mark.slow
@pytest.mark.parametrize("feature", [POOLED, WHISPER])
def test_a_run_on_the_set_predicts_new_wavs_as_it_tested(
    store: tuple[Path, Path], feature: str, tmp_path: Path
) -> None:
    from ser.train.checkpoint import load_checkpoint

    root, path = store
    run = _trained(path, feature, tmp_path / "runs")
    meta = load_checkpoint(run, "seed0_session5").meta
    assert meta["features"][feature]["attrs"]["layer"] == 1
    wavs = FeatureStore.open(path).manifest.column("wav").astype(str)
    paths = tuple(str(root / wavs[row]) for row in meta["test"]["rows"])
    result = predict(PredictConfig(str(run), paths, device="cpu"))
    assert all(p.error is None for p in result.predictions)
    got = [result.classes.index(p.label) for p in result.predictions]
    assert got == list(meta["test"]["pred"])


def test_one_extractor_makes_every_layer_and_pool_of_an_encoder(tiny_models: Any) -> None:
    made = build_extractor(
        "hubert", model=str(tiny_models.hubert), layers="0,2", pool="mean", precision="fp32"
    )
    features = {s.name: {"fingerprint": "f", "attrs": s.attrs} for s in made.specs()}
    (recreated,) = extractors_for(features, CPU)
    assert sorted(recreated.names) == sorted(features)
    assert recreated.extractor.options.layers == "0,2"  # type: ignore[attr-defined]
    assert recreated.extractor.options.pool == "mean"  # type: ignore[attr-defined]
    wave = np.sin(np.arange(9000, dtype=np.float32) / 5.0)
    made.load(CPU)
    expected = made.extract([wave])[0]
    got = recreated.extractor.extract([wave])[0]
    assert all(np.array_equal(got[name], expected[name]) for name in features)


def test_a_sentence_transformers_package_stands_in_by_its_model(tmp_path: Path) -> None:
    from ser.predict.encoders import _model_type
    from ser.synth.tiny import save_tiny_sentence_transformer

    package = save_tiny_sentence_transformer(tmp_path / "pkg", ["hello"], subfolder="0_Transformer")
    assert _model_type(package) == "mpnet"  # its config.json is in 0_Transformer/
