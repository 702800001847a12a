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

Ctrl-C on a terminal sends SIGINT to every process of the group, pool processes
included: each would die with a traceback of its own (from openSMILE's callbacks, or
half-way through importing torch), and the pool, broken, with one more. So a pool process
ignores SIGINT from its first instruction (`Pool.submit` starts it with SIGINT blocked,
which a new process inherits, and `_start` ignores it), and the process that started it
stops it (`Pool.stop`) once the interrupt reaches that one: one message, no traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")

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


class Pool:
    """A pool of spawned processes that end with this process and ignore Ctrl-C (module
    docstring): `submit` work, then `close` it, or `stop` it at once on Ctrl-C or an error."""

    def __init__(
        self, workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...] = ()
    ) -> None:
        # Spawned, not forked: a fork of a process with torch's thread pools can hang.
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(os.getpid(), initializer, initargs),
        )
        self.processes: list[BaseProcess] = []  # those started so far

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        """`fn(*args)` on a pool process; the pool starts its processes as work comes."""
        before = set(multiprocessing.active_children())
        with _sigint_blocked():
            future = self.executor.submit(fn, *args)
        self.processes += [p for p in multiprocessing.active_children() if p not in before]
        return future

    def close(self) -> None:
        """Wait for the work submitted, then end the processes."""
        self.executor.shutdown()

    def stop(self) -> None:
        """End the processes now, their work unfinished (its futures fail): what a
        Ctrl-C or an error in this process does, which would wait for them otherwise."""
        for process in self.processes:
            process.terminate()  # SIGTERM: gone at once, nothing printed
        self.executor.shutdown()


def spawned_pool(
    workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...] = ()
) -> Pool:
    """A `Pool` of `workers` spawned processes, each running `initializer(*initargs)`
    once, that end with this process (`die_with_parent`)."""
    return Pool(workers, initializer, initargs)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT held back from this thread for the block (a process started in it inherits
    the mask); one that came meanwhile is delivered when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start(parent: int, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    if hasattr(signal, "pthread_sigmask"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (module docstring)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    die_with_parent(parent)
    initializer(*initargs)
