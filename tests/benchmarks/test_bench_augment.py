"""benchmarks/bench_augment.py at its smallest (the fusion study's arrays, 3 dialogs a
session, one epoch, two seeds; the demo store's half trains MSMSER, which the train tests
cover): every configuration runs or is n/a with ser's reason, and the JSON holds the
figures its README section quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_augment.py"


@pytest.mark.slow
def test_each_configuration_runs_or_says_why_not(tmp_path: Path) -> None:
    args = ["--datasets", "fusion", "--seeds", "2", "--fusion-epochs", "1", "--mlp-epochs", "1",
            "--fusion-dialogs", "3"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(BENCH), *args, "--threads", "1", "--work", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    rows = {(r["model"].split()[0], r["config"]): r for r in result["rows"]}
    for config in ("sampler balanced", "mixup 0.2"):
        row = rows["MLP", config]
        assert len(row["ua"]) == 2, row
        assert {"ua_mean", "ua_std", "delta", "delta_std"} <= set(row), row
    assert "ua_mean" in rows["MLP", "baseline"] and "delta" not in rows["MLP", "baseline"]
    assert "--augment mask" in rows["MLP", "augment mask"]["na"]
    assert all("na" in rows["fusion", c] for c in ("baseline", "sampler balanced", "mixup 0.2"))
    assert result["seeds"] == 2 and result["machine"] and result["fusion_dialogs"] == 3
