"""The timeline of a segmented prediction (ser.predict.timeline)."""

from __future__ import annotations

import doctest
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

import ser.predict.timeline as timeline_module
from ser.predict.timeline import MOST_FILES, plot_timeline


def test_doctests() -> None:
    assert doctest.testmod(timeline_module).failed == 0


def segment(path: str, start: float, label: str | None) -> SimpleNamespace:
    probabilities = {"neu": 0.2, "hap": 0.8} if label else {}
    return SimpleNamespace(path=path, label=label, probabilities=probabilities, start=start,
                           end=start + 5.0)  # fmt: skip


@pytest.mark.slow
def test_a_panel_per_file_and_failed_segments_left_out(tmp_path: Path) -> None:
    segments = [segment("a.wav", 0.0, "hap"), segment("a.wav", 5.0, None),
                segment("b.wav", 0.0, "neu")]  # fmt: skip
    out = tmp_path / "t.png"
    plot_timeline(segments, ("neu", "hap"), out)
    with Image.open(out) as image:
        assert image.size == (1200, 520)  # two files: two panels of 260 px
    many = [segment(f"{n}.wav", 0.0, "neu") for n in range(MOST_FILES + 3)]
    plot_timeline(many, ("neu", "hap"), out)
    with Image.open(out) as image:
        assert image.size == (1200, 260 * MOST_FILES)
