"""benchmarks/bench_emobox.py on a few hundred lines: its EmoBox-shaped folder reads with
--corpus emobox, its fold has the sides it wrote, and every mode reports its figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_benchmark_runs_small(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("bench_emobox", BENCHMARKS / "bench_emobox.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(sys, "argv", ["bench_emobox.py", "--utterances", "180", "--runs", "1"])
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # its processes import this ser
    bench.main()
    result = json.loads(capsys.readouterr().out)
    (missing,), (present,) = result["wavs_missing"], result["wavs_present"]
    assert missing["utterances"] == present["utterances"] == 180
    assert missing["problems"] == 181 and present["problems"] == 0
    assert present["sizes"] == [120, 20, 40] and result["floor"][0]["lines"] == 360
