"""Timed transcripts (SRT, WebVTT): parsed with webvtt-py, malformed cues named by file
and line, words shared out over time, and each segment predicted with its words."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.errors import ConfigError
from ser.predict.inputs import Item, attach_timed
from ser.predict.run import PredictConfig, predict
from ser.predict.transcripts import read_timed
from tests.predict.conftest import noise_wav

SRT = """1
00:00:00,000 --> 00:00:04,000
one <i>two</i>
three four

2
00:00:05,000 --> 00:00:06,000
five
"""
VTT = """\ufeffWEBVTT - made by hand

NOTE a comment block

intro
00:00.000 --> 00:04.000 align:start
<v Ann>one two three four

00:05.000 --> 00:06.000
five
"""


def test_srt_and_webvtt_give_the_same_words_at_the_same_times(tmp_path: Path) -> None:
    (tmp_path / "a.srt").write_text(SRT)
    (tmp_path / "a.vtt").write_text(VTT)
    srt, vtt = read_timed(tmp_path / "a.srt"), read_timed(tmp_path / "a.vtt")
    assert srt.words == vtt.words == ("one", "two", "three", "four", "five")
    assert srt.times == vtt.times == (0.5, 1.5, 2.5, 3.5, 5.5)  # each word its share's middle


def test_a_cue_straddling_a_segment_end_is_shared_out_in_proportion_to_time(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.srt").write_text(SRT)
    timed = read_timed(tmp_path / "a.srt")
    assert timed.text(0, 2) == "one two" and timed.text(2, 5) == "three four"
    assert timed.text(1, 3) == "two three"  # overlapping windows each get their words
    assert timed.text(4, 5) == "" and timed.text() == "one two three four five"


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.srt", SRT.replace("00:00:05,000", "00:00:0x,000"), "bad.srt:6: not a cue"),
        ("bad.srt", SRT.replace("2\n", "two\n"), "bad.srt:6: not a cue"),
        ("bad.vtt", VTT.replace("00:05.000 -->", "00:05.000 ->"), "bad.vtt:9: not a cue"),
        ("bad.vtt", VTT.replace("\ufeffWEBVTT", "SUBTITLES"), "bad.vtt:1: a WebVTT file"),
        ("bad.srt", SRT.replace("00:00:06,000", "00:00:04,500"), "bad.srt:6: the cue ends"),
        ("bad.txt", SRT, r"bad.txt: a timed transcript is \.srt or \.vtt"),
    ],
)
def test_malformed_transcripts_are_named_by_file_and_line(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=where):
        read_timed(tmp_path / name)


def test_transcripts_are_given_or_found_beside_the_audio(tmp_path: Path) -> None:
    (tmp_path / "a.srt").write_text(SRT)
    items = [Item(tmp_path / "a.wav"), Item(tmp_path / "b.wav"), Item(tmp_path / "c.wav", "hi")]
    (tmp_path / "c.vtt").write_text(VTT)  # c has its text already: not read
    attach_timed(items, None)
    assert items[0].timed is not None and items[1].timed is None and items[2].timed is None
    with pytest.raises(ConfigError, match="--transcript is one recording's"):
        attach_timed([Item(tmp_path / "a.wav"), Item(tmp_path / "b.wav")], str(tmp_path / "a.srt"))
    with pytest.raises(ConfigError, match="timed transcript not found"):
        attach_timed([Item(tmp_path / "b.wav")], str(tmp_path / "gone.srt"))
    (tmp_path / "a.vtt").write_text(VTT)
    with pytest.raises(ConfigError, match=r"a.wav: two timed transcripts beside it"):
        attach_timed([Item(tmp_path / "a.wav")], None)


@pytest.mark.slow
def test_each_segment_is_predicted_with_the_words_timed_within_it(
    text_run: Path, tmp_path: Path
) -> None:
    long = noise_wav(tmp_path / "talk.wav", 6.0)
    (tmp_path / "talk.srt").write_text(SRT)  # found beside it
    config = PredictConfig(str(text_run), (str(long),), device="cpu", segment="fixed:2")
    result = predict(config)
    first, second, third = result.predictions
    assert [p.transcript for p in result.predictions] == ["one two", "three four", "five"]
    assert {p.transcript_source for p in result.predictions} == {"timed"}
    for p in (first, second, third):  # as the same words given as text for the clip
        alone = predict(
            PredictConfig(str(text_run), (str(long),), text=p.transcript, device="cpu")
        ).predictions[0]
        assert p.probabilities == pytest.approx(alone.probabilities, abs=1e-5)
    given = PredictConfig(str(text_run), (str(long),), device="cpu", segment="fixed:2.5")
    gap = predict(PredictConfig(**{**given.__dict__, "transcript": str(tmp_path / "talk.srt")}))
    # 0-2.5 and 2.5-6 (the 1 s tail joins): "three" placed at 2.5 s falls in the second
    assert [p.transcript for p in gap.predictions] == ["one two", "three four five"]
    whole = predict(PredictConfig(str(text_run), (str(long),), device="cpu"))
    assert whole.predictions[0].transcript == "one two three four five"


def test_a_segment_without_words_fails_alone_and_says_why(text_run: Path, tmp_path: Path) -> None:
    long = noise_wav(tmp_path / "talk.wav", 6.0)
    (tmp_path / "talk.vtt").write_text(VTT)
    config = PredictConfig(str(text_run), (str(long),), device="cpu", segment="fixed:1")
    result = predict(config)
    errors = {p.start: p.error for p in result.predictions if p.error}
    assert errors == {4.0: "no word of talk.vtt is timed within it"}
    assert result.failed == 1 and len(result.predictions) == 6
