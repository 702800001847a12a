"""A small labelled store and tiny-model options shared by the sweep tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.stores import labelled_store

SETS = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
# Tiny MSMSER on one held-out session: a cell trains in about a second.
TINY = {"epochs": "2", "batch-size": "8", "seeds": "1", "protocol": "session5",
        "d-model": "8", "heads": "2", "layers": "1", "lr": "0.01"}  # fmt: skip
PARAMS = {"audio": "hubert", "text": "bert"}


@pytest.fixture(scope="session")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    """The labelled store of `SETS`, shared by the session; read only."""
    return labelled_stores(SETS, per_dialog=6)


@pytest.fixture(scope="package")
def crema_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store recorded as CREMA-D's (speaker folds by default), the same set names."""
    from ser.corpus.registry import KINDS

    path = tmp_path_factory.mktemp("sweep_crema") / "crema.zarr"
    labelled_store(path, SETS, per_dialog=4, attrs=KINDS["crema-d"].attrs())
    return path
