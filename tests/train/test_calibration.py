"""`--calibrate temperature`: T fitted on the validation side only, kept in the checkpoint
and the fold entry, applied to the test probabilities and in `ser predict`; refused
with --val none; older checkpoints read as T = 1."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.corpus.labels import get_label_set
from ser.errors import ConfigError
from ser.heads.calibration import T_RANGE, scaled_softmax
from ser.predict.ensemble import probabilities
from ser.runs.predictions import read_predictions
from ser.train.calibration import logits_of
from ser.train.checkpoint import load_checkpoint
from ser.train.data import load_data
from ser.train.features import resolve_features
from ser.train.recipe import train
from tests.stores import labelled_store

from .conftest import small_config

SET = {"is13": ("is13", "audio", "utterance", 7, "float32")}
TEST_SESSION = "Ses05"  # --protocol session5's test side; session 1 validates


def _store(path: Path, test_noise: int | None = None) -> Path:
    """A store of weak class signal (probabilities short of certain); `test_noise`: the
    test session's rows replaced by noise of that seed, every other row as it was."""
    store = labelled_store(path, SET, per_dialog=12, signal=0.6)
    if test_noise is None:
        return path
    store = FeatureStore.open(path, "a")
    held = store.read("is13")
    ids = store.manifest.column("utt_id").tolist()
    rng = np.random.default_rng(test_noise)
    rows = {
        i: rng.normal(size=(1, 7)) * 3 if str(u).startswith(TEST_SESSION) else held.utterance(i)
        for i, u in enumerate(ids)
    }
    attrs = {k: held.attrs[k] for k in ("extractor", "modality", "level", "dim", "dtype", "seed")}
    store.delete_feature_set("is13")  # the same provenance would resume the whole set
    store.begin_feature_set("is13", attrs)
    store.shard_writer("is13").write(0, rows, {})
    store.consolidate("is13", 1)
    return path


def _calibrated(store: Path, out: Path, **changes: object) -> Path:
    config = small_config(store, out, protocol="session5", epochs=12, name="cal")
    train(replace(config, calibrate="temperature", **changes))  # type: ignore[arg-type]
    return out / "cal"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("calibrate")
    same = _calibrated(_store(root / "a.zarr"), root / "a")
    other = _calibrated(_store(root / "b.zarr", test_noise=7), root / "b")
    return same, other


def _entry(run_dir: Path) -> dict[str, object]:
    record = json.loads((run_dir / "run.json").read_text())
    assert record["config"]["calibrate"] == "temperature"
    (entry,) = record["folds"]
    return entry


def test_temperature_is_fitted_on_validation_only(runs: tuple[Path, Path]) -> None:
    same, other = runs
    t_same, t_other = _entry(same)["temperature"], _entry(other)["temperature"]
    assert isinstance(t_same, float) and T_RANGE[0] < t_same < T_RANGE[1]
    assert t_same == pytest.approx(t_other, rel=1e-6)  # another test side: the same T
    probs = [read_predictions(run / "predictions.csv").probs for run in runs]
    assert not np.allclose(probs[0], probs[1])  # while the test predictions differ


def test_temperature_is_kept_and_applied_in_predict(runs: tuple[Path, Path]) -> None:
    run_dir = runs[0]
    ckpt = load_checkpoint(run_dir, "seed0_session5")
    assert ckpt.temperature == _entry(run_dir)["temperature"]
    store = FeatureStore.open(run_dir.parent.parent / "a.zarr")
    data = load_data(store, resolve_features(store, list(ckpt.features)), get_label_set("4"))
    rows = np.asarray(ckpt.meta["test"]["rows"])
    where = {int(r): i for i, r in enumerate(data.manifest_rows)}
    positions = np.array([where[int(r)] for r in rows])
    scaled = probabilities(ckpt, data, positions)
    # A checkpoint without the field (an older one) reads as T = 1: the softmax's own.
    meta = {k: v for k, v in ckpt.meta.items() if k != "temperature"}
    older = replace(ckpt, meta=meta)
    assert older.temperature == 1.0
    plain = probabilities(older, data, positions)
    assert not np.allclose(scaled, plain, atol=1e-4)
    expected = scaled_softmax(logits_of(plain), ckpt.temperature)  # softmax(logits / T)
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    # predictions.csv holds the same calibrated probabilities, in manifest order
    table = read_predictions(run_dir / "predictions.csv")
    order = np.argsort(rows, kind="stable")
    np.testing.assert_allclose(table.probs, scaled[order], atol=2e-6)


def test_calibrate_refused_without_validation(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.zarr")
    with pytest.raises(ConfigError, match="--val none has none"):
        _calibrated(store, tmp_path, val="none")


def test_a_run_without_the_option_records_none_of_it(tmp_path: Path) -> None:
    from ser.train.identity import default_name
    from ser.train.options import TrainConfig

    config, context = small_config(tmp_path, tmp_path), {"classes": "4", "own_weights": "none"}
    assert "calibrate" not in default_name(config, "loso", context)
    named = default_name(replace(config, calibrate="temperature"), "loso", context)
    assert named.endswith("_calibrate-temperature")
    assert TrainConfig.__dataclass_fields__["calibrate"].default == "none"


def test_a_corpus_with_votes_records_the_test_sides_jsd_to_them(tmp_path: Path) -> None:
    from tests.train.test_targets import votes_store

    store = votes_store(tmp_path)  # happy utterances' votes: half happy, half angry
    config = small_config(store, tmp_path, protocol="speaker-kfold:5", classes=None, name="v")
    record = train(replace(config, calibrate="temperature"))
    table = read_predictions(tmp_path / "v" / "predictions.csv")
    happy = (table.gold == table.classes.index("hap")).mean()
    # JSD (base 2) of a one-hot and (1/2, 1/2) on its class and another: every other vote is
    # unanimous, the majority label's distribution itself
    half = 0.5 * (np.log2(4 / 3) + 0.5 * np.log2(2 / 3) + 0.5 * np.log2(2))
    votes = [entry.votes for entry in record.folds]
    assert sum(v["n"] for v in votes) == len(table)  # every test utterance voted
    majority = sum(v["majority"] * v["n"] for v in votes) / len(table)
    assert majority == pytest.approx(happy * half)
    assert all(0 < v["model"] < 1 for v in votes)


def test_a_temperature_at_an_end_of_the_search_is_said() -> None:
    from ser.train.calibration import at_bound

    assert "separates it fully" in at_bound(T_RANGE[0])
    assert "no better than chance" in at_bound(T_RANGE[1])
    assert at_bound(1.5) == ""
