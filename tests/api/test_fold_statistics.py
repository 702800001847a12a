"""What a fold's training side fits, offered to a researcher's own loop by the trainer's
own functions: its z-scores (`FeatureDataset(normalize=...)`, held or streamed), its
class weights (`class_weights`), and an utterance-level set as scikit-learn's `X, y`
(`arrays`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import ser
import ser.cache.store as store_module
from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.models.losses import balanced_weights
from ser.train.data import fit_zscore, load_data
from ser.train.features import parse_feature_list, resolve_features
from tests.stores import labelled_store

SETS = {
    "is13": ("is13", "audio", "utterance", 7, "float32"),
    "hubert-tiny": ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "utterance", 5, "float16"),
}
EVERY = "is13+hubert-tiny"


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sets of 240 utterances in tiny chunks, so that a small budget streams them."""
    path = tmp_path_factory.mktemp("statistics") / "features.zarr"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "CHUNK_BYTES", 256)
        labelled_store(path, SETS, per_dialog=24)
    return path


def trainers_side(path: Path, features: str) -> tuple[dict, np.ndarray, ser.api.Fold]:
    """The trainer's data (`load_data`, held) of a LOSO fold, and its training positions."""
    store = FeatureStore.open(path)
    resolved = resolve_features(store, parse_feature_list(features))
    data = load_data(store, resolved, store.corpus.label_set("4"), "cpu")
    fold = ser.folds(path, protocol="loso", classes=4, features=features)[1]
    row = {str(u): i for i, u in enumerate(data.utt_ids)}
    return data, np.array([row[u] for u in fold.train]), fold


def test_a_training_sides_z_scores_are_the_trainers(chunked: Path) -> None:
    data, train, fold = trainers_side(chunked, EVERY)
    trainers = fit_zscore(data, train)  # what `ser train` fits: the is13 functionals
    assert list(trainers) == ["is13"]
    held = ser.FeatureDataset(chunked, EVERY, ids=fold.train, classes=4, normalize="train")
    assert held.zscore is not None and list(held.zscore) == ["is13", "hubert-tiny"]
    torch.testing.assert_close(held.zscore["is13"].mean, trainers["is13"].mean)
    torch.testing.assert_close(held.zscore["is13"].std, trainers["is13"].std)
    # a frame set's columns over every frame of the side (the trainer's rows, not means)
    store = ser.open_store(chunked)
    frames = np.concatenate([store.read("hubert-tiny", u) for u in fold.train]).astype(np.float64)
    z = held.zscore["hubert-tiny"]
    np.testing.assert_allclose(z.mean.numpy(), frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(z.std.numpy(), frames.std(0), rtol=1e-5)


@pytest.mark.parametrize(
    ("features", "budget", "streams"),
    [(EVERY, "6KB", ("hubert-tiny",)), ("is13+bert-tiny", "4KB", ("is13",))],
)
def test_a_streamed_side_fits_the_same_z_scores(
    chunked: Path, features: str, budget: str, streams: tuple[str, ...]
) -> None:
    fold = ser.folds(chunked, protocol="loso", classes=4, features=features)[1]
    held = ser.FeatureDataset(chunked, features, ids=fold.train, classes=4, normalize="train")
    streamed = ser.FeatureDataset(
        chunked, features, ids=fold.train, classes=4, normalize="train", memory_budget=budget
    )
    assert streamed.streamed == streams and held.streamed == ()
    assert held.zscore is not None and streamed.zscore is not None
    for name in held.sets:
        torch.testing.assert_close(streamed.zscore[name].mean, held.zscore[name].mean)
        torch.testing.assert_close(streamed.zscore[name].std, held.zscore[name].std)
        torch.testing.assert_close(streamed[4].features[name], held[4].features[name])


def test_another_side_is_scaled_by_the_training_sides_statistics(chunked: Path) -> None:
    fold = ser.folds(chunked, protocol="loso", classes=4, features=EVERY)[1]
    train = ser.FeatureDataset(chunked, EVERY, ids=fold.train, classes=4, normalize="train")
    test = ser.FeatureDataset(chunked, EVERY, ids=fold.test, classes=4, normalize=train)
    raw = ser.FeatureDataset(chunked, EVERY, ids=fold.test, classes=4)
    assert test.zscore is not None and train.zscore is not None and raw.zscore is None
    for name in test.sets:
        z = train.zscore[name]
        torch.testing.assert_close(test[2].features[name], (raw[2].features[name] - z.mean) / z.std)
    batch = test.collate([test[0], test[1]])  # padding stays zeros after the scaling
    frames = batch.x["hubert-tiny"][~batch.mask["hubert-tiny"]]
    assert not frames.any()
    again = ser.FeatureDataset(chunked, EVERY, ids=fold.test, classes=4, normalize=train.zscore)
    torch.testing.assert_close(again[2].features["is13"], test[2].features["is13"])


def test_normalize_refuses_what_it_cannot_use(chunked: Path) -> None:
    fold = ser.folds(chunked, protocol="loso", classes=4, features=EVERY)[1]
    raw = ser.FeatureDataset(chunked, "is13", ids=fold.train, classes=4)
    fitted = ser.FeatureDataset(chunked, "is13", ids=fold.train, classes=4, normalize="train")
    with pytest.raises(ConfigError, match="normalize takes 'train'"):
        ser.FeatureDataset(chunked, "is13", classes=4, normalize="test")
    with pytest.raises(ConfigError, match="made without normalize='train'"):
        ser.FeatureDataset(chunked, "is13", classes=4, normalize=raw)
    with pytest.raises(ConfigError, match="no statistics of set hubert-tiny"):
        ser.FeatureDataset(chunked, EVERY, classes=4, normalize=fitted)
    with pytest.raises(ConfigError, match="it has none"):
        ser.FeatureDataset(chunked, "is13", ids=[], classes=4, normalize="train")
    with pytest.raises(TypeError, match="statistics of is13 must be a ZScore"):
        ser.FeatureDataset(chunked, "is13", classes=4, normalize={"is13": (0.0, 1.0)})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="normalize takes"):
        ser.FeatureDataset(chunked, "is13", classes=4, normalize=1.5)  # type: ignore[arg-type]


def test_class_weights_are_the_trainers_balanced_ones(chunked: Path) -> None:
    fold = ser.folds(chunked, protocol="loso", classes=4, features="is13")[0]
    data = ser.FeatureDataset(chunked, "is13", ids=fold.train, classes=4)
    _, y = data.arrays()
    weights = data.class_weights()
    assert weights.dtype == torch.float32 and weights.shape == (len(data.classes),)
    np.testing.assert_allclose(weights.numpy(), balanced_weights(y, 4), rtol=1e-6)
    counts = np.bincount(y, minlength=4)
    np.testing.assert_allclose(weights.numpy(), len(y) / (4 * counts), rtol=1e-6)
    one = ser.FeatureDataset(chunked, "is13", ids=[fold.train[0]], classes=4)
    assert (one.class_weights() > 0).sum() == 1  # a class the side lacks weighs 0


def test_utterance_level_sets_as_sklearns_arrays(chunked: Path) -> None:
    fold = ser.folds(chunked, protocol="loso", classes=4, features="is13+bert-tiny")[0]
    data = ser.FeatureDataset(chunked, "is13+bert-tiny", ids=fold.test, classes=4)
    x, y = data.arrays()
    assert x.shape == (len(fold.test), 7 + 5) and x.dtype == np.float32 and y.dtype == np.int64
    store = ser.open_store(chunked)
    third = np.concatenate([store.read(name, fold.test[3]) for name in ("is13", "bert-tiny")])
    np.testing.assert_array_equal(x[3], third.astype(np.float32))
    assert y.tolist() == [data[i].label for i in range(len(data))]
    scaled = ser.FeatureDataset(chunked, "is13", ids=fold.test, classes=4, normalize="train")
    xs, _ = scaled.arrays()
    np.testing.assert_allclose(xs.mean(0), 0, atol=1e-5)
    held = ser.FeatureDataset(chunked, "is13+bert-tiny", ids=fold.train, classes=4)
    streamed = ser.FeatureDataset(
        chunked, "is13+bert-tiny", ids=fold.train, classes=4, memory_budget="4KB"
    )
    assert streamed.streamed == ("is13",)
    np.testing.assert_array_equal(streamed.arrays()[0], held.arrays()[0])


def test_arrays_of_a_frame_level_set_is_refused_naming_it(chunked: Path) -> None:
    data = ser.FeatureDataset(chunked, EVERY, ids=[], classes=4)
    with pytest.raises(ValueError, match="hubert-tiny is frame-level"):
        data.arrays()
