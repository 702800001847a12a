"""Cross-corpus runs (`ser train --test-store`, ser.train.cross): trained on all of one
store, tested on another's utterances of the emotions both have."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.models import ModelConfig
from ser.report.runs import protocol_label
from ser.runs.fold_entry import Sizes
from ser.runs.predictions import read_predictions
from ser.runs.record import RunRecord, read
from ser.train.checkpoint import load_run_checkpoints
from ser.train.recipe import Progress, TrainConfig, train
from tests.stores import corpus_store

from .conftest import small_config

IEMOCAP_LABELS = ["neu", "hap", "sad", "ang", "exc", "fru"] * 16
MELD_LABELS = ["neu.neu", "hap.pos", "sad.neg", "ang.neg", "sur.pos", "dis.neg", "fea.neg"] * 8


class Said(Progress):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cross")
    paths = {name: root / f"{name}.zarr" for name in ("iemocap", "meld", "shifted")}
    corpus_store(paths["iemocap"], "iemocap", IEMOCAP_LABELS)
    corpus_store(paths["meld"], "meld", MELD_LABELS)
    # MELD's utterances, every feature 100 higher: a z-score fitted on them (or on both
    # stores) would move the mean far from the training store's
    corpus_store(paths["shifted"], "meld", MELD_LABELS[:-7], shift=100.0)
    return paths


def config(train_on: Path, test_on: Path | None, out: Path, **changes: Any) -> TrainConfig:
    """The trainer tests' small run, on `train_on` tested on `test_on`: no protocol (a
    cross-corpus run has its own), 3 epochs."""
    test_store = None if test_on is None else str(test_on)
    return small_config(train_on, out, **{"test_store": test_store, "protocol": None,
                                          "epochs": 3, **changes})  # fmt: skip


def test_trains_on_one_store_and_tests_on_the_other(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    said = Said()
    record = train(config(stores["iemocap"], stores["meld"], tmp_path), said)
    assert record.name == "is13_none_iemocap-to-meld_c4" and record.protocol == "cross"
    (entry,) = record.folds
    # all of IEMOCAP's 4 classes (exc merged into hap: 80 utterances) less 10 % of each
    # for validation; MELD's utterances of neu, hap, sad, ang (4 x 8) tested
    assert entry.sizes == Sizes(train=71, val=9, test=32)
    assert record.classes == ("neu", "hap", "sad", "ang") and record.speaker_independent
    cross = record.cross
    assert cross is not None
    assert cross.train.corpus == "iemocap" and cross.test.corpus == "meld"
    assert cross.train.store == str(stores["iemocap"].resolve())
    assert cross.test.manifest == FeatureStore.open(stores["meld"]).corpus.digest
    assert cross.test.fingerprints == record.fingerprints  # the same sets
    assert cross.emotions == {"neu": "neutral", "hap": "happy", "sad": "sad", "ang": "angry"}
    assert cross.test.per_class == {"neu": 8, "hap": 8, "sad": 8, "ang": 8}
    assert cross.outside.test == {"dis.neg": 8, "fea.neg": 8, "sur.pos": 8}
    assert cross.outside.train == {"fru": 16}
    assert any("dropped from MELD, labels outside class set 4" in m for m in said.messages)
    assert protocol_label(record) == "cross: IEMOCAP -> MELD"
    table = read_predictions(tmp_path / record.name / "predictions.csv")
    assert set(table.utt_id.tolist()) <= {f"meld_{i:05d}" for i in range(len(MELD_LABELS))}
    assert table.row.tolist() == sorted(int(u[5:]) for u in table.utt_id)  # MELD's rows
    assert entry.metrics.ua > 60  # the same emotions sit at the same centres


def test_classes_one_side_lacks_are_dropped_and_recorded(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    record = train(config(stores["meld"], stores["iemocap"], tmp_path, classes="7"), Said())
    cross = record.cross
    assert cross is not None and cross.test_set == "all"  # IEMOCAP has no set 7
    assert record.classes == ("neu", "hap", "sad", "ang", "sur", "fea", "dis")
    assert cross.train_only == () and "exc" in cross.test_only
    assert cross.unmatched.test["exc"] == 16 and cross.unmatched.test["fru"] == 16
    assert cross.test.per_class["sur"] == 0  # IEMOCAP's store holds no surprise


def test_only_the_training_store_s_statistics_normalise(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    record = train(config(stores["iemocap"], stores["shifted"], tmp_path), Said())
    (checkpoint,) = load_run_checkpoints(tmp_path / record.name)
    mean = checkpoint.zscore["is13"].mean.numpy()
    store = FeatureStore.open(stores["iemocap"])
    kept = [i for i, c in enumerate(store.manifest.column("label")) if c != "fru"]
    rows = store.read("is13").data[kept]
    assert np.abs(mean - rows.mean(axis=0)).max() < 0.5  # its training side, 90 % of these
    assert record.folds[0].metrics.ua < 40  # the shifted store's features, out of range


def test_other_features_are_refused(stores: dict[str, Path], tmp_path: Path) -> None:
    spec = ("is13", "audio", "utterance", 5, "float32")  # another width
    corpus_store(tmp_path / "wide.zarr", "crema-d", ["neu", "hap"] * 4, sets={"is13": spec})
    with pytest.raises(ConfigError, match=r"computed differently \(is13 / is13: dim: 7 -> 5"):
        train(config(stores["iemocap"], tmp_path / "wide.zarr", tmp_path), Said())


def test_one_corpus_twice_is_refused(stores: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is --store .*a corpus is tested on itself"):
        train(config(stores["meld"], stores["meld"], tmp_path), Said())
    copy = tmp_path / "copy.zarr"
    shutil.copytree(stores["meld"], copy)
    with pytest.raises(ConfigError, match="holds what --store"):
        train(config(stores["meld"], copy, tmp_path), Said())


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [({"protocol": "loso"}, "--protocol does not go with --test-store"),
     ({"final": True}, "--final does not go with --test-store"),
     ({"test_classes": "5"}, "--test-classes 5: MELD has class sets")],
)  # fmt: skip
def test_options_that_do_not_go_with_it(
    stores: dict[str, Path], tmp_path: Path, changes: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ConfigError, match=refusal):
        train(config(stores["iemocap"], stores["meld"], tmp_path, **changes), Said())


def test_test_classes_need_a_test_store(stores: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--test-classes goes with --test-store"):
        train(config(stores["iemocap"], None, tmp_path, test_classes="4"), Said())


@pytest.mark.slow
def test_a_dialog_model_needs_dialogs_on_the_test_side(tmp_path: Path) -> None:
    talk = corpus_store(tmp_path / "a.zarr", "meld", MELD_LABELS * 3, per_dialog=4)
    corpus_store(tmp_path / "b.zarr", "iemocap", IEMOCAP_LABELS, per_dialog=4)
    corpus_store(tmp_path / "c.zarr", "crema-d", ["neu", "hap", "sad", "ang"] * 8)
    dialog = {"model": ModelConfig(fusion="none", context=True), "batch_size": 4}
    with pytest.raises(ConfigError, match=r"CREMA-D \(.*c.zarr\) has none"):
        train(config(tmp_path / "a.zarr", tmp_path / "c.zarr", tmp_path, **dialog), Said())
    record = train(config(tmp_path / "a.zarr", tmp_path / "b.zarr", tmp_path, **dialog), Said())
    assert record.folds[0].sizes.test == 80 and talk.corpus.name == "meld"


def test_the_record_round_trips_and_older_records_read(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    record = train(config(stores["iemocap"], stores["meld"], tmp_path), Said())
    again = read(tmp_path / record.name / "run.json")
    assert again.cross == record.cross and again == record
    assert RunRecord.from_json(again.to_json()) == again
    old = {k: v for k, v in again.to_json().items() if k != "cross"}
    assert RunRecord.from_json(old).cross is None
    resumed = train(config(stores["iemocap"], stores["meld"], tmp_path), Said())
    assert resumed.folds == record.folds  # resumed as it was, nothing trained again


FRAMES = {
    "hubert-tiny.L2": ("hubert", "audio", "frame", 6, "float16"),
    "bert-tiny": ("bert", "text", "token", 5, "float16"),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "features"),
    [(ModelConfig(fusion="mit", d_model=8, heads=2, layers=1), ("hubert-tiny.L2", "bert-tiny")),
     (ModelConfig(fusion="late-prob"), ("hubert-tiny.L2", "bert-tiny")),
     (ModelConfig(fusion="none"), ("hubert-tiny.L2",))],
)  # fmt: skip
def test_every_family_on_frames_and_tokens(
    tmp_path: Path, model: ModelConfig, features: tuple[str, ...]
) -> None:
    corpus_store(tmp_path / "a.zarr", "iemocap", IEMOCAP_LABELS, sets=FRAMES)
    corpus_store(tmp_path / "b.zarr", "meld", MELD_LABELS, sets=FRAMES)
    changes = {"model": model, "features": features, "epochs": 1, "seeds": 2}
    record = train(config(tmp_path / "a.zarr", tmp_path / "b.zarr", tmp_path, **changes), Said())
    assert [e.sizes.test for e in record.folds] == [32, 32]
    table = read_predictions(tmp_path / record.name / "predictions.csv")
    assert len(table.utt_id) == 64  # each seed's MELD rows


def test_the_test_text_seen_is_the_test_store_s_against_the_training_store_s(
    tmp_path: Path,
) -> None:
    """Each side's transcripts come from its own store: every MELD line is one IEMOCAP
    says once, so every tested utterance's text was seen in training."""
    line = "we are all going home now"
    text = {"bert-tiny": ("bert", "text", "token", 5, "float16")}
    said = [line] + [f"iemocap line number {i}" for i in range(1, len(IEMOCAP_LABELS))]
    train_on = corpus_store(tmp_path / "a.zarr", "iemocap", IEMOCAP_LABELS, sets=text,
                            transcripts=said)  # fmt: skip
    test_on = corpus_store(tmp_path / "b.zarr", "meld", MELD_LABELS, sets=text,
                           transcripts=[line] * len(MELD_LABELS))  # fmt: skip
    runs = tmp_path / "runs"
    record = train(config(train_on.path, test_on.path, runs, features=("bert-tiny",), epochs=1))
    seen = record.data.text_seen
    assert seen.tested == record.folds[0].sizes.test > 0
    assert seen.seen == seen.tested
