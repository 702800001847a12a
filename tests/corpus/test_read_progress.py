"""A corpus read tells its hook (`read_corpus(progress=)`, `ser.corpus.progress`) of each
utterance whose own file it opens, pass by pass, with the pass's total from the start:
what `ser store init` and `ser extract` show as done / total, a rate and an ETA."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import ser.corpus.progress
from ser.corpus.options import ReadOptions
from ser.corpus.progress import AUDIO_FILES, AUDIO_HEADERS, TRANSCRIPTS, counted
from ser.corpus.registry import read_corpus
from ser.errors import CorpusError
from ser.synth.emobox import EmoBoxConfig, write_emobox

Told = list[tuple[str, int, int]]


def _each(what: str, total: int) -> Told:
    """What a pass of `total` utterances tells: each once, in order, with the total."""
    return [(what, done, total) for done in range(1, total + 1)]


def _read(root: Path, corpus: str, classes: str = "all", options: ReadOptions | None = None):  # type: ignore[no-untyped-def]
    told: Told = []
    _, reading = read_corpus(
        root, corpus, classes, options or ReadOptions(), lambda *said: told.append(said)
    )
    return reading, told


def test_a_flat_kind_tells_each_audio_header_once_with_the_total(crema_d_corpus) -> None:  # type: ignore[no-untyped-def]
    reading, told = _read(crema_d_corpus.root, "crema-d")
    assert len(reading.utterances) > 1
    assert told == _each(AUDIO_HEADERS, len(reading.utterances))
    four, told = _read(crema_d_corpus.root, "crema-d", "4")  # the class set's alone
    assert 0 < len(four.utterances) < len(reading.utterances)
    assert told == _each(AUDIO_HEADERS, len(four.utterances))


def test_msp_podcast_tells_its_transcripts_then_its_audio_headers(msp_podcast_corpus) -> None:  # type: ignore[no-untyped-def]
    reading, told = _read(msp_podcast_corpus.root, "msp-podcast")
    rows = len(told) - len(reading.utterances)  # a transcript looked for per labelled row
    assert rows >= len(reading.utterances)
    assert told == _each(TRANSCRIPTS, rows) + _each(AUDIO_HEADERS, len(reading.utterances))


def test_emobox_tells_each_audio_file_looked_for_and_track2_each_header(tmp_path: Path) -> None:
    config = EmoBoxConfig(corpora=("savee",), speakers=2, takes=1, track2=("SAVEE",))
    truth = write_emobox(tmp_path / "EmoBox", config)
    reading, told = _read(truth.folder("savee"), "emobox")
    assert told == _each(AUDIO_FILES, len(reading.utterances))
    track2, told = _read(truth.track2["SAVEE"], "emobox", options=ReadOptions(truth.root))
    assert told == _each(AUDIO_HEADERS, len(track2.utterances))


def test_iemocap_reads_no_file_per_utterance_and_tells_nothing(synthetic_corpus) -> None:  # type: ignore[no-untyped-def]
    """Its lengths are its label lines' times; its wavs are found by one listing a dialog."""
    reading, told = _read(synthetic_corpus[0], "iemocap")
    assert reading.utterances and told == []


def test_the_hook_is_the_one_read_s_alone(crema_d_corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    told: Told = []
    with pytest.raises(CorpusError):
        read_corpus(tmp_path, "crema-d", progress=lambda *said: told.append(said))
    read_corpus(crema_d_corpus.root, "crema-d")  # another read, told to no one
    assert list(counted(["a"], AUDIO_HEADERS)) == ["a"] and told == []


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.corpus.progress).failed == 0
