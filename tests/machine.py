"""The machine states the suite must give the same numbers in: a quiet one, and one with
a CPU-bound competitor per core (`busy_cores`), with `ser` run as a user runs it
(`user_env`: no thread settings of the suite's own)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

# The suite's own choices (tests/conftest.py pins one thread): a user's shell has none.
SUITE_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
SPIN = "while True: pass"


def user_env() -> dict[str, str]:
    """This environment without the suite's thread settings."""
    return {k: v for k, v in os.environ.items() if k not in SUITE_SETTINGS}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def busy_cores(count: int | None = None) -> Iterator[int]:
    """`count` CPU-bound processes for the duration of the block; yields how many run.
    By default one per core of this process, less one for each other test process of
    the suite (pytest-xdist's workers, each busy with its own tests): the machine is as
    loaded, and the other tests are not slowed by a spinner more than the load needs."""
    if count is None:
        others = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) - 1
        count = max(1, cores() - others)
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        time.sleep(0.5)  # started and spinning before the block samples the machine
        yield count
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def ser_command(*args: str) -> list[str]:
    """`ser ARGS` as a subprocess command line, on this interpreter."""
    return [sys.executable, "-m", "ser.cli", *args]
