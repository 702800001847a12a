"""A dialog-context run given --segment: a recording's segments are one conversation's
turns in time order, predicted in context, as a CSV listing them as a dialog would be."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.predict import run
from ser.predict.notes import DIALOG_CONTEXT, SEGMENT_TURNS
from ser.predict.run import PredictConfig, predict
from tests.predict.conftest import RATE, noise_wav

WORDS = ["good morning", "not again", "fine thanks", "why me", "lovely"]


def _talk(tmp_path: Path) -> Path:
    """Five 1 s turns as one recording, with an SRT cue per turn."""
    long = noise_wav(tmp_path / "talk.wav", len(WORDS))
    cues = [f"{i + 1}\n00:00:0{i},000 --> 00:00:0{i},900\n{text}\n" for i, text in enumerate(WORDS)]
    (tmp_path / "talk.srt").write_text("\n".join(cues))
    return long


@pytest.mark.slow
def test_a_recordings_segments_are_one_dialog_in_context(
    text_dialog_run: Path, tmp_path: Path
) -> None:
    long = _talk(tmp_path)
    config = PredictConfig(str(text_dialog_run), (str(long),), device="cpu", segment="fixed:1")
    result = predict(config)
    assert [p.order for p in result.predictions] == [0, 1, 2, 3, 4]
    assert {p.dialog for p in result.predictions} == {str(long)}
    said = SEGMENT_TURNS.format(segments=128, minutes=11)  # the groups' limits, 640 s
    assert said in result.notes and DIALOG_CONTEXT not in result.notes
    assert not result.dialog_context_lost
    # The same turns as a CSV conversation of clips: the same probabilities.
    wave, _ = soundfile.read(long, dtype="float32")
    listing = tmp_path / "turns.csv"
    with listing.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["path", "transcript", "dialog", "order"])
        for i, text in reversed(list(enumerate(WORDS))):
            soundfile.write(tmp_path / f"turn{i}.wav", wave[i * RATE : (i + 1) * RATE], RATE)
            out.writerow([f"turn{i}.wav", text, "d", i])
    turns = predict(PredictConfig(str(text_dialog_run), (str(listing),), device="cpu"))
    for got, want in zip(result.predictions, reversed(turns.predictions), strict=True):
        assert got.probabilities == pytest.approx(want.probabilities, abs=1e-5)
    # Each segment alone (an utterance-level reading) is another input to the model.
    alone = [
        predict(PredictConfig(str(text_dialog_run), (str(long),), text=t, device="cpu"))
        for t in WORDS
    ]
    assert any(
        not np.allclose(list(a.predictions[0].probabilities.values()),
                        list(p.probabilities.values()), atol=1e-4)
        for a, p in zip(alone, result.predictions, strict=True)
    )  # fmt: skip


def test_a_long_recording_is_cut_into_consecutive_conversations(
    text_dialog_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = _talk(tmp_path)
    other = noise_wav(tmp_path / "other.wav", 2.0)
    (tmp_path / "other.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nhello you\n")
    monkeypatch.setattr(run, "SEGMENTS_AT_ONCE", 3)
    config = PredictConfig(
        str(text_dialog_run), (str(other), str(long)), device="cpu", segment="fixed:1"
    )
    dialogs = [(p.dialog, p.order) for p in predict(config).predictions]
    # other.wav's 2 turns, then talk.wav's 5 starting a group of their own (3 at a time)
    assert dialogs == [
        (str(other), 0), (str(other), 1),
        (str(long), 0), (str(long), 1), (str(long), 2),
        (f"{long} #2", 3), (f"{long} #2", 4),
    ]  # fmt: skip


def test_an_utterance_level_run_segments_alone(text_run: Path, tmp_path: Path) -> None:
    long = _talk(tmp_path)
    config = PredictConfig(str(text_run), (str(long),), device="cpu", segment="fixed:1")
    result = predict(config)
    assert {p.dialog for p in result.predictions} == {None} and not result.notes
