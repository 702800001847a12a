"""The metadata CSV checks on their own (the corpus round trip is in test_synth.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.errors import CorpusError
from ser.synth.metadata import METADATA_COLUMNS, metadata_problem, read_metadata

GOOD = {
    "utt_id": "Ses02M_script01_1_F003",
    "dialog": "Ses02M_script01_1",
    "session": "2",
    "speaker_gender": "F",
    "kind": "script",
    "order": "3",
    "start": "1.5",
    "end": "2.25",
    "label": "ang",
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, ""),
        ({"utt_id": "Ses02M_script01_1"}, "not an utterance id"),
        ({"kind": "impro"}, "kind 'impro' does not match"),
        ({"label": "joy"}, "unknown label code"),
        ({"order": "third"}, "must be numbers"),
        ({"start": "3.0"}, "bad times"),
    ],
)
def test_metadata_problem_names_what_is_wrong(change: dict[str, str], problem: str) -> None:
    found = metadata_problem({**GOOD, **change}, seen=set())
    assert (found == "") if not problem else (problem in found)


def test_read_metadata_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text(",".join(METADATA_COLUMNS) + "\n")
    with pytest.raises(CorpusError, match="no utterances"):
        read_metadata(path)
    rows = [",".join(GOOD[c] for c in METADATA_COLUMNS)] * 2
    path.write_text("\n".join([",".join(METADATA_COLUMNS), *rows]) + "\n")
    with pytest.raises(CorpusError, match=r"meta\.csv:3: duplicate utterance"):
        read_metadata(path)
    with pytest.raises(CorpusError, match="cannot read metadata"):
        read_metadata(tmp_path / "absent.csv")
