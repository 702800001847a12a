"""Streaming's own faults (`ser train --memory-budget`, `ser store rechunk`): a set the
store wrote as one chunk, a refusal's figures and advice, chunks too small to read fast, a
run resumed after its store was rechunked, and the store gone while a run streams."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
from ser.cache import FeatureStore, Manifest
from ser.cache.importer import ImportConfig, import_npz
from ser.cache.store import BLOCK_ROWS
from ser.errors import ConfigError, StoreError
from ser.models import ModelConfig
from ser.runs.record import RECORD, read
from ser.synth.manifest import example_columns
from ser.train import recipe
from ser.train.features import resolve_features
from ser.train.placement import place_inputs
from ser.train.recipe import train
from tests.refused import ser
from tests.stores import labelled_store
from tests.train.conftest import SETS, small_config

#: Below is13's 3.3 KiB, above its batch: is13 streams, or is refused.
BUDGET = "3KB"


def built(path: Path, chunk: int, least: int) -> Path:
    """The trainer tests' sets at `path`, written with chunks of at most `chunk` bytes
    and at least `least` (`CHUNK_BYTES`, `MIN_CHUNK_BYTES`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", chunk)
        patch.setattr(store_module, "MIN_CHUNK_BYTES", least)
        labelled_store(path, SETS, per_dialog=12)
    return path


def written_before(path: Path) -> None:
    """The store as ser wrote it before a set recorded its plan's blocks."""
    store = FeatureStore.open(path, mode="a")
    for name in store.feature_sets():
        attrs = store.info(name).attrs
        store._backend.set_group_attrs(name, {k: v for k, v in attrs.items() if k != BLOCK_ROWS})


def placed(path: Path, budget: str) -> set[str]:
    store = FeatureStore.open(path)
    features = resolve_features(store, ("is13",))
    return place_inputs(store, features, torch.device("cpu"), budget, 8).streamed


def test_a_set_is_written_in_chunks_it_can_stream_with(tmp_path: Path) -> None:
    """A set smaller than `CHUNK_BYTES` (IS13's 10 MiB against 16 MiB) was written as one
    chunk, which a streamed run could only cache whole: now in `STREAM_CHUNKS` chunks
    (down to `MIN_CHUNK_BYTES`), and it streams under a budget below its size."""
    path = built(tmp_path / "features.zarr", chunk=16 * 2**20, least=64)
    store = FeatureStore.open(path)
    rows = store.info("is13").rows
    assert store.chunk_rows("is13") < rows // 32
    assert placed(path, BUDGET) == {"is13"}


def test_an_imported_set_is_written_in_chunks_it_can_stream_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ser store import` chooses its chunks as extraction does, and records them as the
    blocks a streamed run plans by."""
    monkeypatch.setattr(store_module, "MIN_CHUNK_BYTES", 64)
    ids = [f"Ses01F_impro01_F{i:03d}" for i in range(200)]
    store = FeatureStore.create(tmp_path / "f.zarr", Manifest.from_columns(example_columns(ids)))
    rows = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    np.savez(tmp_path / "emb.npz", **dict(zip(ids, rows, strict=True)))
    import_npz(store, tmp_path / "emb.npz", ImportConfig("emb", "audio", "utterance"))
    store = FeatureStore.open(tmp_path / "f.zarr")
    assert 1 < store.chunk_rows("emb") < 200 // 32
    assert store.info("emb").attrs[BLOCK_ROWS] == store.chunk_rows("emb")


def test_a_one_chunk_set_is_refused_with_what_it_needs_and_the_rechunk_that_helps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before (is13 in one chunk): the refusal counts the one chunk its
    cache needs, not nine of them (90.4 MiB for a 10 MiB set), and names the
    `ser store rechunk` after which the same budget streams it."""
    path = built(tmp_path / "features.zarr", chunk=2**20, least=2**20)
    written_before(path)
    assert FeatureStore.open(path).chunk_rows("is13") == FeatureStore.open(path).info("is13").rows
    monkeypatch.setattr(store_module, "MIN_CHUNK_BYTES", 256)
    with pytest.raises(ConfigError) as refused:
        placed(path, BUDGET)
    said = str(refused.value)
    assert "chunk caches at least is13 3.3 KiB" in said
    command = f"ser store rechunk {path} is13 --chunk-size 256B"
    assert said.endswith(
        f"; or write is13 in smaller chunks, of which its cache holds fewer bytes: {command}"
    )
    done = ser(*command.split()[1:])
    assert done.exit_code == 0, done.output
    assert placed(path, BUDGET) == {"is13"}


def test_rechunk_warns_of_chunks_too_small_to_read_fast(tmp_path: Path) -> None:
    """2 KiB chunks made 8,675 chunk files of 16 MB, a streamed step 3-9 s against 0.7 s,
    without a word."""
    path = built(tmp_path / "features.zarr", chunk=2**20, least=2**20)
    done = ser("store", "rechunk", path, "is13", "--chunk-size", "64B")
    assert done.exit_code == 0, done.output
    assert "note: is13: 60 chunks of 56 B are too small to read fast" in done.stderr
    assert "--chunk-size 256.0KiB" in done.stderr
    done = ser("store", "rechunk", path, "is13", "--chunk-size", "1MiB")
    assert done.exit_code == 0 and "note:" not in done.stderr


def test_a_run_resumed_after_a_rechunk_trains_as_the_run_never_stopped(
    tmp_path: Path,
) -> None:
    """A streamed run killed after its first seed, its store rechunked, then resumed: the
    second seed trains on the batches the uninterrupted run's did (they were planned by
    the store's chunks, which the record does not keep: losses 1.39302 against 1.39453)."""
    path = built(tmp_path / "features.zarr", chunk=256, least=256)
    config = small_config(path, tmp_path, memory_budget=BUDGET, seeds=2, epochs=2)
    config = replace(config, model=ModelConfig(fusion="none"), protocol="session5")
    whole = train(replace(config, name="whole"))
    assert whole.config["streamed"] == ["is13"]
    stopped = train(replace(config, name="stopped"))
    run = tmp_path / "stopped"
    for checkpoint in (run / "checkpoints").glob("seed1_*"):  # as if killed in seed 1
        checkpoint.unlink()
    done = ser("store", "rechunk", path, "is13", "--chunk-size", "100B")
    assert done.exit_code == 0, done.output
    resumed = train(replace(config, name="stopped"))
    losses = {(f.seed, f.fold): f.curves.train_loss for f in whole.folds}
    assert {(f.seed, f.fold): f.curves.train_loss for f in resumed.folds} == losses
    assert stopped.folds[0].curves.train_loss == whole.folds[0].curves.train_loss
    assert read(run / RECORD).config["streamed"] == ["is13"]


def test_a_store_deleted_while_a_run_streams_is_named_with_what_the_run_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store deleted after the first seed: one line naming the store as gone (it
    said "no group 'logmel80'", as if one set were missing), the seed trained before kept
    and said so, and the same command, the store back, trains only the other."""
    path = built(tmp_path / "features.zarr", chunk=256, least=256)
    shutil.copytree(path, tmp_path / "copy.zarr")
    config = small_config(path, tmp_path, memory_budget=BUDGET, seeds=2, epochs=2)
    config = replace(config, protocol="session5", members_at_once=1, processes=1, name="cut")
    recorded = recipe.record_group

    def then_deleted(*args: object, **kwargs: object) -> None:
        recorded(*args, **kwargs)  # type: ignore[arg-type]
        shutil.rmtree(path, ignore_errors=True)

    monkeypatch.setattr(recipe, "record_group", then_deleted)
    with pytest.raises(StoreError) as stopped:
        train(config)
    said = str(stopped.value)
    assert said.startswith(f"{path}: the store was deleted or moved while the run read is13; ")
    run = tmp_path / config.name
    assert f"1 of 2 (seed, fold) runs kept in {run}: once the store is whole again" in said
    assert "\n" not in said
    monkeypatch.setattr(recipe, "record_group", recorded)
    shutil.copytree(tmp_path / "copy.zarr", path)
    resumed = train(config)
    assert sorted(f.seed for f in resumed.folds) == [0, 1]
