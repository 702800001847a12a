"""MSP-Podcast's layout read into utterances: labels, attributes, speakers and partitions
from labels_consensus.csv, transcripts beside, O and X outside the trained class sets."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ser.corpus import registry
from ser.corpus.kinds import msp_podcast
from ser.errors import ConfigError, CorpusError


def test_reads_every_row_with_its_attributes(msp_podcast_corpus: Any) -> None:
    kind, reading = registry.read_corpus(msp_podcast_corpus.root)  # guessed from the layout
    assert kind.name == "msp-podcast" and kind.protocol == "official"
    got = {u.utt_id: (u.label, u.speaker) for u in reading.utterances}
    assert got == msp_podcast_corpus.files
    first = reading.utterances[0]
    assert (first.utt_id, first.label, first.gender) == ("MSP-PODCAST_0001_0001", "ang", "F")
    assert all(1 <= value <= 7 for value in first.attributes)  # the 1-7 scale, as shipped
    assert first.transcript == "" and reading.utterances[1].transcript  # one shipped none
    splits = {u.group("split") for u in reading.utterances}
    assert splits == {"train", "dev", "test", "test2"}
    assert not reading.problems


def test_class_sets_leave_other_and_no_agreement_out(msp_podcast_corpus: Any) -> None:
    eight = msp_podcast.read(msp_podcast_corpus.root, "8")
    assert {u.label for u in eight.utterances} == set(msp_podcast.PRIMARY)
    four = msp_podcast.read(msp_podcast_corpus.root, "4")
    assert {u.label for u in four.utterances} == {"neu", "hap", "sad", "ang"}
    every = msp_podcast.read(msp_podcast_corpus.root, "all")
    assert {"oth", "xxx"} <= {u.label for u in every.utterances}
    with pytest.raises(ConfigError, match="MSP-Podcast does not train on class set 'all'"):
        registry.KINDS["msp-podcast"].trained_set("all")
    with pytest.raises(ConfigError, match="msp-podcast has no class set '6'"):
        msp_podcast.read(msp_podcast_corpus.root, "6")


def test_bad_rows_and_roots_are_errors_naming_the_file(
    msp_podcast_corpus: Any, tmp_path: Path
) -> None:
    root = shutil.copytree(msp_podcast_corpus.root, tmp_path / "copy")
    labels = root / "Labels" / "labels_consensus.csv"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([lines[0], lines[1].replace(",A,", ",Q,"), *lines[2:]]) + "\n")
    with pytest.raises(CorpusError, match=r"labels_consensus.csv:2: .*EmoClass 'Q'"):
        msp_podcast.read(root, "all")
    labels.write_text(lines[0].replace("SpkrID,", "") + "\n")
    with pytest.raises(CorpusError, match=r"no column\(s\) SpkrID"):
        msp_podcast.read(root, "all")
    with pytest.raises(CorpusError, match=r"not an MSP-Podcast root.*did you mean"):
        msp_podcast.read(root / "Labels", "all")
    (root / "Audios" / "MSP-PODCAST_0001_0001.wav").unlink()
    unlabelled = lines[2].replace(",S,", ",,").replace(",Train", ",Test3")
    labels.write_text("\n".join([*lines[:2], unlabelled, *lines[3:]]) + "\n")
    problems = [p.problem for p in msp_podcast.read(root, "all").problems]
    wav = root.resolve() / "Audios" / "MSP-PODCAST_0001_0001.wav"
    assert problems == [f"{labels}:3: no EmoClass (unlabelled)", f"wav missing: no {wav}"]


def test_the_annotators_votes_are_read_in_either_shape(
    msp_podcast_corpus: Any, tmp_path: Path
) -> None:
    """labels_detailed.csv: a row per annotator, its primary emotion by name, as one
    `worker; primary; ...` field (the synthetic corpus) or in columns."""
    reading = msp_podcast.read(msp_podcast_corpus.root, "all")
    votes = {u.utt_id: u.votes for u in reading.utterances}
    first = votes["MSP-PODCAST_0001_0001"]  # angry: 3 angry votes, 2 what they heard
    assert [code for _, code in first][:3] == ["ang"] * 3
    assert first[0] == ("WORKER00001", "ang") and len({w for w, _ in first}) == 5
    assert [c for _, c in votes["MSP-PODCAST_0001_0009"]][:3] == ["oth"] * 3  # Other-Curious
    assert {c for _, c in votes["MSP-PODCAST_0001_0010"]} == {"ang", "hap", "sad", "neu", "sur"}
    columns = tmp_path / "columns.csv"
    columns.write_text(
        "FileName,WorkerID,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom\n"
        "MSP-PODCAST_0001_0001.wav,W7,Happy,,4,4,4\n"
        "MSP-PODCAST_0001_0001.wav,W9,Other-Awe,,4,4,4\n"
        "\n"
        "MSP-PODCAST_0002_0003,W7,Neutral,Sad,3,3,3\n"
    )
    assert msp_podcast.read_votes(columns, []) == {
        "MSP-PODCAST_0001_0001": (("W7", "hap"), ("W9", "oth")),
        "MSP-PODCAST_0002_0003": (("W7", "neu"),),
    }
    unnamed = tmp_path / "unnamed.csv"  # no worker column: numbered in file order
    unnamed.write_text("FileName,EmoClass_Major\na.wav,Sad\na.wav,Fear\n")
    assert msp_podcast.read_votes(unnamed, []) == {"a": (("1", "sad"), ("2", "fea"))}
    assert msp_podcast.read_votes(tmp_path / "absent.csv", []) == {}


def test_a_bad_votes_file_is_an_error_naming_it(msp_podcast_corpus: Any, tmp_path: Path) -> None:
    root = shutil.copytree(msp_podcast_corpus.root, tmp_path / "copy")
    detailed = root / "Labels" / "labels_detailed.csv"
    lines = detailed.read_text().splitlines()
    detailed.write_text("\n".join([*lines[:3], "MSP-PODCAST_0001_0001.wav,W1; A:4.0", *lines[3:]]))
    with pytest.raises(CorpusError, match=r"labels_detailed.csv:4: no annotator's primary"):
        msp_podcast.read(root, "all")
    detailed.write_text("Name,Vote\nx,y\n")
    with pytest.raises(CorpusError, match=r"labels_detailed.csv: the first column must be"):
        msp_podcast.read(root, "all")
    detailed.unlink()  # a release without it: no votes, nothing else changes
    assert all(not u.votes for u in msp_podcast.read(root, "all").utterances)
