"""Training on emotion attributes, on both heads at once and on soft labels: what the
runs learn, record and write, and the categorical run left as it was."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.cache import FeatureStore
from ser.cache.manifest import Manifest
from ser.corpus.registry import read_corpus
from ser.errors import ConfigError
from ser.heads.attributes import AttributeHead
from ser.heads.targets import Targets
from ser.runs.predictions import read_predictions
from ser.runtime.progress import EpochLines
from ser.train.checkpoint import load_run_checkpoints
from ser.train.data import fit_target_scale
from ser.train.recipe import Progress, json_summary, train
from tests.stores import add_labelled_set, labelled_store

from .conftest import SETS, small_config


@pytest.fixture(scope="module")
def attribute_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attributes") / "features.zarr"
    labelled_store(path, {"is13": SETS["is13"]}, attributes=True)
    return path


def test_an_attribute_run_learns_on_held_out_sessions(
    attribute_store: Path, tmp_path: Path
) -> None:
    config = small_config(attribute_store, tmp_path, target="attributes", epochs=12)
    record = train(config, Progress())
    assert record.config["target"] == "attributes" and "classes" in record.config
    assert record.name.endswith("_target-attributes")
    assert all(e.metrics is None for e in record.folds)  # no categorical head
    for entry in record.folds:
        scores = entry.attributes
        assert scores.ccc_mean > 0.3, entry.fold  # well above 0 on a held-out session
        assert entry.curves["val_ccc"]  # selected on the validation side's mean CCC
    assert record.summary is not None and record.summary["ccc_mean"] > 0.45
    summary = json_summary(record)  # `ser train --json`
    assert "ua" not in summary and summary["ccc_mean"] == record.summary["ccc_mean"]
    assert all("ccc_mean" in fold for fold in summary["folds"])
    # Every utterance with attributes is trained and tested, in or out of a class set.
    store = FeatureStore.open(attribute_store)
    table = read_predictions(tmp_path / record.name / "predictions.csv")
    assert len(table) == len(store.manifest)
    rows = table.row
    gold = np.asarray(store.manifest.column("arousal"))[rows]
    assert np.allclose(table.attr_gold[:, 0], gold, atol=1e-6)  # the corpus's own scale
    assert 1.5 < np.nanmean(table.attr_pred[:, 0]) < 4.5


@pytest.mark.slow
def test_emotion_and_attributes_from_one_body(attribute_store: Path, tmp_path: Path) -> None:
    config = small_config(attribute_store, tmp_path, target="emotion+arousal", epochs=6)
    record = train(config, Progress())
    assert record.config["attribute_weight"] == 1.0
    assert record.data.without_attribute == {"arousal": 0}
    for entry in record.folds:
        assert entry.metrics.ua > 40
        assert set(entry.attributes.scores) == {"arousal"}
    [checkpoint, *_] = load_run_checkpoints(tmp_path / record.name)
    assert checkpoint.targets.attributes == ("arousal",)
    assert checkpoint.target_scale is not None and checkpoint.target_scale.mean.shape == (1,)
    assert checkpoint.build().mlp.out.out_features == 4 + 1  # type: ignore[union-attr]


def test_a_categorical_run_records_what_it_did(attribute_store: Path, tmp_path: Path) -> None:
    record = train(small_config(attribute_store, tmp_path), Progress())
    run = tmp_path / record.name
    written = json.loads((run / "run.json").read_text())
    off = ("target", "attribute_loss", "attribute_weight", "labels", "calibrate")
    assert {k: written["config"][k] for k in off} == dict.fromkeys(off)  # recorded, off
    for entry in written["folds"]:
        assert "attributes" not in entry and "val_ccc" not in entry["curves"]
    header = (run / "predictions.csv").read_text().splitlines()[0]
    assert header == "seed,fold,utt_id,speaker,row,gold,pred,p_neu,p_hap,p_sad,p_ang"
    sidecar = json.loads(next((run / "checkpoints").glob("*.json")).read_text())
    assert "targets" not in sidecar


def test_refusals(attribute_store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="class-weights"):
        train(small_config(attribute_store, tmp_path, target="attributes",
                           class_weights="balanced"), Progress())  # fmt: skip
    with pytest.raises(ConfigError, match="does not record where its IEMOCAP corpus is"):
        train(small_config(attribute_store, tmp_path, labels="soft"), Progress())
    with pytest.raises(ConfigError, match="trains the categorical head"):
        train(small_config(attribute_store, tmp_path, target="arousal", labels="soft"), Progress())


def votes_store(tmp_path: Path) -> Path:
    """A manifest corpus whose happy utterances' annotators half say angry, and its store."""
    rows = []
    for i in range(60):
        label = ("neu", "hap", "sad", "ang")[i % 4]
        votes = "hap;ang;ang;hap" if label == "hap" else f"{label};{label}"
        rows.append({"utt_id": f"u{i:02d}", "wav": f"u{i:02d}.wav", "label": label,
                     "speaker": f"s{i % 5}", "votes": votes})  # fmt: skip
    corpus = tmp_path / "corpus.csv"
    with corpus.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    kind, reading = read_corpus(corpus, "manifest", "all")
    path = tmp_path / "votes.zarr"
    store = FeatureStore.create(
        path, Manifest.from_utterances(reading.utterances), kind.attrs(reading)
    )
    add_labelled_set(store, "is13", SETS["is13"], signal=0.7)
    return path


@pytest.mark.slow
def test_soft_labels_change_what_the_categorical_head_learns(tmp_path: Path) -> None:
    path = votes_store(tmp_path)
    common = {"protocol": "speaker-kfold:5", "classes": None, "epochs": 8}
    hard = train(small_config(path, tmp_path / "hard", **common), Progress())
    soft = train(small_config(path, tmp_path / "soft", labels="soft", **common), Progress())
    assert soft.config["labels"] == "soft" and hard.config["labels"] is None
    assert soft.data.votes_fallback == 0

    def angry_on_happy(run: Path) -> float:
        table = read_predictions(run / "predictions.csv")
        happy = table.gold == table.classes.index("hap")
        return float(table.probs[happy, table.classes.index("ang")].mean())

    # Trained on half-angry votes, happy utterances are given more of angry.
    assert (
        angry_on_happy(tmp_path / "soft" / soft.name)
        > angry_on_happy(tmp_path / "hard" / hard.name) + 0.1
    )


def test_predictions_stay_within_the_training_sides_ratings() -> None:
    """A test input far from the training side's (IS13's near-constant columns z-scored)
    gives a regression any output; a rating outside every training rating is clipped."""
    data = type("Data", (), {})()
    data.targets = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 4.0]])
    data.attributes, data.device = ("arousal", "valence"), torch.device("cpu")
    scale = fit_target_scale(data, np.arange(3))  # type: ignore[arg-type]
    assert scale is not None
    assert scale.mean.tolist() == [3.0, 3.0] and scale.low.tolist() == [1.0, 2.0]
    predicted = np.array([[-40.0, 3.0], [2.5, 9.0]])
    head = AttributeHead(("arousal", "valence"))
    assert head.bounded(predicted, scale).tolist() == [[1.0, 3.0], [2.5, 4.0]]
    assert head.bounded(predicted, None) is predicted
    # every head's through the run's targets; the category's left as it is
    targets = Targets.parse("emotion+arousal+valence")
    probs = np.array([[0.25, 0.75], [1.0, 0.0]])
    bounded = targets.bounded((probs, predicted), scale)
    assert bounded[0] is probs and bounded[1].tolist() == [[1.0, 3.0], [2.5, 4.0]]


def test_the_epochs_show_the_score_validation_selects_on(
    attribute_store: Path, tmp_path: Path
) -> None:
    said: list[str] = []
    lines = EpochLines(said.append, interval=0)

    class Lines(Progress):
        def selects_on(self, score: str) -> None:
            lines.score = score

        def fold_start(self, seed: int, fold: str, epochs: int) -> None:
            lines.start(fold)

        def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
            lines.epoch(epoch, epochs, train_loss, val_ua)

    train(small_config(attribute_store, tmp_path, target="attributes", epochs=2), Lines())
    assert said and all(" val CCC " in line for line in said)
    assert re.search(r"val CCC -?\d\.\d{3} ", said[-1])
    said.clear()
    train(small_config(attribute_store, tmp_path, epochs=2), Lines())
    assert said and all(re.search(r" val UA \d+\.\d ", line) for line in said)
