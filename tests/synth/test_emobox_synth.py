"""The synthetic EmoBox checkout: every corpus's shape gives unique keys, a seed the same
bytes, and the folds and track2 files EmoBox's have."""

from __future__ import annotations

import doctest
import hashlib
import json
from pathlib import Path

import pytest

import ser.synth.emobox
import ser.synth.emobox_shapes
from ser.synth.emobox import EmoBoxConfig, write_emobox
from ser.synth.emobox_shapes import SHAPES


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_gives_unique_keys_and_paths(name: str) -> None:
    shape = SHAPES[name]
    lines = [shape.line(n, c, t) for n in range(1, 12) for c in shape.codes for t in range(3)]
    assert len({key for key, _, _ in lines}) == len(lines)
    if not shape.span:  # a corpus of spans shares one file per code
        assert len({wav for _, wav, _ in lines}) == len(lines)


def _digest(root: Path) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes()
                                   for p in files)).hexdigest()  # fmt: skip


def test_a_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    config = EmoBoxConfig(corpora=("savee", "pavoque"), speakers=2, takes=1)
    first = write_emobox(tmp_path / "a", config)
    second = write_emobox(tmp_path / "b", config)
    assert _digest(first.root) == _digest(second.root)
    other = write_emobox(tmp_path / "c", EmoBoxConfig(corpora=("savee",), speakers=2, seed=1))
    assert _digest(other.root / "downloads") != _digest(first.root / "downloads")


def test_folds_valid_files_and_track2(tmp_path: Path) -> None:
    truth = write_emobox(tmp_path / "box", EmoBoxConfig(("msppodcast", "emovo"), speakers=3))
    folder = truth.folder("msppodcast") / "fold_1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "msppodcast_test_fold_1.jsonl", "msppodcast_train_fold_1.jsonl",
        "msppodcast_valid_fold_1.jsonl",
    ]  # fmt: skip
    assert (truth.folder("emovo") / "label_dict.json").is_file()  # EMOVO's name for its map
    assert len(truth.folds["emovo"]) == 3  # one per speaker
    rows = [json.loads(line) for line in truth.track2["SAVEE"].read_text().splitlines()]
    assert set(rows[0]) == {"wav_filename", "label", "speaker"} and len(rows) == 3 * 4 * 2
    assert (truth.track2_audio / rows[0]["wav_filename"]).is_file()
    with pytest.raises(ValueError, match="needs 3 speakers"):
        write_emobox(tmp_path / "few", EmoBoxConfig(("meld",), speakers=2))


def test_docstring_examples_run() -> None:
    for module in (ser.synth.emobox, ser.synth.emobox_shapes):
        assert doctest.testmod(module).failed == 0, module.__name__
