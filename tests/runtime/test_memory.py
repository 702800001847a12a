"""The memory budget (ser.runtime.memory): physical memory, capped by a cgroup limit."""

from __future__ import annotations

import doctest
from pathlib import Path

import ser.runtime.memory
from ser.runtime.memory import memory_budget, physical_memory


def test_doctests() -> None:
    assert doctest.testmod(ser.runtime.memory).failed == 0


def test_the_memory_budget_reads_a_cgroup_limit(tmp_path: Path) -> None:
    assert memory_budget(root=tmp_path) == physical_memory() > 0
    (tmp_path / "memory.max").write_text("max\n")
    assert memory_budget(root=tmp_path) == physical_memory()
    (tmp_path / "memory.max").write_text("1073741824\n")
    assert memory_budget(root=tmp_path) == 2**30
    (tmp_path / "memory.max").unlink()
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(str(2**31))
    assert memory_budget(root=tmp_path) == 2**31
