"""`ser train --json` (`json_summary`): each of the run's heads' numbers, pinned as
they were before the heads said them: the category's WA, UA, F1 (a run record fixture of
an emotion run, one of an emotion and attribute run) and an attribute run's mean CCC."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ser.runs.record import json_summary, run_scores
from ser.train.record import read_record
from tests.report.attribute_fixtures import attribute_run

FIXTURES = Path(__file__).parents[1] / "runs" / "fixtures"
PINNED = {
    "ff7a729-processes": (
        '{"wa": 20.0, "ua": 25.0, "f1": 8.333333333333332, "wa_std": 0.0, "ua_std": 0.0, '
        '"folds": [{"seed": 0, "fold": "session5", "wa": 20.0, "ua": 25.0, "f1": 8.333333'
        '333333332, "best_epoch": 1}], "protocol": "session5", "seconds": 3.3109377260007'
        "022}"
    ),
    "d2e0c8f-attributes": (
        '{"wa": 40.0, "ua": 25.0, "f1": 14.285714285714285, "wa_std": 0.0, "ua_std": 0.0,'
        ' "ccc_mean": NaN, "ccc_mean_std": 0.0, "folds": [{"seed": 0, "fold": "session5",'
        ' "wa": 40.0, "ua": 25.0, "f1": 14.285714285714285, "ccc_mean": NaN, "best_epoch"'
        ': 0}], "protocol": "session5", "seconds": 3.004091768998478}'
    ),
}
ATTRIBUTES = (
    '{"ccc_mean": 0.9729934568861702, "ccc_mean_std": 0.005948605401761904, "folds": '
    '[{"seed": 0, "fold": "f1", "ccc_mean": 0.9765534813819694, "best_epoch": 1}, {"s'
    'eed": 0, "fold": "f2", "ccc_mean": 0.9778460308267485, "best_epoch": 1}, {"seed"'
    ': 1, "fold": "f1", "ccc_mean": 0.9719638858580222, "best_epoch": 1}, {"seed": 1,'
    ' "fold": "f2", "ccc_mean": 0.9656104294779406, "best_epoch": 1}], "protocol": "l'
    'oso", "seconds": 0.0}'
)


@pytest.mark.parametrize("name", list(PINNED))
def test_a_recorded_runs_json_is_the_pinned_one(name: str) -> None:
    record = read_record(FIXTURES / name / "run.json")
    assert json.dumps(json_summary(record)) == PINNED[name]


def test_an_attribute_runs_json_has_the_mean_ccc_alone(tmp_path: Path) -> None:
    record = read_record(attribute_run(tmp_path, "va") / "run.json")
    made = json_summary(replace(record, summary=run_scores(record)[0]))
    want = json.loads(ATTRIBUTES)
    assert list(made) == list(want) and [list(f) for f in made["folds"]] == [
        list(f) for f in want["folds"]
    ]
    assert made["ccc_mean"] == pytest.approx(want["ccc_mean"], rel=1e-6)
    got = [f["ccc_mean"] for f in made["folds"]]
    assert got == pytest.approx([f["ccc_mean"] for f in want["folds"]], rel=1e-6)
