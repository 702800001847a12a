"""The synthetic corpus: IEMOCAP's layout and formats, deterministic bytes per seed,
emotion carried by prosody and (part of the time) by wording, and `--from-metadata`
round trips."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

import ser.synth.audio as synth_audio
from ser.corpus.kinds.iemocap import read as read_corpus
from ser.errors import ConfigError, CorpusError
from ser.synth.corpus import SynthConfig, write_corpus, write_corpus_from_metadata
from ser.synth.text import VOCABULARY

SMALL = SynthConfig(dialogs_per_session=1, utterances_per_dialog=(3, 4), duration_range=(1, 1.5))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = _files(write_corpus(tmp_path / "a", SMALL).root)
    again = _files(write_corpus(tmp_path / "b", SMALL).root)
    other = _files(write_corpus(tmp_path / "c", SynthConfig(**{**SMALL.__dict__, "seed": 1})).root)
    assert len(first) > 50
    assert first == again
    assert first != other
    wavs = [name for name in first if name.startswith("Session1/sentences/")]
    assert all(first[name] != other.get(name) for name in wavs)


def test_layout_and_audio_format(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        f"Session{s}" for s in range(1, 6)
    ]
    for utt in truth.utterances[:: max(1, len(truth.utterances) // 20)]:
        assert utt.wav_path == root.resolve() / (
            f"Session{utt.group('session')}/sentences/wav/{utt.dialog}/{utt.utt_id}.wav"
        )
        info = soundfile.info(utt.wav_path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == round(utt.duration * 16000)
    evaluation = root / "Session1" / "dialog" / "EmoEvaluation"
    assert {p.name for p in evaluation.iterdir() if p.is_dir()} == {
        "Categorical",
        "Attribute",
        "Self-evaluation",
    }


_CATEGORY_LINE = re.compile(r"^C-\w+:\t(\w+; )*\w+;\t\(\)$")
_ATTRIBUTE_LINE = re.compile(r"^A-\w+:\tval \d; act \d; dom  \d;\t\(\)$")


def test_emoevaluation_format_matches_the_real_files(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    first = truth.utterances[0]
    path = root / "Session1" / "dialog" / "EmoEvaluation" / f"{first.dialog}.txt"
    text = path.read_text()
    assert text.startswith("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n[")
    assert text.endswith("()\n\n") and "\r" not in text
    label_line = re.compile(r"^\[\d+\.\d{4} - \d+\.\d{4}\]\tSes\S+\t[a-z]{3}\t\[\d\.\d{4}, ")
    blocks = text.split("\n\n")[1:-1]
    assert len(blocks) == len([u for u in truth.utterances if u.dialog == first.dialog])
    for block in blocks:
        lines = block.split("\n")
        assert label_line.match(lines[0])
        for line in lines[1:]:
            assert _CATEGORY_LINE.match(line) or _ATTRIBUTE_LINE.match(line), line
        ratings = [re.findall(r"\d", line) for line in lines[1:] if line.startswith("A-")]
        vad = re.search(r"\[([\d.]+), ([\d.]+), ([\d.]+)\]$", lines[0])
        assert vad is not None
        means = np.mean(np.array(ratings, dtype=float)[:, -3:], axis=0)
        assert [float(x) for x in vad.groups()] == [float(f"{m:.4f}") for m in means]


def test_transcription_times_are_zero_padded(synthetic_corpus: tuple[Path, Any]) -> None:
    root, _ = synthetic_corpus
    line = (root / "Session2" / "dialog" / "transcriptions").glob("*.txt").__next__()
    first = line.read_text().splitlines()[0]
    assert re.match(r"^Ses02\w+ \[\d{3}\.\d{4}-\d{3}\.\d{4}\]:( |$)", first)


def test_vocabulary_holds_every_written_word(synthetic_corpus: tuple[Path, Any]) -> None:
    root, _ = synthetic_corpus
    words = set()
    for path in root.glob("Session*/dialog/transcriptions/*.txt"):
        for line in path.read_text().splitlines():
            text = re.sub(r"^(\S+ \[[\d.]+-[\d.]+\]|[FM]):", "", line)  # id and time, speaker
            text = re.sub(r"\[[^\]]*\]", " ", text)  # tags
            words.update(re.findall(r"[a-z']+", text.lower()))
    assert words and words <= set(VOCABULARY)
    assert all(w == w.lower() and "[" not in w for w in VOCABULARY)
    assert "laughter" not in VOCABULARY
    assert tuple(sorted(set(VOCABULARY))) == VOCABULARY


def test_labels_and_vad_are_consistent(synthetic_corpus: tuple[Path, Any]) -> None:
    _, truth = synthetic_corpus
    by_label = defaultdict(list)
    for utt in truth.utterances:
        by_label[utt.label].append(utt)
        assert min(utt.valence, utt.arousal, utt.dominance) >= 1.0
        assert max(utt.valence, utt.arousal, utt.dominance) <= 5.0
        assert 1.0 <= utt.duration <= 4.0
    mean = {c: np.mean([[u.valence, u.arousal] for u in us], axis=0) for c, us in by_label.items()}
    assert mean["hap"][0] > mean["neu"][0] > mean["ang"][0]  # valence
    assert mean["ang"][1] > mean["neu"][1] > mean["sad"][1]  # arousal
    assert by_label["xxx"] and by_label["neu"] and len(by_label["dis"]) >= 1


def test_emotion_moves_the_prosody(synthetic_corpus: tuple[Path, Any]) -> None:
    _, truth = synthetic_corpus
    level: dict[str, list[float]] = defaultdict(list)
    for utt in truth.utterances:
        samples, _ = soundfile.read(utt.wav_path)
        level[utt.label].append(10 * np.log10(np.mean(samples**2)))
    assert np.mean(level["ang"]) > np.mean(level["neu"]) + 3 > np.mean(level["sad"]) + 6


def test_text_carries_the_emotion_only_part_of_the_time(synthetic_corpus: Any) -> None:
    _, truth = synthetic_corpus
    cues = {"ang": ("hate", "ridiculous", "liar", "unacceptable", "shut", "sick", "enough", "face")}
    angry = [u for u in truth.utterances if u.label == "ang"]
    cued = [u for u in angry if any(w in u.transcript.lower() for w in cues["ang"])]
    assert 0.2 < len(cued) / len(angry) < 0.9


def test_xx_turns_and_names_of_the_quirks(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    dialogs = {u.dialog for u in truth.utterances}
    assert {"Ses03M_impro05a", "Ses05M_script01_1b"} <= dialogs
    xx = [
        line
        for path in root.glob("Session*/dialog/transcriptions/*.txt")
        for line in path.read_text().splitlines()
        if re.match(r"^Ses0[35]\w+_[FM]XX\d ", line)
    ]
    assert len(xx) >= 2
    assert not list(root.glob("Session*/sentences/wav/*/*XX*"))


def test_refuses_a_non_empty_folder_and_accepts_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="full is not empty"):
        write_corpus(tmp_path / "full", SMALL)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    truth = write_corpus(tmp_path / "empty", SMALL)
    assert read_corpus(tmp_path / "empty").utterances == truth.utterances


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synth_audio, "synthesize", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_corpus(tmp_path / "corpus", SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"dialogs_per_session": 0},
        {"dialogs_per_session": 31},
        {"utterances_per_dialog": (5, 4)},
        {"duration_range": (0.1, 2.0)},
    ],
)
def test_bad_config_is_a_config_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SynthConfig(**changes)


# --- from metadata -------------------------------------------------------------------

_ROWS = [
    # utt_id, order (transcription order, not start order), start, end, label, text
    ("Ses01F_impro01_F000", 1, 6.2901, 8.2357, "neu", "Excuse me."),
    ("Ses01F_impro01_M000", 0, 5.5, 10.475, "fru", "[LAUGHTER] Do you have your forms?"),
    ("Ses01F_impro01_F001", 2, 10.01, 11.3925, "xxx", ""),
    ("Ses03M_impro05b_F000", 0, 1.0, 2.5, "exc", "Yes!"),
    ("Ses03M_impro05b_M000", 1, 2.0, 3.0, "sad", "Oh, no."),
    ("Ses05M_script01_1b_M000", 0, 3.25, 4.0, "hap", "Fine, [breathing] thanks."),
]


def _write_csv(path: Path, with_text: bool) -> Path:
    columns = ["utt_id", "dialog", "session", "speaker_gender", "kind", "order"]
    columns += ["start", "end", "label"] + (["text"] if with_text else [])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for utt_id, order, start, end, label, text in _ROWS:
            kind = "impro" if "_impro" in utt_id else "script"
            row = [utt_id, utt_id[:-5], int(utt_id[3:5]), utt_id[-4], kind, order, start, end]
            writer.writerow(row + [label] + ([text] if with_text else []))
    return path


@pytest.mark.parametrize("with_text", [True, False])
def test_from_metadata_round_trips_exactly_those_utterances(
    tmp_path: Path, with_text: bool
) -> None:
    csv_path = _write_csv(tmp_path / "meta.csv", with_text)
    truth = write_corpus_from_metadata(tmp_path / "corpus", csv_path, seed=3)
    reading = read_corpus(tmp_path / "corpus")
    assert [p.utt_id for p in reading.problems] == ["Session2", "Session4"]  # not in the CSV
    assert reading.utterances == truth.utterances
    found = {u.utt_id: u for u in reading.utterances}
    assert set(found) == {row[0] for row in _ROWS}
    for utt_id, _, start, end, label, text in _ROWS:
        utt = found[utt_id]
        assert (utt.start, utt.end, utt.label) == (start, end, label)
        assert utt.gender == utt_id[-4] and utt.dialog == utt_id[:-5]
        if with_text:
            assert utt.transcript_raw == text
    assert found["Ses01F_impro01_M000"].order == 0  # starts first, though listed second
    if with_text:
        assert found["Ses05M_script01_1b_M000"].transcript == "Fine, thanks."
        assert found["Ses01F_impro01_F001"].transcript == ""


def test_from_metadata_is_deterministic(tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "meta.csv", with_text=False)
    first = write_corpus_from_metadata(tmp_path / "a", csv_path, seed=3).root
    second = write_corpus_from_metadata(tmp_path / "b", csv_path, seed=3).root
    assert _files(first) == _files(second)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("speaker_gender,", ""), "missing columns speaker_gender"),
        (lambda text: text.replace("Ses01F_impro01,1,F", "Ses01F_impro01,2,F", 1), ":2: session"),
        (lambda text: text.replace(",neu,", ",joy,"), "unknown label code 'joy'"),
        (lambda text: text.replace("6.2901,8.2357", "8.2357,6.2901"), "bad times"),
        (lambda text: text.replace("Ses01F_impro01_M000", "Ses01F_impro01_F000"), "duplicate"),
    ],
)
def test_from_metadata_refuses_bad_rows(tmp_path: Path, edit: Any, message: str) -> None:
    csv_path = _write_csv(tmp_path / "meta.csv", with_text=True)
    csv_path.write_text(edit(csv_path.read_text()))
    with pytest.raises(CorpusError, match=re.escape(message)):
        write_corpus_from_metadata(tmp_path / "corpus", csv_path)
    assert not (tmp_path / "corpus").exists()


def test_docstring_examples() -> None:
    import doctest

    import ser.synth.audio
    import ser.synth.corpus
    import ser.synth.manifest

    for module in (ser.synth.audio, ser.synth.corpus, ser.synth.manifest):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
