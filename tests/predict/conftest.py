"""Small text-only runs on the predict tests' store: no audio model, so long recordings
are cheap to predict (their audio is still decoded, segment by segment)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import built_once

RATE = 16000


def noise_wav(path: Path, seconds: float, seed: int = 0) -> Path:
    wave = np.random.default_rng(seed).normal(0, 0.05, round(seconds * RATE))
    soundfile.write(path, wave.astype(np.float32), RATE)
    return path


def _train_attributes(store: Path, out: Path, target: str) -> Path:
    from ser.models import ModelConfig
    from ser.train.recipe import TrainConfig, train

    train(
        TrainConfig(
            store=str(store), features=("bert",), model=ModelConfig(fusion="none"),
            classes="4", protocol="session5", epochs=2, batch_size=8, seeds=1, device="cpu",
            out=str(out), name="attr", target=target, final=True,
        )
    )  # fmt: skip
    return out / "attr"


@pytest.fixture(scope="session")
def both_run(trained_run, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A run on the BERT set trained on the category and the three attributes."""
    target = "emotion+attributes"
    build = partial(_train_attributes, trained_run.store, target=target)
    return built_once(tmp_path_factory, "both", build)


@pytest.fixture(scope="session")
def attribute_run(trained_run, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A run on the BERT set trained on the three attributes alone (no classes)."""
    build = partial(_train_attributes, trained_run.store, target="attributes")
    return built_once(tmp_path_factory, "attributes", build)
