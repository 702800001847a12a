"""The file a run takes whole without --segment: twice its longest training utterance
(at least `FLOOR`), from its store, else the fixed limit; and none under `SHORTEST`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ser.predict import longest
from ser.predict.longest import FLOOR, LONGEST_UTTERANCE, SHORTEST, run_limit
from ser.predict.run import PredictConfig, predict
from ser.runs.record import RECORD
from tests.predict.conftest import noise_wav


def _moved(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the run whose record names a store that is not there."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / RECORD).read_text())
    record["store"] = str(tmp_path / "moved.zarr")
    (copy / RECORD).write_text(json.dumps(record))
    return copy


def _longest(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """A run's store, where it is, holds utterances up to `seconds` long."""
    monkeypatch.setattr(
        longest, "_store_longest", lambda store: seconds if Path(store).exists() else None
    )


def test_the_limit_comes_from_the_store_else_is_fixed(
    text_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = run_limit(text_run)  # the synthetic corpus's utterances are seconds long
    assert stored.source == "store" and stored.longest is not None and stored.longest < 10
    assert stored.seconds == FLOOR
    old = run_limit(_moved(text_run, tmp_path))
    assert (old.seconds, old.source) == (LONGEST_UTTERANCE, "fixed")
    _longest(monkeypatch, 20.0)
    assert (run_limit(text_run).seconds, run_limit(text_run).longest) == (40.0, 20.0)
    assert run_limit(tmp_path / "nowhere").seconds == LONGEST_UTTERANCE


def test_a_file_over_the_runs_limit_is_refused_and_a_moved_stores_run_takes_it(
    text_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = noise_wav(tmp_path / "long.wav", 45.0)
    short = noise_wav(tmp_path / "short.wav", 2.0)
    before = _moved(text_run, tmp_path / "b")
    assert "is over 30 s (far longer than an utterance)" in str(
        predict(PredictConfig(str(text_run), (str(file),), text="hi")).predictions[0].error
    )  # the store's utterances: under the floor
    _longest(monkeypatch, 20.0)
    result = predict(PredictConfig(str(text_run), (str(short), str(file)), text="hi"))
    good, bad = result.predictions
    assert good.label is not None and result.failed == 1
    assert bad.error == (
        "45 s is over 40 s (2 x the longest utterance the run trained on, 20.0 s): predict "
        "it in windows with --segment fixed:SECONDS (e.g. fixed:5) or --segment vad"
    )
    (taken,) = predict(PredictConfig(str(before), (str(file),), text="hi")).predictions
    assert taken.error is None and taken.label is not None  # 60 s: the fixed limit


@pytest.mark.parametrize("seconds", [0.0, float("nan"), -3.0])
def test_a_length_that_says_nothing_falls_back(
    text_run: Path, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    _longest(monkeypatch, seconds)
    assert run_limit(text_run).source == "fixed"


def test_a_file_under_the_shortest_is_refused_with_or_without_segments(
    text_run: Path, tmp_path: Path
) -> None:
    tiny, just = noise_wav(tmp_path / "tiny.wav", 0.1), noise_wav(tmp_path / "just.wav", SHORTEST)
    refusal = "too short to predict: 0.10 s of audio, under the 0.25 s ser takes"
    for segment in (None, "fixed:1"):
        config = PredictConfig(str(text_run), (str(tiny), str(just)), text="hi", segment=segment)
        bad, good = predict(config).predictions
        assert bad.error == refusal and bad.path == str(tiny)
        assert good.error is None and good.label is not None
