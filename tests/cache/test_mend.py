"""Metadata written anew from the store's own copies, a receipt's where the data bears it
out, and a manifest only where it agrees with what is left of the stored one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore, Manifest
from ser.cache.backend import DamagedMetadata
from ser.cache.manifest import AUDIO_PRINT
from ser.errors import StoreError
from tests.stores import EXAMPLE_ATTRS, damage_chunk, example_columns, fill

IDS = [f"Ses01F_impro01_F{i:03d}" for i in range(8)]


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    fs = FeatureStore.create(tmp_path / "f.zarr", Manifest.from_columns(example_columns(IDS)))
    fill(fs, "hubert.L3", failures={})
    return fs


def lose_attrs(fs: FeatureStore, copy_too: bool) -> dict:
    """Empty the set's zarr.json (and the copy its data keeps: a store written before)."""
    attrs = fs.info("hubert.L3").attrs
    if copy_too:
        fs._backend.set_array_attrs("hubert.L3", "data", {})
    (fs.path / "hubert.L3" / "zarr.json").write_text("")
    return attrs


def test_a_sets_attributes_come_back_from_its_copy(store: FeatureStore) -> None:
    attrs = lose_attrs(store, copy_too=False)
    with pytest.raises(DamagedMetadata):
        store.info("hubert.L3")
    assert store.recorded_attrs("hubert.L3") == attrs
    done, left = FeatureStore.open(store.path, "a").mend()
    assert done == ["hubert.L3: its attributes, from its copy"] and left == []
    assert FeatureStore.open(store.path).info("hubert.L3").attrs == attrs


def test_a_receipts_copy_counts_only_where_the_data_bears_it_out(store: FeatureStore) -> None:
    attrs = lose_attrs(store, copy_too=True)
    opened = FeatureStore.open(store.path, "a")
    other = {**attrs, "data_sha256": "0" * 64}  # of a set of that name extracted before
    done, left = opened.mend({"hubert.L3": other})
    assert done == [] and left[0].startswith("hubert.L3: no copy of its attributes")
    done, left = opened.mend({"hubert.L3": attrs})
    assert done == ["hubert.L3: its attributes, from the store's receipt"] and left == []
    assert opened.verify() == []


def test_an_unfinished_set_whose_metadata_is_lost_is_begun_again(store: FeatureStore) -> None:
    """Nothing complete to lose: its shards of the same settings are kept."""
    attrs = {**EXAMPLE_ATTRS, "extractor": "logmel"}
    store.begin_feature_set("logmel80", attrs)
    store.shard_writer("logmel80").write(0, {0: np.ones((2, 6))})
    store.begin_feature_set("other", attrs | {"layer": 9})
    store.shard_writer("other").write(0, {0: np.ones((2, 6))})
    for name in ("logmel80", "other"):
        (store.path / name / "zarr.json").write_text("")
    store.begin_feature_set("logmel80", attrs)
    assert store.done_shards("logmel80") == {0}
    store.begin_feature_set("other", attrs)  # other settings now: its shard goes
    assert store.done_shards("other") == set()
    (store.path / "hubert.L3" / "zarr.json").write_text("")  # complete: refused, not lost
    with pytest.raises(DamagedMetadata):
        store.begin_feature_set("hubert.L3", EXAMPLE_ATTRS)


def test_a_manifest_is_rebuilt_only_from_one_that_agrees(store: FeatureStore) -> None:
    columns = example_columns(IDS)
    right = Manifest.from_columns(columns)
    relabelled = Manifest.from_columns({**columns, "label": ["ang"] * len(IDS)})
    damage_chunk(store, "manifest/utt_id")
    opened = FeatureStore.open(store.path, "a")
    assert opened.manifest_damage is not None
    with pytest.raises(StoreError, match="its digest differs from the one recorded"):
        opened.rebuild_manifest([relabelled])
    assert opened.rebuild_manifest([relabelled, right])
    assert FeatureStore.open(store.path).manifest == right
    assert not opened.rebuild_manifest([right])  # not damaged now: nothing to do


@pytest.mark.slow
@pytest.mark.parametrize("made", ["added", "created with"])
def test_a_rebuilt_manifest_keeps_the_audio_prints_still_readable(
    store: FeatureStore, tmp_path: Path, made: str
) -> None:
    """The corpus gives no prints: those the damaged manifest still holds whole are kept,
    whether extraction added them or the store was made holding them (the digest
    recorded with it is over the corpus's columns alone)."""
    prints = [f"{i:032x}" for i in range(len(IDS))]
    if made == "added":
        store.add_derived_column(AUDIO_PRINT, prints)
    else:
        columns = {**example_columns(IDS), AUDIO_PRINT: prints}
        store = FeatureStore.create(tmp_path / "made.zarr", Manifest.from_columns(columns))
    damage_chunk(store, "manifest/label")
    opened = FeatureStore.open(store.path, "a")
    assert opened.rebuild_manifest([Manifest.from_columns(example_columns(IDS))])
    rebuilt = FeatureStore.open(store.path).manifest
    assert rebuilt.column(AUDIO_PRINT).tolist() == prints
    assert rebuilt.column("label").tolist() == example_columns(IDS)["label"]
