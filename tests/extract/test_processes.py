"""Batches on processes side by side: is13 by default, the same bytes as one process."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import soundfile
import torch
from rich.console import Console

import ser.extract.run as run_module
from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.extract.config import ExtractConfig
from ser.extract.pipeline import run_jobs
from ser.extract.registry import build_extractor
from ser.extract.run import extract_features
from ser.runtime import threads
from ser.synth.corpus import SynthConfig, write_corpus
from tests.processes import killed_midway, ser_command

CPU = torch.device("cpu")


def _extract(root: Path, store: Path, processes: int | None, console: Console | None = None) -> Any:
    config = ExtractConfig(features=("is13",), processes=processes, shard_size=4, progress=False)
    return extract_features(root, store, config, console or Console(quiet=True))


def _same_bytes(a: Path, b: Path, name: str = "is13") -> None:
    first, second = FeatureStore.open(a), FeatureStore.open(b)
    x, y = first.read(name), second.read(name)
    assert x.offsets.tobytes() == y.offsets.tobytes()
    assert x.data.dtype == y.data.dtype and x.data.tobytes() == y.data.tobytes()
    assert first.failures(name) == second.failures(name)


@pytest.fixture(scope="module")
def damaged_corpus(tmp_path_factory) -> Path:
    """A small synthetic corpus (~20 short utterances) with one cut to 10 ms: a failure."""
    root = tmp_path_factory.mktemp("pool") / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(1, 3, (3, 4), (0.5, 1.5)))
    wav = sorted((root / "Session1" / "sentences" / "wav").rglob("*.wav"))[0]
    soundfile.write(wav, soundfile.read(wav)[0][:160], 16000)
    return root


@pytest.fixture(scope="module")
def one_process(damaged_corpus: Path, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("one") / "f.zarr"
    _extract(damaged_corpus, store, processes=1)
    return store


@pytest.mark.slow
def test_two_processes_write_one_processes_bytes(
    damaged_corpus: Path, one_process: Path, tmp_path: Path
) -> None:
    printed = io.StringIO()
    report = _extract(damaged_corpus, tmp_path / "f.zarr", 2, Console(file=printed))
    assert "is13: 2 processes x 1 torch thread (--processes 2)" in printed.getvalue()
    [(_, _, why)] = report.failures  # the 10 ms utterance, failed in a pool process
    assert "too short" in why
    _same_bytes(tmp_path / "f.zarr", one_process)


@pytest.mark.slow
def test_a_pool_stopped_part_way_keeps_its_shards_and_resumes_to_the_same_bytes(
    damaged_corpus: Path, one_process: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stopped(*args: Any, **options: Any) -> Iterator[Any]:  # Ctrl-C after two shards
        committed = 0
        for item in run_jobs(*args, **options):
            yield item
            committed += item[2]
            if committed == 2:
                raise KeyboardInterrupt

    store_path = tmp_path / "f.zarr"
    monkeypatch.setattr("ser.extract.run.run_jobs", stopped)
    with pytest.raises(KeyboardInterrupt):
        _extract(damaged_corpus, store_path, processes=2)
    store = FeatureStore.open(store_path)
    assert len(store.done_shards("is13")) == 2 and not store.info("is13").complete
    monkeypatch.undo()
    assert _extract(damaged_corpus, store_path, processes=2).extracted == ("is13",)
    _same_bytes(store_path, one_process)


def test_is13_takes_a_process_per_core_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner asks the execution policy with the extractor's facts (the rule itself:
    tests/runtime/test_execution.py)."""
    budget = threads.CpuBudget(cores=6, affinity=8, quota=6.0, workers=1)
    monkeypatch.setattr("ser.runtime.execution.cpu_budget", lambda: budget)
    config = ExtractConfig(features=("is13",), shard_size=4, progress=False)
    job = SimpleNamespace(shard=SimpleNamespace(batches=[(0,)] * 100))
    here = threads.ThreadChoice(2, "all 2")
    chosen = run_module._execution(build_extractor("is13"), [job], config, CPU, here)  # type: ignore[list-item]
    assert (chosen.processes, chosen.source) == (6, f"one per core: {budget.describe()}")
    logmel = run_module._execution(build_extractor("logmel"), [job], config, CPU, here)  # type: ignore[list-item]
    assert (logmel.processes, logmel.threads) == (1, 2)


def test_processes_asked_for_are_checked() -> None:
    with pytest.raises(ConfigError, match="--processes"):
        ExtractConfig(features=("is13",), processes=2, workers=2)
    with pytest.raises(ConfigError, match="at least 1"):
        ExtractConfig(features=("is13",), processes=0)


@pytest.mark.slow
def test_a_killed_extract_leaves_no_process_behind(tmp_path: Path) -> None:
    """`ser extract --features is13` killed with SIGKILL while its 2 processes extract:
    they (and multiprocessing's resource tracker) end with it (ser.runtime.orphans)."""
    root = tmp_path / "IEMOCAP_full_release"
    write_corpus(root, SynthConfig(1, 5, (8, 9), (1.0, 2.0)))  # ~40 utterances: seconds of work
    store = tmp_path / "f.zarr"
    args = ("extract", root, "--store", store, "--features", "is13", "--processes", "2")
    command = ser_command(*args, "--shard-size", "2", "--quiet")

    def committed(output: str) -> bool:
        return any(tmp_path.rglob("shard-*.json")) or any(tmp_path.rglob("placed-*.json"))

    left, output = killed_midway(command, committed, tmp_path / "log", processes=2)
    assert left == [], "\n".join([*left, output])
    assert not FeatureStore.open(store).info("is13").complete  # killed part way
