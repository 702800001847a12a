"""The Python API's steps stay linear in the number of utterances (`tests/growth.py`): a
protocol's folds of a set's utterances, a side's `FeatureDataset` read batch by batch
(held, and streamed under a small `memory_budget`), and one utterance's `store.read`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import ser
import ser.cache.store as store_module
from tests.growth import assert_linear
from tests.stores import labelled_store

SETS = {
    "hubert-tiny": ("hubert", "audio", "frame", 6, "float16"),
    "is13": ("is13", "audio", "utterance", 7, "float32"),
}
FEATURES = "hubert-tiny+is13"
#: Bytes of `memory_budget` an utterance: a training side's is13 (22 bytes) held, its
#: frames (38 bytes) streamed, at both sizes.
BUDGET = 35
# Utterances (and 4 times as many) of each step, IEMOCAP-shaped: 10 dialogs of n // 10.
# Enough that the work per utterance, not the step's fixed cost, makes most of its time.
N_DATASET, N_FOLDS = 1000, 2500


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """stores(n, small=True): a labelled store of n utterances, made once per (n, small),
    read only; `small`: in chunks of 85 frame rows, so that a streamed side's reads cross
    many of them (else the store's own chunks: quicker to make)."""
    made: dict[tuple[int, bool], Path] = {}

    def get(n: int, small: bool = True) -> Path:
        if (n, small) not in made:
            path = tmp_path_factory.mktemp(f"n{n}") / "features.zarr"
            with pytest.MonkeyPatch.context() as patch:
                if small:
                    patch.setattr(store_module, "CHUNK_BYTES", 1024)
                labelled_store(path, SETS, per_dialog=n // 10)
            made[n, small] = path
        return made[n, small]

    return get


def test_folds_of_a_sets_utterances_grow_linearly(stores: Callable[..., Path]) -> None:
    """Which utterances have rows in the set, learnt from its offsets, then the folds."""

    def prepare(n: int) -> Callable[[], object]:
        path = stores(n, small=False)
        return lambda: ser.folds(path, protocol="loso", features=FEATURES)

    assert_linear(prepare, N_FOLDS, "ser.folds(store, features=...)", repeats=3)


@pytest.mark.parametrize("streamed", [False, True], ids=["held", "streamed"])
def test_a_sides_dataset_grows_linearly(stores: Callable[..., Path], streamed: bool) -> None:
    """A fold's training side as a `FeatureDataset` (its rows read, or their stream
    planned), then every batch read as a DataLoader with `batch_sampler=data.batches(32)`
    and `collate_fn=data.collate` reads it."""

    def prepare(n: int) -> Callable[[], object]:
        path = stores(n)
        train = ser.folds(path, protocol="loso", features=FEATURES)[0].train
        budget = f"{BUDGET * n}B" if streamed else None

        def read() -> None:
            data = ser.FeatureDataset(path, FEATURES, ids=train, memory_budget=budget)
            assert data.streamed == (("hubert-tiny",) if streamed else ())
            for batch in data.batches(32, seed=0):
                data.collate(data.__getitems__(batch))

        return read

    what = "ser.FeatureDataset" + " (streamed)" * streamed
    assert_linear(prepare, N_DATASET, what)


def test_reading_one_utterance_grows_at_most_linearly(stores: Callable[..., Path]) -> None:
    """Opened, its set's offsets found and its rows read: about constant (the manifest
    read on opening is linear)."""

    def prepare(n: int) -> Callable[[], object]:
        path = stores(n)

        def read() -> None:
            store = ser.open_store(path)
            assert store.read("hubert-tiny", store.utterances[n // 2]).shape[1] == 6

        return read

    assert_linear(prepare, N_DATASET, "store.read(set, utterance)")
