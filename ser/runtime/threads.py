"""CPU threads chosen once per run from stable facts, and OpenMP threads that spin only
briefly before they sleep (benchmarks/README.md, "What does a busy neighbour cost a run?").

Another thread count splits torch's reductions differently and so rounds differently, so
the count is chosen once from what does not change between two runs (``--threads N``,
else ``OMP_NUM_THREADS``, else this process's `cpu_budget`: above 2 cores all but one,
on 2 or fewer all with brief waits, 1 with spinning ones), recorded, and never moved.

GNU OpenMP spins each waiting thread 300000 iterations, and beside a busy process every
barrier of our thousands of small operators waits for a thread parked behind it (920 s
against 89 s with one thread): `brief_waits` sets GOMP_SPINCOUNT before torch
loads OpenMP (OMP_WAIT_POLICY=PASSIVE cost a quiet run 30-60 %). The rule in full:
docs/dev/runtime.md, "Device, precision, threads".

>>> import torch
>>> choice = set_torch_threads(threads=3)
>>> choice.count, choice.source, torch.get_num_threads()
(3, '--threads 3', 3)
>>> budget = cpu_budget(workers=64)
>>> budget.cores, budget.workers
(1, 64)
>>> eight = CpuBudget(cores=8, affinity=8, quota=None, workers=1)
>>> two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
>>> [default_threads(b, brief=p).count for b in (eight, two) for p in (True, False)]
[7, 7, 2, 1]
>>> parse_threads("4"), parse_threads(None)
(4, None)
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ser.errors import ConfigError

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
# With spinning OpenMP threads, at or below this many cores a second thread costs more
# beside another busy process than it gains alone.
SMALL_BUDGET = 2
WAIT_POLICY = "OMP_WAIT_POLICY"
SPIN_COUNT = "GOMP_SPINCOUNT"
# Spin iterations before a waiting OpenMP thread sleeps (GNU's default: 300000). Measured
# on 2 cores (benchmarks/README.md): 10000 keeps a quiet run at full speed (the next
# operator comes within it) and costs a run beside a busy process ~2.4x, not 3-5x.
BRIEF_SPIN = 10000
_late: list[bool] = []  # set by brief_waits when torch (and OpenMP) had loaded before it


@dataclass(frozen=True)
class CpuBudget:
    """The cores this process may use: `affinity` capped by `quota`, over `workers`."""

    cores: int
    affinity: int  # cores in the affinity mask
    quota: float | None  # CPUs the cgroup quota allows; None: no quota
    workers: int  # processes sharing them (`--workers N`)

    def describe(self) -> str:
        """e.g. "affinity 2 cores, cgroup none, 1 worker"."""
        quota = "none" if self.quota is None else f"{self.quota:g} CPUs"
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        return f"affinity {self.affinity} cores, cgroup {quota}, {workers}"


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why: recorded in run records, printed in the first log line."""

    count: int
    source: str


def cgroup_cpus(*, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs the cgroup quota allows this process (quota / period), None without a quota:
    cgroup v2's ``cpu.max`` or v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, at the
    root and in this process's cgroup; the tightest wins (a parent's limit binds too)."""
    found = [
        cpus
        for folder in cgroup_folders(root, proc_cgroup)
        for cpus in (
            _ratio(*read_setting(folder / "cpu.max").split()),  # "max 100000" or "150000 100000"
            _ratio(
                read_setting(folder / "cpu.cfs_quota_us"),
                read_setting(folder / "cpu.cfs_period_us"),
            ),
        )
        if cpus is not None
    ]
    return min(found) if found else None


def cgroup_folders(
    root: Path, proc_cgroup: Path, v1: tuple[str, ...] = ("cpu", "cpu,cpuacct")
) -> list[Path]:
    """The root's and this process's cgroup folders (v2, and the v1 hierarchies named
    `v1`: the cpu controller's by default, ("memory",) for memory limits)."""
    folders = [root, *(root / name for name in v1)]
    # "0::/path" (v2) or "4:cpu,cpuacct:/path" (v1)
    for line in read_setting(proc_cgroup).splitlines():
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        relative = path.strip().lstrip("/")
        if not relative:
            continue
        if controllers == "":
            folders.append(root / relative)
        elif v1[0] in controllers.split(","):
            folders += [root / name / relative for name in v1]
    return folders


def read_setting(path: Path) -> str:
    """A cgroup or /proc file's text, stripped; "" where it is absent or unreadable."""
    try:
        return path.read_text().strip()
    except OSError:  # absent (another cgroup version, not Linux) or unreadable
        return ""


def _ratio(*fields: str) -> float | None:
    """quota / period; None for "max", -1 (v1: no quota) or anything unreadable."""
    try:
        q, p = (int(f) for f in fields)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cpu_budget(
    *, workers: int = 1, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> CpuBudget:
    """This process's share of the machine: affinity capped by the cgroup quota (rounded
    up: 1.5 CPUs keep two threads busy half the time), divided by `workers`, at least 1."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    affinity = _affinity()
    quota = cgroup_cpus(root=cgroup_root, proc_cgroup=proc_cgroup)
    cores = affinity if quota is None else min(affinity, max(1, math.ceil(quota)))
    return CpuBudget(max(1, cores // workers), affinity, quota, workers)


def _affinity() -> int:
    # The mask, not os.cpu_count(): taskset, cpusets and Slurm narrow it.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def brief_waits() -> bool:
    """GOMP_SPINCOUNT=BRIEF_SPIN unless the environment chose a wait policy or spin
    count; whether waits are brief. OpenMP reads it once, when torch loads it, and it is
    process-wide: entry points call this before importing torch, library code never does."""
    if WAIT_POLICY not in os.environ and SPIN_COUNT not in os.environ:
        # Too late for this process once torch is loaded; child processes still get it.
        _late.append("torch" in sys.modules)
        os.environ[SPIN_COUNT] = str(BRIEF_SPIN)
    return waits_briefly()


def waits_briefly() -> bool:
    """Whether OpenMP threads sleep soon when they wait: a passive policy, or a spin
    count of at most BRIEF_SPIN set before torch loaded (a user's setting counts as such)."""
    policy = os.environ.get(WAIT_POLICY, "").strip().upper()
    if policy == "ACTIVE":
        return False
    spin = os.environ.get(SPIN_COUNT, "").strip()
    brief = policy == "PASSIVE" or (spin.isdigit() and int(spin) <= BRIEF_SPIN)
    return brief and not any(_late)


def parse_threads(value: str | float | None) -> int | None:
    """`--threads`' value: a count of at least 1, or None (the default rule)."""
    if value is None:
        return None
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)  # 1.5 threads is no count: never truncated to 1
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"--threads must be a count, got {value!r}") from None
    if count < 1:
        raise ConfigError(f"--threads must be at least 1, got {count}")
    return count


def default_threads(
    budget: CpuBudget, *, threads: int | None = None, brief: bool | None = None
) -> ThreadChoice:
    """The intra-op thread count for `budget` by the module doc's rule. `brief`: whether
    OpenMP threads sleep soon when waiting (None: as the environment says)."""
    if threads is not None:  # checked where it is given (`parse_threads`, click's IntRange)
        return ThreadChoice(threads, f"--threads {threads}")
    env = _env_threads()
    if env is not None:
        return ThreadChoice(env, f"OMP_NUM_THREADS={env}")
    where = budget.describe()
    if budget.cores > SMALL_BUDGET:
        count = budget.cores - 1
        return ThreadChoice(count, f"{count} of {budget.cores}, one left free: {where}")
    if waits_briefly() if brief is None else brief:
        return ThreadChoice(budget.cores, f"all {budget.cores}, brief waits: {where}")
    return ThreadChoice(1, f"1 of {budget.cores}, spinning waits: {where}")


def _env_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        count = int(value.split(",")[0])  # "4,2": nested levels; the first is ours
    except ValueError:
        return None
    return count if count >= 1 else None


def set_torch_threads(*, threads: int | None = None) -> ThreadChoice:
    """Choose torch's thread count (`default_threads`) and apply it, inter-op pool too."""
    import torch

    choice = default_threads(cpu_budget(), threads=threads)
    torch.set_num_threads(choice.count)
    # Refused once set, or once parallel work has started: the pool then stays.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(choice.count)
    return choice


def worker_threads(
    threads: int | None, *, workers: int | None, scheduler: str | None = None
) -> ThreadChoice:
    """Torch threads for each task on dask workers: `threads` when a count; with
    `--workers N` cores // N (no core left free: the workers are each other's only known
    competitors); under `--scheduler` 0, the workers' own setting."""
    if isinstance(threads, int):
        return ThreadChoice(threads, f"--threads {threads} per worker")
    if scheduler is not None:
        return ThreadChoice(0, "--scheduler")
    budget = cpu_budget(workers=workers or 1)
    return ThreadChoice(budget.cores, f"per worker: {budget.describe()}")


def run_threads(
    threads: int | None, *, workers: int | None = None, scheduler: str | None = None
) -> ThreadChoice:
    """`set_torch_threads` in this process, or with dask workers each task's `worker_threads`."""
    if workers is None and scheduler is None:
        return set_torch_threads(threads=threads)
    return worker_threads(threads, workers=workers, scheduler=scheduler)


@contextlib.contextmanager
def torch_settings(count: int | None, cpu: bool) -> Iterator[ThreadChoice]:
    """torch's threads (`count`; None: the process's CPU budget) and, when a run is on the
    CPU (`cpu`), denormals flushed, for the block; the chosen threads given to it, torch's
    own settings back after it."""
    import torch

    before = torch.get_num_threads()
    try:
        # The process's CPU budget, not the machine's cores: torch's default of one thread
        # per core made a run 10x slower beside one other busy process (the module's
        # docstring).
        chosen = set_torch_threads(threads=count)
        # Denormal floats (masked attention rows, vanishing gradients) cost x86 CPUs
        # 10-100x per operation: with them, epochs of the demo's fusion model took 3-18 s
        # instead of 0.65 s. Flushing them to zero changes results only below float32's
        # normal range.
        flushed = cpu and torch.set_flush_denormal(True)
        try:
            yield chosen
        finally:
            if flushed:
                torch.set_flush_denormal(False)
    finally:
        torch.set_num_threads(before)
