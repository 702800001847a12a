"""The execution policy (ser.runtime.execution): processes x threads for extraction,
training and sweeps, and which members stack, as pure functions of stable facts (fake
budgets), with the choices the benchmark cases measured."""

from __future__ import annotations

import doctest
from collections.abc import Iterable
from dataclasses import replace

import pytest

import ser.runtime.execution as execution_module
from ser.errors import ConfigError
from ser.models import FAMILIES
from ser.runtime.cost import FamilyCost
from ser.runtime.execution import (
    Execution,
    Training,
    for_extraction,
    for_sweep,
    for_training,
    training_seconds,
)
from ser.runtime.threads import CpuBudget, ThreadChoice

HERE = ThreadChoice(2, "all 2, brief waits")
GIB = 2**30
# The fusion study's inputs: the published code's 100-d audio or IS13's 6373-d
# functionals, beside 768-d text vectors.
NARROW, WIDE = 100 + 768, 6373 + 768


def budget(cores: int, affinity: int | None = None, quota: float | None = None) -> CpuBudget:
    return CpuBudget(cores=cores, affinity=affinity or cores, quota=quota, workers=1)


def costs(families: Iterable[str]) -> dict[str, FamilyCost]:
    """Each family with the cost its registry entry states (an unregistered one: none)."""
    return {f: FAMILIES[f].cost if f in FAMILIES else FamilyCost() for f in families}


def training(family: str = "dialog", members: int = 20, work: int = 10**8, width: int = NARROW,
             data_bytes: int = 0) -> Training:  # fmt: skip
    return Training(costs({family}), members, work, width, data_bytes)


def on_cpu(run: Training, cores: int = 2, **options: object) -> Execution:
    return for_training(run, device="cpu", budget=budget(cores), threads=HERE, **options)  # type: ignore[arg-type]


def test_doctests() -> None:
    assert doctest.testmod(execution_module).failed == 0


# --- training -----------------------------------------------------------------------


def test_the_benchmark_cases_choose_as_before() -> None:
    """The cases the earlier rules were measured on: 20 seeds of the fusion study's
    reference row on 100-d audio (stacked pieces on two one-thread processes), MSMSER at
    the demo's size (members one after another on processes), the unimodal MLP on 768-d
    text (stacked pieces)."""
    dialog = on_cpu(training("dialog", 20, width=NARROW))
    assert (dialog.processes, dialog.threads, dialog.stacked) == (2, 1, None)
    msmser = on_cpu(training("msmser", 20, width=20 + 20))
    assert (msmser.processes, msmser.threads, msmser.stacked) == (2, 1, 1)
    unimodal = on_cpu(training("unimodal", 20, width=768))
    assert (unimodal.processes, unimodal.threads, unimodal.stacked) == (2, 1, None)


# benchmarks/README.md, "How should a run's members share the CPU?": (family, member
# width, members, utterances x epochs) -> (processes, stacked) of the way that was
# fastest there or within its noise (~5 %); the stores hold 5531 utterances (IEMOCAP's
# shape) and 1000 (MSMSER's frames).
MEASURED = [
    ("dialog", WIDE, 3, 5531 * 30, (1, 1)),  # one 34.9 s, processes 32.6: start-up not paid
    ("dialog", WIDE, 5, 5531 * 30, (2, 1)),  # processes 50.3, one 54.5
    ("dialog", WIDE, 20, 5531 * 30, (2, 1)),  # processes 152.3, one 200.9, stacked 204.4
    ("dialog", WIDE, 3, 5531 * 150, (2, 1)),  # the fusion study's 150 epochs
    ("dialog", NARROW, 20, 5531 * 30, (2, None)),  # pieces 61.9, stacked 67.8, one 107.4
    ("unimodal", 6373, 3, 5531 * 30, (1, 1)),  # one 46.9, processes 51.4, stacked 94.6
    ("unimodal", 6373, 5, 5531 * 30, (1, 1)),  # one 71.6, processes 75.1
    ("unimodal", 6373, 20, 5531 * 30, (2, 1)),  # processes 266.6, one 319.8
    ("msmser", 40, 3, 1000 * 5, (2, 1)),  # processes 58.1, one 67.4, stacked 102.7
    ("msmser", 40, 5, 1000 * 5, (2, 1)),  # processes 91.9, one 99.7
    ("msmser", 40, 20, 1000 * 5, (2, 1)),  # processes 277.2, one 376.2, stacked 1790.5
]


@pytest.mark.parametrize(("family", "width", "members", "utterance_epochs", "way"), MEASURED)
def test_the_measured_shapes_choose_their_fastest_way(
    family: str, width: int, members: int, utterance_epochs: int, way: tuple[int, int | None]
) -> None:
    chosen = on_cpu(training(family, members, members * utterance_epochs, width))
    assert (chosen.processes, chosen.stacked) == way


def test_wide_inputs_train_members_one_after_another() -> None:
    """At IS13's 6373-d functionals a stack only adds copies: members one after another,
    on processes where every process has as many as the others (or ceil(M/P) members at
    one thread still beat M at every thread)."""
    for seeds in (3, 5, 20):
        chosen = on_cpu(training("dialog", seeds, width=WIDE))
        assert chosen.stacked == 1, seeds
    twenty = on_cpu(training("dialog", 20, width=WIDE))
    assert (twenty.processes, twenty.threads) == (2, 1)
    assert "members one after another" in twenty.describe()
    stack_width = FAMILIES["dialog"].cost.stack_width
    assert stack_width < WIDE <= stack_width * 10
    assert stack_width >= NARROW


def test_a_big_run_trains_a_process_per_core_one_left_free_above_two() -> None:
    assert on_cpu(training(), cores=8).processes == 7
    assert on_cpu(training(members=3), cores=8).processes == 3  # at most one per member
    assert on_cpu(training(members=1)).processes == 1
    assert on_cpu(training(), asked_threads=2).processes == 1  # 2 threads fill 2 cores
    # A cgroup quota narrows the budget: the same rule on what it leaves.
    capped = for_training(training(), device="cpu", budget=budget(2, 16, 1.5), threads=HERE)
    assert capped.processes == 2 and "cgroup 1.5 CPUs" in capped.source


def test_every_family_from_its_own_size() -> None:
    """A run's seconds of training (its utterance-epochs at the family's rate for its
    width) against the family's `min_seconds`: a process's start-up must be paid for."""
    measured = {f: family.cost for f, family in FAMILIES.items() if family.cost.min_seconds}
    assert set(measured) == {"dialog", "unimodal", "msmser", "late_prob"}
    for family, cost in measured.items():
        least = cost.min_seconds or 0.0
        a, b = cost.rate or (0.0, 0.0)
        enough = round(least / (a + b * 40)) + 1
        big = on_cpu(training(family, 4, work=enough, width=40))
        small = on_cpu(training(family, 4, work=enough // 2, width=40))
        assert (big.processes, small.processes) == (2, 1), family
        assert "s of training, under" in small.source and small.threads == HERE.count
    # The same utterance-epochs weigh more on wider inputs: 20 seeds x 30 epochs of the
    # unimodal MLP over IEMOCAP's 5531 are ~40 s at 768 dims, ~5 min at 6373.
    work = 20 * 30 * 5531
    narrow, wide = training("unimodal", 20, work, 768), training("unimodal", 20, work, 6373)
    assert training_seconds(narrow, "unimodal") < (FAMILIES["unimodal"].cost.min_seconds or 0)
    assert on_cpu(narrow).processes == 1 and on_cpu(wide).processes == 2
    both = Training(costs({"dialog", "msmser"}), 4, 10**5, 40)
    assert on_cpu(both).processes == 1  # under dialog's
    alone = on_cpu(training("someone-elses"))
    assert alone.processes == 1 and "unmeasured" in alone.source


def test_no_more_processes_than_copies_of_the_data_fit_in_half_the_memory() -> None:
    big = training("msmser", 20, width=40)

    def with_data(data: int, memory: int, **options: object) -> Execution:
        run = Training(big.families, big.members, big.work, big.width, data)
        return on_cpu(run, cores=8, memory=memory, **options)

    assert with_data(GIB, 64 * GIB).processes == 7
    assert with_data(4 * GIB, 32 * GIB).processes == 3
    alone = with_data(6 * GIB, 24 * GIB)
    assert alone.processes == 1 and "6.0 GiB of data a process, 24 GiB" in alone.source
    assert with_data(6 * GIB, 24 * GIB, processes=4).processes == 4  # asked: the user's call


def test_a_queue_that_would_leave_a_process_waiting_is_not_chosen() -> None:
    """Members one after another on P processes take ceil(M / P) member-times at one
    thread; one process takes M at the threads' gain: with 3 members on 2 cores a
    process would wait for the last."""
    gain = FAMILIES["dialog"].cost.thread_gain or 0.0
    three = on_cpu(training("dialog", 3, width=WIDE))
    assert (three.processes > 1) == (2 * gain < 3)
    four = on_cpu(training("dialog", 4, width=WIDE))
    assert four.processes == 2  # 2 each: no process waits
    # The unimodal MLP gains more from a second thread: 3 members stay in one process.
    mlp = on_cpu(training("unimodal", 3, work=10**8, width=6373))
    assert mlp.processes == 1 and "would leave one waiting" in mlp.source
    assert on_cpu(training("unimodal", 20, work=10**8, width=6373)).processes == 2


def test_options_override() -> None:
    three = on_cpu(training("msmser", 20, width=40), cores=8, processes=3)
    assert (three.processes, three.threads, three.source) == (3, 2, "--processes 3")  # 8 // 3
    assert on_cpu(training(members=2), processes=4).processes == 2
    assert on_cpu(training(), processes=1).processes == 1
    assert on_cpu(training(work=1), processes=2).processes == 2  # asked: no size rule
    assert on_cpu(training(width=WIDE), at_once=5).stacked == 5
    assert on_cpu(training(width=NARROW), at_once=1).stacked == 1


def test_a_gpu_stacks_every_member_on_the_device() -> None:
    gpu = for_training(training(width=WIDE), device="cuda", budget=budget(8), threads=HERE)
    assert (gpu.processes, gpu.stacked) == (1, None) and "stack on the device" in gpu.source


def test_the_choice_is_a_pure_function_of_its_facts() -> None:
    first = on_cpu(training())
    assert all(on_cpu(training()) == first for _ in range(5))
    assert first.record() == {"processes": 2, "threads": 1, "source": first.source,
                              "stacked": None, "cluster": False, "training": True,
                              "step": "eager"}  # fmt: skip
    assert first.describe().startswith("2 processes x 1 torch thread, members stacked (")


# --- extraction ---------------------------------------------------------------------


def test_a_kind_off_torch_takes_a_process_per_core() -> None:
    def chosen(uses_torch: bool, batches: int = 100, **options: object) -> Execution:
        return for_extraction(
            "is13" if not uses_torch else "logmel", uses_torch=uses_torch, batches=batches,
            device="cpu", threads=HERE, budget=budget(4), **options,  # type: ignore[arg-type]
        )  # fmt: skip

    is13 = chosen(uses_torch=False)
    assert (is13.processes, is13.threads) == (4, 1) and is13.source.startswith("one per core")
    assert chosen(uses_torch=False, batches=3).processes == 3  # no idle process
    logmel = chosen(uses_torch=True)
    assert (logmel.processes, logmel.threads) == (1, 2) and "torch threads" in logmel.source
    asked = chosen(uses_torch=True, processes=2)
    assert (asked.processes, asked.threads, asked.source) == (2, 2, "--processes 2")
    assert chosen(uses_torch=True, processes=2, asked_threads=3).threads == 3
    assert chosen(uses_torch=True, processes=1).processes == 1
    with pytest.raises(ConfigError, match="--workers"):
        for_extraction("logmel", uses_torch=True, batches=9, device="cuda", threads=HERE,
                       processes=2)  # fmt: skip


# --- sweeps -------------------------------------------------------------------------


def sweep(cores: int = 2, families: set[str] | None = None, cells: int = 26,
          **options: object) -> Execution:  # fmt: skip
    return for_sweep(budget(cores), families=costs(families or {"dialog"}), cells=cells,
                     cuda=False, **options)  # type: ignore[arg-type]  # fmt: skip


def test_dialog_cells_train_a_cell_per_core_with_one_thread() -> None:
    two = sweep()
    assert (two.processes, two.threads, two.cluster) == (2, 1, True)
    assert two.describe().startswith("2 dask workers x 1 torch thread (default for dialog")
    assert sweep(cores=8).processes == 7
    assert sweep(cores=8, cells=3).processes == 3  # a cell is never split between two


def test_a_sweep_in_one_process_where_processes_are_unmeasured_or_cannot_help() -> None:
    for families, cells, cores in (({"msmser"}, 6, 2), ({"dialog", "msmser"}, 26, 2),
                                   ({"dialog"}, 1, 2), ({"dialog"}, 26, 1)):  # fmt: skip
        chosen = sweep(cores, families, cells)
        assert (chosen.processes, chosen.threads, chosen.cluster) == (1, 0, False), families
    assert "msmser" in sweep(families={"msmser"}).source
    assert "1 process x its default threads" in sweep(families={"msmser"}).describe()
    assert not FAMILIES["unimodal"].cost.cell_per_process  # until measured
    gpu = for_sweep(budget(8), families=costs({"dialog"}), cells=26, cuda=True)
    assert gpu.processes == 1 and "CUDA" in gpu.source


def test_sweep_options_override() -> None:
    workers = sweep(families={"msmser"}, workers=2)
    assert (workers.processes, workers.threads, workers.cluster) == (2, 1, True)
    both = sweep(families={"msmser"}, workers=1, threads=2)
    assert both.describe().startswith("1 dask worker x 2 torch threads")
    assert (sweep(cores=8, threads=2).processes, sweep(cores=8, threads=2).threads) == (3, 2)
    alone = sweep(threads=2)
    assert (alone.processes, alone.threads, alone.cluster) == (1, 2, False)
    remote = sweep(scheduler="tcp://h:1")
    assert (remote.threads, remote.cluster) == (0, True)
    assert "their own threads" in remote.describe()


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
    with pytest.raises(error):
        sweep(**{"cells": 2, **options})  # type: ignore[arg-type]


ON_A_GPU = [
    ("dialog", None, None, None, "eager"),
    ("msmser", None, None, 1, "graphed"),
    ("msmser", 1, "compiled", 1, "compiled"),
    ("msmser", None, "compiled", 1, "compiled"),
    ("msmser", 3, None, 3, "graphed"),
    ("msmser", None, "eager", 1, "eager"),
    ("dialog", None, "compiled", 1, "compiled"),
    ("unimodal", None, "graphed", 1, "graphed"),
]


@pytest.mark.parametrize(("family", "at_once", "step", "stacked", "chosen_step"), ON_A_GPU)
def test_msmser_members_train_one_at_a_time_on_a_gpu_unless_asked(
    family: str, at_once: int | None, step: str | None, stacked: int | None, chosen_step: str
) -> None:
    """MSMSER's members train one at a time on a GPU, graphed (the measured way); other
    families stack every member on the device; --step compiled compiles one member at a
    time (compiled steps cannot stack), --members-at-once stacks, --step eager and
    --step graphed are taken as asked."""
    run = training(family, members=15)
    chosen = for_training(
        run, device="cuda", budget=budget(2), threads=HERE, at_once=at_once, step=step
    )
    assert (chosen.stacked, chosen.step, chosen.processes) == (stacked, chosen_step, 1)
    assert ("steps compiled" in chosen.describe()) == (chosen_step == "compiled")


def test_an_fp16_run_of_a_graphed_family_steps_eagerly_on_a_gpu() -> None:
    """fp16's loss scaling checks each step for overflow on the host: no CUDA graph."""
    run = replace(training("msmser", members=15), fp16=True)
    chosen = for_training(run, device="cuda", budget=budget(2), threads=HERE)
    assert (chosen.stacked, chosen.step) == (1, "eager")


def test_a_family_whose_cost_says_compiled_compiles_on_a_gpu_by_default() -> None:
    compiled = replace(FAMILIES["msmser"].cost, gpu_step="compiled")
    run = replace(training("msmser", members=15), families={"msmser": compiled})
    chosen = for_training(run, device="cuda", budget=budget(2), threads=HERE)
    assert (chosen.stacked, chosen.step) == (1, "compiled")
    assert "steps compiled" in chosen.describe()


def test_compiled_steps_on_the_cpu_are_asked_for_and_run_members_one_at_a_time() -> None:
    asked = on_cpu(training(), processes=2, step="compiled")
    assert (asked.processes, asked.stacked, asked.step) == (1, 1, "compiled")
    assert on_cpu(training()).step == "eager"


def test_audio_decodes_on_one_thread_beside_the_cpu_and_on_half_the_cores_beside_a_gpu() -> None:
    from ser.runtime.execution import decode_threads

    sixteen = CpuBudget(cores=16, affinity=16, quota=None, workers=1)
    two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
    assert decode_threads("cpu", sixteen) == 1
    assert decode_threads("cuda", sixteen) == 8
    assert decode_threads("cuda", two) == 1
    assert decode_threads("cuda", CpuBudget(cores=64, affinity=64, quota=None, workers=1)) == 8
