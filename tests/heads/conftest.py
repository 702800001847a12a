"""A synthetic MELD corpus (`ser demo-corpus --layout meld`: 61 utterances, their
`Sentiment` column) extracted to log-mel features once for the heads' end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from tests.conftest import built_once


class Manifest:
    """A manifest as heads read it: named columns."""

    def __init__(self, **columns: list[object]) -> None:
        self.columns = {k: np.asarray(v) for k, v in columns.items()}
        self.names = list(columns)

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]


def ser(*args: str | Path) -> tuple[int, str]:
    """`ser ARGS` through click, in this process: (exit code, what it printed)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="session")
def meld_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(tmp_path_factory, "heads", _meld_store)


def _logmel_store(root: Path, layout: str, corpus: str) -> tuple[Path, int, str]:
    """The synthetic `layout` corpus made in `root`/`corpus` and extracted to log-mel
    features beside it: (the store, `ser extract`'s exit code and what it said)."""
    code, shown = ser("demo-corpus", root / corpus, "--layout", layout)
    assert code == 0, shown
    store = root / f"{corpus}.zarr"
    code, shown = ser("extract", root / corpus, "--store", store, "--features", "logmel", "-q")
    return store, code, shown


def _meld_store(root: Path) -> Path:
    # The synthetic corpus leaves one utterance without audio, on purpose: it is named,
    # the exit code says so, and the store is complete without it.
    store, _, shown = _logmel_store(root, "meld", "meld")
    assert "no wav file for this utterance" in shown, shown
    assert "logmel80" in FeatureStore.open(store).feature_sets()
    return store


@pytest.fixture(scope="session")
def msp_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic MSP-Podcast corpus (70 utterances, each with its annotators' votes
    in `Labels/labels_detailed.csv`) extracted to log-mel features."""
    return built_once(tmp_path_factory, "heads-msp", _msp_store)


def _msp_store(root: Path) -> Path:
    store, code, shown = _logmel_store(root, "msp-podcast", "msp")
    assert code == 0, shown
    return store


@pytest.fixture(scope="session")
def mosei_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic CMU-MOSEI corpus (its sentiment scores and six emotion intensities
    as manifest columns) extracted to log-mel features."""
    return built_once(tmp_path_factory, "heads-mosei", _mosei_store)


def _mosei_store(root: Path) -> Path:
    store, code, shown = _logmel_store(root, "cmu-mosei", "mosei")
    assert code == 0, shown
    return store
