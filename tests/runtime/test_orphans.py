"""Processes that end with the process that started them (ser.runtime.orphans), and the
dask workers of a local cluster, which end by themselves: each killed with SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ser.runtime import orphans
from tests.processes import killed_midway

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's prctl")

# Two pool processes, each saying so once its initializer has run, then sleeping in a task.
POOL = """
import os, time
from ser.runtime.orphans import spawned_pool
pool = spawned_pool(2, os.write, (1, b"ready\\n"))
tasks = [pool.submit(time.sleep, 600) for _ in range(2)]
time.sleep(600)
"""

CLUSTER = """
import os, time
from ser.runtime.cluster import dask_client
with dask_client(workers=2) as client:
    os.write(1, b"ready\\n")
    tasks = [client.submit(time.sleep, 600, pure=False) for _ in range(2)]
    time.sleep(600)
"""


@linux
def test_a_killed_pools_processes_end_with_it(tmp_path: Path) -> None:
    """Two pool processes (and the resource tracker, holding their pipe) outlive no
    SIGKILL of the process that started them."""

    def ready(output: str) -> bool:  # each process's initializer has run
        return output.count("ready") == 2

    command = [sys.executable, "-c", POOL]
    left, output = killed_midway(command, ready, tmp_path / "log", processes=2)
    assert left == [], "\n".join([*left, output])


@linux
def test_a_process_whose_parent_ended_before_it_asked_ends_at_once() -> None:
    """The getppid race: a parent gone before the request leaves no signal to come."""
    code = "from ser.runtime.orphans import die_with_parent as d; import os; d({}); print('on')"
    gone = subprocess.run([sys.executable, "-c", code.format(1)], capture_output=True, text=True)
    assert (gone.returncode, gone.stdout) == (1, "")
    ours = subprocess.run(
        [sys.executable, "-c", code.format("os.getppid()")], capture_output=True, text=True
    )
    assert (ours.returncode, ours.stdout) == (0, "on\n"), ours.stderr


def test_off_linux_nothing_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orphans.sys, "platform", "darwin")
    orphans.die_with_parent(parent=1)  # not this process's parent: still here


@pytest.mark.slow
@linux
def test_a_killed_local_clusters_workers_end_with_it(tmp_path: Path) -> None:
    """distributed's nannies live in the process that made the cluster; each worker
    watches a pipe from its nanny and ends when it closes."""
    command = [sys.executable, "-c", textwrap.dedent(CLUSTER)]

    def ready(output: str) -> bool:
        return "ready" in output

    left, output = killed_midway(command, ready, tmp_path / "log", processes=2)
    assert left == [], "\n".join([*left, output])
