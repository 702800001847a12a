"""`ser predict --segment vad`: silero-vad's speech as segments, a silent file fails alone."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ser.cli import main
from ser.errors import ConfigError
from ser.predict import vad
from ser.predict.run import PredictConfig, predict
from ser.predict.segments import NO_SPEECH, parse_segment
from ser.predict.vad import SileroVad, VadOptions
from ser.synth import acted
from ser.synth.audio import SAMPLE_RATE, draw_voice

PAUSE = 2.0


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    """Three utterances of the demo's synthetic speech, each after a 2 s pause: the file
    and each utterance's (start, end) seconds. Silero takes parts of this synthetic
    speech for silence (it is not a voice), so the tests ask for speech found inside the
    utterances, never in the pauses, not for every utterance."""
    rng = np.random.default_rng(2)
    voice = draw_voice(rng, "M", (0.0, 0.0, -60.0))
    parts, spans, at = [], [], 0.0
    for code in ("neu", "hap", "ang"):
        speech = acted.speech(rng, voice, code, (2.0, 3.0))
        parts += [np.zeros(int(PAUSE * SAMPLE_RATE), np.float32), speech]
        spans.append((at + PAUSE, at + PAUSE + len(speech) / SAMPLE_RATE))
        at = spans[-1][1]
    path = tmp_path_factory.mktemp("vad") / "talk.wav"
    soundfile.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path, spans


def _in_speech(found: list[tuple[float, float]], truth: list[tuple[float, float]]) -> bool:
    """Whether each found segment overlaps an utterance (none is a pause alone)."""
    return all(any(a < e and s < b for s, e in truth) for a, b in found)


def test_silero_finds_speech_not_pauses(talk) -> None:
    path, truth = talk
    found = SileroVad().cut(path, truth[-1][1])
    assert len(found) >= 2 and _in_speech(found, truth)
    assert found[0][0] > PAUSE - 0.2  # the leading pause is not speech


@pytest.mark.slow
def test_long_speech_is_split_and_blocks_are_searched_apart(talk, monkeypatch) -> None:
    path, truth = talk
    options = VadOptions(min_segment=0.2, max_segment=1.0, merge_gap=0.1, pad=0.0)
    found = SileroVad(options).cut(path, truth[-1][1])
    assert len(found) > len(truth) and all(b - a <= 1.0 + 1e-6 for a, b in found)
    decoded: list[object] = []
    load = vad.load_audio
    monkeypatch.setattr(vad, "load_audio", lambda s, r: decoded.append(s) or load(s, r))
    monkeypatch.setattr(vad, "BLOCK_SECONDS", 5.0)
    blocks = SileroVad().cut(path, truth[-1][1])
    assert len(decoded) == 3 and len(blocks) >= 2 and _in_speech(blocks, truth)
    assert all(5.0 * i <= a < b <= 5.0 * (i + 1) for i, (a, b) in enumerate(blocks))


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="--min-segment"):
        parse_segment("vad", VadOptions(min_segment=5.0, max_segment=2.0))
    with pytest.raises(ConfigError, match="need --segment vad"):
        parse_segment("fixed:2", VadOptions(pad=0.2))
    with pytest.raises(ConfigError, match="need --segment vad"):
        parse_segment(None, VadOptions(pad=0.2))


@pytest.mark.slow
def test_speech_is_predicted_and_a_silent_file_fails_alone(trained_run, talk, tmp_path) -> None:
    path, truth = talk
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    inputs = (str(path), str(silent))
    config = PredictConfig(str(trained_run.run_dir), inputs, text="hi", device="cpu", segment="vad")
    result = predict(config)
    *speech, quiet = result.predictions
    assert len(speech) >= 2 and all(p.label and p.path == str(path) for p in speech)
    assert _in_speech([(p.start, p.end) for p in speech], truth)
    assert quiet.path == str(silent) and quiet.error == NO_SPEECH and result.failed == 1


def test_cli_maps_the_vad_options(trained_run, talk) -> None:
    path, truth = talk
    base = ["predict", "--run", str(trained_run.run_dir), str(path), "--text", "hi"]
    args = [*base, "--device", "cpu", "--segment", "vad", "--max-segment", "1", "--json"]
    result = CliRunner().invoke(main, [*args, "--min-segment", "0.2", "--pad", "0"])
    assert result.exit_code == 0, result.output
    assert '"start"' in result.stdout and result.stdout.count('"label"') >= len(truth)
    refused = CliRunner().invoke(main, [*base, "--pad", "0.2"])
    assert refused.exit_code == 2 and "need --segment vad" in refused.stderr
