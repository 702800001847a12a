"""`ser demo-corpus --layout msp-podcast --utterances N / --hours H`: MSP-Podcast's shape
in labels and durations, without audio."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ser.corpus.kinds import msp_podcast
from ser.corpus.registry import read_corpus
from ser.errors import ConfigError
from ser.synth.msp_size import SECONDS, write_msp_size
from tests.refused import one_line, ser


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_utterances_give_labels_and_durations_of_that_many_rows(tmp_path: Path) -> None:
    done = ser("demo-corpus", tmp_path / "msp", "--layout", "msp-podcast", "--utterances", "500")
    assert done.exit_code == 0, done.output
    assert "wrote 500 utterances (" in done.output and "no audio" in done.output
    labels = rows(tmp_path / "msp" / msp_podcast.LABELS)
    lengths = rows(tmp_path / "msp" / "Labels" / "durations.csv")
    assert len(labels) == len(lengths) == 500
    assert [r["FileName"] for r in labels] == [r["FileName"] for r in lengths]
    seconds = [float(r["seconds"]) for r in lengths]
    assert SECONDS[0] <= min(seconds) and max(seconds) <= SECONDS[1]
    assert {r["Split_Set"] for r in labels} == {"Train", "Development", "Test1", "Test2"}
    assert not (tmp_path / "msp" / msp_podcast.AUDIO).exists()
    _, reading = read_corpus(tmp_path / "msp", "msp-podcast", "8")
    assert {u.label for u in reading.utterances} <= set(msp_podcast.PRIMARY)


def test_hours_give_that_many_hours(tmp_path: Path) -> None:
    written = write_msp_size(tmp_path / "msp", hours=0.5)
    seconds = sum(float(r["seconds"]) for r in rows(written.root / "Labels" / "durations.csv"))
    assert 1800 <= seconds < 1800 + SECONDS[1]
    assert written.utterances > 100


def test_a_size_is_msp_podcasts_and_one_of_two(tmp_path: Path) -> None:
    meld = ser("demo-corpus", tmp_path / "m", "--layout", "meld", "--utterances", "5")
    assert one_line(meld) == "error: --utterances is MSP-Podcast's: not for --layout meld"
    with pytest.raises(ConfigError, match="one of them"):
        write_msp_size(tmp_path / "both", utterances=5, hours=1.0)
