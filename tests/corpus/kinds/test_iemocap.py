"""The IEMOCAP reader: it recovers the synthetic corpus's ground truth exactly, survives
every quirk of the format, and reports (never raises on) damaged or missing parts."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser.corpus.kinds.iemocap import clean_transcript, summarize
from ser.corpus.kinds.iemocap import read as read_corpus
from ser.corpus.labels import LABEL_CODES
from ser.corpus.records import CorpusReading, Problem
from ser.errors import ConfigError, CorpusError

HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def _block(utt_id: str, start: float, end: float, code: str = "neu") -> str:
    return (
        f"[{start:.4f} - {end:.4f}]\t{utt_id}\t{code}\t[2.5000, 3.0000, 3.5000]\n"
        "C-E1:\tNeutral;\t()\nA-E1:\tval 2; act 3; dom  4;\t()\n\n"
    )


def _line(utt_id: str, start: float, end: float, text: str) -> str:
    return f"{utt_id} [{start:08.4f}-{end:08.4f}]: {text}\n"


def _mini_root(
    root: Path,
    evaluation: str,
    transcription: str,
    dialog: str = "Ses01F_impro01",
    wavs: tuple[str, ...] = (),
) -> Path:
    """A one-dialog root written by hand; `wavs` are utterance ids given an (empty) wav.

    Sessions 2-5 are present but empty, so that no "session missing" problem shows."""
    for session in range(2, 6):
        (root / f"Session{session}" / "dialog" / "EmoEvaluation").mkdir(parents=True)
    base = root / "Session1" / "dialog"
    (base / "EmoEvaluation").mkdir(parents=True)
    (base / "transcriptions").mkdir(parents=True)
    (base / "EmoEvaluation" / f"{dialog}.txt").write_text(evaluation)
    (base / "transcriptions" / f"{dialog}.txt").write_text(transcription)
    wav_dir = root / "Session1" / "sentences" / "wav" / dialog
    wav_dir.mkdir(parents=True)
    for utt_id in wavs:
        (wav_dir / f"{utt_id}.wav").write_bytes(b"")
    return root


def _dialog_file(root: Path, kind: str, dialog: str) -> Path:
    session = int(dialog[3:5])
    return root / f"Session{session}" / "dialog" / kind / f"{dialog}.txt"


# --- the ground truth ----------------------------------------------------------------


def test_reader_recovers_the_generators_ground_truth_exactly(
    synthetic_corpus: tuple[Path, Any],
) -> None:
    root, truth = synthetic_corpus
    reading = read_corpus(root)
    assert reading.problems == ()
    assert reading.root == root.resolve()
    # Every field of every record: ids, labels, times, V/A/D, transcripts, speakers, order.
    assert reading.utterances == truth.utterances
    assert len(reading.utterances) > 100
    assert {u.speaker for u in reading.utterances} == {
        f"Ses{s:02d}{g}" for s in range(1, 6) for g in "FM"
    }
    assert {u.label for u in reading.utterances} == set(LABEL_CODES)
    assert {u.group("kind") for u in reading.utterances} == {"impro", "script"}
    for utt in reading.utterances:
        assert utt.wav_path is not None and utt.wav_path.is_file()


def test_order_ranks_each_dialog_by_start_time(synthetic_corpus: tuple[Path, Any]) -> None:
    root, _ = synthetic_corpus
    by_dialog: dict[str, list[Any]] = {}
    for utt in read_corpus(root).utterances:
        by_dialog.setdefault(utt.dialog, []).append(utt)
    for utts in by_dialog.values():
        assert [u.order for u in utts] == list(range(len(utts)))
        assert [u.start for u in utts] == sorted(u.start for u in utts)


@pytest.mark.parametrize(
    ("classes", "codes"),
    [
        ("4", {"neu", "hap", "exc", "sad", "ang"}),
        ("5", {"neu", "hap", "exc", "sad", "ang", "fru"}),
        ("6", {"neu", "hap", "exc", "sad", "ang", "fru"}),
        ("all", set(LABEL_CODES)),
    ],
)
def test_class_sets_keep_their_codes_and_the_unfiltered_order(
    synthetic_corpus: tuple[Path, Any], classes: str, codes: set[str]
) -> None:
    root, truth = synthetic_corpus
    reading = read_corpus(root, classes=classes)
    assert reading.utterances == tuple(u for u in truth.utterances if u.label in codes)
    assert {u.label for u in reading.utterances} == codes


def test_unknown_class_set_is_a_config_error(synthetic_corpus: tuple[Path, Any]) -> None:
    with pytest.raises(ConfigError, match="unknown class set '3'"):
        read_corpus(synthetic_corpus[0], classes="3")


def test_equal_start_times_are_ranked_by_utterance_id(tmp_path: Path) -> None:
    evaluation = HEADER + "".join(
        [
            _block("Ses01F_impro01_M000", 5.0, 6.0),
            _block("Ses01F_impro01_F001", 2.0, 3.0),
            _block("Ses01F_impro01_F000", 2.0, 4.0),
        ]
    )
    root = _mini_root(tmp_path, evaluation, "")
    utts = read_corpus(root).utterances
    assert [(u.utt_id, u.order) for u in utts] == [
        ("Ses01F_impro01_F000", 0),
        ("Ses01F_impro01_F001", 1),
        ("Ses01F_impro01_M000", 2),
    ]


# --- one test per quirk --------------------------------------------------------------


def test_ab_dialogs_take_the_speaker_from_the_utterance_id(
    synthetic_corpus: tuple[Path, Any],
) -> None:
    root, _ = synthetic_corpus
    utts = [u for u in read_corpus(root).utterances if u.dialog == "Ses03M_impro05a"]
    assert {u.gender for u in utts} == {"F", "M"}
    for utt in utts:
        assert utt.gender == utt.utt_id[-4]
        assert utt.speaker == f"Ses03{utt.gender}"
        assert utt.group("session") == 3 and utt.group("kind") == "impro"


def test_script_part_b_dialog_is_read(synthetic_corpus: tuple[Path, Any]) -> None:
    root, _ = synthetic_corpus
    utts = [u for u in read_corpus(root).utterances if u.dialog == "Ses05M_script01_1b"]
    assert utts and all(u.group("kind") == "script" and u.group("session") == 5 for u in utts)
    assert all(u.utt_id.startswith("Ses05M_script01_1b_") for u in utts)


def test_xx_turns_without_wav_or_label_are_not_utterances(
    synthetic_corpus: tuple[Path, Any],
) -> None:
    root, _ = synthetic_corpus
    text = _dialog_file(root, "transcriptions", "Ses03M_impro05a").read_text()
    assert re.search(r"^Ses03M_impro05a_[FM]XX\d \[", text, re.MULTILINE)
    reading = read_corpus(root)
    assert not [u for u in reading.utterances if "XX" in u.utt_id]
    assert reading.problems == ()


def test_speaker_only_lines_are_skipped(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    dialog = next(u.dialog for u in truth.utterances if u.group("session") == 1)
    text = _dialog_file(root, "transcriptions", dialog).read_text()
    assert re.search(r"^[FM]: \w+\.$", text, re.MULTILINE)
    assert read_corpus(root).problems == ()


def test_empty_and_tag_only_text_give_empty_transcripts(
    synthetic_corpus: tuple[Path, Any],
) -> None:
    root, _ = synthetic_corpus
    utts = {u.utt_id: u for u in read_corpus(root).utterances}
    empty = [u for u in utts.values() if u.transcript_raw == ""]
    tag_only = [u for u in utts.values() if u.transcript_raw == "[LAUGHTER]"]
    assert empty and tag_only
    assert all(u.transcript == "" for u in empty + tag_only)


def test_tags_are_removed_from_the_clean_transcript(synthetic_corpus: tuple[Path, Any]) -> None:
    root, _ = synthetic_corpus
    tagged = [u for u in read_corpus(root).utterances if "[" in u.transcript_raw]
    assert len(tagged) >= 3
    for utt in tagged:
        assert "[" not in utt.transcript and utt.transcript.strip() == utt.transcript


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("[LAUGHTER], That's what they say.", "That's what they say."),
        ("Oh, [breathing] okay.", "Oh, okay."),
        ("Fine [GARBAGE].", "Fine."),
        ("[LAUGHTER] [BREATHING]", ""),
        ("  two   spaces  ", "two spaces"),
        ("no tags, at all", "no tags, at all"),
    ],
)
def test_clean_transcript(raw: str, clean: str) -> None:
    assert clean_transcript(raw) == clean


def test_multi_label_category_lines_are_parsed_past(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    files = sorted(root.glob("Session*/dialog/EmoEvaluation/*.txt"))
    assert any(re.search(r"^C-\w+:\t\w+; \w+;\t", f.read_text(), re.MULTILINE) for f in files)
    assert read_corpus(root).utterances == truth.utterances


def test_per_annotator_subfolders_are_not_read(corpus_copy: Path) -> None:
    categorical = corpus_copy / "Session1" / "dialog" / "EmoEvaluation" / "Categorical"
    assert list(categorical.glob("*_cat.txt"))
    (categorical / "Ses01F_impro09.txt").write_text("[1.0 - 2.0]\tSes01F_impro09_F000\tneu\n")
    reading = read_corpus(corpus_copy)
    assert reading.problems == ()
    assert not [u for u in reading.utterances if u.dialog == "Ses01F_impro09"]


def test_whole_dialog_wavs_are_not_needed(corpus_copy: Path, synthetic_corpus: Any) -> None:
    stubs = list(corpus_copy.glob("Session*/dialog/wav/*.wav"))
    assert stubs and len(stubs) < 5  # some dialogs have one, some none
    for folder in corpus_copy.glob("Session*/dialog/wav"):
        shutil.rmtree(folder)
    reading = read_corpus(corpus_copy)
    expected = [replace(u, wav_path=None) for u in synthetic_corpus[1].utterances]
    assert [replace(u, wav_path=None) for u in reading.utterances] == expected
    assert reading.problems == ()


def test_dot_files_and_a_missing_transcriptions_folder(
    corpus_copy: Path, synthetic_corpus: Any
) -> None:
    """macOS copies carry `._<name>.txt` resource forks: never read. A session without its
    transcriptions folder still reads, each of its utterances a missing transcript."""
    for folder in corpus_copy.glob("Session*/dialog/EmoEvaluation"):
        (folder / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07 not text")
    shutil.rmtree(corpus_copy / "Session1" / "dialog" / "transcriptions")
    reading = read_corpus(corpus_copy)
    assert [u.utt_id for u in reading.utterances] == [
        u.utt_id for u in synthetic_corpus[1].utterances
    ]
    assert {p.problem.split(":")[0] for p in reading.problems} == {"transcript missing"}
    assert {p.utt_id[:5] for p in reading.problems} == {"Ses01"}


def test_transcription_lines_in_any_order(corpus_copy: Path, synthetic_corpus: Any) -> None:
    for path in corpus_copy.glob("Session*/dialog/transcriptions/*.txt"):
        path.write_text("".join(reversed(path.read_text().splitlines(keepends=True))))
    reading = read_corpus(corpus_copy)
    assert [u.transcript_raw for u in reading.utterances] == [
        u.transcript_raw for u in synthetic_corpus[1].utterances
    ]


def test_crlf_line_endings_are_read(tmp_path: Path) -> None:
    evaluation = (HEADER + _block("Ses01F_impro01_F000", 1.0, 2.5)).replace("\n", "\r\n")
    transcription = _line("Ses01F_impro01_F000", 1.0, 2.5, "Hi there.").replace("\n", "\r\n")
    root = _mini_root(tmp_path, evaluation, transcription, wavs=("Ses01F_impro01_F000",))
    reading = read_corpus(root)
    assert reading.problems == ()
    assert reading.utterances[0].transcript_raw == "Hi there."
    assert reading.utterances[0].duration == 1.5


# --- damage is reported, per utterance -----------------------------------------------


def test_missing_wav_is_reported_and_the_utterance_kept(
    corpus_copy: Path, synthetic_corpus: Any
) -> None:
    victim = synthetic_corpus[1].utterances[3]
    wav = corpus_copy / victim.wav_path.relative_to(synthetic_corpus[0].resolve())
    wav.unlink()
    reading = read_corpus(corpus_copy)
    found = {u.utt_id: u for u in reading.utterances}
    assert found[victim.utt_id].wav_path is None
    assert found[victim.utt_id].label == victim.label
    assert reading.problems == (Problem(victim.utt_id, f"wav missing: {wav.resolve()}"),)
    assert len(reading.utterances) == len(synthetic_corpus[1].utterances)


def test_missing_transcription_line_is_reported(corpus_copy: Path, synthetic_corpus: Any) -> None:
    victim = synthetic_corpus[1].utterances[5]
    path = _dialog_file(corpus_copy, "transcriptions", victim.dialog)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(victim.utt_id)))
    reading = read_corpus(corpus_copy)
    found = {u.utt_id: u for u in reading.utterances}
    assert found[victim.utt_id].transcript == found[victim.utt_id].transcript_raw == ""
    assert [p.utt_id for p in reading.problems] == [victim.utt_id]
    assert reading.problems[0].problem.startswith("transcript missing")
    assert str(path.resolve()) in reading.problems[0].problem


def test_missing_transcription_file_is_reported_per_utterance(
    corpus_copy: Path, synthetic_corpus: Any
) -> None:
    dialog = synthetic_corpus[1].utterances[0].dialog
    _dialog_file(corpus_copy, "transcriptions", dialog).unlink()
    reading = read_corpus(corpus_copy)
    ids = [u.utt_id for u in synthetic_corpus[1].utterances if u.dialog == dialog]
    assert sorted(p.utt_id for p in reading.problems) == sorted(ids)
    assert len(reading.utterances) == len(synthetic_corpus[1].utterances)


def test_problems_of_utterances_outside_the_class_set_are_dropped(
    corpus_copy: Path, synthetic_corpus: Any
) -> None:
    victim = next(u for u in synthetic_corpus[1].utterances if u.label == "xxx")
    (corpus_copy / victim.wav_path.relative_to(synthetic_corpus[0].resolve())).unlink()
    assert [p.utt_id for p in read_corpus(corpus_copy, "all").problems] == [victim.utt_id]
    assert read_corpus(corpus_copy, "4").problems == ()


def test_unreadable_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    evaluation = HEADER + _block("Ses01F_impro01_F000", 1.0, 2.0) + "garbage here\n\n"
    evaluation += _block("Ses01F_impro01_F001", 3.0, 4.0, code="zzz")
    evaluation += _block("Ses01F_impro01_F000", 5.0, 6.0)  # a duplicate
    transcription = _line("Ses01F_impro01_F000", 1.0, 2.0, "Hello.") + "what is this\n"
    root = _mini_root(tmp_path, evaluation, transcription, wavs=("Ses01F_impro01_F000",))
    reading = read_corpus(root)
    assert [u.utt_id for u in reading.utterances] == ["Ses01F_impro01_F000"]
    assert reading.utterances[0].start == 1.0
    evaluation_path = _dialog_file(root.resolve(), "EmoEvaluation", "Ses01F_impro01")
    transcription_path = _dialog_file(root.resolve(), "transcriptions", "Ses01F_impro01")
    assert reading.problems == (
        Problem("Ses01F_impro01.txt", f"{evaluation_path}:7: unreadable line 'garbage here'"),
        Problem("Ses01F_impro01_F001", f"{evaluation_path}:9: unknown label code 'zzz'"),
        Problem(
            "Ses01F_impro01_F000", f"duplicate label line in {evaluation_path}: kept the first"
        ),
        Problem("Ses01F_impro01.txt", f"{transcription_path}:2: unreadable line 'what is this'"),
    )


def test_a_line_not_utf8_is_read_as_latin1_and_reported(tmp_path: Path) -> None:
    root = _mini_root(tmp_path, HEADER + _block("Ses01F_impro01_F000", 1.0, 2.0), "")
    path = _dialog_file(root, "transcriptions", "Ses01F_impro01")
    path.write_bytes(b"Ses01F_impro01_F000 [001.0000-002.0000]: caf\xe9.\n")
    reading = read_corpus(root)
    assert reading.utterances[0].transcript == "café."
    [problem] = [p for p in reading.problems if "UTF-8" in p.problem]
    assert problem.utt_id == "Ses01F_impro01_F000"
    assert problem.problem.startswith(f"{path.resolve()}, line 1: not UTF-8 (byte 0xe9 at byte")


# --- what is not an IEMOCAP root -----------------------------------------------------


def test_not_a_root_names_the_root_and_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "Session1").mkdir()
    with pytest.raises(CorpusError) as error:
        read_corpus(tmp_path)
    assert str(error.value) == (
        f"{tmp_path.resolve()} is not an IEMOCAP root: no Session1..Session5 folders "
        "with dialog/EmoEvaluation"
    )


def test_parent_or_session_of_a_root_gets_a_hint(synthetic_corpus: tuple[Path, Any]) -> None:
    root = synthetic_corpus[0].resolve()
    with pytest.raises(CorpusError, match=re.escape(f"(did you mean {root}?)")):
        read_corpus(root.parent)
    with pytest.raises(CorpusError, match=re.escape(f"(did you mean {root}?)")):
        read_corpus(root / "Session2")


def test_missing_root_and_file_root(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="is a file"):
        read_corpus(tmp_path / "file")


def test_partial_corpus_is_read_and_missing_sessions_reported(
    corpus_copy: Path, synthetic_corpus: Any
) -> None:
    shutil.rmtree(corpus_copy / "Session2")
    reading = read_corpus(corpus_copy)
    assert {u.group("session") for u in reading.utterances} == {1, 3, 4, 5}
    expected = [u.utt_id for u in synthetic_corpus[1].utterances if u.group("session") != 2]
    assert [u.utt_id for u in reading.utterances] == expected
    assert [p.utt_id for p in reading.problems] == ["Session2"]
    assert reading.problems[0].problem.startswith("session missing")


# --- junk never raises ---------------------------------------------------------------

_FRAGMENTS = [
    "[", "]", "[1.0 - 2.0]", "[6.2901 - 3.0]", "[1e999 - 2]", "Ses01F_impro01_F000",
    "Ses01F_impro01_M007", "Ses02M_script01_1b_F000", "Ses01F_impro01_FXX0", "neu", "xxx",
    "zzz", "[2.5000, 2.5000, 2.5000]", "[a, b, c]", "C-E1:", "A-E2:", "val 3; act 2; dom  2;",
    "%", "M:", "[001.0000-002.0000]:", "[LAUGHTER]", "", " ", "\t", "\r", "é", "\x00",
]  # fmt: skip
_JUNK = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=8).flatmap(
        lambda parts: st.sampled_from(["\t", " ", "", ": "]).map(lambda sep: sep.join(parts))
    ),
)
_INSERTS = st.lists(st.tuples(st.integers(0, 30), _JUNK), max_size=6)


_JUNK_IDS = tuple(f"Ses01F_impro01_{g}{k:03d}" for k in range(3) for g in "FM")


@pytest.fixture(scope="module")
def junk_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dialog's root, made once: each example writes both of its text files anew."""
    return _mini_root(tmp_path_factory.mktemp("junk"), "", "", wavs=_JUNK_IDS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evaluation_junk=_INSERTS, transcription_junk=_INSERTS, raw_bytes=st.binary(max_size=20))
def test_junk_lines_never_raise(
    junk_root: Path,
    evaluation_junk: list[tuple[int, str]],
    transcription_junk: list[tuple[int, str]],
    raw_bytes: bytes,
) -> None:
    ids = list(_JUNK_IDS)
    evaluation = HEADER + "".join(_block(u, 1.0 + i, 1.5 + i) for i, u in enumerate(ids))
    transcription = "".join(_line(u, 1.0 + i, 1.5 + i, "Fine.") for i, u in enumerate(ids))
    for kind, text, junk in (
        ("EmoEvaluation", evaluation, evaluation_junk),
        ("transcriptions", transcription, transcription_junk),
    ):
        lines = text.splitlines(keepends=True)
        for position, line in junk:
            lines.insert(min(position, len(lines)), line + "\n")
        data = "".join(lines).encode("utf-8") + raw_bytes
        _dialog_file(junk_root, kind, "Ses01F_impro01").write_bytes(data)
    reading = read_corpus(junk_root)
    assert isinstance(reading, CorpusReading)
    assert set(ids) <= {u.utt_id for u in reading.utterances}
    assert all(isinstance(p, Problem) and p.problem for p in reading.problems)


# --- summary -------------------------------------------------------------------------


def test_summary_counts_classes_per_session(synthetic_corpus: tuple[Path, Any]) -> None:
    root, truth = synthetic_corpus
    summary = summarize(read_corpus(root, "4"), "4")
    in_set = [u for u in truth.utterances if u.label in {"neu", "hap", "exc", "sad", "ang"}]
    assert summary["utterances"] == len(in_set)
    assert summary["speakers"] == 10
    assert summary["problems"] == []
    assert summary["hours"] == round(sum(u.duration for u in in_set) / 3600, 4)
    assert list(summary["per_session"]) == ["1", "2", "3", "4", "5"]
    for session, counts in summary["per_session"].items():
        codes = Counter(u.label for u in in_set if u.group("session") == int(session))
        assert list(counts) == ["neu", "hap", "sad", "ang"]
        assert counts["hap"] == codes["hap"] + codes["exc"]  # exc merged into hap
        assert counts["neu"] == codes["neu"] and counts["ang"] == codes["ang"]
