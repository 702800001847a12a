"""Feature sets are found by their stored attrs (kind, model, layer, transcripts), never
by parsing their names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ser.errors import ConfigError, StoreError
from ser.train.features import resolve_features


@dataclass
class Info:
    name: str
    attrs: dict[str, Any]
    modality: str = "audio"
    level: str = "frame"
    dim: int = 4
    fingerprint: str = "f"
    complete: bool = True


class Store:
    path = Path("f.zarr")

    def __init__(self, sets: dict[str, dict[str, Any]]) -> None:
        self.sets = {name: Info(name, attrs) for name, attrs in sets.items()}

    def feature_sets(self) -> list[str]:
        return list(self.sets)

    def info(self, name: str) -> Info:
        return self.sets[name]


HUBERT = {"extractor": "hubert", "model": "facebook/hubert-base-ls960", "layer": 12}
MPNET = {"extractor": "mpnet", "model": "microsoft/mpnet-base"}
ASR = {**MPNET, "text_source": "asr", "transcripts": "asr-whisper-small"}


def _names(store: Store, *requests: str) -> list[str]:
    return [f.name for f in resolve_features(store, requests)]


def test_kind_model_and_exact_name_find_the_sets_stored_before() -> None:
    store = Store(
        {
            "hubert-base-ls960.L12": HUBERT,
            "mpnet-base": MPNET,
            "mpnet-base@asr-whisper-small": ASR,
            "is13": {"extractor": "is13"},
        }
    )
    assert _names(store, "hubert", "mpnet", "is13") == [
        "hubert-base-ls960.L12",
        "mpnet-base",
        "is13",
    ]
    assert _names(store, "hubert-base-ls960") == ["hubert-base-ls960.L12"]  # its one layer
    assert _names(store, "mpnet-base") == ["mpnet-base"]  # the gold set
    assert _names(store, "mpnet-base@asr-whisper-small") == ["mpnet-base@asr-whisper-small"]
    store.sets["hubert-base-ls960.L9"] = Info("hubert-base-ls960.L9", {**HUBERT, "layer": 9})
    with pytest.raises(ConfigError, match=r"matches 2 feature sets"):
        _names(store, "hubert-base-ls960")
    assert _names(store, "hubert-base-ls960.L9") == ["hubert-base-ls960.L9"]


def test_a_stem_is_what_the_kind_names_the_set_after_not_a_cut_of_the_name() -> None:
    renamed = {**HUBERT, "model": "/models/tiny-hubert", "layer": 2}
    store = Store({"ours.L2": renamed, "my.Lab": {"extractor": "bert", "model": "bert-base"}})
    assert _names(store, "ours") == ["ours.L2"]  # --name ours: the kind names it ours.L2
    with pytest.raises(StoreError, match="'my' is not in the store"):
        _names(store, "my")  # a bert set: ".Lab" is part of its name, not a layer


@pytest.mark.parametrize("module", ["features", "options", "batching", "ensemble"])
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"ser.train.{module}"))
    assert result.attempted > 0 and result.failed == 0
