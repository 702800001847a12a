"""benchmarks/bench_train.py's code path on the CPU at its smallest: the GPU step of
benchmarks/gpu.sh (paper-size MSMSER's training speed) runs it, so a change of the run
record it reads breaks it here, not in a lent GPU's few minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train.py"


@pytest.mark.slow
def test_the_msmser_scenario_runs_and_reports_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "msmser", "--size", "demo", "--seeds", "1",
         "--epochs", "1", "--utterances", "60", "--threads", "1", "--stacked", "--flops",
         "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    for run in ("default", "stacked"):  # as gpu.sh runs it: the default, then stacked
        figures = result[run]
        assert figures["members"] == 5  # leave-one-session-out: a member per session
        assert figures["train_utts_per_s_incl_val"] > 0
        assert len(figures["train_losses"]) == 5
    assert result["default_vs_stacked"]["wall_speedup"] > 0
