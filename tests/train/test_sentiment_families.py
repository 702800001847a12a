"""Every model family trains CMU-MOSEI's sentiment score (`--target sentiment-score`) on
a synthetic CMU-MOSEI store and writes the field's metrics; the fusion study's dialog
context on MOSEI is a video's segments in time order; options that need classes refuse
the regression with one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ser.cache import FeatureStore
from ser.heads.sentiment_score import SCORES
from ser.models import FeatureInfo
from ser.train.batches import dialog_groups
from tests.refused import said as _ser
from tests.registries import registered_families, tiny_model, train_options

BOTH = ("--features", "tiny-hubert.L2,tiny-bert", "--d-model", "8", "--heads", "2")
MIT = (*BOTH, "--queries", "3", "--layers", "1", "--decoder-layers", "1")
# What each registered family's small model (`Family.tiny`) trains on in the MOSEI
# store (tests/mosei.py): the first of these its plan takes.
HUBERT, BERT = (FeatureInfo("tiny-hubert.L2", "audio", "frame", 6),
                FeatureInfo("tiny-bert", "text", "token", 5))  # fmt: skip
MOSEI_INPUTS = ((HUBERT, BERT), (HUBERT,), (BERT,))
# Beyond every registered family's small model: variants -> their `ser train` options
# (one epoch, one seed each).
VARIANTS = {
    "mlp": ("--features", "tiny-bert", "--fusion", "none"),
    "msmser-mit": (*MIT, "--fusion", "mit"),
    "msmser-no-encoder": (*MIT, "--fusion", "mit", "--no-encoder", "--no-rmm"),
    "msmser-concat": (*BOTH, "--fusion", "concat", "--layers", "1"),
    "dialog-add-logits": (*BOTH, "--fusion", "add", "--fusion-at", "logits"),
    "dialog-perspective": (*BOTH, "--fusion", "concat", "--fusion-at", "late",
                           "--loss", "perspective"),
    "dialog-context": ("--features", "tiny-bert", "--fusion", "none", "--context",
                       "--d-model", "8", "--heads", "2"),
    "late-prob": ("--features", "logmel80,tiny-bert", "--fusion", "late-prob",
                  "--d-model", "8", "--cnn-channels", "2,3"),
    "late-prob-staged": ("--features", "logmel80,tiny-bert", "--fusion", "late-prob",
                         "--d-model", "8", "--cnn-channels", "2,3", "--staged"),
    "weighted-sum": ("--features", "tiny-hubert.L*", "--fusion", "none"),
}  # fmt: skip


def options_of(family: str) -> tuple[str, ...]:
    """A variant's `ser train` options, or a registered family's small model's."""
    if family in VARIANTS:
        return VARIANTS[family]
    infos, config = tiny_model(family, MOSEI_INPUTS)
    return train_options([info.name for info in infos], config)


@pytest.fixture(scope="module")
def store(mosei_score_store: Path) -> Path:
    return mosei_score_store


def _train(store: Path, out: Path, *options: str) -> tuple[int, str]:
    return _ser(
        "train",
        "--store",
        store,
        "--target",
        "sentiment-score",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--out",
        out,
        "--name",
        "run",
        *options,
    )


@pytest.mark.slow
@pytest.mark.parametrize("family", [*registered_families(), *VARIANTS])
def test_every_family_trains_the_sentiment_score(family: str, store: Path, tmp_path: Path) -> None:
    code, shown = _train(store, tmp_path, *options_of(family))
    assert code == 0, shown
    assert "val MAE " in shown and "val MAE -" not in shown  # the error, not its negative
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    (fold,) = record["folds"]
    scores = fold["heads"]["sentiment-score"]
    assert scores["n"] == fold["sizes"]["test"] > 0
    assert all(math.isfinite(scores[key]) or key == "corr" for key in SCORES)
    assert 0 <= scores["acc2_non0"] <= 100 and scores["mae"] > 0
    assert record["summary"]["sentiment-score_mae"] == pytest.approx(scores["mae"])
    if family == "weighted-sum":  # the learnt weights of the three stored layers
        (weights,) = fold["layer_weights"].values()
        assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-4)


def test_a_videos_segments_in_time_order_are_its_dialog(store: Path) -> None:
    """The dialog models' context (`dialog_groups`) on MOSEI: one group per video, its
    segments ordered by their start in the video's wav."""
    manifest = FeatureStore.open(store).manifest
    dialogs = np.asarray(manifest.column("dialog")).astype(str)
    orders = np.asarray(manifest.column("order")).astype(np.int64)
    starts = np.asarray(manifest.column("start"), dtype=np.float64)
    videos = np.array([u.rsplit("_", 1)[0] for u in np.asarray(manifest.column("utt_id"))])
    groups = dialog_groups(dialogs, orders, np.arange(len(dialogs)))
    assert len(groups) == len(set(videos)) > 1
    for group in groups:
        assert len(set(videos[group])) == 1 and len(set(dialogs[group])) == 1
        assert np.all(np.diff(starts[group]) > 0), (videos[group[0]], starts[group])
    assert any(len(g) > 2 for g in groups)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--class-weights", "balanced"), "--class-weights weighs classes"),
        (("--labels", "soft"), "--labels soft trains the categorical head"),
    ],
)
def test_class_options_refuse_the_regression_in_one_line(
    store: Path, tmp_path: Path, options: tuple[str, ...], said: str
) -> None:
    code, shown = _train(store, tmp_path, "--features", "tiny-bert", "--fusion", "none", *options)
    assert code == 2 and said in shown and "Traceback" not in shown
