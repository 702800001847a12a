"""Session-wide fixtures: one small synthetic corpus and one set of tiny models.

Building them once per test session keeps the suite fast; tests that need to change a
corpus copy it first (`corpus_copy`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# Two cores here and in CI: one intra-op thread per test process keeps timings stable
# and outputs reproducible.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic IEMOCAP root and its ground truth: (root, SynthTruth)."""
    from ser.synth import SynthConfig, write_corpus

    root = tmp_path_factory.mktemp("corpus") / "IEMOCAP_full_release"
    truth = write_corpus(root, SynthConfig(dialogs_per_session=1, seed=7))
    return root, truth


@pytest.fixture
def corpus_copy(synthetic_corpus, tmp_path: Path) -> Path:
    """A private copy of the synthetic corpus that a test may damage."""
    root, _ = synthetic_corpus
    dest = tmp_path / "IEMOCAP_full_release"
    shutil.copytree(root, dest)
    return dest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """Tiny random HuBERT / MPNet / BERT saved with save_pretrained (no downloads)."""
    from ser.synth import VOCABULARY
    from ser.tiny import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("models"), VOCABULARY, seed=0)
