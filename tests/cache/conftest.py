"""Fixtures for the feature store tests: an awkward manifest and a path per backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.cache import Manifest
from tests.stores import example_columns

UTT_IDS = [
    f"Ses0{s}{g}_impro0{d}_{g}00{i}" for s in (1, 2) for d in (1, 2) for g in "FM" for i in (0, 1)
]


@pytest.fixture
def manifest() -> Manifest:
    """16 utterances; transcripts with non-ASCII, empty, whitespace and newlines."""
    columns = example_columns(UTT_IDS)
    columns["transcript"] = ["", "naïve café — 日本語", "  spaced  ", "line\nbreak", *["ok"] * 12]
    columns["transcript_raw"] = ["[LAUGHTER]", "naïve café — 日本語", "", "tab\tx", *["ok"] * 12]
    columns["wav"] = ["", *columns["wav"][1:]]
    columns["valence"] = [1.0 + i / 7 for i in range(len(UTT_IDS))]  # not exactly decimal
    return Manifest.from_columns(columns)


@pytest.fixture(params=[".zarr", ".h5"], ids=["zarr", "hdf5"])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / f"features{request.param}"
