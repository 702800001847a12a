"""Faults in a corpus's text files, each as a user meets it: a line that is not UTF-8 in
an IEMOCAP transcription or label file, a manifest, a CMU transcript (the line named with
its utterance, every other line kept as written); a dialog whose label file is missing
(its utterances counted, said by `ser corpus summary` and `ser extract`); a CMU layout
whose labels file is missing or damaged (one line naming it, exit 2, when guessed and
under --corpus). And the line-by-line decoder they all read through."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ser.cache import FeatureStore
from ser.cli import main
from ser.corpus.kinds import msp_podcast
from ser.corpus.kinds.cmu_mosei import TRANSCRIPT_DIR
from ser.corpus.records import Problem
from ser.corpus.registry import read_corpus
from ser.corpus.text import decode_lines
from ser.synth import msp_size
from ser.synth.cmu import LABEL_FILES, CmuConfig, CmuTruth, write_cmu
from ser.synth.talk import TalkConfig, write_meld, write_msp_podcast
from tests.refused import one_line, ser

ENDING = "the file's other lines as UTF-8; save the file as UTF-8 to have it read as written"


def _said(result: Result) -> str:
    """The output unwrapped (rich wraps at the terminal's width), without a traceback."""
    assert "Traceback" not in result.output, result.output
    return " ".join(result.output.split())


def _summary(root: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["corpus", "summary", str(root), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _extract(root: Path, store: Path) -> Result:
    args = ["extract", str(root), "--store", str(store), "--features", "logmel", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result


def _csv_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def _not_utf8(path: Path, number: int, byte: int, column: int, line: str) -> str:
    return (
        f"{path}, line {number}: not UTF-8 (byte 0x{byte:02x} at byte {column}): this line "
        f"was read as Latin-1 ({line!r}), {ENDING}"
    )


# --- a line that is not UTF-8 --------------------------------------------------------


@pytest.mark.slow
def test_a_latin1_line_in_a_transcription_is_named_and_the_other_lines_kept(
    corpus_copy: Path, tmp_path: Path
) -> None:
    path = next((corpus_copy / "Session2" / "dialog" / "transcriptions").glob("*.txt")).resolve()
    lines = path.read_bytes().split(b"\n")
    heads = [line.split(b"]:")[0] + b"]: " for line in lines[:2]]
    good, bad = (head.split()[0].decode() for head in heads)
    lines[0] = heads[0] + "Un café, très bien.".encode()  # UTF-8, as the release writes
    lines[1] = heads[1] + "Naïve.".encode("latin-1")  # one line saved otherwise
    path.write_bytes(b"\n".join(lines))
    shown = lines[1].decode("latin-1")
    assert len(shown) <= 60  # shown whole in the problem
    problem = _not_utf8(path, 2, 0xEF, len(heads[1]) + 3, shown)

    said = _summary(corpus_copy)["problems"]
    assert said == [{"utt_id": bad, "problem": problem}]
    store = tmp_path / "s.zarr"
    assert f"{bad}: {problem}" in _said(_extract(corpus_copy, store))
    manifest = FeatureStore.open(store).manifest
    raw = manifest.column("transcript_raw")
    assert raw[manifest.index(good)] == "Un café, très bien."  # not "cafÃ©"
    assert raw[manifest.index(bad)] == "Naïve."


def test_a_latin1_line_in_a_label_file_is_named_with_its_utterance(corpus_copy: Path) -> None:
    path = next((corpus_copy / "Session4" / "dialog" / "EmoEvaluation").glob("*.txt")).resolve()
    _, before = read_corpus(corpus_copy)
    text = path.read_text(encoding="utf-8").split("\n")
    number, line = next((n, t) for n, t in enumerate(text, 1) if t.startswith("C-"))
    owner = next(t.split("\t")[1] for t in reversed(text[: number - 1]) if t.startswith("["))
    damaged = line.replace("()", "(très)")
    text[number - 1] = damaged
    path.write_bytes("\n".join(text).encode("latin-1"))

    _, after = read_corpus(corpus_copy)
    column = damaged.encode("latin-1").index(b"\xe8") + 1
    assert after.problems == (Problem(owner, _not_utf8(path, number, 0xE8, column, damaged)),)
    assert after.utterances == before.utterances  # its votes and every label read as before


def test_a_latin1_line_in_a_manifest_is_named_with_its_row(
    synthetic_corpus: tuple[Path, Any], tmp_path: Path
) -> None:
    wavs = sorted(synthetic_corpus[0].glob("Session1/sentences/wav/*/*.wav"))[:2]
    for wav in wavs:
        shutil.copy(wav, tmp_path / wav.name)
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(
        b"utt_id,wav,label,speaker,transcript\n"
        + f"a,{wavs[0].name},neu,s1,Un café\n".encode()
        + f"b,{wavs[1].name},sad,s2,Naïve\n".encode("latin-1")
    )
    line = f"b,{wavs[1].name},sad,s2,Naïve"
    problem = _not_utf8(manifest.resolve(), 3, 0xEF, len(line.encode("latin-1")) - 2, line)

    assert _summary(manifest)["problems"] == [{"utt_id": "b", "problem": problem}]
    _, reading = read_corpus(manifest)
    assert [u.transcript for u in reading.utterances] == ["Un café", "Naïve"]


@pytest.fixture(scope="module")
def mosei(tmp_path_factory: pytest.TempPathFactory) -> CmuTruth:
    return write_cmu(tmp_path_factory.mktemp("mosei") / "MOSEI", CmuConfig(videos=(2, 1, 1)))


def _cmu_copy(mosei: CmuTruth, tmp_path: Path) -> Path:
    root = tmp_path / "MOSEI"
    shutil.copytree(mosei.root, root)
    return root.resolve()


def test_a_latin1_line_in_a_cmu_transcript_is_named_not_replaced(
    mosei: CmuTruth, tmp_path: Path
) -> None:
    root = _cmu_copy(mosei, tmp_path)
    path = sorted((root / TRANSCRIPT_DIR).glob("*.txt"))[0]
    lines = path.read_text(encoding="utf-8").split("\n")
    video, segment, *_ = lines[0].split("___")
    lines[0] = "___".join([*lines[0].split("___")[:4], "très"])
    path.write_bytes("\n".join(lines).encode("latin-1"))
    column = lines[0].encode("latin-1").index(b"\xe8") + 1

    said = [p for p in _summary(root)["problems"] if "UTF-8" in p["problem"]]
    problem = _not_utf8(path, 1, 0xE8, column, lines[0])
    assert said == [{"utt_id": f"{video}_{segment}", "problem": problem}]
    _, reading = read_corpus(root)
    assert next(u for u in reading.utterances if u.utt_id == f"{video}_{segment}").transcript == (
        "très"  # not "tr\ufffds": the line's byte read, not replaced
    )


def test_a_latin1_msp_podcast_transcript_is_named_not_replaced(tmp_path: Path) -> None:
    root = write_msp_podcast(tmp_path / "MSP", TalkConfig(speakers=3)).root
    path = sorted((root / msp_podcast.TEXT).glob("*.txt"))[0]
    path.write_bytes("Très bien.\n".encode("latin-1"))

    said = [p for p in _summary(root)["problems"] if "UTF-8" in p["problem"]]
    assert said == [{"utt_id": path.stem, "problem": _not_utf8(path, 1, 0xE8, 3, "Très bien.")}]
    _, reading = read_corpus(root)
    assert next(u for u in reading.utterances if u.utt_id == path.stem).transcript == (
        "Très bien."  # not "Tr\ufffds bien.": replaced without a word
    )


def test_a_cp1252_line_in_a_meld_csv_leaves_its_utf8_lines_as_written(tmp_path: Path) -> None:
    root = write_meld(tmp_path / "MELD", TalkConfig(speakers=2, dialogs=1, turns=(2, 2))).root
    path = root / "dev_sent_emo.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    rows[1][1], rows[2][1] = "Un café", "It’s me"  # the Utterance column
    encoded = [_csv_line(row).encode() for row in rows]
    encoded[2] = _csv_line(rows[2]).encode("cp1252")  # one row saved on Windows
    path.write_bytes(b"\n".join(encoded) + b"\n")
    _, reading = read_corpus(root)
    texts = {u.utt_id: u.transcript for u in reading.utterances}
    assert texts["dev_dia0_utt0"] == "Un café"  # not "Un cafÃ©"
    assert texts["dev_dia0_utt1"] == "It’s me"
    [problem] = [p for p in reading.problems if "UTF-8" in p.problem]
    assert problem.utt_id == "dev_dia0_utt1"
    assert problem.problem.startswith(f"{path}, line 3: not UTF-8 (byte 0x92 at byte ")
    assert "this line was read as Windows-1252 (" in problem.problem


# --- a dialog's label file missing ---------------------------------------------------


@pytest.mark.slow
def test_a_missing_label_file_is_a_problem_counting_the_dialog_left_out(
    corpus_copy: Path, tmp_path: Path
) -> None:
    label_file = next((corpus_copy / "Session3" / "dialog" / "EmoEvaluation").glob("*.txt"))
    dialog = label_file.stem
    wavs = list((corpus_copy / "Session3" / "sentences" / "wav" / dialog).glob("*.wav"))
    before = _summary(corpus_copy)["utterances"]
    label_file.unlink()
    problem = (
        f"label file missing: no {label_file.resolve()}, so the dialog's {len(wavs)} "
        "utterances (its wavs and transcription lines) are left out; restore the file from "
        "the release"
    )

    summary = _summary(corpus_copy)
    assert summary["problems"] == [{"utt_id": dialog, "problem": problem}]
    assert summary["utterances"] == before - len(wavs)
    result = _extract(corpus_copy, tmp_path / "s.zarr")
    heading = "corpus problems (1; `ser corpus summary CORPUS_ROOT` lists them all):"
    assert f"{heading} {dialog}: {problem}" in _said(result)


# --- a CMU layout without its labels file --------------------------------------------


def _errors(result: Result) -> list[str]:
    said = _said(result)
    assert result.exit_code == 2, result.output
    return ["error: " + part.strip() for part in said.split("error: ")[1:]]


def test_a_cmu_layout_without_its_labels_file_names_the_file(
    mosei: CmuTruth, tmp_path: Path
) -> None:
    root = _cmu_copy(mosei, tmp_path)
    (root / LABEL_FILES["cmu-mosei"]).unlink()
    where = (
        "in it or in its Raw/Labels, Labels or labels folder; download it with the "
        "CMU-MultimodalSDK"
    )
    guessed = CliRunner().invoke(main, ["corpus", "summary", str(root)])
    assert _errors(guessed) == [
        f"error: {root} has the layout of CMU-MOSI and CMU-MOSEI ({TRANSCRIPT_DIR}) but no "
        "labels file: expected CMU_MOSEI_Labels.csd (CMU-MOSEI) or "
        "CMU_MOSI_Opinion_Labels.csd (CMU-MOSI) (or any *Labels*.csd, or labels.csv) " + where
    ]
    named = CliRunner().invoke(main, ["corpus", "summary", str(root), "--corpus", "cmu-mosei"])
    assert _errors(named) == [
        f"error: {root} is not a CMU-MOSEI root: no labels file: expected "
        "CMU_MOSEI_Labels.csd (or any *Labels*.csd, or labels.csv) " + where
    ]


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_damaged_csd_is_one_line_naming_it(mosei: CmuTruth, tmp_path: Path, damage: str) -> None:
    root = _cmu_copy(mosei, tmp_path)
    csd = root / LABEL_FILES["cmu-mosei"]
    data = csd.read_bytes()
    if damage == "truncated":  # a download cut short
        csd.write_bytes(data[: len(data) // 2])
    else:  # bytes after the superblock overwritten: h5py raises RuntimeError, not OSError
        csd.write_bytes(data[:512] + b"\xff" * 256 + data[768:])
    for corpus in ([], ["--corpus", "cmu-mosei"]):
        result = CliRunner().invoke(main, ["corpus", "summary", str(root), *corpus])
        [error] = _errors(result)
        assert error.startswith(
            f"error: {csd}: the labels file is damaged (not a readable HDF5 computational "
            "sequence: "
        ), error
        assert error.endswith("); download it again with the CMU-MultimodalSDK"), error


# --- the decoder ---------------------------------------------------------------------


def test_valid_lines_are_kept_byte_exact_beside_a_latin1_one() -> None:
    good = ["café ☕", "naïve", "日本語", ""]
    data = b"\n".join([good[0].encode(), good[1].encode(), b"caf\xe9", good[2].encode()])
    text = decode_lines(Path("t.txt"), data + b"\n")
    assert text.lines == (good[0], good[1], "café", good[2], "")
    assert [(b.number, b.byte, b.column, b.encoding) for b in text.not_utf8] == [
        (3, 0xE9, 4, "latin-1")
    ]
    assert text.problems({3: "u3"}) == [Problem("u3", _not_utf8(Path("t.txt"), 3, 0xE9, 4, "café"))]
    assert text.problems() == [Problem("t.txt", _not_utf8(Path("t.txt"), 3, 0xE9, 4, "café"))]


def test_line_ends_and_a_byte_order_mark() -> None:
    assert decode_lines(Path("t"), b"\xef\xbb\xbfa\r\nb\r\n").lines == ("a", "b", "")
    assert decode_lines(Path("t"), b"a\rb").lines == ("a", "b")  # old Mac ends
    assert decode_lines(Path("t"), b"").lines == ("",)


def test_a_cp1252_fallback_reads_its_quotes_and_latin1_what_it_cannot() -> None:
    text = decode_lines(Path("t"), b"it\x92s\nx\x81y", fallback="cp1252")
    assert text.lines == ("it’s", "x\x81y")
    assert [b.encoding for b in text.not_utf8] == ["cp1252", "latin-1"]
    assert "read as Windows-1252" in text.problems()[0].problem


def test_a_long_line_is_shortened_in_its_problem() -> None:
    line = "é" * 100
    text = decode_lines(Path("t"), line.encode("latin-1"))
    assert text.lines == (line,)
    assert f"({'é' * 57 + '...'!r})" in text.problems()[0].problem


def test_a_demo_corpus_beyond_any_size_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ser demo-corpus --layout msp-podcast --hours 1e9` was numpy's "Unable to allocate
    9.52 TiB" traceback: now one line with the size and the limit, nothing written; and a
    size the disk cannot hold names the free space."""
    out = tmp_path / "msp"
    line = one_line(ser("demo-corpus", "--layout", "msp-podcast", "--hours", "1e9", out))
    assert "--hours 1e+09 (about 654,545,454,545 utterances) is beyond the 10,000,000" in line
    assert not out.exists()
    line = one_line(ser("demo-corpus", "--layout", "msp-podcast", "--utterances", str(10**13), out))
    assert "--utterances" in line
    monkeypatch.setattr(msp_size.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(9, 9, 9))
    line = one_line(ser("demo-corpus", "--layout", "msp-podcast", "--utterances", "5000", out))
    said = "--utterances 5,000 takes about 454.1 KiB of labels and durations, and "
    assert line.endswith(f"{said}{tmp_path} has 9 B free")
