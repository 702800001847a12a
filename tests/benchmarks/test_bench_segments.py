"""benchmarks/bench_segments.py's timed command on the CPU with the predict tests' run, so
that its GPU figure (`--device cuda`) takes the same path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import soundfile

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_the_segment_benchmark_predicts_on_the_device_it_is_given(trained_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))  # it imports bench_predict as a sibling
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_segments", BENCHMARKS / "bench_segments.py"
        )
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(BENCHMARKS))
    path = tmp_path / "talk.wav"
    bench.long_recording(path, trained_run.wavs[:3], 0.1)
    assert soundfile.info(str(path)).duration >= 6.0
    args = bench.command(trained_run.run_dir, path, "fixed:2", "cpu")
    assert args[args.index("--device") + 1] == "cpu"
    wall, rss = bench.timed(args, tmp_path / "log")
    assert wall > 0 and rss > 0
