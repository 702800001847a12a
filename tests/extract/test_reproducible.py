"""Same command, same machine, same bytes: `ser extract` run as a user runs it (no thread
settings in the environment), killed part way and resumed beside one CPU-bound process
per core, writes the bytes of a quiet, uninterrupted run. Every row of the resumed store
was written on the busy machine, so this one test holds both promises: a busy machine
writes the quiet machine's bytes, and so does a resumed run.

Once, the thread count followed the load, and the tiny HuBERT's features with
1 and 2 torch threads differ by one float16 step in ~2 % of the rows (AMD EPYC, AVX2):
beside a busy process the run took 1 thread, quiet 2. openSMILE (is13) runs on one core
whatever the machine has; it is here as the other kind of extractor a store mixes.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.extract.test_resume import SLOW, kill_after_shards
from tests.machine import busy_cores, ser_command, user_env

SETS = ("tiny-hubert.L1", "tiny-hubert.L2", "is13")


def _args(root: Path, store: Path, models: Any) -> list[str]:
    return [
        "extract",
        str(root),
        "--store",
        str(store),
        "--features",
        "hubert,is13",
        "--hubert-model",
        str(models.hubert),
        "--layers",
        "1,2",
        "--device",
        "cpu",
        "--shard-size",
        "16",
        "--classes",
        "4",
        "--quiet",
    ]


def _extract(root: Path, store: Path, models: Any) -> None:
    done = subprocess.run(
        ser_command(*_args(root, store, models)),
        env=user_env(),
        cwd=store.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


def _assert_same_bytes(a: Path, b: Path) -> None:
    from ser.cache import FeatureStore

    first, second = FeatureStore.open(a), FeatureStore.open(b)
    for name in SETS:
        x, y = first.read(name), second.read(name)
        assert x.offsets.tobytes() == y.offsets.tobytes(), name
        assert x.data.dtype == y.data.dtype and x.data.tobytes() == y.data.tobytes(), name
        assert first.failures(name) == second.failures(name), name


@pytest.fixture(scope="module")
def quiet(synthetic_corpus: tuple[Path, Any], tiny_models: Any, tmp_path_factory) -> Path:
    """An uninterrupted run on a quiet machine."""
    store = tmp_path_factory.mktemp("quiet") / "f.zarr"
    _extract(synthetic_corpus[0], store, tiny_models)
    return store


@pytest.mark.slow
def test_killed_and_resumed_beside_a_busy_process_writes_the_quiet_bytes(
    synthetic_corpus: tuple[Path, Any], tiny_models: Any, quiet: Path, tmp_path: Path
) -> None:
    root, store = synthetic_corpus[0], tmp_path / "f.zarr"
    with busy_cores():
        proc = subprocess.Popen(
            [ser_command()[0], "-c", SLOW, *_args(root, store, tiny_models)],
            env=user_env(),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        kill_after_shards(proc, store, "tiny-hubert.L1", 2)
        output = proc.communicate(timeout=120)[0].decode()
        assert proc.returncode == -signal.SIGKILL, output
        _extract(root, store, tiny_models)
    _assert_same_bytes(store, quiet)
