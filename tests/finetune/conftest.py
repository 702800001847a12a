"""A store holding every layer of the tiny HuBERT and the tiny BERT's last, extracted
from the synthetic corpus: what runs with fine-tuned inputs train on."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def layered_store(synthetic_corpus, tiny_models, tmp_path_factory) -> Path:
    from rich.console import Console

    from ser.extract.run import ExtractConfig, extract_features

    root, _ = synthetic_corpus
    store = tmp_path_factory.mktemp("finetune-store") / "f.zarr"
    config = ExtractConfig(
        features=("hubert", "bert"),
        options={
            "hubert": {"model": str(tiny_models.hubert), "layers": "all"},
            "bert": {"model": str(tiny_models.bert)},
        },
        classes="4",
        device="cpu",
        precision="fp32",
        progress=False,
    )
    extract_features(root, store, config, console=Console(quiet=True))
    return store
