"""The memory this process may use, from stable facts: the machine's physical memory,
capped by the tightest cgroup memory limit of the root's and this process's cgroups
(v2's ``memory.max``, v1's ``memory.limit_in_bytes``), never what is free now (that moves
with the load, and choices made from it would too).

>>> memory_budget(root=Path("/nonexistent")) == physical_memory()
True
"""

from __future__ import annotations

import os
from pathlib import Path

from ser.runtime.threads import CGROUP_ROOT, PROC_CGROUP, cgroup_folders, read_setting


def physical_memory() -> int:
    """Bytes of physical memory (0 where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def memory_budget(*, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """Physical memory capped by every cgroup limit set on this process (as `cgroup_cpus`
    reads its CPU quota: a parent's limit binds too)."""
    limits = [physical_memory()]
    for folder in cgroup_folders(root, proc_cgroup, v1=("memory",)):
        for name in ("memory.max", "memory.limit_in_bytes"):
            text = read_setting(folder / name)
            if text.isdigit():  # "max" (v2) means no limit
                limits.append(int(text))
    known = [limit for limit in limits if limit > 0]
    return min(known) if known else 0


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes the kernel says a new allocation may take now (MemAvailable), capped by
    `memory_budget`; the budget alone where the platform does not say. What is free
    moves with the load: only choices that change no number may follow it (where a
    run's rows live, `ser.train.placement`)."""
    budget = memory_budget()
    try:
        for line in meminfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "MemAvailable" and value.split()[0].isdigit():
                free = int(value.split()[0]) * 1024
                return min(free, budget) if budget else free
    except OSError:
        pass
    return budget


def device_free_memory(index: int | None = None) -> int:
    """Bytes free on CUDA device `index` (None: the current one) now; 0 without CUDA."""
    import torch  # here: the rest of this module is torch-free

    if not torch.cuda.is_available():
        return 0
    free, _ = torch.cuda.mem_get_info(index)
    return int(free)
