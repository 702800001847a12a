"""MELD's layout read into utterances: the three CSVs with their dialogs and order, the
release's .mp4 clips or the user's wavs per split (a wav wins), both annotations in one
code, and clear refusals (folders, rows)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import soundfile

from ser.corpus import registry
from ser.corpus.audio import load_audio
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


def test_reads_the_release_clips_as_shipped(meld_release: Any) -> None:
    kind, reading = registry.read_corpus(meld_release.root)  # guessed: the CSVs
    assert kind.name == "meld"
    assert {u.utt_id: (u.label, u.speaker) for u in reading.utterances} == meld_release.files
    for utterance in reading.utterances:
        assert utterance.wav_path is not None or utterance.utt_id in meld_release.empty
    clips = [u for u in reading.utterances if u.wav_path is not None]
    split = {u.utt_id: u.group("split") for u in clips}
    assert {u.wav_path.parent.name for u in clips} == set(meld.RELEASE.values())
    assert all(u.wav_path.parent.name == meld.RELEASE[split[u.utt_id]] for u in clips)
    assert all(u.wav_path.suffix == ".mp4" and 0.7 < u.duration < 1.5 for u in clips)
    # the clip the release lacks is named where the release would have it
    [problem] = reading.problems
    missing = meld_release.root / "train_splits" / f"{meld_release.empty[0][6:]}.mp4"
    assert problem.utt_id == meld_release.empty[0] and str(missing) in problem.problem


def test_a_cut_wav_wins_over_its_clip(meld_release: Any, tmp_path: Path) -> None:
    root = shutil.copytree(meld_release.root, tmp_path / "copy")
    (root / "dev").mkdir()
    clip = root / "dev_splits_complete" / "dia0_utt1.mp4"
    soundfile.write(root / "dev" / "dia0_utt1.wav", load_audio(clip, 16000), 16000)
    by_id = {u.utt_id: u for u in meld.read(root, "7").utterances}
    assert by_id["dev_dia0_utt1"].wav_path == root / "dev" / "dia0_utt1.wav"
    assert by_id["dev_dia0_utt0"].wav_path == root / "dev_splits_complete" / "dia0_utt0.mp4"
    released = {u.utt_id: u for u in meld.read(meld_release.root, "7").utterances}
    assert by_id["dev_dia0_utt1"].duration == pytest.approx(
        released["dev_dia0_utt1"].duration, abs=1e-4
    )  # the same audio either way
    (root / "dev_splits_complete" / "dia0_utt1.mp4").unlink()
    (root / "dev" / "dia0_utt1.wav").unlink()  # neither: named where the release has it
    problems = {p.utt_id: p.problem for p in meld.read(root, "7").problems}
    assert "dev_splits_complete/dia0_utt1.mp4" in problems["dev_dia0_utt1"]


def test_a_clip_that_does_not_decode_is_its_utterances_problem(
    meld_release: Any, tmp_path: Path
) -> None:
    root = shutil.copytree(meld_release.root, tmp_path / "copy")
    clip = root / "output_repeated_splits_test" / "dia0_utt0.mp4"
    clip.write_bytes(clip.read_bytes()[:600])  # cut short, as a few of the release's are
    reading = meld.read(root, "7")
    problems = {p.utt_id: p.problem for p in reading.problems}
    assert str(clip) in problems["test_dia0_utt0"] and "cannot decode" in problems["test_dia0_utt0"]
    assert "test_dia0_utt0" in {u.utt_id for u in reading.utterances}  # kept, still named


def test_bad_layouts_are_errors_naming_the_file(meld_corpus: Any, tmp_path: Path) -> None:
    root = shutil.copytree(meld_corpus.root, tmp_path / "copy")
    shutil.move(root / "test", root / "elsewhere")
    with pytest.raises(
        CorpusError,
        match=r"test_sent_emo.csv: its clips are in neither .*output_repeated_splits_test.* nor",
    ):
        meld.read(root, "7")
    shutil.move(root / "elsewhere", root / "test")
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
