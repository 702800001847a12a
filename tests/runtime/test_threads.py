"""CPU budget and torch thread defaults (ser.runtime.threads), and where commands record them."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ser.runtime.threads as threads_module
from ser.runs.provenance import Threads
from ser.runtime.threads import (
    CpuBudget,
    ThreadChoice,
    brief_waits,
    cgroup_cpus,
    cpu_budget,
    default_threads,
    run_threads,
    set_torch_threads,
)

NO_CGROUP = Path("/nonexistent/cgroup")


def _no_wait_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither variable set, and both restored afterwards (brief_waits writes os.environ)."""
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(threads_module, "_late", [])


@pytest.fixture(autouse=True)
def no_wait_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from no wait settings: importing `ser.cli` (other test modules
    do) sets GOMP_SPINCOUNT for the whole test process."""
    _no_wait_settings(monkeypatch)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch):
    """No OMP_NUM_THREADS (the test session sets one) nor wait policy; torch's count
    restored after."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(threads_module, "_late", [])
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _affinity(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    monkeypatch.setattr(threads_module.os, "sched_getaffinity", lambda pid: set(range(cores)))


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _proc(tmp_path: Path, text: str = "0::/\n") -> Path:
    path = tmp_path / "proc_cgroup"
    path.write_text(text)
    return path


def test_affinity_mask_is_the_budget(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _affinity(monkeypatch, 6)
    budget = cpu_budget(cgroup_root=NO_CGROUP, proc_cgroup=_proc(tmp_path))
    assert (budget.cores, budget.affinity, budget.quota, budget.workers) == (6, 6, None, 1)
    assert budget.describe() == "affinity 6 cores, cgroup none, 1 worker"


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "400000 100000\n"}, 4.0),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota_is_parsed(tmp_path: Path, files: dict[str, str], cpus: float | None) -> None:
    root = _cgroup(tmp_path / "cgroup", files)
    assert cgroup_cpus(root=root, proc_cgroup=_proc(tmp_path)) == cpus


def test_own_cgroup_below_the_root_counts_and_the_tightest_wins(tmp_path: Path) -> None:
    root = _cgroup(
        tmp_path / "cgroup",
        {"cpu.max": "800000 100000", "job/step/cpu.max": "300000 100000"},
    )
    proc = _proc(tmp_path, "0::/job/step\n")
    assert cgroup_cpus(root=root, proc_cgroup=proc) == 3.0
    v1 = _cgroup(
        tmp_path / "v1",
        {
            "cpu,cpuacct/slurm/cpu.cfs_quota_us": "100000",
            "cpu,cpuacct/slurm/cpu.cfs_period_us": "100000",
        },
    )
    assert cgroup_cpus(root=v1, proc_cgroup=_proc(tmp_path, "4:cpu,cpuacct:/slurm\n")) == 1.0


def test_quota_caps_the_affinity_rounded_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _affinity(monkeypatch, 8)
    root = _cgroup(tmp_path / "cgroup", {"cpu.max": "250000 100000"})
    budget = cpu_budget(cgroup_root=root, proc_cgroup=_proc(tmp_path))
    assert (budget.cores, budget.quota) == (3, 2.5)
    assert budget.describe() == "affinity 8 cores, cgroup 2.5 CPUs, 1 worker"
    _affinity(monkeypatch, 2)  # a quota above the mask changes nothing
    assert cpu_budget(cgroup_root=root, proc_cgroup=_proc(tmp_path)).cores == 2


@pytest.mark.parametrize(("workers", "cores"), [(1, 16), (2, 8), (3, 5), (16, 1), (40, 1)])
def test_workers_divide_the_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workers: int, cores: int
) -> None:
    _affinity(monkeypatch, 16)
    budget = cpu_budget(workers=workers, cgroup_root=NO_CGROUP, proc_cgroup=_proc(tmp_path))
    assert budget.cores == cores and budget.workers == workers
    with pytest.raises(ValueError, match="at least 1"):
        cpu_budget(workers=0)


def test_default_rule_and_its_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    def budget(cores: int) -> CpuBudget:
        return CpuBudget(cores=cores, affinity=cores, quota=None, workers=1)

    spinning = [default_threads(budget(n), brief=False).count for n in (1, 2, 3, 4, 16)]
    assert spinning == [1, 1, 2, 3, 15]
    passive = [default_threads(budget(n), brief=True).count for n in (1, 2, 3, 4, 16)]
    assert passive == [1, 2, 2, 3, 15]
    assert "spinning waits" in default_threads(budget(2)).source  # no policy set
    assert default_threads(budget(2), brief=True) == ThreadChoice(
        2, "all 2, brief waits: affinity 2 cores, cgroup none, 1 worker"
    )
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert default_threads(budget(2)).count == 2
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert default_threads(budget(2)).count == 1
    given = default_threads(budget(16), threads=4)
    assert given == ThreadChoice(4, "--threads 4")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert default_threads(budget(16)).source == "OMP_NUM_THREADS=5"
    assert default_threads(budget(16), threads=2).count == 2  # --threads beats the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")  # unusable: ignored
    assert default_threads(budget(16)).count == 15
    monkeypatch.setenv("OMP_NUM_THREADS", "3,1")  # nested levels: the first is torch's
    assert default_threads(budget(16)).count == 3


def test_set_torch_threads_applies_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    _affinity(monkeypatch, 4)
    monkeypatch.setattr(threads_module, "cgroup_cpus", lambda **_: None)  # no quota
    choice = set_torch_threads()
    assert choice.count == 3 == torch.get_num_threads()
    assert set_torch_threads(threads=2).count == 2 == torch.get_num_threads()


def test_brief_waits_set_the_spin_count_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(threads_module.sys.modules, "torch", None)  # not loaded yet
    monkeypatch.delitem(threads_module.sys.modules, "torch")
    _no_wait_settings(monkeypatch)
    assert brief_waits() is True and os.environ["GOMP_SPINCOUNT"] == "10000"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")  # the user's choice stays
    assert brief_waits() is False and "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert brief_waits() is True


def test_brief_waits_after_torch_loaded_are_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "torch" in threads_module.sys.modules  # this test module imported it
    _no_wait_settings(monkeypatch)
    assert brief_waits() is False  # set for child processes, too late for this one
    assert os.environ["GOMP_SPINCOUNT"] == "10000"
    assert "spinning" in default_threads(CpuBudget(2, 2, None, 1)).source


def test_doctests() -> None:
    assert doctest.testmod(threads_module).failed == 0


def test_train_records_the_thread_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ser.train.recipe import train
    from tests.train.test_recipe import Recorder, build_store, config

    store = tmp_path / "features.zarr"
    build_store(store)
    _affinity(monkeypatch, 2)
    progress = Recorder()
    record = train(config(store, tmp_path / "runs", protocol="session5", epochs=1), progress)
    assert record.threads is not None
    assert record.threads.count == 1 == record.timings.threads
    assert record.threads.source.startswith("1 of 2, spinning waits: affinity 2 cores")
    assert "1 torch thread (1 of 2, spinning" in progress.messages[0]
    given = train(
        config(store, tmp_path / "runs", protocol="session5", epochs=1, threads=2, name="two"),
    )
    assert given.threads == Threads(count=2, source="--threads 2")


def test_dask_workers_share_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    _affinity(monkeypatch, 8)
    monkeypatch.setattr(threads_module, "cgroup_cpus", lambda **_: None)
    per_worker = run_threads(None, workers=3)
    assert per_worker == ThreadChoice(2, "per worker: affinity 8 cores, cgroup none, 3 workers")
    assert run_threads(4, workers=3).count == 4
    assert run_threads(None, scheduler="tcp://x:8786").count == 0  # the workers' own
    assert run_threads(2).count == 2 == torch.get_num_threads()


@pytest.mark.slow
def test_the_command_sets_brief_waits_before_torch_loads() -> None:
    script = (
        "import ser.cli, sys, torch, ser.runtime.threads as t; "
        "print(t.waits_briefly(), t.default_threads(t.CpuBudget(2, 2, None, 1)).count)"
    )
    unset = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "2"]


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5", "follow"])
def test_threads_values_are_checked(value: str) -> None:
    from ser.errors import ConfigError
    from ser.runtime.threads import parse_threads

    with pytest.raises(ConfigError, match="--threads"):
        parse_threads(value)
    assert parse_threads(" 3 ".strip()) == 3
