"""The synthetic acted corpora: their layouts' names, quirks, and the same bytes for a seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ser.errors import CorpusError
from ser.synth.acted import ActedConfig, write_crema_d, write_ravdess


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    config = ActedConfig(actors=2, sentences=1)
    a, b = write_ravdess(tmp_path / "a", config), write_ravdess(tmp_path / "b", config)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*.wav"))
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*.wav"))
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
    assert not any(f.name.startswith("03-01-01-02") for f in files)  # no strong neutral


def test_crema_d_quirks_and_refusal(tmp_path: Path) -> None:
    truth = write_crema_d(tmp_path / "c", ActedConfig(actors=2, sentences=1))
    assert (truth.root / "VideoDemographics.csv").read_text().splitlines()[1] == "1001,30,Female"
    assert (truth.root / "AudioWAV" / "1002_MTI_SAD_XX.wav").stat().st_size == 44
    with pytest.raises(CorpusError, match="not empty"):
        write_crema_d(tmp_path / "c")
