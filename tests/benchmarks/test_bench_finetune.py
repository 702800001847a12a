"""benchmarks/bench_finetune.py at its smallest (the demo's tiny HuBERT, one step of each
variant): the figures its README section and the GPU call quote, and the same first loss
from the cache as from audio (the cut at layer N-k is exact)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # its own imports: bench_corpora
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_finetune", BENCHMARKS / "bench_finetune.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_finetune"] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_one_step_of_each_variant_reports_time_memory_and_ratios(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    bench.main(["--size", "demo", "--steps", "1", "--repeats", "1", "--warmup", "0", "--json"])
    result = json.loads(capsys.readouterr().out)
    for variant in ("cache", "recompute", "recompute_grad"):
        figures = result[variant]
        assert {"epoch_s", "step_s", "iemocap_epoch_s", "step_peak_mib", "first_loss"} <= set(
            figures
        ), sorted(figures)
        assert figures["step_s"] > 0 and figures["step_peak_mib"] > 0
        assert math.isclose(figures["first_loss"], result["cache"]["first_loss"], rel_tol=1e-4)
    for key in ("recompute_over_cache", "recompute_grad_over_cache", "recompute_memory_over_cache"):
        assert result[key] > 0
    assert (result["size"], result["k"], result["from_layer"], result["batch"]) == ("demo", 1, 1, 4)
    assert result["process_maxrss_mib"] > 0 and result["utterances"] == 4
    assert result["precision"] == "fp32"  # auto on the CPU, as `ser train`
