"""The memory this process may use, from stable facts: the machine's physical memory,
capped by a cgroup memory limit (v2's ``memory.max``, v1's ``memory.limit_in_bytes``),
never what is free now (that moves with the load, and choices made from it would too).

>>> memory_budget(root=Path("/nonexistent")) == physical_memory()
True
"""

from __future__ import annotations

import os
from pathlib import Path

from ser.runtime.threads import CGROUP_ROOT


def physical_memory() -> int:
    """Bytes of physical memory (0 where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def memory_budget(*, root: Path = CGROUP_ROOT) -> int:
    """Physical memory capped by the root cgroup's limit, where one is set."""
    limits = [physical_memory()]
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            text = (root / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) or a huge number (v1) mean no limit
            limits.append(int(text))
    known = [limit for limit in limits if limit > 0]
    return min(known) if known else 0
