"""The synthetic naturalistic corpora: their layouts' names, quirks, and the same bytes
for a seed."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np
import pytest

from ser.corpus.audio import load_audio
from ser.corpus.kinds import meld
from ser.errors import CorpusError
from ser.synth.talk import TalkConfig, write_meld, write_msp_podcast


def test_msp_podcast_layout_quirks_and_seed(tmp_path: Path) -> None:
    config = TalkConfig(speakers=3)
    a, b = write_msp_podcast(tmp_path / "a", config), write_msp_podcast(tmp_path / "b", config)
    wavs = sorted(p.relative_to(a.root) for p in a.root.rglob("*.wav"))
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in wavs)
    with (a.root / "Labels" / "labels_consensus.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["FileName"].endswith(".wav") and len(rows) == len(wavs) == 40
    assert {r["Split_Set"] for r in rows} == {"Train", "Development", "Test1"}
    unknown = {r["Split_Set"] for r in rows if r["SpkrID"] == "Unknown"}
    assert unknown == {"Train", "Test1"} and {"O", "X"} <= {r["EmoClass"] for r in rows}
    assert len(list((a.root / "Transcripts").glob("*.txt"))) == len(rows) - 1
    with pytest.raises(CorpusError, match="not empty"):
        write_msp_podcast(tmp_path / "a")


def test_meld_layout_quirks(tmp_path: Path) -> None:
    truth = write_meld(tmp_path / "m", TalkConfig(speakers=3, dialogs=1))
    with (truth.root / "test_sent_emo.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert rows[0]["Sr No."] == "1" and rows[0]["Dialogue_ID"] == "0"
    assert rows[-1]["Speaker"].startswith("Guest")  # a speaker of the test split only
    characters = {s for _, s in truth.files.values() if not s.startswith("Guest")}
    assert characters == {"Joey", "Rachel", "Ross"}  # the main characters recur everywhere
    assert truth.empty and not (truth.root / "train" / f"{truth.empty[0][6:]}.wav").exists()


@pytest.mark.slow
def test_meld_as_released_writes_aac_clips_in_its_folders(tmp_path: Path) -> None:
    config = TalkConfig(speakers=2, dialogs=1, turns=(2, 2))
    clips = write_meld(tmp_path / "clips", config, clips=True)
    wavs = write_meld(tmp_path / "wavs", config)
    again = write_meld(tmp_path / "again", config, clips=True)
    assert clips.files == wavs.files and clips.empty == wavs.empty
    found = sorted(p.relative_to(clips.root) for p in clips.root.rglob("*.mp4"))
    assert {p.parts[0] for p in found} == set(meld.RELEASE.values())
    assert not list(clips.root.rglob("*.wav")) and len(found) == len(clips.files) - 1
    assert all((clips.root / p).read_bytes() == (again.root / p).read_bytes() for p in found)
    mp4 = clips.root / "dev_splits_complete" / "dia0_utt0.mp4"
    with av.open(str(mp4)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("aac", 48000, 2)
    # the same speech as the wav layout's, at 48 kHz in stereo
    heard = load_audio(mp4, 16000)
    wav = load_audio(wavs.root / "dev" / "dia0_utt0.wav", 16000)
    assert abs(len(heard) - len(wav)) <= 16
    n = min(len(heard), len(wav))
    assert np.corrcoef(heard[:n], wav[:n])[0, 1] > 0.98
