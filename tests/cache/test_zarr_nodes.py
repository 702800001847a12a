"""Each node of a Zarr store read by itself, its metadata checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.cache import FeatureStore, Manifest
from ser.cache.backend import DamagedMetadata
from ser.cache.zarr_nodes import damaged_metadata, metadata
from tests.stores import example_columns, fill

IDS = [f"Ses01F_impro01_F{i:03d}" for i in range(8)]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    fs = FeatureStore.create(tmp_path / "f.zarr", Manifest.from_columns(example_columns(IDS)))
    fill(fs, "hubert.L3", failures={})
    return fs.path


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty (0 bytes)"),
        ('{"zarr_format": 3, "node_', "is not JSON ("),
        ('{"zarr_format": 2}', "is JSON but no Zarr v3 group's or array's metadata"),
    ],
)
def test_unreadable_metadata_names_its_part_and_file(store: Path, text: str, reason: str) -> None:
    (store / "hubert.L3" / "zarr.json").write_text(text)
    with pytest.raises(DamagedMetadata) as error:
        metadata(store, "hubert.L3")
    assert (error.value.part, error.value.file) == ("hubert.L3", store / "hubert.L3" / "zarr.json")
    assert error.value.reason.startswith(reason)
    assert f"feature set 'hubert.L3' is damaged: {error.value.file} {reason}" in str(error.value)


def test_every_damaged_piece_of_metadata_is_found(store: Path) -> None:
    assert damaged_metadata(store) == []
    for node in ("", "manifest/label", "hubert.L3/data"):
        (store / node / "zarr.json").write_text("")
    (store / "hubert.L3" / "offsets" / "zarr.json").unlink()  # its chunks are still there
    found = [(d.part, d.node, d.reason) for d in damaged_metadata(store)]
    assert found == [
        ("", "", "is empty (0 bytes)"),
        ("hubert.L3", "hubert.L3/data", "is empty (0 bytes)"),
        ("hubert.L3", "hubert.L3/offsets", "is missing"),
        ("manifest", "manifest/label", "is empty (0 bytes)"),
    ]
