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


def _meld_store(root: Path) -> Path:
    code, shown = ser("demo-corpus", root / "meld", "--layout", "meld")
    assert code == 0, shown
    # The synthetic corpus leaves one utterance without audio, on purpose: it is named,
    # the exit code says so, and the store is complete without it.
    code, shown = ser("extract", root / "meld", "--store", root / "m.zarr",
                      "--features", "logmel", "--quiet")  # fmt: skip
    assert "no wav file for this utterance" in shown, shown
    assert "logmel80" in FeatureStore.open(root / "m.zarr").feature_sets()
    return root / "m.zarr"


@pytest.fixture(scope="session")
def msp_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic MSP-Podcast corpus (70 utterances, each with its annotators' votes
    in `Labels/labels_detailed.csv`) extracted to log-mel features."""
    return built_once(tmp_path_factory, "heads-msp", _msp_store)


def _msp_store(root: Path) -> Path:
    code, shown = ser("demo-corpus", root / "msp", "--layout", "msp-podcast")
    assert code == 0, shown
    code, shown = ser("extract", root / "msp", "--store", root / "p.zarr",
                      "--features", "logmel", "--quiet")  # fmt: skip
    assert code == 0, shown
    return root / "p.zarr"


@pytest.fixture(scope="session")
def mosei_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic CMU-MOSEI corpus (its sentiment scores and six emotion intensities
    as manifest columns) extracted to log-mel features."""
    return built_once(tmp_path_factory, "heads-mosei", _mosei_store)


def _mosei_store(root: Path) -> Path:
    code, shown = ser("demo-corpus", root / "mosei", "--layout", "cmu-mosei")
    assert code == 0, shown
    code, shown = ser("extract", root / "mosei", "--store", root / "e.zarr",
                      "--features", "logmel", "--quiet")  # fmt: skip
    assert code == 0, shown
    return root / "e.zarr"
