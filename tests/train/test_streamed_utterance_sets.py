"""An utterance-level input (openSMILE's IS13 functionals, an encoder's pooled layer sets)
that does not fit `--memory-budget` streams as frames do: its rows are its vectors, read a
batch at a time through the chunk cache (never held whole), its training side planned
window by window, and its z-score fitted in a first pass over the training rows. Before,
it was refused ("its level cannot stream")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
from ser.cache import FeatureStore
from ser.models import ModelConfig
from ser.models.batch import InputSpec
from ser.train.batches import Batches
from ser.train.data import TrainData, fit_zscore, load_data
from ser.train.features import resolve_features
from ser.train.placement import place_inputs
from ser.train.recipe import train
from ser.train.views import resolve_views, view_copies, with_views
from tests.stores import labelled_store
from tests.train.conftest import SETS, small_config
from tests.train.test_memory_budget import loaded
from tests.train.test_streamed_layers import one_reader
from tests.train.test_streamed_views import add_view

#: Streams is13 (3.3 KiB) beside its batch and a cache of its chunks.
BUDGET = "3KB"


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer tests' sets in a store of tiny chunks (9 rows of is13)."""
    path = tmp_path_factory.mktemp("chunked") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        labelled_store(path, SETS, per_dialog=12)
    return path


def test_the_z_score_of_streamed_rows_is_the_one_of_rows_in_memory(chunked: Path) -> None:
    held, streamed = (loaded(chunked, budget, sets=("is13",)) for budget in (None, BUDGET))
    assert held.features["is13"].stream is None
    assert streamed.features["is13"].stream is not None
    train_side = np.arange(0, len(held), 2)
    a, b = fit_zscore(held, train_side)["is13"], fit_zscore(streamed, train_side)["is13"]
    torch.testing.assert_close(a.mean, b.mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a.std, b.std, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="its vectors are read by `rows`"):
        _ = streamed.features["is13"].vectors  # would hold every row


def test_an_mlp_on_a_streamed_utterance_set_trains_the_same_whatever_the_readers(
    chunked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = small_config(chunked, tmp_path, features=("is13",), memory_budget=BUDGET)
    config = replace(config, model=ModelConfig(fusion="none"), protocol="session5", seeds=2)
    two = train(replace(config, name="two"))
    assert two.config["streamed"] == ["is13"]
    assert two.execution is not None and "is13 3.3 KiB streamed" in two.execution.memory
    made = one_reader(monkeypatch)
    one = train(replace(config, name="one"))
    assert made
    losses = [f.curves.train_loss for f in two.folds]
    assert all(np.isfinite(x).all() for x in losses)
    assert [f.curves.train_loss for f in one.folds] == losses


def test_a_dialog_model_streams_its_utterance_sets(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The fusion study's model on IS13 and token means, IS13 (64-d here, the largest
    input) streamed: its dialogs' utterances are read by row, as an MLP's are."""
    path = tmp_path_factory.mktemp("wide") / "features.zarr"
    sets = {**SETS, "is13": ("is13", "audio", "utterance", 64, "float32")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        labelled_store(path, sets, per_dialog=12)
    model = ModelConfig(
        fusion="attention", fusion_at="middle", loss="perspective", d_model=8, heads=2
    )
    options = {"features": ("is13", "bert-tiny"), "model": model, "protocol": "session5"}
    run = small_config(path, tmp_path, memory_budget="14KB", epochs=2, batch_size=4, **options)
    record = train(run)
    assert record.config["streamed"] == ["is13"]
    assert all(np.isfinite(f.curves.train_loss).all() for f in record.folds)


def test_a_streamed_utterance_sets_views_gather_the_rows_held_ones_do(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`--views`: each utterance reads the view its seed draws, a row of the view's set
    read through its own stream, the same row a table in memory gathers."""
    path = tmp_path_factory.mktemp("viewed") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        store = labelled_store(path, SETS, per_dialog=12)
        clean = np.asarray(store.read("is13").data, dtype=np.float32)
        add_view(store, "is13", "noise20db", {i: clean[i : i + 1] + 1 for i in range(len(clean))})
    store = FeatureStore.open(path)
    features = resolve_features(store, ("is13",))
    views = resolve_views(store, features, "all")

    def viewed(budget: str | None) -> TrainData:
        copies = view_copies(store, features, views)
        placed = place_inputs(store, features, torch.device("cpu"), budget, 8, copies=copies)
        data = load_data(store, features, store.corpus.label_set("4"), "cpu", placement=placed)
        return with_views(data, store, views)

    held, streamed = viewed(None), viewed("5KB")
    assert streamed.placement is not None and streamed.placement.streamed == {"is13"}
    spec = InputSpec("is13", "audio", 7, "vector")
    sides = [
        Batches(d, np.arange(len(d)), [spec], "utterance", 8, shuffle=True, seed=3)
        for d in (held, streamed)
    ]
    zscore = fit_zscore(held, np.arange(len(held)))
    for side in sides:
        side.zscore = zscore
    plans = sides[1].plans()
    assert any(p.views is not None and p.views.any() for p in plans)  # some read the view
    for plan in plans:
        assert torch.equal(sides[0].build(plan).x["is13"], sides[1].build(plan).x["is13"])
