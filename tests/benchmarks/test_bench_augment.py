"""benchmarks/bench_augment.py at its smallest (the predict tests' store as the demo's, one
epoch, two seeds): every configuration runs or is n/a with ser's reason, and the JSON
holds the figures its README section quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_augment.py"


@pytest.mark.slow
def test_each_configuration_runs_or_says_why_not(trained_run) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, str(BENCH), "--store", str(trained_run.store),
         "--demo-features", "hubert+bert", "--seeds", "2", "--demo-epochs", "1",
         "--fusion-epochs", "1", "--mlp-epochs", "1", "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    rows = {(r["model"].split()[0], r["config"]): r for r in result["rows"]}
    measured = [("MSMSER", c) for c in ("sampler balanced", "augment mask")]
    measured += [("MLP", c) for c in ("sampler balanced", "mixup 0.2")]
    for key in measured:
        assert len(rows[key]["ua"]) == 2 and {"ua_mean", "ua_std", "delta", "delta_std"} <= set(
            rows[key]
        ), rows[key]
    assert "delta" not in rows["MSMSER", "baseline"] and "ua_mean" in rows["MLP", "baseline"]
    assert "--mixup" in rows["MSMSER", "mixup 0.2"]["na"]
    assert "--augment mask" in rows["MLP", "augment mask"]["na"]
    assert all("na" in rows["fusion", c] for c in ("baseline", "sampler balanced", "mixup 0.2"))
    assert result["seeds"] == 2 and result["machine"]
