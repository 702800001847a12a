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
