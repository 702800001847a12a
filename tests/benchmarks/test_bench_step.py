"""benchmarks/bench_step.py at its smallest: one MSMSER step of the first LOSO member,
counted by the profiler and timed, reports every figure its README section quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_step.py"


@pytest.mark.slow
def test_a_tiny_step_reports_its_operations_syncs_and_host_time() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--size", "tiny", "--utterances", "30", "--warmup", "1",
         "--steps", "2", "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    keys = ("ops_per_step", "top_level_ops_per_step", "host_syncs_per_step",
            "host_ms_per_step_d16", "top_ops", "size", "model")  # fmt: skip
    assert all(k in result for k in keys), sorted(result)
    assert result["ops_per_step"] > result["top_level_ops_per_step"] > 0
    assert result["host_syncs_per_step"] >= 0
    assert 0 < len(result["top_ops"]) <= 10
    assert result["batch_utterances"] > 0
