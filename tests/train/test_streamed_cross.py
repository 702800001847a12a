"""`--test-store` under a `--memory-budget` an input does not fit: the training store's
rows stream from it and the test store's from the test store, one joined table
(`ser.train.cross`, `FeatureTable.parts`), the cache shared between the two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
from ser.cache import FeatureStore
from ser.models import ModelConfig
from ser.train import cross
from ser.train.data import TrainData
from ser.train.features import resolve_features
from ser.train.placement import place_inputs
from ser.train.recipe import train
from ser.train.stream import RowStream
from tests.stores import corpus_store
from tests.train.test_cross import IEMOCAP_LABELS, MELD_LABELS, Said, config

FRAMES = "hubert-tiny.L2"
SETS = {
    FRAMES: ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}
MIT = ModelConfig(fusion="mit", d_model=8, heads=2, layers=1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """IEMOCAP-like and MELD-like stores of tiny chunks (21 frames), so that streamed
    reads cross many."""
    root = tmp_path_factory.mktemp("cross")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        corpus_store(root / "a.zarr", "iemocap", IEMOCAP_LABELS * 2, sets=SETS)
        corpus_store(root / "b.zarr", "meld", MELD_LABELS * 2, sets=SETS)
    return root / "a.zarr", root / "b.zarr"


def joined(stores: tuple[Path, Path], budget: str | None) -> TrainData:
    train_on, test_on = (FeatureStore.open(path) for path in stores)
    features = resolve_features(train_on, (FRAMES,))
    test = cross.open_test(train_on, test_on, features, train_on.corpus.label_set("4"), "4")
    copies = cross.test_copies(features, test)
    cpu = torch.device("cpu")
    placed = place_inputs(train_on, features, cpu, budget, 8, copies=copies)
    return cross.load_joined(train_on, features, test, cpu, placed)


def test_each_store_s_rows_stream_from_it_as_held(stores: tuple[Path, Path]) -> None:
    held, streamed = joined(stores, None), joined(stores, "6KB")
    a, b = held.features[FRAMES], streamed.features[FRAMES]
    assert streamed.placement is not None and streamed.placement.streamed == {FRAMES}
    assert b.stream is not None and [s.store.path for s in b.streams] == list(stores)
    assert b.flat.shape[0] == 0 and streamed.test_from == held.test_from
    index = torch.arange(a.flat.shape[0]).flip(0).view(1, -1)
    assert torch.equal(a.rows(index), b.rows(index))
    assert torch.equal(a.vectors, b.vectors)
    # a test utterance's window is of the test store's chunks, numbered after the other's
    blocks, cut = b.blocks(), held.test_from or 0
    assert blocks[cut:].min() > blocks[:cut].max()


def run(stores: tuple[Path, Path], out: Path, **changes: Any) -> Any:
    """MIT on the frames and tokens, trained on one store and tested on the other."""
    said: dict[str, Any] = {"model": MIT, "features": (FRAMES, "bert-tiny"), "epochs": 2}
    return train(config(stores[0], stores[1], out, **said | changes), Said())


def readers(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Every stream of the run read by `count` threads."""
    made = RowStream.__init__

    def init(self: RowStream, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **{**kwargs, "readers": count})

    monkeypatch.setattr(RowStream, "__init__", init)


def predictions(out: Path, record: Any) -> bytes:
    return (out / record.name / "predictions.csv").read_bytes()


def test_a_streamed_cross_corpus_run_trains_the_same_whatever_the_reader_threads(
    stores: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = []
    for count in (1, 2):
        readers(monkeypatch, count)
        records.append(run(stores, tmp_path / str(count), memory_budget="16KB"))
    one, two = records
    assert one.config["streamed"] == [FRAMES] and one.cross is not None
    assert one.execution is not None and f"{FRAMES} " in str(one.execution.memory)
    assert one.folds[0].sizes.test == two.folds[0].sizes.test > 0
    losses = [f.curves.train_loss for f in one.folds]
    assert losses == [f.curves.train_loss for f in two.folds]
    assert all(np.isfinite(np.asarray(loss, dtype=float)).all() for loss in losses)
    assert predictions(tmp_path / "1", one) == predictions(tmp_path / "2", two)


def test_a_budget_that_holds_both_stores_trains_as_without_one(
    stores: tuple[Path, Path], tmp_path: Path
) -> None:
    held = run(stores, tmp_path / "held")
    budgeted = run(stores, tmp_path / "budgeted", memory_budget="1GiB")
    assert budgeted.config["streamed"] is None
    assert [f.curves.train_loss for f in held.folds] == [
        f.curves.train_loss for f in budgeted.folds
    ]
    assert predictions(tmp_path / "held", held) == predictions(tmp_path / "budgeted", budgeted)


def test_an_mlp_on_both_stores_streamed_means_trains_as_in_memory(
    stores: tuple[Path, Path], tmp_path: Path
) -> None:
    """The test store's means are summed from its own stream, as from memory."""
    mlp = {"model": ModelConfig(fusion="none"), "features": (FRAMES,)}
    held = run(stores, tmp_path / "held", **mlp)
    streamed = run(stores, tmp_path / "streamed", memory_budget="13KB", **mlp)
    assert streamed.config["streamed"] == [FRAMES]
    assert [f.curves.train_loss for f in held.folds] == [
        f.curves.train_loss for f in streamed.folds
    ]
    assert predictions(tmp_path / "held", held) == predictions(tmp_path / "streamed", streamed)
