"""The memory budget (ser.runtime.memory): physical memory, capped by a cgroup limit."""

from __future__ import annotations

import doctest
from pathlib import Path

import ser.runtime.memory
from ser.runtime.memory import memory_budget, physical_memory


def test_doctests() -> None:
    assert doctest.testmod(ser.runtime.memory).failed == 0


def test_the_memory_budget_reads_a_cgroup_limit(tmp_path: Path) -> None:
    none = tmp_path / "no-cgroup"
    assert memory_budget(root=tmp_path, proc_cgroup=none) == physical_memory() > 0
    (tmp_path / "memory.max").write_text("max\n")
    assert memory_budget(root=tmp_path, proc_cgroup=none) == physical_memory()
    (tmp_path / "memory.max").write_text("1073741824\n")
    assert memory_budget(root=tmp_path, proc_cgroup=none) == 2**30
    (tmp_path / "memory.max").unlink()
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(str(2**31))
    assert memory_budget(root=tmp_path, proc_cgroup=none) == 2**31


def test_this_process_s_own_cgroup_limits_it_too(tmp_path: Path) -> None:
    """v2: the process's cgroup folder; v1: the memory hierarchy's; the tightest wins."""
    proc = tmp_path / "cgroup"
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "memory.max").write_text(str(2**29))
    proc.write_text("0::/job\n")
    assert memory_budget(root=tmp_path, proc_cgroup=proc) == 2**29
    (tmp_path / "memory" / "slurm").mkdir(parents=True)
    (tmp_path / "memory" / "slurm" / "memory.limit_in_bytes").write_text(str(2**28))
    proc.write_text("0::/job\n5:memory:/slurm\n")
    assert memory_budget(root=tmp_path, proc_cgroup=proc) == 2**28
