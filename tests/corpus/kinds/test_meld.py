"""MELD's layout read into utterances: the three CSVs with their dialogs and order, the
user's wavs per split, both annotations in one code, and clear refusals (mp4s, folders)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ser.corpus import registry
from ser.corpus.kinds import meld
from ser.errors import CorpusError


def test_reads_dialogs_in_order_with_both_annotations(meld_corpus: Any) -> None:
    kind, reading = registry.read_corpus(meld_corpus.root)  # guessed from the layout
    assert kind.name == "meld" and kind.protocol == "official"
    assert {u.utt_id: (u.label, u.speaker) for u in reading.utterances} == meld_corpus.files
    first = reading.utterances[0]
    assert (first.utt_id, first.dialog, first.order) == ("dev_dia0_utt0", "dev_dia0", 0)
    assert first.transcript and first.group("split") == "dev"
    # dialog ids restart in each CSV: the split keeps them apart
    dialogs = {u.dialog for u in reading.utterances}
    assert {"train_dia0", "dev_dia0", "test_dia0"} <= dialogs
    in_dialog = [u.order for u in reading.utterances if u.dialog == "test_dia1"]
    assert in_dialog == sorted(in_dialog) and in_dialog[0] == 0
    assert [p.utt_id for p in reading.problems] == list(meld_corpus.empty)  # the missing clip


def test_class_sets_read_emotion_or_sentiment(meld_corpus: Any) -> None:
    seven = meld.read(meld_corpus.root, "7")
    labels = meld.LABEL_SETS["7"]
    assert {labels.class_of(u.label) for u in seven.utterances} == set(meld.EMOTIONS.values())
    sentiment = meld.LABEL_SETS["sentiment"]
    assert sentiment.classes == ("neg", "neu", "pos")
    assert sentiment.class_of("sur.pos") == "pos" and labels.class_of("sur.pos") == "sur"
    four = meld.read(meld_corpus.root, "4")
    assert {u.label.split(".")[0] for u in four.utterances} == {"neu", "hap", "sad", "ang"}


def test_an_mp4_where_a_wav_belongs_is_refused(meld_corpus: Any, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(meld_corpus.root, root)
    (root / "dev" / "dia0_utt0.wav").rename(root / "dev" / "dia0_utt0.mp4")
    with pytest.raises(
        CorpusError, match=r"dia0_utt0.mp4 is an .mp4 where ser reads a .wav.*ffmpeg -i"
    ):
        meld.read(root, "7")


def test_bad_layouts_are_errors_naming_the_file(meld_corpus: Any, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(meld_corpus.root, root)
    shutil.move(root / "test", root / "output_repeated_splits_test")
    with pytest.raises(
        CorpusError, match=r"test_sent_emo.csv: its wavs go in .*test.*cut the clips"
    ):
        meld.read(root, "7")
    shutil.move(root / "output_repeated_splits_test", root / "test")
    csv = root / "dev_sent_emo.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join([lines[0], lines[1].replace("neutral", "bored", 1), *lines[2:]]))
    with pytest.raises(CorpusError, match=r"dev_sent_emo.csv:2: Emotion 'bored'"):
        meld.read(root, "7")
    csv.unlink()
    problems = [p.problem for p in meld.read(root, "7").problems]
    assert any("dev split is not read" in p for p in problems)
    with pytest.raises(CorpusError, match="not a MELD root"):
        meld.read(tmp_path, "7")
