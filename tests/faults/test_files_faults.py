"""Faults of the files a user hands ser, each as the user meets it: a manifest whose
transcript holds a quoted line break, one separated by `;` or tabs, a `wav` that is a
folder, a file name that is not UTF-8 (on disk and in a Latin-1 manifest), a votes cell
of broken JSON, and a store's receipt that lists a set name no store can hold."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.cache import FeatureStore
from ser.cache.receipts import receipt_path
from ser.corpus.audio import AudioError, load_audio
from ser.corpus.kinds import manifest
from ser.errors import CorpusError
from tests.refused import one_line, ser

LABELS = ("neu", "hap", "sad", "ang")
NOT_UTF8 = os.fsdecode(b"caf\xe9.wav")  # a Latin-1 disk's name: its byte 0xe9 is not UTF-8


def _wavs(folder: Path, count: int = 8) -> list[str]:
    """`count` short wavs of noise in `folder`: their names."""
    rng = np.random.default_rng(0)
    names = [f"w{i}.wav" for i in range(count)]
    for name in names:
        soundfile.write(folder / name, rng.normal(0, 0.1, 8000).astype(np.float32), 16000)
    return names


def _manifest(folder: Path, **cells: dict[int, str]) -> Path:
    """A CSV manifest of `_wavs`, written by the csv module; `cells`: column -> row -> value."""
    names = _wavs(folder)
    path = folder / "m.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "wav", "label", "speaker", *cells])
        for i, name in enumerate(names):
            extra = [column.get(i, "") for column in cells.values()]
            writer.writerow([f"u{i}", name, LABELS[i % 4], f"s{i % 4}", *extra])
    return path


def _jsonl(folder: Path, wavs: list[str]) -> Path:
    """A JSONL manifest of `wavs` as Python writes one (`json.dumps`: "\\udce9" for a byte
    of a name that is not UTF-8, the escape `os.listdir` gives it)."""
    rows = [
        {"utt_id": f"u{i}", "wav": wav, "label": LABELS[i % 4], "speaker": f"s{i % 4}"}
        for i, wav in enumerate(wavs)
    ]
    path = folder / "m.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _extract(root: Path, store: Path) -> str:
    result = ser("extract", root, "--store", store, "--features", "logmel", "-q")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


# --- a manifest's cells and separators ---------------------------------------------------


def test_a_quoted_line_break_in_a_manifest_cell_is_a_space(tmp_path: Path) -> None:
    path = _manifest(tmp_path, transcript={0: "line one\nline two", 3: "fine"})
    reading = manifest.read(path, "all")
    said = {u.utt_id: (u.transcript, u.transcript_raw) for u in reading.utterances}
    assert said["u0"] == ("line one line two", "line one line two")  # not "line oneline two"
    assert said["u3"] == ("fine", "fine")
    _extract(path, tmp_path / "s.zarr")
    stored = FeatureStore.open(tmp_path / "s.zarr").manifest
    assert stored.column("transcript_raw")[stored.index("u0")] == "line one line two"


def test_a_row_after_a_cell_of_two_lines_is_named_by_its_own_line(tmp_path: Path) -> None:
    path = _manifest(tmp_path, transcript={0: "line one\nline two"})
    text = path.read_text().replace("u2,w2.wav,sad,s2,", "u2,w2.wav,sad,,")
    path.write_text(text)
    with pytest.raises(CorpusError, match=r"line 5: empty speaker$"):
        manifest.read(path, "all")  # line 5: the header, u0 on 2 and 3, u1 on 4


@pytest.mark.parametrize(("separator", "named"), [(";", "semicolons (;)"), ("\t", "tabs")])
def test_a_manifest_separated_otherwise_than_by_commas_names_its_separator(
    tmp_path: Path, separator: str, named: str
) -> None:
    _wavs(tmp_path, 2)
    rows = (
        ["utt_id", "wav", "label", "speaker", "transcript"],
        ["u0", "w0.wav", "neu", "s", "Hi, you"],
    )
    path = tmp_path / "m.csv"
    path.write_text("".join(separator.join(row) + "\n" for row in rows))
    line = one_line(ser("corpus", "summary", path))
    assert f"{path}: its cells are separated by {named}, not commas" in line
    assert "ser reads a .csv manifest separated by commas" in line
    assert "more cells" not in line


# --- a folder where a file is expected ----------------------------------------------------


def test_a_wav_that_is_a_folder_is_named_a_folder(tmp_path: Path) -> None:
    path = _manifest(tmp_path)
    (tmp_path / "w3.wav").unlink()
    (tmp_path / "w3.wav").mkdir()
    reading = manifest.read(path, "all")
    folder = tmp_path / "w3.wav"
    assert [(p.utt_id, p.problem) for p in reading.problems] == [
        ("u3", f"wav {folder} is a folder, not a file")
    ]
    with pytest.raises(AudioError, match=f"audio file {folder} is a folder, not a file$"):
        load_audio(folder, 16000)


def test_a_manifest_that_is_a_folder_is_named_a_folder(tmp_path: Path) -> None:
    (tmp_path / "m.csv").mkdir()
    with pytest.raises(CorpusError, match=r"it is a folder, not a file$"):
        manifest.read(tmp_path / "m.csv", "all")


# --- file names that are not UTF-8 -------------------------------------------------------


def _not_utf8_name(folder: Path) -> Path:
    """A wav under a name that is not UTF-8 (skipped where the file system refuses one)."""
    path = folder / NOT_UTF8
    try:
        shutil.copy(folder / "w0.wav", path)
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    return path


def test_a_wav_whose_name_is_not_utf8_is_opened_by_its_bytes(tmp_path: Path) -> None:
    """A JSONL manifest written by Python from `os.listdir` names it with the surrogate
    escape ("\\udce9"); the store keeps the name printable, "caf\\xe9.wav"."""
    _wavs(tmp_path, 4)
    wav = _not_utf8_name(tmp_path)
    assert load_audio(wav, 16000).shape == (8000,)
    path = _jsonl(tmp_path, [NOT_UTF8, "w1.wav", "w2.wav", "w3.wav"])
    assert manifest.read(path, "all").problems == ()
    output = _extract(path, tmp_path / "s.zarr")
    assert "0 failed" in output
    stored = FeatureStore.open(tmp_path / "s.zarr").manifest
    assert stored.column("wav")[0] == "caf\\xe9.wav"


def test_a_latin1_manifest_names_a_latin1_file_by_its_bytes(tmp_path: Path) -> None:
    _wavs(tmp_path, 4)
    _not_utf8_name(tmp_path)
    path = tmp_path / "m.csv"
    path.write_bytes(
        b"utt_id,wav,label,speaker\nu0,caf\xe9.wav,neu,s0\n"
        + b"".join(b"u%d,w%d.wav,%s,s%d\n" % (i, i, LABELS[i].encode(), i) for i in (1, 2, 3))
    )
    problems = manifest.read(path, "all").problems
    assert [(p.utt_id, "not UTF-8" in p.problem) for p in problems] == [("u0", True)]
    assert "0 failed" in _extract(path, tmp_path / "s.zarr")  # not "wav missing"


def test_a_missing_wav_whose_name_is_not_utf8_is_printed_escaped(tmp_path: Path) -> None:
    _wavs(tmp_path, 4)
    path = _jsonl(tmp_path, [NOT_UTF8, "w1.wav", "w2.wav", "w3.wav"])  # the first not there
    [problem] = manifest.read(path, "all").problems
    assert problem.problem == f"wav missing: no {tmp_path}/caf\\xe9.wav"
    with pytest.raises(AudioError, match=r"caf\\xe9\.wav does not exist"):
        load_audio(tmp_path / NOT_UTF8, 16000)
    result = ser("corpus", "summary", path)
    assert result.exit_code == 0 and "caf\\xe9.wav" in "".join(result.output.split())  # wrapped


# --- votes ---------------------------------------------------------------------------------


def test_a_votes_cell_of_broken_json_is_refused_at_extraction(tmp_path: Path) -> None:
    path = _manifest(tmp_path, votes={i: "neu;hap" for i in range(8)} | {2: '["neu", "hap"'})
    line = one_line(ser("extract", path, "--store", tmp_path / "s.zarr", "--features", "logmel"))
    assert line.startswith(f"error: manifest {path}: line 4: votes of 'u2' are not JSON (")
    assert 'write them as neu;hap;neu or as a JSON list, ["neu", "hap", "neu"]' in line
    assert not (tmp_path / "s.zarr").exists()


def test_votes_as_a_json_list_in_a_cell_are_read_as_a_list(tmp_path: Path) -> None:
    path = _manifest(tmp_path, votes={0: '["neu", "hap"]', 1: "neu;hap"})
    votes = {u.utt_id: u.votes for u in manifest.read(path, "all").utterances}
    assert votes["u0"] == votes["u1"] == (("1", "neu"), ("2", "hap"))


@pytest.mark.parametrize(
    ("value", "said"),
    [({"a": 1}, 'are {"a": 1}'), (["neu", None], "null is not a category"), (2.5, "are 2.5")],
)
def test_jsonl_votes_that_are_not_categories_are_refused(
    tmp_path: Path, value: object, said: str
) -> None:
    row = {"utt_id": "u0", "wav": "w0.wav", "label": "neu", "speaker": "s", "votes": value}
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(CorpusError) as refused:
        manifest.read(path, "all")
    assert f"{path}: line 1: votes of 'u0'" in str(refused.value)
    assert said in str(refused.value)


# --- a receipt -------------------------------------------------------------------------------


def test_a_receipt_listing_an_impossible_set_name_is_a_damaged_receipt(tmp_path: Path) -> None:
    store = tmp_path / "s.zarr"
    _extract(_manifest(tmp_path), store)
    receipt = receipt_path(store)
    record = json.loads(receipt.read_text())
    record["backup"]["sets"]["../evil"] = record["backup"]["sets"]["logmel80"]
    receipt.write_text(json.dumps(record))
    for command in (("store", "verify", store), ("store", "repair", store)):
        line = one_line(ser(*command))
        assert line.startswith(
            f"error: {receipt}: damaged receipt: it lists a feature set named '../evil'"
        )
        assert "delete the receipt" in line and "--name" not in line
