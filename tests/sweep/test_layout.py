"""`ser sweep`'s processes x threads: a pure function of stable facts (fake budgets)."""

from __future__ import annotations

import pytest

from ser.errors import ConfigError
from ser.runtime.threads import CpuBudget
from ser.sweep.layout import ONE_THREAD, PROCESS_FAMILIES, choose_layout


def budget(cores: int, affinity: int | None = None, quota: float | None = None) -> CpuBudget:
    return CpuBudget(cores=cores, affinity=affinity or cores, quota=quota, workers=1)


def test_dialog_cells_train_a_cell_per_core_with_one_thread() -> None:
    two = choose_layout(budget(2), families={"dialog"}, cells=26, cuda=False)
    assert (two.workers, two.threads, two.processes) == (2, 1, 2)
    assert two.label() == "2 processes x 1 thread"
    assert "dialog" in two.describe() and "2 cores" in two.describe()
    # Above 2 cores one is left free, as `default_threads` leaves one.
    eight = choose_layout(budget(8), families={"dialog"}, cells=26, cuda=False)
    assert (eight.workers, eight.threads) == (7, 1)
    # A cgroup quota narrows the budget: the same rule on what it leaves.
    capped = choose_layout(budget(2, affinity=16, quota=1.5), families={"dialog"}, cells=26,
                           cuda=False)  # fmt: skip
    assert (capped.workers, capped.threads) == (2, 1) and "cgroup 1.5 CPUs" in capped.source


def test_one_process_where_processes_are_unmeasured_or_cannot_help() -> None:
    for families, cells, cores in (({"msmser"}, 6, 2), ({"dialog", "msmser"}, 26, 2),
                                   ({"dialog"}, 1, 2), ({"dialog"}, 26, 1)):  # fmt: skip
        layout = choose_layout(budget(cores), families=families, cells=cells, cuda=False)
        assert (layout.workers, layout.threads, layout.processes) == (None, None, 1), families
        assert layout.cell_factor() == 1.0  # `ser train`'s own threads: the estimate's
    assert "msmser" in choose_layout(budget(2), families={"msmser"}, cells=6, cuda=False).source
    assert "unimodal" not in PROCESS_FAMILIES  # until measured
    # Never more processes than distinct cells: a cell is never split between two.
    three = choose_layout(budget(8), families={"dialog"}, cells=3, cuda=False)
    assert three.workers == 3
    gpu = choose_layout(budget(8), families={"dialog"}, cells=26, cuda=True)
    assert gpu.workers is None and "CUDA" in gpu.source


def test_workers_and_threads_override() -> None:
    two = budget(2)
    workers = choose_layout(two, families={"msmser"}, cells=6, cuda=False, workers=2)
    assert (workers.workers, workers.threads) == (2, 1)
    both = choose_layout(two, families={"msmser"}, cells=6, cuda=False, workers=1, threads=2)
    assert (both.workers, both.threads, both.label()) == (1, 2, "1 process x 2 threads")
    # --threads alone: as many processes as leave each its threads.
    eight = choose_layout(budget(8), families={"dialog"}, cells=26, cuda=False, threads=2)
    assert (eight.workers, eight.threads) == (3, 2)
    alone = choose_layout(two, families={"dialog"}, cells=26, cuda=False, threads=2)
    assert (alone.workers, alone.threads) == (None, 2)  # one process of 2 threads
    remote = choose_layout(two, families={"dialog"}, cells=26, cuda=False, scheduler="tcp://h:1")
    assert (remote.workers, remote.threads) == (None, 0)  # the workers' own


def test_the_choice_is_a_pure_function_of_its_facts() -> None:
    facts = {"families": {"dialog"}, "cells": 26, "cuda": False}
    first = choose_layout(budget(2), **facts)  # type: ignore[arg-type]
    assert all(choose_layout(budget(2), **facts) == first for _ in range(5))  # type: ignore[arg-type]
    assert first.cell_factor() == ONE_THREAD  # the estimate's one-thread pace


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"workers": 0}, ConfigError),
        ({"threads": 0}, ConfigError),
        ({"workers": 2, "scheduler": "tcp://h:1"}, ConfigError),
        ({"cells": -1}, ValueError),
    ],
)
def test_bad_input_is_refused(options: dict[str, object], error: type[Exception]) -> None:
    facts: dict[str, object] = {"families": {"dialog"}, "cells": 2, "cuda": False, **options}
    with pytest.raises(error):
        choose_layout(budget(2), **facts)  # type: ignore[arg-type]
