"""Small text-only runs on the predict tests' store: no audio model, so long recordings
are cheap to predict (their audio is still decoded, segment by segment)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

RATE = 16000


def _train_text(store: Path, out: Path, name: str, context: bool) -> Path:
    from ser.models import ModelConfig
    from ser.train.run import TrainConfig, train

    model = ModelConfig(fusion="none", context=True, d_model=8, heads=2) if context else None
    train(
        TrainConfig(
            store=str(store), features=("bert",), model=model or ModelConfig(fusion="none"),
            classes="4", protocol="session5", epochs=1, batch_size=8, seeds=1, device="cpu",
            out=str(out), name=name,
        )
    )  # fmt: skip
    return out / name


@pytest.fixture(scope="session")
def text_run(trained_run, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """An utterance-level run on the BERT set alone."""
    return _train_text(trained_run.store, tmp_path_factory.mktemp("text"), "text", False)


@pytest.fixture(scope="session")
def text_dialog_run(trained_run, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A dialog-context run (unit "dialog") on the BERT set alone."""
    return _train_text(trained_run.store, tmp_path_factory.mktemp("ctx"), "ctx", True)


def noise_wav(path: Path, seconds: float, seed: int = 0) -> Path:
    wave = np.random.default_rng(seed).normal(0, 0.05, round(seconds * RATE))
    soundfile.write(path, wave.astype(np.float32), RATE)
    return path


def _train_attributes(store: Path, out: Path, target: str) -> Path:
    from ser.models import ModelConfig
    from ser.train.run import TrainConfig, train

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
    out = tmp_path_factory.mktemp("both")
    return _train_attributes(trained_run.store, out, "emotion+attributes")


@pytest.fixture(scope="session")
def attribute_run(trained_run, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A run on the BERT set trained on the three attributes alone (no classes)."""
    out = tmp_path_factory.mktemp("attributes")
    return _train_attributes(trained_run.store, out, "attributes")
