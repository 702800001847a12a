"""EmoBox's folders read as published: each of its 32 corpora's key and path shapes
(synthetic lines made in their shapes) with their labels after the map and speakers,
the folds as the files list them, the audio root, track2 test files, and one error naming
the file and line for each bad input."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import pytest

import ser.corpus.kinds.emobox_corpora
import ser.corpus.options
from ser.corpus import registry
from ser.corpus.kinds import emobox
from ser.corpus.kinds.emobox_corpora import CORPORA, FromStm
from ser.corpus.options import ReadOptions
from ser.errors import ConfigError, CorpusError
from ser.synth.emobox import EmoBoxConfig, EmoBoxTruth, write_emobox
from ser.synth.emobox_shapes import SHAPES


def _write(tmp_path: Path, *corpora: str, **options: object) -> EmoBoxTruth:
    config = EmoBoxConfig(corpora=corpora, track2=(), **options)  # type: ignore[arg-type]
    return write_emobox(tmp_path / "EmoBox", config)


def _read(folder: Path, classes: str = "all", audio_root: Path | None = None):  # type: ignore[no-untyped-def]
    return registry.read_corpus(folder, "emobox", classes, ReadOptions(audio_root))


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_each_corpus_reads_with_its_labels_and_speakers(name: str, tmp_path: Path) -> None:
    truth = _write(tmp_path, name, speakers=3, takes=1, audio=False)
    kind, reading = _read(truth.folder(name))
    assert kind.name == "emobox" and reading.source == truth.folder(name)
    assert {u.utt_id: (u.label, u.speaker) for u in reading.utterances} == truth.files[name]
    first = reading.utterances[0]
    assert first.group("dataset") == name and first.group("emo") in SHAPES[name].codes
    assert first.duration > 0 and first.wav_path is None  # no audio written: a problem each
    assert reading.root == truth.root  # the default audio root: the checkout


ODD_KEYS = [  # shapes seen in EmoBox's keys that a corpus's usual one does not cover
    ("enterface", "enterface-s_3_fe_5.avi", "s3"),
    ("enterface", "enterface-s6_an.avi", "s6"),
    ("enterface", "enterface-s16_su_3avi.avi", "s16"),
    ("aesdd", "aesdd-a06-5b", "5"),
    ("aesdd", "aesdd-f10-01", "1"),
    ("asvpesd", "asvpesd-03-01-04-01-10-36-03-03-01", "36"),
    ("iemocap", "iemocap-Ses03M_script01_1b_F012", "Ses03F"),
    ("ravdess", "ravdess-03-01-05-01-02-01-18", "18"),
    ("subesco", "subesco-M_10_EVAN_S_8_DISGUST_2", "M10"),
]


@pytest.mark.parametrize(("name", "key", "speaker"), ODD_KEYS)
def test_speaker_patterns_cover_the_odd_keys(name: str, key: str, speaker: str) -> None:
    assert CORPORA[name].speaker_of(key) == speaker


def test_the_table_says_where_speakers_come_from() -> None:
    assert {n for n, c in CORPORA.items() if c.speakers is None} == {"mer2023", "mesd", "resd"}
    assert {n for n, c in CORPORA.items() if isinstance(c.speakers, FromStm)} == {
        "emozionalmente", "m3ed", "meld", "msppodcast",
    }  # fmt: skip
    assert len(CORPORA) == 32 and set(CORPORA) == set(SHAPES)
    assert CORPORA["mer2023"].source.startswith("unknown: ")


def test_labels_go_through_the_map_and_class_sets(tmp_path: Path) -> None:
    truth = _write(tmp_path, "iemocap", speakers=2, takes=1, audio=False)
    _, reading = _read(truth.folder("iemocap"))
    by_code = {u.group("emo"): u.label for u in reading.utterances}
    assert by_code == {"neu": "Neutral", "hap": "Happy", "exc": "Happy", "ang": "Angry",
                       "sad": "Sad"}  # fmt: skip
    kind = registry.KINDS["emobox"]
    assert kind.label_set("all", [u.label for u in reading.utterances]).classes == (
        "Angry", "Happy", "Neutral", "Sad",
    )  # fmt: skip
    assert kind.label_set("4").classes == ("Neutral", "Happy", "Sad", "Angry")
    _, four = _read(truth.folder("iemocap"), "4")
    assert len(four.utterances) == len(reading.utterances)
    with pytest.raises(ConfigError, match="EmoBox iemocap has no class set '6'"):
        _read(truth.folder("iemocap"), "6")


def test_a_code_in_another_case_is_read_and_said(tmp_path: Path) -> None:
    """EmoDB's lines say `neutral` where its map says `Neutral`: read, and a problem."""
    truth = _write(tmp_path, "savee", speakers=1, takes=1, audio=False)
    jsonl = truth.folder("savee") / "savee.jsonl"
    rows = _lines(jsonl)
    _rewrite(jsonl, [{**rows[0], "emo": "A"}, *rows[1:]])
    _, reading = _read(truth.folder("savee"))
    first = next(u for u in reading.utterances if u.utt_id == rows[0]["key"])
    assert (first.label, first.group("emo")) == ("Angry", "A")
    assert "emo 'A' is not in the label map: read as 'a'" in [p.problem for p in reading.problems]


def test_folds_are_the_files_sides(tmp_path: Path) -> None:
    truth = _write(tmp_path, "savee", "msppodcast", speakers=4, takes=1, audio=False)
    for name in ("savee", "msppodcast"):
        _, reading = _read(truth.folder(name))
        for fold, sides in truth.folds[name].items():
            for side, keys in sides.items():
                got = sorted(u.utt_id for u in reading.utterances if u.group(fold) == side)
                assert got == sorted(keys), (name, fold, side)
    assert set(truth.folds["savee"]) == {"fold_1", "fold_2", "fold_3", "fold_4"}
    assert set(truth.folds["msppodcast"]["fold_1"]) == {"train", "valid", "test"}


def test_spans_and_audio_are_read_from_the_audio_root(tmp_path: Path) -> None:
    truth = _write(tmp_path, "pavoque", "savee", speakers=1, takes=2)
    _, reading = _read(truth.folder("pavoque"))
    parts = [(u.start, u.end) for u in reading.utterances if u.group("emo") == "angry"]
    assert parts[0][0] == 0.0 and parts[0][1] == parts[1][0] and not reading.problems
    assert all(u.span == (u.start, u.end) and u.wav_path for u in reading.utterances)
    elsewhere = tmp_path / "audio"
    shutil.move(truth.root / "downloads", elsewhere / "downloads")
    _, moved = _read(truth.folder("savee"))
    assert moved.problems[0].problem.startswith(
        f"6 of 6 wavs missing under the default audio root {truth.root} "
        "(the folder holding downloads/; give it with --audio-root)"
    )
    missing = truth.root / "downloads" / "savee" / "DC_a00.wav"
    assert f"wav missing: no {missing}" in [p.problem for p in moved.problems]
    _, found = _read(truth.folder("savee"), audio_root=elsewhere)
    assert not found.problems and found.root == elsewhere
    assert all(u.wav_path and u.wav_path.is_relative_to(elsewhere) for u in found.utterances)


def test_speakers_only_the_stm_names(tmp_path: Path) -> None:
    truth = _write(tmp_path, "meld", speakers=3, takes=1, audio=False)
    (truth.folder("meld") / emobox.STM).unlink()
    _, reading = _read(truth.folder("meld"))
    assert {u.speaker for u in reading.utterances} == {"Unknown"}
    assert f"no {truth.folder('meld') / emobox.STM}" in reading.problems[1].problem


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rewrite(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_bad_input_is_one_error_naming_file_and_line(tmp_path: Path) -> None:
    truth = _write(tmp_path, "savee", speakers=2, takes=1, audio=False)
    folder = truth.folder("savee")
    jsonl, rows = folder / "savee.jsonl", _lines(folder / "savee.jsonl")
    _rewrite(jsonl, [*rows[:2], {**rows[2], "emo": "xx"}, *rows[3:]])
    with pytest.raises(CorpusError, match=r"savee.jsonl:3: emo 'xx' is not in the label map"):
        _read(folder)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]) + "{not json\n")
    with pytest.raises(CorpusError, match=r"savee.jsonl:5: not JSON"):
        _read(folder)
    _rewrite(jsonl, [*rows, rows[0]])
    with pytest.raises(CorpusError, match=r"savee.jsonl: key\(s\) on more than one line: savee-DC"):
        _read(folder)
    _rewrite(jsonl, [{k: v for k, v in rows[0].items() if k != "wav"}, *rows[1:]])
    with pytest.raises(CorpusError, match=r"savee.jsonl:1: no wav"):
        _read(folder)
    _rewrite(jsonl, rows[1:])  # a key the folds list, the corpus no longer has
    test = folder / "fold_1" / "savee_test_fold_1.jsonl"
    line = 1 + [r["key"] for r in _lines(test)].index(rows[0]["key"])
    unknown = rf"savee_test_fold_1.jsonl:{line}: key 'savee-DC-a00' is not in .*savee.jsonl"
    with pytest.raises(CorpusError, match=unknown):
        _read(folder)
    _rewrite(jsonl, rows)
    train = folder / "fold_1" / "savee_train_fold_1.jsonl"
    _rewrite(train, [*_lines(train), _lines(test)[0]])
    twice = r"savee_test_fold_1.jsonl:1: key 'savee-DC-a00' is on train and test of fold_1"
    with pytest.raises(CorpusError, match=twice):
        _read(folder)
    train.unlink()
    with pytest.raises(CorpusError, match=r"fold_1: no savee_train_fold_1.jsonl"):
        _read(folder)
    (folder / "label_map.json").unlink()
    with pytest.raises(CorpusError, match=r"no label_map.json or label_dict.json"):
        _read(folder)
    with pytest.raises(CorpusError, match=r"not an EmoBox corpus folder: no data.jsonl"):
        _read(folder.parent)


def test_other_kinds_refuse_the_audio_root(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"IEMOCAP takes no --audio-root \(it is for --corpus emobox\)"
    ):
        registry.read_corpus(tmp_path, "iemocap", "4", ReadOptions(tmp_path))


def test_track2_files_read_with_speakers_and_labels_by_name(tmp_path: Path) -> None:
    config = EmoBoxConfig(corpora=(), speakers=2, takes=1, track2=("SAVEE", "IEMOCAP", "MELD"))
    truth = write_emobox(tmp_path / "EmoBox", config)
    path = truth.track2["SAVEE"]
    kind, reading = _read(path, audio_root=truth.track2_audio)
    assert kind.name == "emobox" and not reading.problems and reading.source == path
    got = {u.utt_id: (u.label, u.speaker) for u in reading.utterances}
    assert got["savee-DC-sa00"] == ("Sad", "DC") and len(got) == 8
    assert all(u.duration > 0 for u in reading.utterances)  # from each file's header
    assert {u.group("dataset") for u in reading.utterances} == {"savee"}
    assert {u.label for u in reading.utterances} == {"Neutral", "Happy", "Sad", "Angry"}
    _, meld = _read(truth.track2["MELD"], audio_root=truth.track2_audio)
    assert {u.speaker for u in meld.utterances} == {"Character-1", "Character-2"}
    _, alone = _read(path)  # the file's folder: no wavs there
    assert "8 of 8 wavs missing under the default audio root" in alone.problems[0].problem
    rows = _lines(path)
    _rewrite(path, [*rows[:1], {**rows[1], "label": "bored"}])
    with pytest.raises(CorpusError, match=r"SAVEE_selected_balenced.jsonl:2: label 'bored'"):
        _read(path)
    with pytest.raises(CorpusError, match=r"several corpora: (?=.*manifest)(?=.*emobox)"):
        registry.read_corpus(path)


def test_docstring_examples_run() -> None:
    for module in (ser.corpus.kinds.emobox_corpora, ser.corpus.options, emobox):
        assert doctest.testmod(module).failed == 0, module.__name__
