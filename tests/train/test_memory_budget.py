"""`--memory-budget`: where each input's rows live (`ser.train.placement`), streamed rows
read from the store a chunk at a time (`ser.train.stream`), the batches they give
(`ser.train.batches.windowed_plans`) and the runs refused before training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import ser.cache.store as store_module
from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.models import ModelConfig
from ser.models.batch import InputSpec
from ser.train.batches import Batches, StackedSides
from ser.train.data import TrainData, load_data
from ser.train.features import resolve_features
from ser.train.option_table import train_config
from ser.train.placement import Placement, decide, place_inputs
from ser.train.recipe import train
from ser.train.stream import RowStream
from tests.stores import labelled_store
from tests.train.conftest import NARROW, SETS, small_config

FRAMES = "hubert-tiny.L2"


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer tests' sets in a store of tiny chunks (21 rows of the frame set), so
    that streamed reads cross many chunks."""
    path = tmp_path_factory.mktemp("chunked") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        labelled_store(path, SETS, per_dialog=12)
    return path


def loaded(path: Path, budget: str | None, sets: tuple[str, ...] = (FRAMES,)) -> TrainData:
    store = FeatureStore.open(path)
    features = resolve_features(store, sets)
    placed = place_inputs(store, features, torch.device("cpu"), budget, 8)
    return load_data(store, features, store.corpus.label_set("4"), "cpu", placement=placed)


def sequence(name: str = FRAMES, dim: int = 6) -> InputSpec:
    return InputSpec(name, "audio", dim, "sequence")


def epoch(data: TrainData, spec: InputSpec, seed: int = 3) -> list[torch.Tensor]:
    """A training side's epoch of one member, as the steps gather it."""
    side = Batches(data, np.arange(len(data)), [spec], "utterance", 8, shuffle=True, seed=seed)
    return [batch.x[spec.name] for _, batch, _ in StackedSides([side]).epoch()]


def test_a_budget_that_holds_everything_keeps_the_rows_in_memory(chunked: Path) -> None:
    data = loaded(chunked, "1GiB")
    assert data.placement is not None and data.placement.streamed == set()
    assert data.features[FRAMES].stream is None
    assert "in memory" in data.placement.describe()


def test_a_sequence_model_under_a_budget_that_holds_everything_trains_as_without_one(
    chunked: Path, tmp_path: Path
) -> None:
    """Rows held in memory because the budget holds them are the rows held without a
    budget: the same batches, the same losses and predictions, bit for bit."""
    options = {"store": str(chunked), "features": f"{FRAMES}+bert-tiny", "classes": "4"}
    options |= {"protocol": "session5", "epochs": "2", "batch_size": "8", "seeds": "1"}
    options |= {"device": "cpu", "out": str(tmp_path)} | NARROW
    held, budgeted = (
        train(train_config(options | {"name": name} | budget))
        for name, budget in (("held", {}), ("budgeted", {"memory_budget": "1GiB"}))
    )
    assert budgeted.config["streamed"] is None
    assert [f.curves.train_loss for f in held.folds] == [
        f.curves.train_loss for f in budgeted.folds
    ]
    assert (tmp_path / "held" / "predictions.csv").read_bytes() == (
        tmp_path / "budgeted" / "predictions.csv"
    ).read_bytes()


def test_a_small_budget_streams_the_frames_and_says_so(chunked: Path) -> None:
    data = loaded(chunked, "4KB")
    assert data.placement is not None and data.placement.streamed == {FRAMES}
    assert data.features[FRAMES].flat.shape[0] == 0  # no row held
    said = data.placement.describe()
    assert said.startswith("memory budget 3.9 KiB (--memory-budget 4KB): ")
    assert f"{FRAMES} 5.7 KiB streamed (cache " in said


def test_streamed_rows_and_means_equal_the_in_memory_ones_bit_for_bit(chunked: Path) -> None:
    held, streamed = loaded(chunked, None), loaded(chunked, "4KB")
    a, b = held.features[FRAMES], streamed.features[FRAMES]
    index = torch.arange(a.flat.shape[0]).flip(0).view(-1, 2)
    assert torch.equal(a.rows(index), b.rows(index))
    assert torch.equal(a.vectors, b.vectors)
    # the same plan gathered from either: the same batch, padding included
    side = Batches(held, np.arange(len(held)), [sequence()], "utterance", 8)
    plan = side.plans()[0]
    twin = Batches(streamed, np.arange(len(held)), [sequence()], "utterance", 8)
    assert torch.equal(side.build(plan).x[FRAMES], twin.build(plan).x[FRAMES])


def test_a_streamed_side_gives_the_same_batches_whatever_the_reader_threads(
    chunked: Path,
) -> None:
    one, three = loaded(chunked, "4KB"), loaded(chunked, "4KB")
    table = three.features[FRAMES]
    assert table.stream is not None
    table.stream = RowStream(
        table.stream.store, FRAMES, table.stream.first, table.stream.lengths, 2300, readers=3
    )
    first, second = epoch(one, sequence()), epoch(three, sequence())
    assert len(first) == len(second) > 1
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    other = epoch(one, sequence(), seed=4)
    assert not all(torch.equal(x, y) for x, y in zip(first, other, strict=False))


def test_a_stream_of_a_few_rows_of_each_chunk_caches_those_rows_alone(chunked: Path) -> None:
    held, streamed = loaded(chunked, None), loaded(chunked, "4KB")
    whole = streamed.features[FRAMES].stream
    assert whole is not None
    some = np.arange(0, len(whole.lengths), 4)  # every fourth utterance: a quarter of a chunk
    first, lengths = whole.first[some], whole.lengths[some]
    stream = RowStream(whole.store, FRAMES, first, lengths, 10**6, compact=True)
    rows = stream.take(torch.arange(stream.rows))
    table = held.features[FRAMES]
    spans = zip(table.starts[some].tolist(), table.lengths[some].tolist(), strict=True)
    index = torch.cat([torch.arange(s, s + n) for s, n in spans])
    assert torch.equal(rows, table.rows(index))  # the same rows
    width = int(np.prod(stream.shape)) * stream.dtype.itemsize
    assert stream.reads > 1 and stream.cached_bytes == stream.rows * width  # its rows alone
    assert stream.cached_bytes < stream.reads * stream.chunk_bytes / 2


def test_a_streamed_side_reads_a_window_of_chunks_at_a_time(chunked: Path) -> None:
    reads, chunks = [], 0
    for windowed in (True, False):
        data = loaded(chunked, "4KB")
        stream = data.features[FRAMES].stream
        assert stream is not None
        chunks = -(-stream.total_store_rows // stream.chunk_rows)
        side = Batches(data, np.arange(len(data)), [sequence()], "utterance", 8, shuffle=True)
        if not windowed:
            side._blocks = None  # batches drawn over the whole side
        list(StackedSides([side]).epoch())
        reads.append(stream.reads)
    # about once an epoch (these 4-row utterances spill into the next chunk often)
    assert reads[0] < 2 * chunks < reads[1]


def test_an_mlp_on_streamed_means_trains_as_in_memory(chunked: Path, tmp_path: Path) -> None:
    """In one process each (a streamed run's default: every process would place its rows
    under the whole budget)."""
    options = {"features": (FRAMES,), "processes": 1}
    records = [
        train(small_config(chunked, tmp_path, memory_budget=b, name=n, **options))
        for b, n in ((None, "held"), ("6KB", "streamed"))
    ]
    held, streamed = (r.folds[0].curves.train_loss for r in records)
    assert held == streamed
    assert records[1].execution is not None
    assert f"{FRAMES} 5.7 KiB streamed (cache 2.8 KiB, means 2.8 KiB)" in str(
        records[1].execution.memory
    )


def test_a_sequence_model_trains_streamed_one_member_at_a_time(
    chunked: Path, tmp_path: Path
) -> None:
    options = {"store": str(chunked), "features": f"{FRAMES}+bert-tiny", "classes": "4"}
    options |= {"protocol": "loso", "epochs": "1", "batch_size": "8", "seeds": "1"}
    options |= {"device": "cpu", "out": str(tmp_path), "memory_budget": "11KB"} | NARROW
    record = train(train_config(options))
    assert record.execution is not None and record.execution.stacked == 1
    assert "streamed" in str(record.execution.memory)
    assert len(record.folds) == 5


def test_a_budget_below_a_batch_is_refused_with_the_figures(chunked: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        loaded(chunked, "1KB")
    said = str(refused.value)
    assert "the memory budget (1000 B) cannot hold this run even streamed" in said
    assert f"its largest batches take {FRAMES} " in said and "--batch-size" in said


def test_a_refusal_counts_the_rows_it_keeps_in_memory_beside_the_caches() -> None:
    """The figures add up to more than the budget: the inputs held in memory take room the
    streamed input's cache then lacks, and were left out of the sum."""
    with pytest.raises(ConfigError) as refused:
        decide({"small": 400, "big": 5000}, {"big": 900}, {"small": 10, "big": 10}, 1200)
    said = str(refused.value)
    assert "chunk caches at least big 900 B, the rows it keeps in memory small 400 B" in said
    assert "(1.3 KiB in all)" in said  # 20 + 900 + 400 B, over the 1.2 KiB budget


def test_an_mlp_on_frames_budgets_a_batch_of_means_not_of_frames(
    chunked: Path, tmp_path: Path
) -> None:
    """An MLP gathers each utterance's mean: its batch is B means, not B of the longest
    utterance's frames, so a budget that holds its means and the chunk cache streams it
    (an MLP on HuBERT frames at 384MB was refused for a batch it never gathers). The
    means it holds, every utterance's, are counted: before, they were left out."""
    store = FeatureStore.open(chunked)
    features = resolve_features(store, (FRAMES,))
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="its largest batches take"):
        place_inputs(store, features, cpu, "9000B", 64)  # as a sequence model gathers it
    assert place_inputs(store, features, cpu, "9000B", 64, sequences=()).streamed == {FRAMES}
    with pytest.raises(
        ConfigError, match=r"the means of the inputs it averages hubert-tiny.L2 2.8 KiB"
    ):
        place_inputs(store, features, cpu, "5000B", 64, sequences=())
    config = small_config(chunked, tmp_path, features=(FRAMES,), batch_size=64)
    done = train(replace(config, memory_budget="9000B"))
    assert done.complete and done.config["streamed"] == [FRAMES]


def test_a_bad_size_names_the_option(chunked: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--memory-budget '12 parsecs' is not a size"):
        train(small_config(chunked, tmp_path, memory_budget="12 parsecs"))


def test_what_streamed_is_compared_on_resume_the_budget_is_not(
    chunked: Path, tmp_path: Path
) -> None:
    """A budget that places rows elsewhere in memory changes no number and resumes; one
    that makes an input stream draws other batches, so the record's `streamed` differs
    and the resume is refused, as for any option that changes results."""
    config = small_config(chunked, tmp_path, features=(FRAMES,), epochs=1, name="again")
    done = train(config)
    assert done.config["streamed"] is None
    assert train(replace(config, memory_budget="1GB")).complete  # all in memory still
    with pytest.raises(ConfigError, match=r"streamed: off -> \['hubert-tiny.L2'\]"):
        train(replace(config, memory_budget="6KB"))


def test_the_default_budget_never_streams_nor_refuses(
    chunked: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default follows what is free now: a busy machine must not change what a run
    computes, so over it the rows are held all the same, and said."""
    monkeypatch.setattr("ser.train.placement.available_memory", lambda: 1024)
    done = train(small_config(chunked, tmp_path, features=(FRAMES,), epochs=1))
    assert done.config["streamed"] is None and done.complete


def test_a_placement_says_each_place() -> None:
    placed = Placement(
        1024, "x", {"a": "device", "b": "host", "c": "stream"}, {"a": 1, "b": 2, "c": 3},
        {"c": 4}, device="cuda:0",
    )  # fmt: skip
    assert placed.describe() == (
        "memory budget 1.0 KiB (x): a 1 B on cuda:0, b 2 B in pinned host memory, "
        "c 3 B streamed (cache 4 B)"
    )
    # the default budget holds what is over it all the same, and says so; one asked for
    # never is over it (what does not fit streams or is refused)
    held = Placement(1, "half of 2 B available RAM", {"a": "device"}, {"a": 5}, {})
    assert held.describe().endswith(
        "; over the budget, held all the same (--memory-budget SIZE streams)"
    )
    asked = Placement(1, "--memory-budget 1B", {"a": "host"}, {"a": 5}, {}, "cuda:0", asked=True)
    assert "held all the same" not in asked.describe()


def test_beside_a_gpu_pinned_host_memory_holds_what_the_device_does_not(
    chunked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU the budget is the device's; `--host-memory` (default: half the machine's
    memory) holds the rest pinned, and what fits neither streams. Whether an input
    streams changes its batches, so it never follows what is free now: before, the host
    share was half the available RAM, and a busy machine streamed what a quiet one held."""
    store = FeatureStore.open(chunked)
    features = resolve_features(store, (FRAMES, "bert-tiny"))
    gpu = torch.device("cuda")  # placing touches no device: this runs on the CPU

    def places(host: str | None) -> dict[str, str]:
        return place_inputs(store, features, gpu, "8KB", 8, host_asked=host).places

    assert places("1MB") == {FRAMES: "host", "bert-tiny": "device"}
    assert places("3KB") == {FRAMES: "stream", "bert-tiny": "device"}
    monkeypatch.setattr("ser.train.placement.memory_budget", lambda: 2 << 20)
    monkeypatch.setattr("ser.train.placement.available_memory", lambda: 1024)
    assert places(None) == {FRAMES: "host", "bert-tiny": "device"}  # half of 2 MiB


@pytest.mark.parametrize(
    ("asked", "said"),
    [
        ({"host_memory": "1GB"}, "--host-memory bounds what --memory-budget's device share"),
        ({"host_memory": "1GB", "memory_budget": "1GB"}, "--host-memory is for a GPU run"),
        ({"host_memory": "lots", "memory_budget": "1GB", "device": "cuda"}, "--host-memory"),
    ],
)
def test_host_memory_is_refused_where_it_means_nothing(
    chunked: Path, tmp_path: Path, asked: dict[str, str], said: str
) -> None:
    store = FeatureStore.open(chunked)
    features = resolve_features(store, (FRAMES,))
    device = torch.device(asked.get("device", "cpu"))
    with pytest.raises(ConfigError, match=said):
        place_inputs(store, features, device, asked.get("memory_budget"), 8,
                     host_asked=asked["host_memory"])  # fmt: skip


def test_a_dialog_model_on_streamed_means_trains_as_in_memory(
    chunked: Path, tmp_path: Path
) -> None:
    """A dialog-context model reads each input's utterance means, summed a chunk at a time
    from a streamed set as from memory: the same losses. Before, it was refused ("streamed
    rows do not go with a dialog-context model yet")."""
    model = ModelConfig(
        fusion="attention", fusion_at="middle", loss="perspective", d_model=8, heads=2
    )
    options = {"features": (FRAMES, "bert-tiny"), "model": model, "protocol": "session5"}
    options |= {"epochs": 2, "batch_size": 4, "seeds": 2}
    runs = [
        train(small_config(chunked, tmp_path, memory_budget=budget, name=name, **options))
        for budget, name in ((None, "held"), ("13KB", "streamed"))
    ]
    assert runs[1].config["streamed"] == [FRAMES]
    assert [f.curves.train_loss for f in runs[0].folds] == [
        f.curves.train_loss for f in runs[1].folds
    ]
