"""The labelled store and the small run config shared by the trainer tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ser.models import ModelConfig
from ser.train.recipe import TrainConfig

# name -> (extractor, modality, level, dim, dtype)
SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
#: MSMSER at the tests' width, in `ser train`'s words (`train_config`): the default, the
#: paper's (768 wide, 8 heads, 2 + 2 layers), trains 49 M parameters on these 6-d rows,
#: seconds a step on an AVX2 CPU for a test that only compares two runs' numbers.
NARROW = {"d_model": "8", "heads": "2", "queries": "2", "layers": "1", "decoder_layers": "1"}


@pytest.fixture(scope="session")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    """The labelled store of `SETS`, shared by the session; read only."""
    return labelled_stores(SETS)


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
