"""Processes that end with the ser process that started them, however it ends.

A pool process waits on pipes whose both ends it holds, so when the ser process that
started it is killed (SIGKILL, the out-of-memory killer) nothing ever wakes it: it lives
on idle, re-parented to init, with its memory. On Linux a process can ask the kernel for
a signal when its parent ends (``prctl(PR_SET_PDEATHSIG)``): every pool process ser
starts (`spawned_pool`) asks for SIGKILL before its own initializer runs, then checks
that its parent is still the process that started it, since that one may have ended
before the request was made, and ends at once if not. SIGKILL, not a gentler signal:
the process may be deep in C code (openSMILE, torch), and its parent's work is lost anyway.

The kernel sends the signal when the *thread* that started the process ends, so a pool
must be used from a thread that outlives it (ProcessPoolExecutor starts its processes on
`submit`, from the submitting thread). The multiprocessing resource tracker needs
nothing: it ends by itself once every process that holds its pipe has ended. Dask's
local workers end by themselves too (distributed watches a pipe from their nanny, in
the ser process: tests/runtime/test_orphans.py). Elsewhere than Linux nothing is asked: a
ser process killed there may leave its pool processes behind.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def die_with_parent(parent: int) -> None:
    """In a child process: ask to be killed when the thread that started it ends, and end
    now if `parent` (the pid that started it) has already gone. Nothing off Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_PDEATHSIG): {os.strerror(code)}")
    if os.getppid() != parent:  # it ended before the request: no signal will come
        os._exit(1)


def spawned_pool(
    workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes, each running `initializer(*initargs)`
    once, that end with this process (`die_with_parent`). Spawned, not forked: a fork
    of a process with torch's thread pools can hang."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start(parent: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    die_with_parent(parent)
    initializer(*initargs)
