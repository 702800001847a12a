"""Resumable and safe: kill -9 then resume gives the uninterrupted run's bytes; a finished
command is a fast no-op; one writer per store; feature sets never mix versions."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from traceback import format_exception
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ser.cache import FeatureStore, scattered
from ser.cache import shards as store_shards
from ser.cli import main
from ser.extract.registry import KINDS
from ser.synth.tiny import save_tiny_hubert

SETS = ("tiny-hubert.L1", "tiny-hubert.L2", "tiny-bert", "logmel80")

# Subprocess wrappers around the real CLI. SLOW commits each shard and then sleeps, so a
# kill from outside lands mid-run; DIES kills itself with SIGKILL between writing a
# shard's data and committing its record (the 6th atomic write: the hubert sets' predicted
# counts, then the records of their shards 0 and 1, each set's rows placed before).
SLOW = """
import functools, sys, time
from ser.cache import scattered, shards
def slow(self, write, *args, **kwargs):
    write(self, *args, **kwargs)
    time.sleep(0.25)
for kind in (shards.ShardWriter, scattered.ScatteredWriter):
    kind.write = functools.partialmethod(slow, kind.write)
from ser.cli import main
sys.exit(main())
"""
DIES = """
import os, signal, sys
from ser.cache import scattered, shards
atomic = shards.atomic_write
calls = [0]
def dying(path, write, *what):
    calls[0] += 1
    if calls[0] == 6:
        with open(path.with_name("." + path.name + ".dying.tmp"), "wb") as f:
            write(f)
        os.kill(os.getpid(), signal.SIGKILL)
    atomic(path, write, *what)
shards.atomic_write = scattered.atomic_write = dying
from ser.cli import main
sys.exit(main())
"""


def _args(root: Path, store: Path, models: Any, *extra: str) -> list[str]:
    return [
        "extract",
        str(root),
        "--store",
        str(store),
        "--features",
        "hubert,bert,logmel",
        "--hubert-model",
        str(models.hubert),
        "--bert-model",
        str(models.bert),
        "--layers",
        "1,2",
        "--device",
        "cpu",
        "--shard-size",
        "16",
        "--quiet",
        *extra,
    ]


def _assert_same_store(a: Path, b: Path) -> None:
    first, second = FeatureStore.open(a), FeatureStore.open(b)
    for name in SETS:
        x, y = first.read(name), second.read(name)
        assert np.array_equal(x.offsets, y.offsets), name
        assert x.data.dtype == y.data.dtype and np.array_equal(x.data, y.data), name
        assert first.failures(name) == second.failures(name), name


def _staged(store: Path, name: str) -> set[int]:
    """The shards of `name` committed: staged, or their rows placed in the store."""
    staging = store.with_name(store.name + ".staging") / name
    return store_shards.done_shards(staging) | scattered.done_records(staging)


def kill_after_shards(
    proc: subprocess.Popen[bytes], store: Path, name: str, shards: int, timeout: float = 300
) -> None:
    """SIGKILL `proc` once `shards` shards of `name` are committed (mid-run)."""
    deadline = time.monotonic() + timeout
    while len(_staged(store, name)) < shards and proc.poll() is None:
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def reference(short_corpus: tuple[Path, Any], tiny_models: Any, tmp_path_factory) -> Path:
    """An uninterrupted in-process run (one torch thread, as in the subprocesses)."""
    store = tmp_path_factory.mktemp("reference") / "f.zarr"
    result = CliRunner().invoke(main, _args(short_corpus[0], store, tiny_models))
    assert result.exit_code == 0, result.output + "".join(format_exception(*result.exc_info))
    return store


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".zarr", ".h5"], ids=["zarr", "hdf5"])
@pytest.mark.parametrize("how", ["kill from outside", "dies mid-commit"])
def test_killed_run_resumes_to_identical_bytes(
    how: str,
    suffix: str,
    short_corpus: tuple[Path, Any],
    tiny_models: Any,
    reference: Path,
    tmp_path: Path,
) -> None:
    root = short_corpus[0]
    store = tmp_path / f"f{suffix}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-c", SLOW if how == "kill from outside" else DIES]
    proc = subprocess.Popen(
        [*command, *_args(root, store, tiny_models)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if how == "kill from outside":
        kill_after_shards(proc, store, "tiny-hubert.L1", 2)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == -signal.SIGKILL, output

    # the kill landed mid-way: some shards of the first set committed, the set incomplete
    partial = FeatureStore.open(store)
    assert not partial.info("tiny-hubert.L1").complete
    done = _staged(store, "tiny-hubert.L1")
    assert 1 <= len(done) < 11, done

    resumed = CliRunner().invoke(main, _args(root, store, tiny_models))
    assert resumed.exit_code == 0, resumed.output + "".join(format_exception(*resumed.exc_info))
    _assert_same_store(store, reference)
    assert not store.with_name(f"{store.name}.staging").exists()  # staging cleared
    assert FeatureStore.open(store).verify() == []


def test_finished_command_is_a_fast_no_op_that_loads_no_model(
    short_corpus: tuple[Path, Any],
    tiny_models: Any,
    reference: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished run must not load models or plan")

    for registered in KINDS.values():
        monkeypatch.setattr(registered.extractor, "load", forbidden)
        monkeypatch.setattr(registered.extractor, "extract", forbidden)
    monkeypatch.setattr("ser.extract.run.audio_seconds", forbidden)
    before = {name: FeatureStore.open(reference).checksum(name) for name in SETS}

    result = CliRunner().invoke(main, _args(short_corpus[0], reference, tiny_models))

    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
    assert {name: FeatureStore.open(reference).checksum(name) for name in SETS} == before


def test_second_extraction_on_a_locked_store_is_refused(
    short_corpus: tuple[Path, Any], tiny_models: Any, reference: Path
) -> None:
    # The lock is a flock on its own open file: another open in this process conflicts
    # just as another process would.
    with FeatureStore.open(reference, mode="a").lock():
        result = CliRunner().invoke(main, _args(short_corpus[0], reference, tiny_models))
    assert result.exit_code == 2
    assert "in use by another ser process" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_other_weights_under_the_same_name_stop_the_run_until_overwrite(
    short_corpus: tuple[Path, Any], tiny_models: Any, tmp_path: Path
) -> None:
    root = short_corpus[0]
    store = tmp_path / "f.zarr"
    first = [
        "extract",
        str(root),
        "--store",
        str(store),
        "--features",
        "hubert",
        "--quiet",
        "--hubert-model",
        str(tiny_models.hubert),
        "--layers",
        "2",
    ]
    assert CliRunner().invoke(main, first).exit_code == 0
    before = FeatureStore.open(store).read("tiny-hubert.L2")

    other = save_tiny_hubert(tmp_path / "other" / "tiny-hubert", seed=1)  # same set name
    again = [*first[:-4], "--hubert-model", str(other), "--layers", "2"]
    refused = CliRunner().invoke(main, again)
    assert refused.exit_code == 2
    assert "'tiny-hubert.L2' exists with other settings" in refused.output
    assert "weights_sha256:" in refused.output and "model:" in refused.output
    assert "--overwrite" in refused.output
    assert np.array_equal(FeatureStore.open(store).read("tiny-hubert.L2").data, before.data)

    replaced = CliRunner().invoke(main, [*again, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    after = FeatureStore.open(store).read("tiny-hubert.L2")
    assert after.attrs["fingerprint"] != before.attrs["fingerprint"]
    assert np.array_equal(after.offsets, before.offsets)
    assert not np.array_equal(after.data, before.data)


@pytest.mark.slow
def test_interrupted_run_keeps_its_shards_and_refuses_another_shard_size(
    short_corpus: tuple[Path, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, store = short_corpus[0], tmp_path / "f.zarr"
    args = ["extract", str(root), "--store", str(store), "--features", "logmel", "--quiet"]
    calls = []

    def interrupted(self: Any, write: Any, *a: Any, **k: Any) -> None:
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        write(self, *a, **k)

    with monkeypatch.context() as patch:
        for kind in (store_shards.ShardWriter, scattered.ScatteredWriter):  # staged or placed
            patch.setattr(kind, "write", functools.partialmethod(interrupted, kind.write))
        result = CliRunner().invoke(main, [*args, "--shard-size", "8"])
    assert result.exit_code == 130
    assert "run the same command to resume" in result.output
    assert _staged(store, "logmel80") == {0, 1, 2}

    refused = CliRunner().invoke(main, [*args, "--shard-size", "100"])
    assert refused.exit_code == 2
    assert "resume with the --shard-size of the first run" in refused.output
    assert _staged(store, "logmel80") == {0, 1, 2}  # nothing lost

    restarted = CliRunner().invoke(main, [*args, "--shard-size", "100", "--overwrite"])
    assert restarted.exit_code == 0, restarted.output
    assert FeatureStore.open(store).info("logmel80").complete
