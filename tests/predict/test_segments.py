"""`ser predict --segment`: long recordings in windows, each a row; long files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.corpus.audio import Clip
from ser.errors import ConfigError
from ser.predict import inputs
from ser.predict.longest import LONGEST_UTTERANCE
from ser.predict.run import PredictConfig, predict
from ser.predict.segments import FixedWindows, parse_segment

RATE = 16000


def test_windows_cover_the_file_and_a_short_tail_joins_the_last() -> None:
    assert FixedWindows(2.0, 2.0).spans(4.8) == [(0.0, 2.0), (2.0, 4.8)]  # 0.8 s tail joins
    assert FixedWindows(2.0, 2.0).spans(5.5) == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.5)]
    assert FixedWindows(2.0, 1.0).spans(3.0) == [(0.0, 2.0), (1.0, 3.0)]
    assert FixedWindows(10.0, 10.0).spans(3.2) == [(0.0, 3.2)]  # shorter than one window


def test_segment_option_is_parsed_and_checked() -> None:
    assert parse_segment(None) is None
    assert parse_segment("fixed:5") == FixedWindows(5.0, 5.0)
    assert parse_segment("fixed:4:2.5") == FixedWindows(4.0, 2.5)
    for bad in ("fixed", "fixed:x", "fixed:2:3", "fixed:2:0", "windows:2", "fixed:1:1:1"):
        with pytest.raises(ConfigError, match="--segment"):
            parse_segment(bad)


def _clip(trained_run, i: int, seconds: float) -> np.ndarray:
    wave, rate = soundfile.read(trained_run.wavs[i], dtype="float32")
    assert rate == RATE and len(wave) >= seconds * RATE
    return wave[: int(seconds * RATE)]


def test_each_window_is_predicted_as_its_own_utterance(trained_run, tmp_path, monkeypatch):
    """A recording of three utterances back to back, in windows of one utterance: each
    segment's probabilities are those of its utterance alone, decoded clip by clip."""
    seconds = 0.5
    parts = [_clip(trained_run, i, seconds) for i in range(3)]
    long = tmp_path / "long.wav"
    soundfile.write(long, np.concatenate(parts), RATE)
    alone = []
    for i, part in enumerate(parts):
        soundfile.write(tmp_path / f"part{i}.wav", part, RATE)
        alone.append(str(tmp_path / f"part{i}.wav"))
    base = PredictConfig(str(trained_run.run_dir), tuple(alone), text="hi", device="cpu")
    expected = predict(base).predictions
    decoded: list[object] = []
    load = inputs.load_audio
    monkeypatch.setattr(inputs, "load_audio", lambda s, r: decoded.append(s) or load(s, r))
    config = PredictConfig(**{**base.__dict__, "inputs": (str(long),), "segment": "fixed:0.5"})
    result = predict(config)
    assert [(p.start, p.end) for p in result.predictions] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)]
    assert all(isinstance(s, Clip) for s in decoded)  # never the whole file
    for got, want in zip(result.predictions, expected, strict=True):
        assert got.path == str(long) and got.label == want.label
        assert got.probabilities == pytest.approx(want.probabilities, abs=1e-5)


def test_a_file_shorter_than_a_window_is_one_segment(trained_run, tmp_path) -> None:
    short = tmp_path / "short.wav"
    soundfile.write(short, _clip(trained_run, 0, 0.6), RATE)
    config = PredictConfig(
        str(trained_run.run_dir), (str(short),), text="hi", device="cpu", segment="fixed:5"
    )
    (only,) = predict(config).predictions
    assert (only.start, only.end) == (0.0, 0.6) and only.label is not None


def test_a_long_file_without_segment_is_refused_alone(trained_run, tmp_path) -> None:
    long = tmp_path / "hour.wav"
    noise = np.random.default_rng(0).normal(0, 0.01, int((LONGEST_UTTERANCE + 1) * RATE))
    soundfile.write(long, noise.astype(np.float32), RATE)
    paths = (trained_run.wavs[0], str(long))
    result = predict(PredictConfig(str(trained_run.run_dir), paths, text="hi", device="cpu"))
    good, bad = result.predictions
    assert good.label is not None and result.failed == 1
    assert bad.error is not None and "--segment fixed:SECONDS" in bad.error
    assert bad.start is None and bad.end is None


def test_segments_refuse_dialog_columns(trained_run, tmp_path: Path) -> None:
    listing = tmp_path / "d.csv"
    listing.write_text(f"path,transcript,dialog,order\n{trained_run.wavs[0]},hi,d1,1\n")
    config = PredictConfig(str(trained_run.run_dir), (str(listing),), segment="fixed:1")
    with pytest.raises(ConfigError, match="dialog columns"):
        predict(config)


def test_vtt_timestamps_and_cues_of_several_files() -> None:
    from ser.heads.emotion import EmotionHead
    from ser.heads.predicted import Part
    from ser.predict.run import Prediction
    from ser.predict.vtt import timestamp, vtt_text

    def part(*probabilities: float) -> dict[str, Part]:
        return {"emotion": Part(("hap", "sad"), np.asarray(probabilities, np.float32))}

    assert timestamp(3723.4567) == "01:02:03.457" and timestamp(0) == "00:00:00.000"
    a = Prediction("a/x.wav", start=0.0, end=2.5, heads=part(0.91, 0.09))
    b = Prediction("b/y.wav", error="too short", start=0.0, end=0.1)
    c = Prediction("b/y.wav", start=61.0, end=62.0, heads=part(0.2, 0.8))
    assert vtt_text([a, b, c], [EmotionHead()]).splitlines() == [
        "WEBVTT", "",
        "00:00:00.000 --> 00:00:02.500", "x.wav: hap 0.91", "",
        "00:01:01.000 --> 00:01:02.000", "y.wav: sad 0.80",
    ]  # fmt: skip


@pytest.mark.slow
def test_segments_in_groups_load_whisper_once(trained_run, tiny_models, tmp_path, monkeypatch):
    """Segments are predicted a group at a time; the groups give the rows one group would,
    and the recogniser is loaded once for all of them."""
    from ser.extract.asr import WhisperAsr
    from ser.predict import run

    long = tmp_path / "long.wav"
    soundfile.write(long, np.concatenate([_clip(trained_run, i, 0.5) for i in range(5)]), RATE)
    config = PredictConfig(
        str(trained_run.run_dir), (str(long),), asr=str(tiny_models.whisper),
        asr_max_new_tokens=4, device="cpu", segment="fixed:0.5",
    )  # fmt: skip
    whole = predict(config).predictions
    loads: list[object] = []
    load = WhisperAsr.load
    monkeypatch.setattr(WhisperAsr, "load", lambda self, d: loads.append(d) or load(self, d))
    monkeypatch.setattr(run, "SEGMENTS_AT_ONCE", 2)
    grouped = predict(config).predictions
    assert len(loads) == 1 and len(grouped) == len(whole) == 5
    for a, b in zip(grouped, whole, strict=True):
        assert (a.start, a.label, a.transcript) == (b.start, b.label, b.transcript)
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_many_whole_files_are_decoded_a_group_at_a_time(trained_run, monkeypatch) -> None:
    """Whole files are decoded and predicted a group of SECONDS_AT_ONCE at a time, as
    segments are: many files are never held at once, and each group moves the bar."""
    import ser.predict.run as run_module
    from ser.predict import scoring

    wavs = tuple(str(w) for w in trained_run.wavs[:4])
    config = PredictConfig(str(trained_run.run_dir), wavs, text="hi", device="cpu")
    expected = predict(config).predictions
    sizes: list[int] = []
    load = scoring.load_waves
    monkeypatch.setattr(
        scoring, "load_waves", lambda items, r: sizes.append(len(items)) or load(items, r)
    )
    monkeypatch.setattr(run_module, "SECONDS_AT_ONCE", 0.1)  # each file a group of its own
    got = predict(config).predictions
    assert sizes and max(sizes) == 1 and len(sizes) >= len(wavs)
    for a, b in zip(got, expected, strict=True):
        assert a.path == b.path and a.label == b.label
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
