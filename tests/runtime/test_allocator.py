"""glibc heap settings: they must take, and must keep freed memory from being refaulted."""

from __future__ import annotations

import doctest
import os
import platform
import subprocess
import sys

import pytest

import ser.runtime.allocator
from ser.runtime.allocator import USER_SETTINGS

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

# Allocate 40 touched 1 MB blocks and free them, 20 times; print the page faults it took.
CYCLES = """
import resource, sys
import numpy as np
from ser.runtime.allocator import tune_heap
print(tune_heap() if sys.argv[1] == "tune" else "untouched")
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    blocks = [np.ones(131_072) for _ in range(40)]
    del blocks
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _cycles(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    env = env or {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", CYCLES, mode], capture_output=True, text=True, check=True, env=env
    )
    took, faults = out.stdout.split()
    return took, int(faults)


@glibc_only
def test_freed_heap_is_kept_instead_of_faulted_in_again() -> None:
    took, tuned = _cycles("tune")
    assert took == "True"
    # glibc's defaults hand the 40 MB back and fault it in again every cycle.
    _, default = _cycles("default")
    assert default > 100_000 and tuned < default / 5


@glibc_only
def test_a_users_malloc_setting_wins() -> None:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
    took, _ = _cycles("tune", env)
    assert took == "False"


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ser.runtime.allocator).failed == 0


@glibc_only
def test_ser_tune_heap_0_keeps_glibcs_defaults() -> None:
    env = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    took, _ = _cycles("tune", {**env, "SER_TUNE_HEAP": "0"})
    assert took == "False"
