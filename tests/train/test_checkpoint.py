"""Checkpoints (ser.train.checkpoint): saved per (seed, fold), consistent with run.json,
and reproducing the run's test predictions exactly when loaded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.corpus.labels import get_label_set
from ser.errors import CheckpointError
from ser.models import ModelConfig
from ser.predict.ensemble import probabilities
from ser.train.checkpoint import (
    checkpoint_dir,
    checkpoint_keys,
    load_checkpoint,
    load_run_checkpoints,
)
from ser.train.data import load_data
from ser.train.features import resolve_features
from ser.train.recipe import TrainConfig, train
from tests.stores import add_layer_sets, labelled_store

from .conftest import small_config


def config(store: Path, out: Path, **changes: Any) -> TrainConfig:
    return small_config(store, out, **{"epochs": 3, "name": "run", **changes})


def reproduce(run_dir: Path, store: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(run's test predictions, the loaded checkpoint's) on the fold's test rows."""
    ckpt = load_checkpoint(run_dir, key)
    opened = FeatureStore.open(store)
    data = load_data(opened, resolve_features(opened, list(ckpt.features)), get_label_set("4"))
    rows = np.asarray(ckpt.meta["test"]["rows"])
    position = {int(r): i for i, r in enumerate(data.manifest_rows)}
    probs = probabilities(ckpt, data, np.array([position[int(r)] for r in rows]))
    return np.asarray(ckpt.meta["test"]["pred"]), probs.argmax(axis=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("features", "model"),
    [
        (("is13",), ModelConfig(fusion="none")),
        (("hubert", "bert"), ModelConfig(fusion="mit", d_model=8, heads=2, queries=2)),
        (("is13", "bert"), ModelConfig(fusion="attention", fusion_at="middle", d_model=8)),
    ],
    ids=["unimodal-zscore", "msmser-sequences", "dialog-context"],
)
def test_checkpoints_reproduce_the_runs_test_predictions(
    store_path: Path, tmp_path: Path, features: tuple[str, ...], model: ModelConfig
) -> None:
    record = train(config(store_path, tmp_path, features=features, model=model))
    run_dir = tmp_path / "run"
    keys = checkpoint_keys(run_dir)
    assert keys == sorted(f"seed0_{e.fold}" for e in record.folds)
    for key in keys:
        expected, got = reproduce(run_dir, store_path, key)
        assert len(expected) > 0 and np.array_equal(expected, got)


def test_sidecar_holds_what_rebuilds_the_model(store_path: Path, tmp_path: Path) -> None:
    train(config(store_path, tmp_path, protocol="session5"))
    ckpt = load_checkpoint(tmp_path / "run", "seed0_session5")
    store = FeatureStore.open(store_path)
    assert ckpt.classes == ("neu", "hap", "sad", "ang")
    assert ckpt.features["is13"]["fingerprint"] == store.info("is13").attrs["fingerprint"]
    assert ckpt.features["is13"]["attrs"]["extractor"] == "is13"
    assert set(ckpt.zscore) == {"is13"} and ckpt.zscore["is13"].mean.shape == (7,)
    assert ckpt.meta["seed"] == 0 and ckpt.meta["fold"] == "session5"
    assert ckpt.model == ModelConfig(fusion="none")
    leftovers = [p.name for p in checkpoint_dir(tmp_path / "run").iterdir() if p.name[0] == "."]
    assert leftovers == []  # atomic writes leave no temp files


def test_a_run_opens_its_store_once_whatever_its_checkpoints(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each open parses the store's manifest (0.4-0.7 s for a 5531-utterance store on a
    busy machine): 10 checkpoints read the provenance the run read when it opened it."""
    opened: list[Any] = []
    original = FeatureStore.open.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        FeatureStore,
        "open",
        classmethod(lambda cls, *a, **k: opened.append(a) or original(cls, *a, **k)),
    )
    train(config(store_path, tmp_path, seeds=2, protocol="loso"))
    assert len(checkpoint_keys(tmp_path / "run")) == 10 and len(opened) == 1


def test_resume_retrains_entries_without_checkpoints(store_path: Path, tmp_path: Path) -> None:
    train(config(store_path, tmp_path))
    run_dir = tmp_path / "run"
    (checkpoint_dir(run_dir) / "seed0_fold2.json").unlink()  # lost: entry must go too
    record = train(config(store_path, tmp_path))
    folds = sorted(e.fold for e in record.folds)
    assert folds == [f"fold{s}" for s in range(1, 6)]
    assert checkpoint_keys(run_dir) == [f"seed0_fold{s}" for s in range(1, 6)]
    on_disk = json.loads((run_dir / "run.json").read_text())
    assert len(on_disk["folds"]) == 5


def test_overwrite_discards_old_checkpoints(store_path: Path, tmp_path: Path) -> None:
    train(config(store_path, tmp_path, seeds=2, protocol="session5"))
    assert checkpoint_keys(tmp_path / "run") == ["seed0_session5", "seed1_session5"]
    train(config(store_path, tmp_path, protocol="session5", overwrite=True))
    assert checkpoint_keys(tmp_path / "run") == ["seed0_session5"]


def test_final_trains_on_every_session(store_path: Path, tmp_path: Path) -> None:
    record = train(config(store_path, tmp_path, protocol="session5", final=True))
    final = load_checkpoint(tmp_path / "run", "final")
    assert record.final.epochs == record.folds[0].best_epoch
    assert final.meta["epochs"] == record.final.epochs
    assert record.final.utterances == record.data.utterances
    assert [c.key for c in load_run_checkpoints(tmp_path / "run")] == ["seed0_session5"]
    assert [c.key for c in load_run_checkpoints(tmp_path / "run", "final")] == ["final"]


def test_a_staged_final_model_says_each_stage(store_path: Path, tmp_path: Path) -> None:
    """`--final` on Zhou et al.'s staged model: its epoch lines come under a stage line
    each, as the folds' do (they read as one stage's lines repeated)."""
    from ser.train.recipe import Progress

    class Said(Progress):
        def __init__(self) -> None:
            self.messages: list[str] = []

        def message(self, text: str) -> None:
            self.messages.append(text)

    said = Said()
    model = ModelConfig(fusion="late-prob", d_model=8, cnn_channels=(2, 3))
    staged = config(
        store_path,
        tmp_path,
        protocol="session5",
        final=True,
        model=model,
        features=("hubert-tiny.L2", "bert-tiny"),
        epochs=1,
    )
    train(staged, said)
    after = said.messages[[m.startswith("--final") for m in said.messages].index(True) :]
    assert [m for m in after if m.startswith("stage ")] == [
        "stage 1 of 3: audio alone",
        "stage 2 of 3: text alone",
        "stage 3 of 3: the whole model",
    ]


def test_a_folder_without_a_run_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not a run's folder .* give the folder"):
        load_run_checkpoints(tmp_path)


def test_a_truncated_checkpoint_names_its_file_and_fold_and_the_way_back(
    store_path: Path, tmp_path: Path
) -> None:
    train(config(store_path, tmp_path, protocol="session5"))
    run_dir = tmp_path / "run"
    weights = checkpoint_dir(run_dir) / "seed0_session5.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError) as caught:
        load_run_checkpoints(run_dir)
    said = str(caught.value)
    assert said.startswith(f"checkpoint {weights} (seed 0, fold session5) cannot be read (")
    assert "\n" not in said and said.endswith("trains that fold again and keeps the others")
    weights.unlink()  # as the message says: the same command trains that fold again
    train(config(store_path, tmp_path, protocol="session5"))
    assert [c.key for c in load_run_checkpoints(run_dir)] == ["seed0_session5"]


def test_a_layered_run_saves_every_layer_set_and_its_mix(tmp_path: Path) -> None:
    store = labelled_store(tmp_path / "s.zarr", {})
    add_layer_sets(store, "enc", ("hubert", "audio", "frame", 6, "float16"), range(3))
    layered = config(tmp_path / "s.zarr", tmp_path, features=("enc.L*",), protocol="session5")
    final = train(replace(layered, final=True)).final
    assert final is not None
    assert final.layer_weights is not None
    assert len(final.layer_weights["enc.L0-2"]) == 3  # the final model's weights too
    ckpt = load_checkpoint(tmp_path / "run", "seed0_session5")
    (spec,) = ckpt.specs
    assert (spec.name, spec.layers) == ("enc.L0-2", 3)
    assert ckpt.stored(spec) == ["enc.L0", "enc.L1", "enc.L2"] == list(ckpt.features)
    assert ckpt.layers == {
        "enc.L0-2": {"sets": ["enc.L0", "enc.L1", "enc.L2"], "layers": [0, 1, 2]}
    }
    for name in ckpt.stored(spec):
        assert ckpt.features[name]["fingerprint"] == store.info(name).attrs["fingerprint"]
        assert ckpt.features[name]["attrs"]["layer"] == int(name[-1])
    weights = ckpt.build().layer_weights()  # type: ignore[operator]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert weights["enc.L0-2"] == pytest.approx(record["folds"][0]["layer_weights"]["enc.L0-2"])
    # the canonical name asks for the same sets again: the test side comes out the same
    opened = FeatureStore.open(tmp_path / "s.zarr")
    data = load_data(opened, resolve_features(opened, [spec.name]), get_label_set("4"))
    rows = np.asarray(ckpt.meta["test"]["rows"])
    position = {int(r): i for i, r in enumerate(data.manifest_rows)}
    probs = probabilities(ckpt, data, np.array([position[int(r)] for r in rows]))
    assert probs.argmax(axis=1).tolist() == ckpt.meta["test"]["pred"]


def test_a_plain_runs_sidecar_holds_no_layers(store_path: Path, tmp_path: Path) -> None:
    train(config(store_path, tmp_path, protocol="session5"))
    ckpt = load_checkpoint(tmp_path / "run", "seed0_session5")
    assert "layers" not in ckpt.meta and all("layers" not in s for s in ckpt.meta["specs"])
    assert ckpt.specs[0].layers == 1 and ckpt.layers == {}
