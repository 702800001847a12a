"""`ser train --views` (`ser.train.views`): a training side reads each utterance from a
view drawn each epoch among its clean set and the views `ser extract --augment` wrote
beside it; validation and test read the clean sets; off, nothing changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ser.corpus.labels import get_label_set
from ser.errors import ConfigError, FingerprintMismatch
from ser.export.reproduce import train_command, view_options
from ser.models.batch import Batch, InputSpec
from ser.report.runs import settings_label
from ser.runs.record import RECORD, write
from ser.train.batches import Batches, StackedSides
from ser.train.data import TrainData, load_data
from ser.train.features import resolve_features
from ser.train.recipe import train
from ser.train.views import resolve_views, with_views
from tests.stores import add_layer_sets, labelled_store
from tests.train.conftest import SETS, small_config
from tests.train.engine.test_ensemble import model_of
from tests.train.test_data import make_store

SEQ = InputSpec("hubert-base.L12", "audio", 3, "sequence")
VEC = InputSpec("is13", "audio", 4, "vector")
TEXT = InputSpec("bert-tiny", "text", 5, "sequence")
# Each view's rows: the clean rows plus its offset, so a batch says which it read.
OFFSETS = {"speed0.9": 100.0, "noise20db": 200.0}
VIEW = {
    "speed0.9": "speed=0.9",
    "speed1.1": "speed=1.1",
    "noise20db": "noise=20",
}  # each view's `view` attr
NO_SPEED = 7  # the utterance whose speed view failed (no rows): it reads clean there


def add_views(store: Any) -> Any:
    """`store` (`make_store`'s) with a speed and a noise view of hubert and is13; none of
    bert-tiny (text)."""
    for clean in ("hubert-base.L12", "is13"):
        info, data = store.sets[clean]
        rows = np.split(np.asarray(data.data, dtype=np.float64), data.offsets[1:-1])
        for label, offset in OFFSETS.items():
            view = [r + offset for r in rows]
            if label == "speed0.9" and info.level == "frame":
                # a speed view has other row counts: one row more where there are any
                view = [np.concatenate([r, r[-1:]]) if len(r) else r for r in view]
                view[NO_SPEED] = np.zeros((0, info.dim))
            kind, own = info.attrs["extractor"], {"view_of": clean, "view": VIEW[label]}
            store.add(f"{clean}.{label}", kind, info.modality, info.level, view,
                      dtype=data.data.dtype, **own)  # fmt: skip
    return store


def loaded(
    store: Any, views: str | None, names: tuple[str, ...] = ("hubert", "is13", "bert-tiny")
) -> TrainData:
    features = resolve_features(store, list(names))
    data = load_data(store, features, get_label_set("6"))
    return with_views(data, store, resolve_views(store, features, views))


@pytest.fixture(scope="module")
def store() -> Any:
    return add_views(make_store())


def _side(data: TrainData, specs: list[InputSpec], seed: int = 3, train: bool = True) -> Batches:
    return Batches(data, np.arange(len(data)), specs, "utterance", 4, shuffle=train, seed=seed)


def _epoch(sides: list[Batches]) -> list[Batch]:
    return [batch for _, batch, _ in StackedSides(sides).epoch()]


def _view_read(x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Which view each row of `x` [..., T, D] read (0 clean, 1 speed, 2 noise), by its
    rows' offset; -1 where it has no real row."""
    first = torch.where(real[..., :1], x[..., :1, 0], torch.nan).squeeze(-1)
    return torch.where(first.isnan(), -1, ((first + 50) // 100).clamp(0, 2)).long()


def test_training_batches_read_every_view_and_evaluation_the_clean_sets(store: Any) -> None:
    data = loaded(store, "all")
    assert data.views == ("noise20db", "speed0.9")  # `all`: sorted
    seen = set()
    for batch in _epoch([_side(data, [SEQ, VEC, TEXT])]):
        real = batch.mask[SEQ.name]
        read = _view_read(batch.x[SEQ.name], real)  # [K, B]
        vec = ((batch.x["is13"][..., 0] + 50) // 100).clamp(0, 2).long()
        labelled = batch.labels >= 0
        # one draw per utterance: hubert and is13 read the same view of it
        assert torch.equal(read[labelled], vec[labelled])
        # text has no views: always its clean rows
        assert batch.x[TEXT.name].abs().max() < 50
        seen |= set(read[labelled].tolist())
        # the speed view's row counts are its own (noise: clean's) and never padding
        speed = data.features[SEQ.name].views
        assert speed is not None
        position = {int(r): i for i, r in enumerate(data.manifest_rows)}
        rows, counts = batch.index[labelled].tolist(), real.sum(-1)[labelled].tolist()
        for row, v, n in zip(rows, read[labelled].tolist(), counts, strict=True):
            slot = {0: 0, 1: 2, 2: 1}[v]  # read order -> draw order (noise, speed)
            assert n == speed.lengths_np[slot, position[row]]
    assert seen == {0, 1, 2}
    for batch in _epoch([_side(data, [SEQ, VEC, TEXT], train=False)]):  # evaluation
        assert batch.x[SEQ.name].abs().max() < 50 and batch.x["is13"].abs().max() < 50


def test_a_dialog_model_s_training_side_reads_the_views_of_its_vectors(store: Any) -> None:
    data = loaded(store, "all")
    side = Batches(data, np.arange(len(data)), [VEC], "dialog", 2, shuffle=True, seed=3)
    seen = set()
    for batch in _epoch([side]):  # [K, B, U, D]
        real = batch.utt_mask
        assert real is not None and not batch.x["is13"][~real].any()  # padding: zeros
        seen |= set(((batch.x["is13"][real][:, 0] + 50) // 100).long().tolist())
    assert seen == {0, 1, 2}


def test_an_utterance_without_rows_in_a_view_reads_clean(store: Any) -> None:
    data = loaded(store, "speed0.9")
    at = int(np.flatnonzero(data.manifest_rows == NO_SPEED)[0])
    table = data.features[SEQ.name]
    assert table.views is not None
    assert table.views.starts[1, at] == table.starts[at]  # its speed slot: its clean rows
    assert table.views.lengths_np[1, at] == table.lengths_np[at]
    assert table.view_vectors[1, at].abs().max() < 50


def test_the_same_seed_draws_the_same_views_alone_or_stacked(store: Any) -> None:
    data = loaded(store, "all")
    views = lambda seed: [p.views.tolist() for p in _side(data, [SEQ], seed).plans()]  # noqa: E731
    assert views(3) == views(3) and views(3) != views(4)
    pair = _epoch([_side(data, [SEQ, VEC]), _side(data, [SEQ, VEC], 9)])
    alone = _epoch([_side(data, [SEQ, VEC])])
    for a, b in zip(pair, alone, strict=True):
        rows, steps = b.x[SEQ.name].shape[1:3]
        assert torch.equal(a.x[SEQ.name][0, :rows, :steps], b.x[SEQ.name][0])
        assert torch.equal(a.x["is13"][0, :rows], b.x["is13"][0])


def test_off_the_batches_are_those_of_a_store_without_views(store: Any) -> None:
    plain_store = make_store()
    plain, off, on = loaded(plain_store, None), loaded(store, None), loaded(store, "all")
    assert off.views == () and all(t.views is None for t in off.features.values())
    for name, table in plain.features.items():
        assert torch.equal(table.flat, off.features[name].flat)
    for train_side in (True, False):
        sides = [_side(d, [SEQ, VEC], train=train_side) for d in (plain, off)]
        a, b = (_epoch([side]) for side in sides)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert all(torch.equal(x.x[n], y.x[n]) for n in x.x)
            assert torch.equal(x.labels, y.labels) and torch.equal(x.index, y.index)
    # with views on, evaluation sides are still those batches exactly
    for x, y in zip(_epoch([_side(plain, [SEQ, VEC], train=False)]),
                    _epoch([_side(on, [SEQ, VEC], train=False)]), strict=True):  # fmt: skip
        assert all(torch.equal(x.x[n], y.x[n]) for n in x.x)


def test_a_plain_request_resolves_to_the_clean_set(store: Any) -> None:
    got = resolve_features(store, ["hubert", "is13", "hubert-base.L12.speed0.9"])
    assert [f.name for f in got] == ["hubert-base.L12", "is13", "hubert-base.L12.speed0.9"]


def test_views_asked_for_that_the_store_lacks_are_refused(store: Any) -> None:
    features = resolve_features(store, ["hubert", "bert-tiny"])
    with pytest.raises(ConfigError, match=r"speed1.1 in fake.zarr; they have noise20db, speed0.9"):
        resolve_views(store, features, "speed0.9,speed1.1")
    plain = make_store()
    with pytest.raises(ConfigError, match=r"holds no views.*--augment speed=0.9,1.1"):
        resolve_views(plain, resolve_features(plain, ["hubert"]), "all")
    with pytest.raises(ConfigError, match="once each"):
        resolve_views(store, features, "speed0.9,")


@pytest.fixture(scope="module")
def view_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer tests' labelled store with a noise view of is13 (the clean rows plus
    noise) and a slower speed view of hubert-tiny.L2 (more rows than the clean set: static
    shapes must hold the longest view's)."""
    path = tmp_path_factory.mktemp("views") / "features.zarr"
    store = labelled_store(path, SETS)
    rng = np.random.default_rng(5)
    for clean, label in (("is13", "noise20db"), ("hubert-tiny.L2", "speed0.9")):
        read, view = store.read(clean), f"{clean}.{label}"
        offsets, data = np.asarray(read.offsets), np.asarray(read.data, dtype=np.float32)
        rows = {i: data[offsets[i] : offsets[i + 1]] for i in range(len(store.manifest))}
        if label == "noise20db":
            rows = {i: r + rng.normal(0, 1, r.shape) for i, r in rows.items()}
        else:  # slower: more rows, the first quarter again at the end
            rows = {i: np.concatenate([r, r[: len(r) // 4 + 1]]) for i, r in rows.items()}
        attrs = dict(store.info(clean).attrs)
        attrs = {k: v for k, v in attrs.items() if k not in ("fingerprint", "complete")}
        store.begin_feature_set(view, attrs | {"view_of": clean, "view": VIEW[label]})
        store.shard_writer(view).write(0, rows, {})
        store.consolidate(view, 1)
    return path


def test_a_run_records_views_only_when_on_and_resumes(view_store: Path, tmp_path: Path) -> None:
    # one member at a time in this process: a resumed fold then trains bit for bit as before
    base = small_config(view_store, tmp_path, epochs=2, members_at_once=1, processes=1)
    plain = train(base)
    assert "views" in plain.config and plain.config["views"] is None  # recorded, off
    on = replace(base, views="all")
    full = train(on)
    assert full.name == plain.name + "_views-all" and full.config["views"] == "all"
    assert full.folds[0].curves != plain.folds[0].curves  # its steps read other rows
    path = tmp_path / full.name / RECORD
    write(path, replace(full, folds=full.folds[:2], complete=False))  # as if killed
    resumed = train(on)
    assert [f.curves for f in resumed.folds] == [f.curves for f in full.folds]
    with pytest.raises(ConfigError, match="views: 'all' -> off"):  # not relabelled a clean run
        train(replace(base, name=full.name))
    # the view sets' fingerprints are kept beside the inputs': views extracted again since
    # (as the record now says) refuse a resume as changed inputs do
    assert set(full.fingerprints) == {"is13", "is13.noise20db"}
    other = {**full.fingerprints, "is13.noise20db": "0" * 64}
    write(path, replace(resumed, fingerprints=other, folds=resumed.folds[:2], complete=False))
    with pytest.raises(FingerprintMismatch, match=r"is13.noise20db: 000000000000"):
        train(on)
    assert "views=all" in settings_label(full) and "--views all" in train_command(full)
    # the model card's `ser extract` of the audio sets makes the views it read again
    assert view_options(full) == ["--augment", "noise=20"] and view_options(plain) == []


def test_a_run_without_views_to_read_is_refused_before_its_folder(
    store_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"holds no views of is13; make them with `ser extract"):
        train(small_config(store_path, tmp_path, views="all"))
    with pytest.raises(ConfigError, match="noise20db"):
        train(small_config(store_path, tmp_path, views="noise20db"))
    cross = {"protocol": None, "test_store": str(store_path)}
    with pytest.raises(ConfigError, match=r"cross-corpus run \(--test-store\) does not take"):
        train(small_config(store_path, tmp_path, views="all", **cross))
    assert not any(tmp_path.iterdir())


def test_a_graphed_run_sees_the_eager_runs_views(view_store: Path, tmp_path: Path) -> None:
    """Views are drawn and gathered on the data side: a graphed step (on the CPU, the
    graphed path's copies of each batch, padded to static shapes as long as the longest
    view's) trains on the batches the eager one does; the text input reads clean."""
    mit = dict(zip(("features", "model"), model_of("msmser"), strict=True))
    base = small_config(view_store, tmp_path, epochs=2, protocol="session5", views="all", **mit)
    eager = train(replace(base, out=str(tmp_path / "eager")))
    graphed = train(replace(base, out=str(tmp_path / "graphed"), step="graphed"))
    assert graphed.execution.step == "graphed" and eager.name.endswith("_views-all")
    for a, b in zip(eager.folds, graphed.folds, strict=True):
        np.testing.assert_allclose(a.curves["train_loss"], b.curves["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(a.curves["val_loss"], b.curves["val_loss"], rtol=1e-5)


def test_a_layered_input_reads_the_view_each_of_its_layer_sets_has(tmp_path: Path) -> None:
    store = labelled_store(tmp_path / "layers.zarr", {})
    names = add_layer_sets(store, "w", ("hubert", "audio", "frame", 4, "float32"), range(3))
    for name in names:
        read, view = store.read(name), f"{name}.speed1.1"
        offsets, data = np.asarray(read.offsets), np.asarray(read.data)
        rows = {i: data[offsets[i] : offsets[i + 1]][::2] + 100 for i in range(len(offsets) - 1)}
        attrs = {
            k: v for k, v in store.info(name).attrs.items() if k not in ("fingerprint", "complete")
        }
        store.begin_feature_set(view, attrs | {"view_of": name, "view": "speed=1.1"})
        store.shard_writer(view).write(0, rows, {})
        store.consolidate(view, 1)
    features = resolve_features(store, ["w.L*"])
    assert features[0].sets == tuple(names)  # the layer sets alone, never their views
    data = with_views(
        load_data(store, features, get_label_set("4")), store, resolve_views(store, features, "all")
    )
    table = data.features[features[0].name]
    assert table.views is not None
    assert (table.views.lengths_np[1] == (table.lengths_np + 1) // 2).all()
    spec = InputSpec(features[0].name, "audio", 4, "sequence", layers=3)
    read = set()
    for batch in _epoch([_side(data, [spec])]):
        x, real = batch.x[spec.name], batch.mask[spec.name]  # [K, B, T, L, D], [K, B, T]
        first = x[..., 0][real]  # [R, L]: every real row's first column in each layer
        big = first.abs() > 50
        assert (big.all(-1) | ~big.any(-1)).all()  # all layers of a row read one view
        read |= set(big[:, 0].tolist())
    assert read == {True, False}
