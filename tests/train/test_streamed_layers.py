"""Layered inputs (`<stem>.L*`) streamed under `--memory-budget`: one `RowStream` reads
each layer set by the same kept-row numbers into one cache, gathered as the in-memory
table's [rows, L, D] gives them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
from ser.cache import FeatureStore
from ser.models import ModelConfig
from ser.models.batch import InputSpec
from ser.train.batches import Batches, StackedSides
from ser.train.data import TrainData, load_data
from ser.train.features import resolve_features
from ser.train.option_table import train_config
from ser.train.placement import place_inputs
from ser.train.recipe import TrainConfig, train
from ser.train.stream import READERS, RowStream
from tests.stores import add_layer_sets, labelled_store
from tests.train.conftest import NARROW, small_config

AUDIO = ("hubert", "audio", "frame", 6, "float16")
ASKED, LAYERED = "enc.L*", "enc.L0-2"


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three layer sets of one encoder and a token set, in tiny chunks (21 rows of a
    layer set), so that streamed reads cross many chunks."""
    path = tmp_path_factory.mktemp("layers") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        store = labelled_store(path, {"bert-tiny": ("bert", "text", "token", 5, "float16")})
        add_layer_sets(store, "enc", AUDIO, range(3))
    return path


def one_reader(monkeypatch: pytest.MonkeyPatch) -> list[RowStream]:
    """Every stream the trainer's tables make from now on read by one reader thread (the
    default: `READERS`, two); the streams made, to check that some were."""
    assert READERS > 1
    made: list[RowStream] = []

    def alone(*args: Any, **kwargs: Any) -> RowStream:
        made.append(RowStream(*args, **(kwargs | {"readers": 1})))
        return made[-1]

    monkeypatch.setattr("ser.train.data.RowStream", alone)
    return made


def loaded(path: Path, budget: str | None) -> TrainData:
    store = FeatureStore.open(path)
    features = resolve_features(store, (ASKED,))
    placed = place_inputs(store, features, torch.device("cpu"), budget, 8)
    return load_data(store, features, store.corpus.label_set("4"), "cpu", placement=placed)


def sequence() -> InputSpec:
    return InputSpec(LAYERED, "audio", 6, "sequence", layers=3)


def epoch(data: TrainData, seed: int = 3) -> list[torch.Tensor]:
    """A training side's epoch of one member, as the steps gather it."""
    spec = sequence()
    side = Batches(data, np.arange(len(data)), [spec], "utterance", 8, shuffle=True, seed=seed)
    return [batch.x[spec.name] for _, batch, _ in StackedSides([side]).epoch()]


def test_a_small_budget_streams_each_layer_set_and_says_so(chunked: Path) -> None:
    data = loaded(chunked, "12KB")
    assert data.placement is not None and data.placement.streamed == {LAYERED}
    table = data.features[LAYERED]
    assert table.stream is not None and table.stream.shape == (3, 6)
    assert [s[0] for s in table.stream.sets] == ["enc.L0", "enc.L1", "enc.L2"]
    assert tuple(table.flat.shape) == (0, 3, 6)  # no row held
    said = data.placement.describe()
    assert f"{LAYERED} " in said and " streamed (cache " in said
    assert "shared by its 3 layer sets)" in said


def test_streamed_layers_equal_the_in_memory_table_bit_for_bit(chunked: Path) -> None:
    held, streamed = loaded(chunked, None), loaded(chunked, "12KB")
    a, b = held.features[LAYERED], streamed.features[LAYERED]
    assert a.stream is None and b.stream is not None
    assert torch.equal(a.lengths, b.lengths)
    index = torch.arange(a.flat.shape[0] // 2 * 2).flip(0).view(-1, 2)
    assert b.rows(index).shape == (*index.shape, 3, 6)
    assert torch.equal(a.rows(index), b.rows(index))
    assert torch.equal(a.vectors, b.vectors)  # each layer's means, summed in the same order
    # the same plan gathered from either: the same [B, T, L, D] batch, padding included
    side = Batches(held, np.arange(len(held)), [sequence()], "utterance", 8)
    plan = side.plans()[0]
    twin = Batches(streamed, np.arange(len(held)), [sequence()], "utterance", 8)
    assert torch.equal(side.build(plan).x[LAYERED], twin.build(plan).x[LAYERED])


def test_streamed_layers_give_the_same_batches_whatever_the_reader_threads(
    chunked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two = epoch(loaded(chunked, "12KB"))
    made = one_reader(monkeypatch)
    one = epoch(loaded(chunked, "12KB"))
    assert len(made) == 1
    assert len(one) == len(two) > 1
    assert all(torch.equal(x, y) for x, y in zip(one, two, strict=True))


def test_a_streamed_layered_side_reads_a_window_of_chunks_at_a_time(chunked: Path) -> None:
    data = loaded(chunked, "12KB")
    stream = data.features[LAYERED].stream
    assert stream is not None
    chunks = -(-stream.total_store_rows // stream.chunk_rows)
    side = Batches(data, np.arange(len(data)), [sequence()], "utterance", 8, shuffle=True)
    list(StackedSides([side]).epoch())
    # each layer set's chunks, about once an epoch (the cache holds a few of each set's)
    assert 3 * chunks <= stream.reads < 3 * 2 * chunks


def _sequence_run(path: Path, out: Path, name: str, budget: str | None) -> dict[str, object]:
    options = {"store": str(path), "features": f"{ASKED}+bert-tiny", "classes": "4"}
    options |= {"protocol": "session5", "epochs": "2", "batch_size": "8", "seeds": "1"}
    options |= {"device": "cpu", "out": str(out), "name": name} | NARROW
    record = train(train_config(options | ({"memory_budget": budget} if budget else {})))
    assert record.complete and record.execution is not None
    return {
        "streamed": record.config["streamed"],
        "memory": str(record.execution.memory),
        "losses": [f.curves.train_loss for f in record.folds],
        "weights": [f.layer_weights for f in record.folds],
        "predictions": (out / name / "predictions.csv").read_bytes(),
    }


def test_a_sequence_model_trains_on_streamed_layers_the_same_whatever_the_readers(
    chunked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two = _sequence_run(chunked, tmp_path, "two", "16KB")
    assert two["streamed"] == [LAYERED]
    assert "shared by its 3 layer sets" in str(two["memory"])
    losses = two["losses"]
    assert isinstance(losses, list) and all(np.isfinite(x).all() for x in losses)
    made = one_reader(monkeypatch)
    one = _sequence_run(chunked, tmp_path, "one", "16KB")
    assert made and one["losses"] == two["losses"] and one["weights"] == two["weights"]


def test_an_mlp_on_streamed_layer_means_trains_as_in_memory(chunked: Path, tmp_path: Path) -> None:
    """An MLP reads each layer's means: streamed, they are summed in the in-memory order,
    and its batches are not windowed, so it trains bit for bit as in memory."""
    options = {"features": (ASKED,), "model": ModelConfig(fusion="none"), "epochs": 2}
    records = [
        train(small_config(chunked, tmp_path, memory_budget=budget, name=name, **options))
        for budget, name in ((None, "held"), ("12KB", "streamed"))
    ]
    assert records[1].config["streamed"] == [LAYERED]
    held, streamed = ([f.curves.train_loss for f in r.folds] for r in records)
    assert held == streamed
    assert [f.layer_weights for f in records[0].folds] == [
        f.layer_weights for f in records[1].folds
    ]


# -- `--finetune`: the cached layer frames its top layers read, streamed ---------------
LOW, BUDGET = "tiny-hubert.L1", "512KB"


@pytest.fixture(scope="module")
def tuned_store(
    short_corpus: Any, tiny_models: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny HuBERT's layers and the tiny BERT's last, in fp32 (what fine-tuning
    reads), in tiny chunks so that a small budget streams them across many."""
    from tests.conftest import extract_tiny

    root, _ = short_corpus
    path = tmp_path_factory.mktemp("tuned") / "f.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 4096)
        extract_tiny(root, path, tiny_models, {"layers": "all"})
    return path


def _tuned_run(path: Path, out: Path, name: str, budget: str | None) -> dict[str, object]:
    config = TrainConfig(
        store=str(path), features=(LOW, "tiny-bert"), finetune=(f"{LOW}:top=1,lr=1e-3",),
        model=ModelConfig(fusion="mit", d_model=16, heads=2, queries=4), classes="4",
        protocol="session5", epochs=2, batch_size=8, seeds=1, device="cpu", out=str(out),
        name=name, memory_budget=budget,
    )  # fmt: skip
    record = train(config)
    assert record.complete and record.execution is not None
    return {
        "streamed": record.config["streamed"],
        "memory": str(record.execution.memory),
        "losses": [f.curves.train_loss for f in record.folds],
        "predictions": (out / name / "predictions.csv").read_bytes(),
    }


def test_a_finetuned_input_trains_streamed_the_same_whatever_the_readers(
    tuned_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The top layers read the cached layer's frames as any sequence input reads them:
    streamed, a window of chunks at a time, the same batches whatever the threads."""
    two = _tuned_run(tuned_store, tmp_path, "two", BUDGET)
    assert two["streamed"] == [LOW] and f"{LOW} " in str(two["memory"])
    losses = two["losses"]
    assert isinstance(losses, list) and all(np.isfinite(x).all() for x in losses)
    made = one_reader(monkeypatch)
    one = _tuned_run(tuned_store, tmp_path, "one", BUDGET)
    assert made and one["losses"] == two["losses"]
    assert one["predictions"] == two["predictions"]


@pytest.mark.parametrize("store", ["chunked", "tuned_store"], ids=["layers", "finetuned"])
def test_a_budget_that_holds_the_frames_trains_as_without_one(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The layer sets of a sequence model, or the cached layer fine-tuned top layers read:
    held because the budget holds them, they train as held without a budget."""
    run = _sequence_run if store == "chunked" else _tuned_run
    path = request.getfixturevalue(store)
    held = run(path, tmp_path, "held", None)
    budgeted = run(path, tmp_path, "budgeted", "1GiB")
    assert budgeted["streamed"] is None
    for key in ("losses", "weights", "predictions"):
        assert held.get(key) == budgeted.get(key)
    assert "predictions" in held


@pytest.fixture(scope="module")
def layered_views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`chunked`'s layer sets, each with a speed view (half its rows, shifted)."""
    path = tmp_path_factory.mktemp("layer-views") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        store = labelled_store(path, {"bert-tiny": ("bert", "text", "token", 5, "float16")})
        for name in add_layer_sets(store, "enc", AUDIO, range(3)):
            read = store.read(name)
            offsets, data = np.asarray(read.offsets), np.asarray(read.data)
            rows = {i: data[offsets[i] : offsets[i + 1]][::2] + 1 for i in range(len(offsets) - 1)}
            attrs = store.info(name).attrs
            attrs = {k: v for k, v in attrs.items() if k not in ("fingerprint", "complete")}
            store.begin_feature_set(
                f"{name}.speed1.1", attrs | {"view_of": name, "view": "speed=1.1"}
            )
            store.shard_writer(f"{name}.speed1.1").write(0, rows, {})
            store.consolidate(f"{name}.speed1.1", 1)
    return path


def test_a_layered_input_s_views_stream_beside_it_the_same_whatever_the_readers(
    layered_views: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each view streams as its input does, its layer sets by the same row numbers. Before,
    the view read its first layer set alone and the run was refused with the words of a
    damaged view ("extract the views again")."""

    def run(name: str) -> list[Any]:
        options = {"store": str(layered_views), "features": f"{ASKED}+bert-tiny", "views": "all"}
        options |= {"classes": "4", "protocol": "session5", "epochs": "2", "batch_size": "8"}
        options |= {"seeds": "1", "device": "cpu", "out": str(tmp_path)} | NARROW
        record = train(train_config(options | {"name": name, "memory_budget": "22KB"}))
        assert record.config["streamed"] == [LAYERED] and record.config["views"] == "all"
        return [f.curves.train_loss for f in record.folds]

    two = run("two")
    assert all(np.isfinite(x).all() for x in two)
    made = one_reader(monkeypatch)  # the clean set's stream; the views' below
    monkeypatch.setattr(
        "ser.train.views.RowStream", lambda *a, **k: RowStream(*a, **(k | {"readers": 1}))
    )
    assert run("one") == two and made
