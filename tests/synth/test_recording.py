"""The synthetic long recording (`ser demo-corpus --layout recording`)."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import soundfile

import ser.synth.recording as recording_module
from ser.synth.recording import PAUSE, write_recording


def test_doctests() -> None:
    assert doctest.testmod(recording_module).failed == 0


def test_turns_of_two_voices_each_followed_by_silence(tmp_path: Path) -> None:
    truth = write_recording(tmp_path / "r", seconds=30.0, seed=1)
    wave, rate = soundfile.read(truth.root / "recording.wav", dtype="float32")
    assert len(wave) >= 30 * rate
    spans = [tuple(map(float, key.split("-"))) for key in truth.files]
    speakers = [speaker for _, speaker in truth.files.values()]
    assert speakers[:4] == ["speaker1", "speaker2", "speaker1", "speaker2"]
    for start, end in spans:
        turn = wave[round(start * rate) : round(end * rate)]
        # The truth's seconds have two decimals: 10 ms off each edge of the pause.
        pause = wave[round((end + 0.01) * rate) : round((end + PAUSE - 0.01) * rate)]
        assert np.abs(turn).max() > 0.01 and not pause.any()
    again = write_recording(tmp_path / "again", seconds=30.0, seed=1)
    assert again.files == truth.files  # a seed, the same recording
