"""Loading cached features into memory and batching them (ser.train.data, ser.train.features)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ser.cache.manifest import Manifest
from ser.corpus.labels import get_label_set
from ser.errors import ConfigError, StoreError
from ser.models.batch import InputSpec
from ser.train.batches import Batches, bucket_batches, dialog_groups
from ser.train.data import fit_zscore, load_data, segment_mean
from ser.train.features import parse_feature_list, resolve_features
from tests.stores import add_layer_sets, example_columns, labelled_store


@dataclass
class FakeInfo:
    name: str
    modality: str
    level: str
    dim: int
    fingerprint: str
    complete: bool
    attrs: dict[str, Any]
    rows: int = 0


@dataclass
class FakeData:
    data: np.ndarray
    offsets: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)


class FakeStore:
    """The parts of `FeatureStore` the loader uses, in memory."""

    def __init__(self, manifest: Manifest) -> None:
        self.path = Path("fake.zarr")
        self.manifest = manifest
        self.sets: dict[str, tuple[FakeInfo, FakeData]] = {}

    def add(self, name, extractor, modality, level, rows, complete=True, dtype=np.float32, **more):
        lengths = [len(r) for r in rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        dim = next(r.shape[1] for r in rows if len(r))
        data = np.concatenate([r.reshape(-1, dim) for r in rows]).astype(dtype)
        attrs = {"extractor": extractor, "modality": modality, "level": level, **more}
        info = FakeInfo(name, modality, level, dim, f"fp-{name}", complete, attrs, len(data))
        self.sets[name] = (info, FakeData(data, offsets, attrs))

    def feature_sets(self) -> list[str]:
        return list(self.sets)

    def info(self, name: str) -> FakeInfo:
        return self.sets[name][0]

    def read(self, name: str) -> FakeData:
        return self.sets[name][1]


LABELS = ["neu", "hap", "sad", "ang", "exc", "fru"]


def make_manifest(n_per_dialog: int = 6, dialogs_per_session: int = 2) -> Manifest:
    ids = []
    for s in range(1, 6):
        for d in range(dialogs_per_session):
            for u in range(n_per_dialog):
                ids.append(f"Ses0{s}F_impro0{d}_{'FM'[u % 2]}{u:03d}")
    cols = example_columns(ids)
    rng = np.random.default_rng(0)
    cols["label"] = [LABELS[i % len(LABELS)] for i in range(len(ids))]
    # Manifest rows are not in dialog order: the loader must sort by `order`.
    n_dialogs = len(ids) // n_per_dialog
    cols["order"] = [int(x) for _ in range(n_dialogs) for x in rng.permutation(n_per_dialog)]
    return Manifest.from_columns(cols)


def make_store(seed: int = 0) -> FakeStore:
    manifest = make_manifest()
    n = len(manifest)
    rng = np.random.default_rng(seed)
    store = FakeStore(manifest)
    frames = [rng.normal(size=(int(rng.integers(1, 9)), 3)) for _ in range(n)]
    frames[4] = np.zeros((0, 3))  # a failed utterance
    store.add("hubert-base.L12", "hubert", "audio", "frame", frames, dtype=np.float16)
    functionals = [rng.normal(5.0, 3.0, size=(1, 4)) for _ in range(n)]
    for f in functionals:
        f[0, 3] = 7.0  # a constant column: its std is 0
    store.add("is13", "is13", "audio", "utterance", functionals)
    store.add("bert-tiny", "bert", "text", "token", [rng.normal(size=(2, 5)) for _ in range(n)])
    return store


def test_parse_feature_list() -> None:
    assert parse_feature_list("hubert+mpnet") == ("hubert", "mpnet")
    with pytest.raises(ConfigError, match="twice"):
        parse_feature_list("is13+is13")
    with pytest.raises(ConfigError):
        parse_feature_list("is13+")


def test_resolve_by_kind_exact_and_refusals() -> None:
    store = make_store()
    got = resolve_features(store, ["hubert", "bert-tiny", "is13"])
    assert [f.name for f in got] == ["hubert-base.L12", "bert-tiny", "is13"]
    assert [f.zscore for f in got] == [False, False, True]
    assert got[1].modality == "text" and got[0].dim == 3
    with pytest.raises(StoreError, match=r"'mpnet' is not in the store.*holds: bert-tiny"):
        resolve_features(store, ["mpnet"])
    store.add("hubert-base.L6", "hubert", "audio", "frame", [np.ones((1, 3))] * len(store.manifest))
    with pytest.raises(ConfigError, match=r"hubert-base.L12, hubert-base.L6"):
        resolve_features(store, ["hubert"])
    store.add("logmel80", "logmel", "audio", "frame", [np.ones((1, 2))] * 60, complete=False)
    with pytest.raises(StoreError, match=r"'logmel80'.*incomplete"):
        resolve_features(store, ["logmel"])


def test_load_keeps_class_set_and_reports_drops() -> None:
    store = make_store()
    feats = resolve_features(store, ["hubert", "is13"])
    data = load_data(store, feats, get_label_set("4"))
    labels = np.asarray(store.manifest.column("label"))
    in_set = np.isin(labels, ["neu", "hap", "sad", "ang", "exc"])
    assert in_set[4]  # the failed utterance had a 4-class label
    assert len(data) == in_set.sum() - 1
    assert 4 not in data.manifest_rows
    assert data.dropped == {
        "label outside class set 4": int((~in_set).sum()),
        "no rows in hubert-base.L12 (extraction failed)": 1,
    }
    # exc merges into hap under the 4-class set.
    codes = labels[data.manifest_rows]
    assert (data.labels[codes == "exc"] == data.classes.index("hap")).all()
    # Only kept rows stay in memory, and each utterance's rows are its own.
    table = data.features["hubert-base.L12"]
    raw = store.read("hubert-base.L12")
    for pos, row in enumerate(data.manifest_rows[:5]):
        a, b = raw.offsets[row], raw.offsets[row + 1]
        s, n = int(table.starts[pos]), int(table.lengths[pos])
        assert np.array_equal(table.flat[s : s + n].numpy(), raw.data[a:b])
    assert table.flat.dtype == torch.float16  # stored dtype kept in memory
    assert table.flat.shape[0] == table.lengths.sum()


def test_segment_mean_matches_loop() -> None:
    rng = np.random.default_rng(1)
    lengths = torch.tensor([3, 1, 5, 2])
    flat = torch.from_numpy(rng.normal(size=(11, 4)).astype(np.float16))
    got = segment_mean(flat, lengths, chunk_rows=3)  # chunks cut through segments
    starts = np.concatenate([[0], np.cumsum(lengths.numpy())[:-1]])
    want = [flat[s : s + n].float().mean(0) for s, n in zip(starts, lengths.tolist(), strict=True)]
    assert torch.allclose(got, torch.stack(want), atol=1e-6)


def test_zscore_uses_training_side_only() -> None:
    store = make_store()
    data = load_data(store, resolve_features(store, ["is13", "bert"]), get_label_set("4"))
    n = len(data)
    train, test = np.arange(0, n // 2), np.arange(n // 2, n)
    stats = fit_zscore(data, train)
    assert set(stats) == {"is13"}  # only openSMILE functionals are standardized
    spec = [InputSpec("is13", "audio", 4, "vector")]
    batches = Batches(data, train, spec, "utterance", batch_size=1000, zscore=stats)
    x = next(iter(batches)).x["is13"]
    assert torch.allclose(x[:, :3].mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x[:, :3].std(0, unbiased=False), torch.ones(3), atol=1e-4)
    assert torch.equal(x[:, 3], torch.zeros(len(train)))  # constant column: centred, std 1
    # Changing the test rows' features changes nothing in the statistics.
    table = data.features["is13"]
    table.flat[table.starts[torch.as_tensor(test)]] += 100.0
    again = fit_zscore(data, train)["is13"]
    assert torch.equal(again.mean, stats["is13"].mean) and torch.equal(again.std, stats["is13"].std)


def test_bucketing_covers_every_utterance_once_per_epoch() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=103)
    orders = []
    for _ in range(3):
        batches = bucket_batches(lengths, 8, rng)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(103))
        assert all(len(b) <= 8 for b in batches)
        orders.append(flat)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch
    # Buckets hold similar lengths: far less padding than a random order.
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.3 * np.ptp(lengths)
    evaluation = bucket_batches(lengths, 8, None)
    assert np.array_equal(np.concatenate(evaluation), np.argsort(lengths, kind="stable"))


def test_sequence_batches_gather_padded_rows() -> None:
    store = make_store()
    data = load_data(store, resolve_features(store, ["hubert"]), get_label_set("6"))
    spec = [InputSpec("hubert-base.L12", "audio", 3, "sequence")]
    positions = np.arange(len(data))
    seen = []
    for batch in Batches(data, positions, spec, "utterance", 4, shuffle=True, seed=3):
        x, mask = batch.x["hubert-base.L12"], batch.mask["hubert-base.L12"]
        assert x.dtype == torch.float32 and x.shape[:2] == mask.shape
        table = data.features["hubert-base.L12"]
        for i, row in enumerate(batch.index.tolist()):
            pos = int(np.flatnonzero(data.manifest_rows == row)[0])
            n = int(table.lengths[pos])
            assert mask[i].sum() == n and mask[i, :n].all()
            want = table.flat[int(table.starts[pos]) :][:n].float()
            assert torch.equal(x[i, :n], want) and not x[i, n:].any()
            assert batch.labels[i] == data.labels[pos]
        seen += batch.index.tolist()
    assert sorted(seen) == sorted(data.manifest_rows.tolist())


def test_dialog_batches_keep_order_and_split() -> None:
    store = make_store()
    data = load_data(store, resolve_features(store, ["bert", "is13"]), get_label_set("4"))
    sessions = np.asarray(store.manifest.column("session"))[data.manifest_rows]
    side = np.flatnonzero(sessions <= 3)
    groups = dialog_groups(data.dialogs, data.orders, side)
    assert len(groups) == 6
    for g in groups:
        assert len(set(data.dialogs[g])) == 1
        assert (np.diff(data.orders[g]) > 0).all()
    specs = [InputSpec("bert-tiny", "text", 5, "vector"), InputSpec("is13", "audio", 4, "vector")]
    zscore = fit_zscore(data, side)  # padding stays 0 after normalisation
    batches = Batches(data, side, specs, "dialog", 4, zscore=zscore, shuffle=True, seed=0)
    assert len(batches) == 2
    seen = []
    for batch in batches:
        assert batch.utt_mask is not None
        b, u = batch.utt_mask.shape
        assert batch.x["bert-tiny"].shape == (b, u, 5) and batch.labels.shape == (b, u)
        assert (batch.labels[~batch.utt_mask] == -100).all()
        assert (batch.index[~batch.utt_mask] == -1).all()
        assert not batch.x["is13"][~batch.utt_mask].any()
        for i in range(b):
            rows = batch.index[i][batch.utt_mask[i]].numpy()
            pos = np.searchsorted(data.manifest_rows, rows)
            assert len(set(data.dialogs[pos])) == 1 and (np.diff(data.orders[pos]) > 0).all()
            expect = data.features["bert-tiny"].vectors[torch.as_tensor(pos)]
            assert torch.allclose(batch.x["bert-tiny"][i, : len(pos)], expect)
            seen += rows.tolist()
    assert sorted(seen) == sorted(data.manifest_rows[side].tolist())


def test_dialog_unit_refuses_sequence_views() -> None:
    store = make_store()
    data = load_data(store, resolve_features(store, ["hubert"]), get_label_set("4"))
    spec = [InputSpec("hubert-base.L12", "audio", 3, "sequence")]
    with pytest.raises(ConfigError, match="vector views only"):
        Batches(data, np.arange(len(data)), spec, "dialog", 2)


def test_a_layered_input_is_one_table_of_every_layer(tmp_path: Path) -> None:
    store = labelled_store(tmp_path / "s.zarr", {})
    names = add_layer_sets(store, "w", ("hubert", "audio", "frame", 4, "float16"), range(3))
    (feature,) = resolve_features(store, ["w.L*"])
    data = load_data(store, [feature], get_label_set("6"))
    table = data.features["w.L0-2"]
    assert table.flat.shape == (len(store.read(names[0]).data), 3, 4)
    assert table.flat.dtype == torch.float16  # stored fp16 stays fp16
    for i, name in enumerate(names):
        layer = torch.from_numpy(store.read(name).data)
        assert torch.equal(table.flat[:, i], layer)
        torch.testing.assert_close(table.vectors[:, i], segment_mean(layer, table.lengths))
    spec = InputSpec("w.L0-2", "audio", 4, "sequence", layers=3)
    batch = next(iter(Batches(data, np.arange(len(data)), [spec], "utterance", 5)))
    x, mask = batch.x["w.L0-2"], batch.mask["w.L0-2"]
    assert x.shape == (5, mask.shape[1], 3, 4) and x.dtype == torch.float32  # [B, T, L, D]
    for i, row in enumerate(batch.index.tolist()):
        n, start = int(table.lengths[row]), int(table.starts[row])
        assert torch.equal(x[i, :n], table.flat[start : start + n].float())
        assert not x[i, n:].any()
    vector = replace(spec, view="vector")
    batch = next(iter(Batches(data, np.arange(len(data)), [vector], "utterance", 5)))
    assert torch.equal(batch.x["w.L0-2"], table.vectors[batch.index])  # [B, L, D]
    dialogs = next(iter(Batches(data, np.arange(len(data)), [vector], "dialog", 2)))
    assert dialogs.utt_mask is not None
    assert dialogs.x["w.L0-2"].shape == (*dialogs.utt_mask.shape, 3, 4)  # [B, U, L, D]
    assert not dialogs.x["w.L0-2"][~dialogs.utt_mask].any()


def test_layer_sets_must_hold_the_same_rows() -> None:
    store = make_store()
    rng = np.random.default_rng(1)
    counts = [int(rng.integers(1, 5)) for _ in range(len(store.manifest))]
    for layer in (0, 1):
        rows = [rng.normal(size=(n, 3)) for n in counts]
        if layer == 1:
            rows[7] = np.zeros((0, 3))  # failed in one layer: the utterance is dropped
        store.add(f"w.L{layer}", "hubert", "audio", "frame", rows, layer=layer, n_layers=1)
    data = load_data(store, resolve_features(store, ["w.L*"]), get_label_set("6"))
    assert 7 not in data.manifest_rows and len(data) == len(store.manifest) - 1
    assert data.dropped == {"no rows in w.L0-1 (extraction failed)": 1}
    table = data.features["w.L0-1"]
    assert len(table.flat) == sum(counts) - counts[7]
    for layer in (0, 1):
        stored = store.read(f"w.L{layer}")
        for pos, row in enumerate(data.manifest_rows):
            start, n = int(table.starts[pos]), int(table.lengths[pos])
            want = stored.data[stored.offsets[row] : stored.offsets[row + 1]]
            assert np.array_equal(table.flat[start : start + n, layer].numpy(), want)
    rows = [rng.normal(size=(n + (i == 3), 3)) for i, n in enumerate(counts)]
    store.add("w.L1", "hubert", "audio", "frame", rows, layer=1, n_layers=1)  # utterance 3: +1
    with pytest.raises(ConfigError, match=r"layer sets w.L0 and w.L1 of fake.zarr hold different"):
        load_data(store, resolve_features(store, ["w.L*"]), get_label_set("6"))
