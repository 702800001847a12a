"""The labelled store and the small run config shared by the trainer tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ser.models import ModelConfig
from ser.train.run import TrainConfig
from tests.stores import labelled_store

# name -> (extractor, modality, level, dim, dtype)
SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "features.zarr"
    labelled_store(path, SETS)
    return path


def small_config(store: Path, out: Path, **changes: Any) -> TrainConfig:
    """A unimodal MLP on is13, leave-one-session-out, a few CPU epochs."""
    base = TrainConfig(
        store=str(store),
        features=("is13",),
        model=ModelConfig(fusion="none"),
        classes="4",
        protocol="loso",
        epochs=4,
        batch_size=8,
        lr=1e-2,
        seeds=1,
        device="cpu",
        out=str(out),
    )
    return replace(base, **changes)
