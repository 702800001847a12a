"""CREMA-D's layout read into utterances: labels, speakers and sentences from the file
names, sexes from VideoDemographics.csv, the empty file and bad names as problems."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ser.corpus.kinds import crema_d
from ser.errors import ConfigError, CorpusError


def test_reads_every_file_as_its_name_says(crema_d_corpus: Any) -> None:
    reading = crema_d.read(crema_d_corpus.root, "all")
    got = {u.utt_id: (u.label, u.speaker) for u in reading.utterances}
    assert got == crema_d_corpus.files
    first = reading.utterances[0]
    assert (first.utt_id, first.gender, first.transcript) == (
        "1001_IEO_ANG_HI", "F", "It's eleven o'clock.",
    )  # fmt: skip
    assert dict(first.groups) == {"sentence": "IEO", "level": "HI"}
    assert first.duration > 0.5 and first.dialog == first.utt_id
    assert [p.utt_id for p in reading.problems] == list(crema_d_corpus.empty)


def test_class_sets(crema_d_corpus: Any) -> None:
    four = crema_d.read(crema_d_corpus.root, "4")
    assert {u.label for u in four.utterances} == {"neu", "hap", "sad", "ang"}
    with pytest.raises(ConfigError, match="crema-d has no class set '5'"):
        crema_d.read(crema_d_corpus.root, "5")


def test_bad_names_are_problems_and_bad_roots_errors(crema_d_corpus: Any, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(crema_d_corpus.root, root)
    (root / "AudioWAV" / "1001_IEO_ANG_HI.wav").rename(root / "AudioWAV" / "1001_IEO_JOY_HI.wav")
    problems = [p.problem for p in crema_d.read(root, "all").problems]
    assert any("1001_IEO_JOY_HI.wav: not a CREMA-D file name" in p for p in problems)
    with pytest.raises(CorpusError, match="not a CREMA-D root: no AudioWAV folder"):
        crema_d.read(tmp_path, "all")
    with pytest.raises(CorpusError, match="did you mean"):
        crema_d.read(root / "AudioWAV", "all")
