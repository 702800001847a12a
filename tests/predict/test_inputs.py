"""What `ser predict` reads (ser.predict.inputs): CSV lists with or without a header,
and audio files that cannot be predicted, a WAV cut short after its header among them."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.errors import ConfigError
from ser.predict.inputs import Item, load_waves, read_inputs


def listed(tmp_path: Path, text: str) -> list[tuple[Path, str | None]]:
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    return [(item.path, item.transcript) for item in read_inputs([str(path)])]


def test_csv_lines_without_a_header_are_path_and_transcript(tmp_path: Path) -> None:
    got = listed(tmp_path, 'a.wav,hello there\n/abs/b.wav\n\nc.wav,"yes, and no"\n')
    assert got == [
        (tmp_path / "a.wav", "hello there"),
        (Path("/abs/b.wav"), None),
        (tmp_path / "c.wav", "yes, and no"),
    ]


def test_a_header_names_the_columns_in_any_order(tmp_path: Path) -> None:
    assert listed(tmp_path, "path,transcript\na.wav,hi\n") == [(tmp_path / "a.wav", "hi")]
    assert listed(tmp_path, "transcript,path\nhi,a.wav\n") == [(tmp_path / "a.wav", "hi")]
    assert listed(tmp_path, "\ufeffpath\na.wav\n") == [(tmp_path / "a.wav", None)]


def test_a_header_of_unknown_columns_is_refused_not_read_as_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 1 \(file,text\) names no audio file, and as"):
        listed(tmp_path, "file,text\na.wav,hi\n")
    with pytest.raises(ConfigError, match=r"header names column\(s\) ser does not read: text "):
        listed(tmp_path, "path,text\na.wav,hi\n")
    assert listed(tmp_path, "Path,Transcript\na.wav,hi\n") == [(tmp_path / "a.wav", "hi")]
    (tmp_path / "take1").write_bytes(b"")  # a file with no suffix is still a path
    assert listed(tmp_path, "take1,hi\n") == [(tmp_path / "take1", "hi")]


def test_a_line_with_more_fields_than_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2 has 3 fields, expected path\[,transcript\]"):
        listed(tmp_path, "a.wav,hi\nb.wav,hello, world\n")
    with pytest.raises(ConfigError, match="holds no lines"):
        listed(tmp_path, "\n")


def wav_bytes(tmp_path: Path, seconds: float = 0.5) -> bytes:
    path = tmp_path / "whole.wav"
    soundfile.write(path, np.zeros(int(16000 * seconds), np.float32), 16000, subtype="PCM_16")
    return path.read_bytes()


def test_a_wav_cut_short_after_its_header_fails(tmp_path: Path) -> None:
    whole = wav_bytes(tmp_path)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])  # libsndfile would read the half quietly
    items = [Item(tmp_path / "whole.wav"), Item(cut)]
    waves = load_waves(items, 16000)
    assert waves[0] is not None and items[0].error is None
    assert waves[1] is None and items[1].error is not None
    assert items[1].error == (
        f"cannot decode audio file {cut}: read 0.25 s of the 0.50 s its header declares: "
        "the file is cut short"
    )


def test_a_streamed_wav_of_unknown_length_is_not_cut_short(tmp_path: Path) -> None:
    whole = bytearray(wav_bytes(tmp_path))
    at = whole.index(b"data") + 4
    whole[at : at + 4] = struct.pack("<I", 0xFFFFFFFF)  # a writer that did not know
    streamed = tmp_path / "streamed.wav"
    streamed.write_bytes(bytes(whole))
    item = Item(streamed)
    assert load_waves([item], 16000)[0] is not None and item.error is None


def test_at_its_own_rate_nothing_is_resampled_or_noted(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros((4410, 2), np.float32), 44100)
    item = Item(path)
    (wave,) = load_waves([item], None)
    assert wave is not None and len(wave) == 4410 and item.notes == []


def test_dialog_and_order_columns_give_conversations(tmp_path: Path) -> None:
    path = tmp_path / "talk.csv"
    path.write_text("path,transcript,dialog,order\nb.wav,hi,d1,2\na.wav,yo,d1,1\nc.wav,ok,,\n")
    items = read_inputs([str(path)])
    assert [(i.path.name, i.dialog, i.order) for i in items] == [
        ("b.wav", "d1", 2),
        ("a.wav", "d1", 1),
        ("c.wav", None, None),  # no dialog: it stands alone
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("path,dialog\na.wav,d1\n", "a dialog column needs an order column"),
        ("path,dialog,order\na.wav,d1,first\n", r"line 2: order 'first' is not an integer"),
        ("path,dialog,order\na.wav,d1,1\nb.wav,d1,1\n", "lines 2 and 3 are both turn 1 of"),
    ],
)
def test_bad_conversations_are_refused_by_line(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        listed(tmp_path, text)
