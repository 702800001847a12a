"""RAVDESS's layout: the seven fields of a file name, actors' sexes, bad names and video
files reported, never skipped silently."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ser.corpus.kinds import ravdess
from ser.errors import CorpusError


def test_reads_every_file_as_its_name_says(ravdess_corpus: Any) -> None:
    reading = ravdess.read(ravdess_corpus.root, "all")
    assert {u.utt_id: (u.label, u.speaker) for u in reading.utterances} == ravdess_corpus.files
    assert reading.problems == ()
    calm = next(u for u in reading.utterances if u.utt_id == "03-01-02-02-01-01-02")
    assert (calm.label, calm.speaker, calm.gender, calm.group("kind")) == (
        "cal",
        "Actor_02",
        "F",
        "speech",
    )
    assert calm.transcript == "Kids are talking by the door."
    assert dict(calm.groups) == {
        "kind": "speech",
        "intensity": "strong",
        "statement": "01",
        "repetition": "01",
    }
    assert {u.label for u in ravdess.read(ravdess_corpus.root, "8").utterances} == set(
        ravdess.EMOTIONS
    )


def test_problems(ravdess_corpus: Any, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(ravdess_corpus.root, root)
    actor = root / "Actor_01"
    (actor / "03-01-01-01-01-01-01.wav").rename(actor / "03-01-01-01-01-01-07.wav")
    (actor / "01-01-01-01-01-01-01.mp4").write_bytes(b"")
    (actor / "notes.wav").write_bytes(b"")
    problems = " | ".join(p.problem for p in ravdess.read(root, "all").problems)
    assert "names actor 07 in folder Actor_01" in problems
    assert "a video file" in problems and "notes.wav: not a RAVDESS audio file name" in problems
    with pytest.raises(CorpusError, match="did you mean"):
        ravdess.read(actor, "all")
