"""`ser predict --stream -`: a JSON line per closed segment, as `--segment vad` predicts
the whole recording; the segment open at the end is flushed; what cannot stream says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ser.cli import main
from ser.predict.run import PredictConfig, predict
from ser.synth import acted
from ser.synth.audio import SAMPLE_RATE, draw_voice


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[Path, np.ndarray]:  # type: ignore[no-untyped-def]
    """Five turns of the demo's synthetic speech between pauses, as a 16-bit wav."""
    rng = np.random.default_rng(11)
    voice = draw_voice(rng, "M", (0.0, 0.0, -60.0))
    parts = []
    for code in ("neu", "hap", "ang", "sad", "neu"):
        parts += [np.zeros(SAMPLE_RATE, np.float32), acted.speech(rng, voice, code, (2.0, 3.0))]
    path = tmp_path_factory.mktemp("live") / "talk.wav"
    soundfile.write(path, np.concatenate(parts), SAMPLE_RATE, subtype="PCM_16")
    return path, soundfile.read(path, dtype="int16")[0]


def _stream(run: Path, pcm: bytes) -> list[dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["predict", "--run", str(run), "--stream", "-"], input=pcm)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.slow
def test_stream_lines_are_the_whole_recording_s_segments(audio_run, speech) -> None:
    path, samples = speech
    lines = _stream(audio_run, samples.tobytes())
    whole = predict(PredictConfig(str(audio_run), (str(path),), device="cpu", segment="vad"))
    assert len(lines) == len(whole.predictions) >= 3
    for line, p in zip(lines, whole.predictions, strict=True):
        assert set(line) == {"start", "end", "class", "probabilities"}
        assert (line["start"], line["end"]) == (round(p.start, 3), round(p.end, 3))
        assert line["class"] == p.label
        gaps = [abs(line["probabilities"][c] - v) for c, v in p.probabilities.items()]
        assert max(gaps) < 1e-5


@pytest.mark.slow
def test_a_closed_stream_flushes_its_open_segment(audio_run, speech) -> None:
    _, samples = speech
    cut = len(samples) - SAMPLE_RATE  # a second before the last turn ends: mid-speech
    lines = _stream(audio_run, samples[:cut].tobytes())
    assert lines[-1]["end"] == pytest.approx(cut / SAMPLE_RATE, abs=1e-3)


def test_what_cannot_stream_is_one_line(trained_run, audio_run) -> None:
    text = CliRunner().invoke(main, ["predict", "--run", str(trained_run.run_dir), "--stream", "-"])
    assert text.exit_code == 2 and "Traceback" not in text.output
    assert "reads text features (tiny-bert)" in text.output and "--asr" in text.output
    args = ["predict", "--run", str(audio_run), "--stream", "-", "--segment", "vad"]
    both = CliRunner().invoke(main, args, input=b"")
    assert both.exit_code == 2 and "leave out --segment" in both.output
    broken = CliRunner().invoke(main, args[:-2], input=b"\x00\x00\x01")
    assert broken.exit_code == 1 and "Traceback" not in broken.output
    assert broken.output.strip().splitlines()[-1].startswith("error: --stream -: the stream ended")
