"""A fold entry's and a record's scores are typed, frozen, and written back as read: a
key the type does not know kept, a key an older ser did not write left out."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest

import ser.heads.metrics
from ser.errors import ReportError
from ser.heads.attribute_metrics import AttributeMetrics, AttributeScores, attribute_metrics
from ser.heads.metrics import Metrics, compute_metrics
from ser.runs.fold_entry import FoldEntry
from ser.runs.migrate import current
from ser.runs.record import RECORD, read

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = sorted(p.parent.name for p in FIXTURES.glob(f"*/{RECORD}"))


def test_the_doctests_hold() -> None:
    assert doctest.testmod(ser.heads.metrics).failed == 0


@pytest.mark.parametrize("name", RUNS)
def test_every_record_s_scores_read_as_typed_objects(name: str) -> None:
    record = read(FIXTURES / name / RECORD)
    assert isinstance(record.pooled, Metrics)
    for entry in record.folds:
        assert isinstance(entry.metrics, Metrics) and not entry.metrics.lacks()
        assert isinstance(entry.metrics.confusion, tuple) and entry.metrics.n
        assert entry.attributes is None or isinstance(entry.attributes, AttributeMetrics)


@pytest.mark.parametrize("name", RUNS)
def test_scores_are_written_back_key_for_key_in_their_order(name: str) -> None:
    """The category's, the attributes' and the further heads' scores and the pooled
    ones as the file holds them, to the key order."""
    path = FIXTURES / name / RECORD
    made = current(json.loads(path.read_text()), path)
    again = read(path).to_json()
    assert json.dumps(again["pooled"]) == json.dumps(made["pooled"])
    for ours, theirs in zip(again["folds"], made["folds"], strict=True):
        for key in ("metrics", "attributes", "heads", "layer_weights", "class_weights"):
            assert json.dumps(ours.get(key)) == json.dumps(theirs.get(key)), key


def test_an_older_record_s_absent_keys_stay_absent() -> None:
    """The first trainer kept neither WF1 nor f1_seen: not in its scores, not written,
    and computed from the confusion where the report needs them."""
    record = read(FIXTURES / "9365608-sessions" / RECORD)
    entry, pooled = record.folds[0], record.pooled
    assert entry.metrics is not None and pooled is not None
    assert entry.metrics.score("wf1") is None and entry.metrics.score("f1_seen") is None
    assert pooled.score("wf1") is None and {"wf1", "f1_seen"} <= pooled.unheld
    assert not {"wf1", "f1_seen"} & set(entry.to_json()["metrics"])  # type: ignore[arg-type]
    assert not {"wf1", "f1_seen"} & set(record.to_json()["pooled"])
    assert not math.isnan(entry.metrics.wf1) and not math.isnan(pooled.f1_seen)


def test_a_key_the_type_does_not_know_is_kept() -> None:
    obj = {"seed": 0, "fold": "f1",
           "metrics": {"ua": 50.0, "newer": [1, 2]},
           "attributes": {"arousal": {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10,
                                      "spread": 0.1}}}  # fmt: skip
    entry = FoldEntry.from_json(obj)
    assert entry.metrics is not None and entry.metrics.extra == {"newer": [1, 2]}
    assert entry.attributes is not None
    assert entry.attributes.scores["arousal"].extra == {"spread": 0.1}
    written = entry.to_json()
    assert written["metrics"] == obj["metrics"] and written["attributes"] == obj["attributes"]


def test_the_scores_are_frozen() -> None:
    entry = read(FIXTURES / "d2e0c8f-attributes" / RECORD).folds[0]
    assert entry.metrics is not None and entry.attributes is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.metrics.ua = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.attributes.scores["arousal"].ccc = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.metrics = None  # type: ignore[misc]


def test_an_undefined_attribute_score_is_nan_and_written_as_null() -> None:
    """A 1-epoch model's constant predictions: CCC and r undefined (null in the file)."""
    entry = read(FIXTURES / "d2e0c8f-attributes" / RECORD).folds[0]
    assert entry.attributes is not None
    arousal = entry.attributes.scores["arousal"]
    assert math.isnan(arousal.ccc) and math.isnan(arousal.pearson) and arousal.n == 10
    assert entry.attributes.to_json()["arousal"]["ccc"] is None  # type: ignore[index]
    assert isinstance(entry.attributes, AttributeMetrics)


def test_scores_a_record_made_give_what_they_came_from() -> None:
    metrics = compute_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["neu", "hap"])
    held = Metrics.from_json(json.loads(json.dumps(metrics.to_json())))
    assert held.confusion == ((1, 1), (0, 2)) and held == metrics
    assert held.score("ua") == metrics.ua and held.score("n") is None
    gold, pred = np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]])
    scores = attribute_metrics(gold, pred, ["arousal"])
    assert AttributeMetrics.from_json(json.loads(json.dumps(scores.to_json()))) == scores


def test_moments_an_entry_lacks_stay_absent() -> None:
    obj = {"ccc": 0.5, "pearson": 0.6, "mae": 0.7, "n": 10}
    held = AttributeScores.from_json(obj, "attributes")
    assert math.isnan(held.mean_gold) and "mean_gold" in held.unheld and held.to_json() == obj


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"metrics": {"ua": "high"}}, r"metrics, 'ua' must be a number"),
        ({"metrics": {"confusion": [[1, "x"]]}}, r"'confusion' must be an integer"),
        ({"attributes": {"arousal": {"ccc": 0.5}}}, r"attributes\['arousal'\]: lacks"),
        ({"heads": {"sentiment": [1]}}, r"'heads'\['sentiment'\] must be a JSON object"),
        ({"layer_weights": {"enc": ["a"]}}, r"'layer_weights'.* must be a number"),
    ],
)
def test_a_score_of_another_type_is_refused_naming_it(entry: dict, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        FoldEntry.from_json({"seed": 0, "fold": "f1", **entry}, "run.json, fold entry 1")


def test_scores_lacking_what_a_report_needs_say_so() -> None:
    held = Metrics.from_json({"ua": 1.0}, "fold entry 1")
    assert held.lacks() == ["wa", "f1", "per_class_recall", "confusion", "n"]
    assert held.to_json() == {"ua": 1.0} and held.score("wa") is None
