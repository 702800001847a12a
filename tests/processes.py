"""A command killed with SIGKILL part way, and the processes it started that outlive it
(`from tests.processes import killed_midway`)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# How long the processes of a killed command may take to end: they are sent SIGKILL at
# once (gone within a second); one still starting then ends once it gets to its parent
# check, which on a loaded machine may take a few seconds more.
GRACE = 20.0
# How long a command may take to show that its processes are working (torch imports
# are slow on a loaded machine).
START = 180.0


def ser_command(*args: str | Path) -> list[str]:
    """`ser ARGS` as this checkout runs it."""
    return [sys.executable, "-m", "ser.cli", *map(str, args)]


def killed_midway(
    command: Sequence[str],
    ready: Callable[[str], bool],
    log: Path,
    processes: int = 2,
) -> tuple[list[str], str]:
    """Run `command` (its output to `log`); once at least `processes` pool processes of
    its (multiprocessing's, spawned) are running and `ready(output so far)`, SIGKILL it.
    Returns those of its processes still running `GRACE` seconds later (pid, parent,
    command line; each then killed) and its output."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    started: dict[int, psutil.Process] = {}
    try:
        _wait_until_working(proc, started, ready, log, processes)
        _note_children(proc.pid, started)  # every one started by now
        proc.kill()
        proc.wait()
        left = _described(_outliving(started.values()))
        return left, log.read_text(errors="replace")
    finally:
        proc.kill()
        for child in started.values():
            _end(child)


def _wait_until_working(
    proc: subprocess.Popen[bytes],
    started: dict[int, psutil.Process],
    ready: Callable[[str], bool],
    log: Path,
    processes: int,
) -> None:
    deadline = time.monotonic() + START
    while True:
        output = log.read_text(errors="replace")
        if proc.poll() is not None:
            raise AssertionError(f"ended (code {proc.returncode}) before the kill:\n{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not working {START:.0f} s after its start:\n{output}")
        _note_children(proc.pid, started)
        if len([p for p in started.values() if _pooled(p)]) >= processes and ready(output):
            return
        time.sleep(0.1)


def _note_children(pid: int, started: dict[int, psutil.Process]) -> None:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for child in children:
        started.setdefault(child.pid, child)


def _pooled(process: psutil.Process) -> bool:
    """A process multiprocessing spawned (not its resource tracker)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        return "--multiprocessing-fork" in process.cmdline()
    return False


def _outliving(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (not ended, not a zombie) after `GRACE`."""
    deadline = time.monotonic() + GRACE
    alive = [p for p in processes if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _running(p)]
    return alive


def _running(process: psutil.Process) -> bool:
    try:  # is_running also tells a reused pid from the process noted
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _end(process: psutil.Process) -> None:
    """Kill `process` if it is still the one noted (leftovers of a failing test)."""
    try:
        if process.is_running():
            process.kill()
    except psutil.NoSuchProcess:
        pass


def _described(processes: Iterable[psutil.Process]) -> list[str]:
    """Each process's pid, parent and command line."""
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            lines.append(f"{process.pid} (parent {process.ppid()}): {' '.join(process.cmdline())}")
    return lines
