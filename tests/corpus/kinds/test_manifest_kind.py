"""A corpus by a manifest (CSV or JSONL): columns, relative wavs, splits, dialogs, and one
clear `CorpusError` naming the file and its lines for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from ser.corpus.kinds import manifest
from ser.errors import CorpusError
from ser.synth.acted import write_manifest


def test_csv_of_a_synthetic_corpus(crema_d_corpus: Any, tmp_path: Path) -> None:
    path = write_manifest(crema_d_corpus, tmp_path / "corpus.csv")
    reading = manifest.read(path, "all")
    assert reading.root == tmp_path and reading.source == path
    assert {u.utt_id: (u.label, u.speaker) for u in reading.utterances} == crema_d_corpus.files
    splits = {u.speaker: u.group("split") for u in reading.utterances}
    assert splits == {
        "1001": "train",
        "1002": "train",
        "1003": "train",
        "1004": "dev",
        "1005": "test",
    }
    assert [p.utt_id for p in reading.problems] == list(crema_d_corpus.empty)  # an empty wav


def test_a_wav_cut_short_is_a_problem_by_its_header(tmp_path: Path) -> None:
    """Found from its header and size (what reading a corpus already opens), before any
    extraction; the utterance is kept, its extraction fails naming the file."""
    for name in ("a", "b"):
        soundfile.write(tmp_path / f"{name}.wav", np.zeros(8000, np.float32), 16000, "PCM_16")
    cut = tmp_path / "b.wav"
    cut.write_bytes(cut.read_bytes()[: 44 + 8000])  # its header kept: 0.25 of its 0.5 s
    path = tmp_path / "m.csv"
    path.write_text("utt_id,wav,label,speaker\na,a.wav,neu,s\nb,b.wav,neu,s\n")
    reading = manifest.read(path, "all")
    assert [u.utt_id for u in reading.utterances] == ["a", "b"]
    assert [(p.utt_id, p.problem) for p in reading.problems] == [
        ("b", f"audio file {cut} is cut short: it holds 0.25 s of the 0.50 s its header declares")
    ]


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_jsonl_dialogs_and_extra_columns(tmp_path: Path) -> None:
    rows = [
        {"utt_id": f"u{i}", "wav": f"w{i}.wav", "label": lab, "speaker": "s", "dialog": "d",
         "transcript": "hi  there", "show": "friends", "valence": 2.5}
        for i, lab in enumerate(["joy", "neu", "joy"])
    ]  # fmt: skip
    reading = manifest.read(_jsonl(tmp_path / "m.jsonl", rows), "all")
    assert [(u.utt_id, u.order, u.dialog) for u in reading.utterances] == [
        ("u0", 0, "d"), ("u1", 1, "d"), ("u2", 2, "d"),
    ]  # fmt: skip
    first = reading.utterances[0]
    assert (
        first.transcript == "hi there"
        and first.valence == 2.5
        and first.groups == (("show", "friends"),)
    )
    assert [p.problem.split(":")[0] for p in reading.problems] == ["wav missing"] * 3
    assert [u.label for u in manifest.read(tmp_path / "m.jsonl", "4").utterances] == ["neu"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("utt_id,wav,label\na,a.wav,neu\n", "no column(s) speaker"),
        ("utt_id,wav,label,speaker,duration\na,a.wav,neu,s,1\n", "duration are ser's own"),
        ("utt_id,wav,label,speaker\na,a.wav,,s\n", "line 2: empty label"),
        ("utt_id,wav,label,speaker\na,a.wav,neu,s\na,b.wav,neu,s\n", "utt_id 'a' on 2 rows"),
        ("utt_id,wav,label,speaker,split\na,a.wav,neu,s,val\n", "split 'val' is not one of"),
        ("utt_id,wav,label,speaker,order\na,a.wav,neu,s,x\n", "order 'x' is not an integer"),
        ("utt_id,wav,label,speaker\na,a.wav,neu,s,extra\n", "more cells than the header"),
        ("utt_id,wav,label,speaker\n", "no utterances"),
    ],
)
def test_bad_csv_is_one_error_naming_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CorpusError, match=r"bad\.csv") as error:
        manifest.read(path, "all")
    assert message in str(error.value)


def test_bad_jsonl_and_not_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"utt_id": "a"}\n[1]\n')
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2: not a JSON object"):
        manifest.read(path, "all")
    row = {"utt_id": "a", "wav": "a.wav", "label": "neu", "speaker": "s"}
    _jsonl(path, [row, {**row, "utt_id": "b", "duration": 1}])  # not on the first line
    with pytest.raises(CorpusError, match=r"bad\.jsonl: column\(s\) duration are ser's own"):
        manifest.read(path, "all")
    with pytest.raises(CorpusError, match="is not a manifest"):
        manifest.read(tmp_path / "corpus.txt", "all")
