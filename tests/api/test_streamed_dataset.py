"""`ser.FeatureDataset` under a memory budget: only its own utterances' rows read, held or
streamed through the trainer's chunk cache, the same items either way, the trainer's
block shuffle as a DataLoader's batch sampler, and a DataLoader's workers (forked or
spawned) reading streamed rows of their own."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import ser
import ser.cache.store as store_module
from ser.api.dataset import FeatureBatch, FeatureDataset
from ser.api.rows import batch_room
from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.runtime.units import human_bytes
from tests.stores import add_layer_sets, labelled_store

FRAMES = ("hubert", "audio", "frame", 6, "float16")
SETS = {
    "hubert-tiny": FRAMES,
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
}
EVERY = "hubert-tiny+bert-tiny+is13+enc.L*"
# (features, a budget that streams some of them, which it streams)
STREAMED = [
    (EVERY, "25KB", ("enc.L0-2",)),  # the layered input streams, the other sets are held
    ("hubert-tiny+is13", "7KB", ("hubert-tiny",)),
    ("is13", "3KB", ("is13",)),
]


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames, tokens, vectors and three layer sets of 240 utterances in tiny chunks (21
    frame rows), so that a dataset's rows cross many chunks."""
    path = tmp_path_factory.mktemp("chunked") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        store = labelled_store(path, SETS, per_dialog=24)
        add_layer_sets(store, "enc", FRAMES, range(3))
    return path


def side(path: Path, features: str) -> list[str]:
    """A fold's training side, in a shuffled order (reads need not follow the store's)."""
    train = list(ser.folds(path, protocol="loso", features=features)[1].train)
    return [train[i] for i in np.random.default_rng(0).permutation(len(train))]


def kept_bytes(data: FeatureDataset) -> int:
    """The bytes of rows a dataset holds: its held tables' and its streams' full caches."""
    total = 0
    for table in data.data.features.values():
        total += table.flat.nbytes
        if table.stream is not None:
            chunk = max(rows for *_, rows, _ in table.stream.sets)
            width = int(np.prod(table.stream.shape)) * table.stream.dtype.itemsize
            total += table.stream.capacity * chunk * width // len(table.stream.sets)
    return total


def assert_same_items(a: FeatureDataset, b: FeatureDataset) -> None:
    assert len(a) == len(b) and a.sets == b.sets
    for i in range(len(a)):
        x, y = a[i], b[i]
        assert (x.utt_id, x.label, x.position) == (y.utt_id, y.label, y.position)
        for name in a.sets:
            assert x.features[name].dtype == torch.float32
            torch.testing.assert_close(x.features[name], y.features[name], rtol=0, atol=0)


def assert_same_batches(a: list[FeatureBatch], b: list[FeatureBatch]) -> None:
    assert [x.utt_ids for x in a] == [y.utt_ids for y in b]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.labels, y.labels) and x.x.keys() == y.x.keys()
        for name in x.x:
            assert torch.equal(x.x[name], y.x[name])
        for name in x.mask:
            assert torch.equal(x.mask[name], y.mask[name])


@pytest.mark.parametrize(("features", "budget", "streams"), STREAMED)
def test_held_and_streamed_items_are_the_same(
    chunked: Path, features: str, budget: str, streams: tuple[str, ...]
) -> None:
    ids = side(chunked, features)
    held = ser.FeatureDataset(chunked, features, ids=ids, classes="4")
    streamed = ser.FeatureDataset(chunked, features, ids=ids, classes="4", memory_budget=budget)
    assert held.streamed == () and streamed.streamed == streams
    assert kept_bytes(streamed) <= streamed.budget < kept_bytes(held)
    assert [held[i].utt_id for i in range(len(held))] == ids
    assert_same_items(held, streamed)
    items = [streamed[i] for i in (3, 0, 7)]
    assert_same_batches([held.collate(items)], [streamed.collate(items)])
    store = ser.open_store(chunked)
    for name in ("hubert-tiny", "is13"):  # the rows are the store's, an utterance's own
        if name in held.sets:
            item = streamed[5]
            want = torch.from_numpy(store.read(name, item.utt_id).astype(np.float32))
            torch.testing.assert_close(item.features[name], want, rtol=0, atol=0)


def test_a_batch_is_written_once_its_items_views_of_it(chunked: Path) -> None:
    """A DataLoader's batch (`__getitems__`, then `collate`) holds its rows once: each
    item's rows written straight into the padded batch, z-scored there, the items views
    of it; the same tensors as the items padded one by one (held frames and tokens, an
    utterance-level set, a streamed layered input)."""
    features, budget, streams = STREAMED[0]
    ids = side(chunked, features)
    data = ser.FeatureDataset(
        chunked, features, ids=ids, classes="4", memory_budget=budget, normalize="train"
    )
    assert data.streamed == streams
    for indices in data.batches(5, seed=1):
        items = data.__getitems__(indices)
        got = data.collate(items)
        assert_same_batches([got], [data.collate([data[i] for i in indices])])
        for item in items:
            for name, rows in item.features.items():
                shared = got.x[name].untyped_storage().data_ptr()
                assert rows.untyped_storage().data_ptr() == shared


def test_a_side_reads_and_holds_its_own_rows_only(
    chunked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = side(chunked, EVERY)
    store = ser.open_store(chunked)
    read: list[tuple[str, int, int]] = []
    rows_of = FeatureStore.read_rows

    def counted(self: FeatureStore, name: str, start: int, stop: int, out: Any = None) -> Any:
        read.append((name, start, stop))
        return rows_of(self, name, start, stop, out)

    def whole(*_: Any) -> None:
        raise AssertionError("a whole set was read")

    monkeypatch.setattr(FeatureStore, "read", whole)
    monkeypatch.setattr(FeatureStore, "read_rows", counted)
    data = ser.FeatureDataset(chunked, EVERY, ids=ids, classes="4")
    during = list(read)
    for name in ("hubert-tiny", "bert-tiny", "is13"):
        table = data.data.features[name]
        mine = sum(len(np.atleast_2d(store.read(name, u))) for u in ids)
        assert table.flat.shape[0] == mine  # held: the side's rows alone
        offsets = store.feature_store.offsets(name)
        chunk = store.feature_store.chunk_rows(name)
        rows = [np.arange(offsets[i], offsets[i + 1]) for i in map(store_index(store), ids)]
        wanted = {int(k) for r in rows for k in np.unique(r // chunk)}
        reads = [(a, b) for n, a, b in during if n == name]
        assert {a // chunk for a, _ in reads} == wanted  # the side's chunks alone
        # each once, but where the next piece's read-ahead and this piece's reader meet
        # on a chunk neither has yet (a busy machine): never a second pass over the set
        assert len(reads) < 2 * len(wanted)


def store_index(store: ser.Store) -> Any:
    return {u: i for i, u in enumerate(store.utterances)}.__getitem__


# Forked workers share the reader threads' state as it was: two of them, each on its own
# stream. A spawned one starts a whole Python (torch imported anew, seconds of CPU): one
# shows that the pickled dataset opens its own streams there, in the slow tier as every
# test of whole processes (in the fast one, `test_a_pickled_dataset_makes_its_own_streams`).
@pytest.mark.parametrize(
    ("context", "workers"), [("fork", 2), pytest.param("spawn", 1, marks=pytest.mark.slow)]
)
def test_a_dataloaders_workers_read_the_streamed_rows(
    chunked: Path, context: str, workers: int
) -> None:
    features, budget, _ = STREAMED[1]
    ids = side(chunked, features)
    held = ser.FeatureDataset(chunked, features, ids=ids, classes="4")
    streamed = ser.FeatureDataset(chunked, features, ids=ids, classes="4", memory_budget=budget)
    streamed[0]  # its reader threads started here before the workers fork
    expected = list(
        DataLoader(held, batch_sampler=held.batches(4, seed=3), collate_fn=held.collate)
    )
    loader = DataLoader(
        streamed,
        batch_sampler=streamed.batches(4, seed=3),
        collate_fn=streamed.collate,
        num_workers=workers,
        multiprocessing_context=context,
    )
    assert_same_batches(list(loader), expected)


def test_a_pickled_dataset_makes_its_own_streams(chunked: Path) -> None:
    features, budget, streams = STREAMED[2]
    data = ser.FeatureDataset(chunked, features, classes="4", memory_budget=budget)
    copy = pickle.loads(pickle.dumps(data))
    assert copy.data.features[streams[0]].stream is None  # threads are the process's own
    assert_same_items(data, copy)
    assert copy.data.features[streams[0]].stream is not data.data.features[streams[0]].stream


def test_the_block_shuffle_is_the_seeds_whatever_the_budget(chunked: Path) -> None:
    features, budget, _ = STREAMED[1]
    ids = side(chunked, features)
    held = ser.FeatureDataset(chunked, features, ids=ids, classes="4")
    streamed = ser.FeatureDataset(chunked, features, ids=ids, classes="4", memory_budget=budget)
    sampler = held.batches(8, seed=1)
    epochs = [list(sampler) for _ in range(2)]
    assert epochs[0] != epochs[1]  # a new order each epoch
    for epoch in epochs:
        assert sorted(i for batch in epoch for i in batch) == list(range(len(held)))
        assert len(epoch) == len(sampler) and all(len(b) == 8 for b in epoch[:-1])
    again = streamed.batches(8, seed=1)
    assert [list(again) for _ in range(2)] == epochs
    assert list(held.batches(8, seed=2)) != epochs[0]
    unshuffled = held.batches(8)
    assert list(unshuffled) == list(unshuffled) == list(streamed.batches(8))
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        held.batches(0)


def test_a_budget_too_small_or_not_a_size_is_refused(chunked: Path) -> None:
    with pytest.raises(ConfigError, match=r"memory_budget 1000 B cannot hold this dataset even"):
        ser.FeatureDataset(chunked, "hubert-tiny", classes="4", memory_budget="1KB")
    with pytest.raises(ConfigError, match=r"memory_budget 'lots' is not a size"):
        ser.FeatureDataset(chunked, "hubert-tiny", classes="4", memory_budget="lots")
    with pytest.raises(ConfigError, match="at least one byte, got 0"):
        ser.FeatureDataset(chunked, "hubert-tiny", classes="4", memory_budget=0)
    data = ser.FeatureDataset(chunked, "hubert-tiny", classes="4", memory_budget=10**9)
    assert data.budget == 10**9 and data.streamed == ()


def test_progress_is_said_on_stderr_only_when_asked(
    chunked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ser.FeatureDataset(chunked, "hubert-tiny+is13", classes="4")
    assert capsys.readouterr() == ("", "")
    data = ser.FeatureDataset(chunked, "hubert-tiny+is13", classes="4", progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    for name in ("hubert-tiny", "is13"):
        assert f"{name} (reading): {len(data)}/{len(data)} utterances" in err


def test_the_default_budget_is_ser_trains(chunked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    features, budget, streams = STREAMED[1]
    free = 2 * int(budget.removesuffix("KB")) * 1000  # the default takes half of it
    monkeypatch.setattr("ser.train.placement.available_memory", lambda: free)
    data = ser.FeatureDataset(chunked, features, ids=side(chunked, features), classes="4")
    assert data.streamed == streams and data.budget == free // 2
    assert data.budget_source == f"half of {human_bytes(free)} available RAM"


def test_every_sets_item_shape_is_said_a_layered_inputs_layers_too(chunked: Path) -> None:
    data = FeatureDataset(chunked, EVERY, ids=side(chunked, EVERY)[:3])
    assert data.shapes == {
        "hubert-tiny": (None, 6),
        "bert-tiny": (None, 5),
        "is13": (7,),
        "enc.L0-2": (None, 3, 6),
    }
    assert data.dims == {name: shape[-1] for name, shape in data.shapes.items()}
    item = data[0]
    for name, shape in data.shapes.items():
        assert item.features[name].shape[1:] == shape[1:] if shape[0] is None else shape
    batch = data.collate([data[0], data[1]])
    assert batch.x["enc.L0-2"].shape[2:] == (3, 6)  # [B, T, L, dim]


WIDE = "hubert-wide"


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """480 utterances of 2048-d float16 frames (about 8 MB) in 64 KiB chunks."""
    path = tmp_path_factory.mktemp("wide") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 64 * 2**10)
        labelled_store(path, {WIDE: ("hubert", "audio", "frame", 2048, "float16")}, per_dialog=48)
    return path


@pytest.mark.parametrize("every", [1, 4])  # a whole set; a side of a quarter of each chunk
def test_a_streamed_pass_holds_its_chunks_within_what_its_batches_leave(
    wide: Path, every: int
) -> None:
    """The chunk cache and the chunks being read (numpy's, which tracemalloc sees) stay
    within the budget less the room its batches take (torch's, which it does not); the
    allowance is the interpreter's own objects (a store's metadata read, until collected)."""
    ids = [str(u) for u in FeatureDataset(wide, WIDE).data.utt_ids[::every]]
    streamed = FeatureDataset(wide, WIDE, ids=ids, memory_budget="1.5MB")
    held = FeatureDataset(wide, WIDE, ids=ids)
    assert streamed.streamed == (WIDE,)
    expected = [held.collate(held.__getitems__(b)) for b in held.batches(4)]
    sampler = streamed.batches(4)
    room = streamed.budget - batch_room(streamed.data.features, 4)
    tracemalloc.start()
    try:
        start, same = tracemalloc.get_traced_memory()[0], True
        for want, b in zip(expected, sampler, strict=True):  # none kept: each compared
            got = streamed.collate(streamed.__getitems__(b))
            same = same and got.utt_ids == want.utt_ids and torch.equal(got.x[WIDE], want.x[WIDE])
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert same  # a side's rows kept of each chunk: the same batches
    assert room / 2 < peak <= room + 2**17  # the cache used, and no more


def test_batches_a_budget_cannot_hold_beside_its_cache_leave_it_a_windows_chunks(
    wide: Path,
) -> None:
    """Batches of 16 of up to 6 frames take 3 x 16 x 6 x 8 KiB in float32, more than the
    budget: the cache keeps what reads an epoch's chunks about once, not two chunks."""
    data = FeatureDataset(wide, WIDE, memory_budget="1MB")
    stream = data.data.features[WIDE].stream
    assert stream is not None and batch_room(data.data.features, 16) > data.budget
    for batch in data.batches(16):
        data.collate(data.__getitems__(batch))
    chunks = -(-stream.total_store_rows // stream.chunk_rows)
    assert stream.capacity > 2 and stream.reads < 1.5 * chunks  # 2.6 times at two chunks
