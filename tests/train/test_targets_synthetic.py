"""Attribute targets and soft labels on the synthetic IEMOCAP corpus, end to end: its
ratings follow each utterance's audio and its evaluators' votes split, so a run on
log-mel learns the attributes on held-out sessions and soft labels change what the
categorical head learns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from ser.cache import FeatureStore
from ser.corpus.votes import soft_targets
from ser.extract.run import ExtractConfig, extract_features
from ser.models import ModelConfig
from ser.runs.predictions import read_predictions
from ser.synth.corpus import SynthConfig, write_corpus
from ser.train.recipe import Progress, TrainConfig, train


@pytest.fixture(scope="module")
def logmel_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's corpus (`ser demo-corpus`'s defaults) with log-mel extracted."""
    tmp = tmp_path_factory.mktemp("targets")
    root, store = tmp / "IEMOCAP_full_release", tmp / "f.zarr"
    write_corpus(root, SynthConfig(seed=0))
    config = ExtractConfig(features=("logmel",), classes="4", device="cpu", progress=False)
    extract_features(root, store, config, console=Console(quiet=True))
    return store


def config(store: Path, out: Path, **changes: Any) -> TrainConfig:
    return TrainConfig(store=str(store), features=("logmel80",), model=ModelConfig(fusion="none"),
                       classes="4", protocol="session5", epochs=30, batch_size=16, lr=1e-3,
                       seeds=2, device="cpu", out=str(out), **changes)  # fmt: skip


@pytest.mark.slow
def test_attribute_heads_learn_on_held_out_sessions(logmel_store: Path, tmp_path: Path) -> None:
    record = train(config(logmel_store, tmp_path, target="attributes"), Progress())
    assert record.summary is not None
    assert record.summary["ccc_mean"] > 0.2  # a constant prediction scores 0
    assert record.summary["ccc_arousal"] > 0.3


@pytest.mark.slow
def test_soft_labels_from_the_evaluators_votes(logmel_store: Path, tmp_path: Path) -> None:
    hard = train(config(logmel_store, tmp_path / "hard"), Progress())
    soft = train(config(logmel_store, tmp_path / "soft", labels="soft"), Progress())
    assert soft.data.votes_fallback < soft.data.utterances // 2
    store = FeatureStore.open(logmel_store)
    matched = []
    for side, run in (("hard", hard), ("soft", soft)):
        table = read_predictions(tmp_path / side / run.name / "predictions.csv")
        votes, _ = soft_targets(store, list(table.utt_id), store.corpus.label_set("4"))
        matched.append(float(-(votes * np.log(table.probs + 1e-9)).sum(axis=1).mean()))
    # Trained on the votes, the head's probabilities match the test side's votes better.
    assert matched[1] < matched[0]
