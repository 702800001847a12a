"""The file a run takes whole without --segment: twice its longest training utterance
(at least `FLOOR`), from its record, else its store, else the fixed limit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ser.predict.longest import FLOOR, LONGEST_UTTERANCE, run_limit
from ser.predict.run import PredictConfig, predict
from ser.report.record import RECORD
from tests.predict.conftest import noise_wav


def _copy(run_dir: Path, tmp_path: Path, **data: object) -> Path:
    """The run, its record's `data` given `data` (None: a key removed) and `store`."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / RECORD).read_text())
    for key, value in data.items():
        target = record if key == "store" else record.setdefault("data", {})
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    (copy / RECORD).write_text(json.dumps(record))
    return copy


def test_the_limit_comes_from_the_record_else_the_store_else_is_fixed(
    text_run: Path, tmp_path: Path
) -> None:
    recorded = run_limit(_copy(text_run, tmp_path / "a", longest_utterance=20.0))
    assert (recorded.seconds, recorded.longest, recorded.source) == (40.0, 20.0, "record")
    stored = run_limit(text_run)  # the synthetic corpus's utterances are seconds long
    assert stored.source == "store" and stored.longest is not None and stored.longest < 10
    assert stored.seconds == FLOOR
    old = run_limit(_copy(text_run, tmp_path / "b", store=str(tmp_path / "moved.zarr")))
    assert (old.seconds, old.source) == (LONGEST_UTTERANCE, "fixed")
    assert run_limit(tmp_path / "nowhere").seconds == LONGEST_UTTERANCE


def test_a_file_over_the_runs_limit_is_refused_and_an_older_run_takes_it(
    text_run: Path, tmp_path: Path
) -> None:
    file = noise_wav(tmp_path / "long.wav", 45.0)
    short = noise_wav(tmp_path / "short.wav", 2.0)
    recorded = _copy(text_run, tmp_path / "a", longest_utterance=20.0)
    result = predict(PredictConfig(str(recorded), (str(short), str(file)), text="hi"))
    good, bad = result.predictions
    assert good.label is not None and result.failed == 1
    assert bad.error == (
        "45 s is over 40 s (2 x the longest utterance the run trained on, 20.0 s): predict "
        "it in windows with --segment fixed:SECONDS (e.g. fixed:5) or --segment vad"
    )
    assert "is over 30 s (far longer than an utterance)" in str(
        predict(PredictConfig(str(text_run), (str(file),), text="hi")).predictions[0].error
    )  # the store's utterances: under the floor
    before = _copy(text_run, tmp_path / "b", store=str(tmp_path / "moved.zarr"))
    (taken,) = predict(PredictConfig(str(before), (str(file),), text="hi")).predictions
    assert taken.error is None and taken.label is not None  # 60 s: the fixed limit


@pytest.mark.parametrize("longest", [0.0, float("nan"), -3.0])
def test_a_recorded_length_that_says_nothing_falls_back(
    text_run: Path, tmp_path: Path, longest: float
) -> None:
    assert run_limit(_copy(text_run, tmp_path, longest_utterance=longest)).source == "fixed"
