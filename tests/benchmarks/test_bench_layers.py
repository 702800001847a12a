"""benchmarks/bench_layers.py's code paths on tiny models, on the CPU: the GPU step of
benchmarks/gpu.sh (extraction throughput) and the disk figure, so neither rots between
the sessions that run them for real."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_layers", BENCHMARKS / "bench_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_layers"] = module
    spec.loader.exec_module(module)
    return module


def test_the_gpu_steps_throughput_runs_on_the_cpu(bench: ModuleType, tmp_path: Path) -> None:
    result = bench.throughput(torch.device("cpu"), 3, tmp_path, "all", size="tiny")
    assert result["precision"] == "fp32" and result["layers"] == "all"
    for label in ("hubert-base", "whisper-small-encoder"):
        assert result[label]["utterances"] == 3 and result[label]["utterances_per_s"] > 0


@pytest.mark.slow
def test_the_disk_figure_measures_what_it_scales(bench: ModuleType, tmp_path: Path) -> None:
    result = bench.measure_disk(20.0, tmp_path, size="tiny")
    assert (result["layers"], result["dim"]) == (3, 32)
    for view in result["views"].values():  # the .npy model is the measured dump
        assert view["npy_per_layer"] == view["npy_modelled_per_layer"]
    frames = result["views"]["frames"]
    checksums = 4 * frames["store_chunks_per_layer"]  # crc32c, one per chunk
    assert frames["store_data_per_layer"] == sum(frames["rows"]) * 32 * 2 + checksums
    totals = bench.iemocap_totals(result)
    assert totals["base .meanstd"]["store"] > totals["base .mean"]["store"]
    assert totals["large frames"]["files_npy"] == 25 * 5531
