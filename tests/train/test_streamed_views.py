"""`--views` under a `--memory-budget` the clean set does not fit: each view set streams
beside it (`FeatureTable.parts`), its cache counted in the budget
(`ser.train.placement`), the views drawn as in memory (`ser.train.views`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.models.batch import InputSpec
from ser.train.batches import Batches, StackedSides
from ser.train.data import TrainData, load_data
from ser.train.features import resolve_features
from ser.train.option_table import train_config
from ser.train.placement import place_inputs
from ser.train.recipe import train
from ser.train.stream import RowStream
from ser.train.views import resolve_views, view_copies, with_views
from tests.stores import labelled_store
from tests.train.conftest import NARROW, SETS, small_config

FRAMES = "hubert-tiny.L2"
VIEWS = {"speed0.9": "speed=0.9", "noise20db": "noise=20"}
#: Holds the largest batch and the chunk caches of the frames and their two views, not
#: their rows: the frames stream.
STREAMS = "12KB"
#: As much for the frames beside the tokens' batch and rows, held.
SEQ_STREAMS = "16KB"


def add_view(store: FeatureStore, clean: str, label: str, rows: dict[int, np.ndarray]) -> None:
    attrs = {
        k: v for k, v in store.info(clean).attrs.items() if k not in ("fingerprint", "complete")
    }
    view = f"{clean}.{label}"
    store.begin_feature_set(view, attrs | {"view_of": clean, "view": VIEWS[label]})
    store.shard_writer(view).write(0, rows, {})
    store.consolidate(view, 1)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer tests' sets in a store of tiny chunks, with a slower speed view of the
    frames (more rows; utterance 0 failed in it: no rows) and a noise view."""
    path = tmp_path_factory.mktemp("chunked") / "features.zarr"
    rng = np.random.default_rng(5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        store = labelled_store(path, SETS, per_dialog=12)
        read = store.read(FRAMES)
        offsets, data = np.asarray(read.offsets), np.asarray(read.data, dtype=np.float32)
        clean = {i: data[offsets[i] : offsets[i + 1]] for i in range(len(store.manifest))}
        slower = {i: np.concatenate([r, r[: len(r) // 4 + 1]]) for i, r in clean.items()}
        slower[0] = np.zeros((0, data.shape[1]), dtype=np.float32)
        add_view(store, FRAMES, "speed0.9", slower)
        add_view(
            store, FRAMES, "noise20db", {i: r + rng.normal(0, 1, r.shape) for i, r in clean.items()}
        )
    return path


def loaded(path: Path, budget: str | None, readers: int | None = None) -> TrainData:
    store = FeatureStore.open(path)
    features = resolve_features(store, (FRAMES,))
    views = resolve_views(store, features, "all")
    copies = view_copies(store, features, views)
    placed = place_inputs(store, features, torch.device("cpu"), budget, 8, copies=copies)
    data = load_data(store, features, store.corpus.label_set("4"), "cpu", placement=placed)
    return with_views(data, store, views)


def test_the_views_of_a_streamed_input_stream_beside_it_as_held(chunked: Path) -> None:
    held, streamed = loaded(chunked, None), loaded(chunked, STREAMS)
    assert streamed.placement is not None and streamed.placement.streamed == {FRAMES}
    a, b = held.features[FRAMES], streamed.features[FRAMES]
    assert b.stream is not None and len(b.streams) == 3
    assert b.flat.shape[0] == 0 and b.views is not None and a.views is not None
    # the views' rows are counted and cached: each stream a share of the input's cache
    assert streamed.placement.needs[FRAMES] > 2 * a.lengths_np.sum() * 6 * 2
    caches = [part.capacity for part in b.streams]
    assert min(caches) >= 9
    # each (view, utterance) where the table in memory has it, and the same rows there
    assert torch.equal(a.views.starts, b.views.starts)
    assert torch.equal(a.views.lengths, b.views.lengths)
    index = torch.arange(a.flat.shape[0]).flip(0).view(1, -1)
    assert torch.equal(a.rows(index), b.rows(index))
    assert torch.equal(a.view_vectors, b.view_vectors)
    # the utterance that failed in the speed view (the second drawn) reads clean there
    (failed,) = np.flatnonzero(streamed.manifest_rows == 0)
    assert int(b.views.slots[2, failed]) == failed != int(b.views.slots[1, failed])


def test_a_streamed_side_draws_the_views_it_draws_in_memory(chunked: Path) -> None:
    """Windows group other utterances into batches; each utterance still reads the view
    the seed draws for it, and a plan gathers the same rows from either table."""
    held, streamed = loaded(chunked, None), loaded(chunked, STREAMS)
    spec = InputSpec(FRAMES, "audio", 6, "sequence")
    sides = [
        Batches(d, np.arange(len(d)), [spec], "utterance", 8, shuffle=True, seed=3)
        for d in (held, streamed)
    ]
    drawn = []
    for side in sides:
        plans = side.plans()
        positions = np.concatenate([p.positions for p in plans])
        views = np.concatenate([p.views for p in plans if p.views is not None])
        drawn.append(views[np.argsort(positions)])
    assert np.array_equal(drawn[0], drawn[1]) and set(drawn[0].tolist()) == {0, 1, 2}
    plan = sides[1].plans()[0]
    assert torch.equal(sides[0].build(plan).x[FRAMES], sides[1].build(plan).x[FRAMES])
    list(StackedSides([sides[1]]).epoch())
    assert all(part.reads for part in streamed.features[FRAMES].streams)


def options(out: Path, chunked: Path, **more: str) -> dict[str, str]:
    """A sequence model on the frames and tokens, views of the frames drawn."""
    said = {"store": str(chunked), "features": f"{FRAMES}+bert-tiny", "classes": "4"}
    said |= {"protocol": "session5", "epochs": "2", "batch_size": "8", "seeds": "1"}
    return said | {"device": "cpu", "out": str(out), "views": "all"} | NARROW | more


def readers(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Every stream of the run read by `count` threads."""
    made = RowStream.__init__

    def init(self: RowStream, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **{**kwargs, "readers": count})

    monkeypatch.setattr(RowStream, "__init__", init)


def test_a_run_with_views_streamed_trains_the_same_whatever_the_reader_threads(
    chunked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = []
    for count in (1, 2):
        readers(monkeypatch, count)
        records.append(
            train(train_config(options(tmp_path / str(count), chunked, memory_budget=SEQ_STREAMS)))
        )
    one, two = records
    assert one.config["streamed"] == [FRAMES] and one.config["views"] == "all"
    assert one.execution is not None and f"{FRAMES} " in str(one.execution.memory)
    losses = [f.curves.train_loss for f in one.folds]
    assert losses == [f.curves.train_loss for f in two.folds]
    assert all(np.isfinite(np.asarray(loss, dtype=float)).all() for loss in losses)
    assert (tmp_path / "1" / one.name / "predictions.csv").read_bytes() == (
        tmp_path / "2" / two.name / "predictions.csv"
    ).read_bytes()


def test_a_budget_that_holds_the_views_trains_as_without_one(chunked: Path, tmp_path: Path) -> None:
    held, budgeted = (
        train(train_config(options(tmp_path / name, chunked, **budget)))
        for name, budget in (("held", {}), ("budgeted", {"memory_budget": "1GiB"}))
    )
    assert budgeted.config["streamed"] is None and budgeted.config["views"] == "all"
    assert [f.curves.train_loss for f in held.folds] == [
        f.curves.train_loss for f in budgeted.folds
    ]
    assert (tmp_path / "held" / held.name / "predictions.csv").read_bytes() == (
        tmp_path / "budgeted" / budgeted.name / "predictions.csv"
    ).read_bytes()


def test_an_mlp_on_streamed_views_trains_as_in_memory(chunked: Path, tmp_path: Path) -> None:
    """An MLP reads each view's means, summed from the stream as from memory."""
    config = small_config(chunked, tmp_path, features=(FRAMES,), views="all", epochs=2)
    records = [
        train(replace(config, memory_budget=budget, name=name))
        for budget, name in ((None, "held"), ("16KB", "streamed"))  # and the means
    ]
    assert records[1].config["streamed"] == [FRAMES]
    assert [f.curves.train_loss for f in records[0].folds] == [
        f.curves.train_loss for f in records[1].folds
    ]


def test_a_budget_without_room_for_the_views_caches_is_refused(chunked: Path) -> None:
    """The clean set's cache fits, not its views' beside it: refused with the figures."""
    with pytest.raises(ConfigError, match="chunk caches at least") as refused:
        loaded(chunked, "5KB")
    assert f"{FRAMES} " in str(refused.value)
    store = FeatureStore.open(chunked)
    features = resolve_features(store, (FRAMES,))
    assert place_inputs(store, features, torch.device("cpu"), "5KB", 8).streamed == {FRAMES}
