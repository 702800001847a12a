"""A model family states its own cost (ser.runtime.cost.FamilyCost, beside its registry
entry) and the execution policy knows no family by name: every choice it makes for the
registered families is the one the per-family tables it read before gave (kept below as
the reference), and a family that states none runs as an unmeasured one did. A family
the tables never knew (a new one, a plugin's) is its own reference: it goes through the
same choices, alone and beside each other family, without an entry here."""

from __future__ import annotations

import doctest
import itertools
import re
from dataclasses import replace
from pathlib import Path

import pytest

import ser.runtime.cost as cost_module
from ser.errors import ConfigError
from ser.models import FAMILIES
from ser.models.registry import costs
from ser.runtime.cost import FamilyCost
from ser.runtime.execution import Execution, Training, for_sweep, for_training
from ser.runtime.threads import CpuBudget, ThreadChoice
from tests.registries import registered_families

RUNTIME = Path(__file__).resolve().parents[2] / "ser" / "runtime"
HERE = ThreadChoice(2, "all 2, brief waits")

# The policy's tables before each family stated its cost (the reference: their values and
# the "unmeasured" a family outside them got).
STACK_WIDTH = {"unimodal": 1024, "dialog": 2048, "msmser": 0, "late_prob": 0}
GPU_ALONE = ("msmser",)
GPU_STEP = {"msmser": "graphed"}
RATE = {"dialog": (2.7e-5, 4.5e-9), "unimodal": (1e-6, 1.5e-8), "msmser": (4e-3, 0.0),
        "late_prob": (6e-3, 0.0)}  # fmt: skip
MIN_SECONDS = {"dialog": 46.0, "unimodal": 50.0, "msmser": 40.0, "late_prob": 60.0}
THREAD_GAIN = {"dialog": 1.4, "unimodal": 1.7, "msmser": 1.3, "late_prob": 1.3}
CELL_FAMILIES = frozenset({"dialog"})


def reference(family: str) -> FamilyCost:
    """What the old tables said of `family`; a family they did not know, its own cost."""
    return old_cost(family) if family in RATE else FAMILIES[family].cost


def old_cost(family: str) -> FamilyCost:
    """What the old tables said of `family` (unmeasured: a family they did not list)."""
    return FamilyCost(
        stack_width=STACK_WIDTH.get(family, 0),
        gpu_alone=family in GPU_ALONE,
        gpu_step=GPU_STEP.get(family, "eager"),
        rate=RATE.get(family),
        min_seconds=MIN_SECONDS.get(family),
        thread_gain=THREAD_GAIN.get(family),
        cell_per_process=family in CELL_FAMILIES,
    )


def budget(cores: int) -> CpuBudget:
    return CpuBudget(cores=cores, affinity=cores, quota=None, workers=1)


# Every registered family alone and in pairs (a run or sweep of mixed families).
GROUPS = [
    frozenset(g) for n in (1, 2) for g in itertools.combinations(sorted(registered_families()), n)
]
WIDTHS = (40, 768, 868, 1024, 1025, 2048, 2049, 6373, 7141)
MEMBERS = (1, 3, 4, 5, 20)
WORK = (10**3, 5531 * 30 * 3, 10**6, 10**8)
CORES = (1, 2, 8)


def test_the_reference_tables_name_registered_families() -> None:
    """Each table names the same families, every one registered; a family registered
    since (or by a plugin) needs no entry (`reference`)."""
    assert set(RATE) == set(MIN_SECONDS) == set(THREAD_GAIN) <= set(FAMILIES)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "+".join(sorted(g)))
def test_training_chooses_as_the_old_tables_did(group: frozenset[str]) -> None:
    stated, old = costs(group), {f: reference(f) for f in group}

    def both(width: int, members: int, work: int, **options: object) -> list[Execution]:
        return [
            for_training(Training(c, members, work, width, 2**30), threads=HERE, **options)  # type: ignore[arg-type]
            for c in (stated, old)
        ]

    checked = 0
    for width, members, work, cores in itertools.product(WIDTHS, MEMBERS, WORK, CORES):
        now, before = both(width, members, work, device="cpu", budget=budget(cores),
                           memory=64 * 2**30)  # fmt: skip
        assert now == before, (width, members, work, cores)
        checked += 1
    for at_once, step in itertools.product((None, 1, 3), (None, "eager", "compiled")):
        now, before = both(868, 20, 10**8, device="cuda", budget=budget(8), at_once=at_once,
                           step=step)  # fmt: skip
        assert now == before, (at_once, step)
    assert checked == len(WIDTHS) * len(MEMBERS) * len(WORK) * len(CORES)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "+".join(sorted(g)))
def test_sweeps_choose_as_the_old_tables_did(group: frozenset[str]) -> None:
    stated, old = costs(group), {f: reference(f) for f in group}
    for cells, cores, threads, cuda in itertools.product(
        (0, 1, 3, 26), CORES, (None, 2), (False, True)
    ):
        chose = [
            for_sweep(budget(cores), families=c, cells=cells, cuda=cuda, threads=threads)
            for c in (stated, old)
        ]
        assert chose[0] == chose[1], (cells, cores, threads, cuda)


def test_a_family_stating_no_cost_runs_as_an_unmeasured_one() -> None:
    """The defaults are what the old tables gave a family they did not list."""
    assert FamilyCost() == old_cost("someone-elses")
    run = Training({"someone-elses": FamilyCost()}, 20, 10**8, 40)
    chosen = for_training(run, device="cpu", budget=budget(2), threads=HERE)
    assert (chosen.processes, chosen.stacked) == (1, 1) and "unmeasured" in chosen.source
    gpu = for_training(run, device="cuda", budget=budget(2), threads=HERE)
    assert (gpu.stacked, gpu.step) == (None, "eager")
    sweep = for_sweep(budget(2), families={"someone-elses": FamilyCost()}, cells=26, cuda=False)
    assert sweep.processes == 1 and "unmeasured" in sweep.source


def test_the_runtime_layer_names_no_family() -> None:
    """Below the models, the policy reads costs its callers hand it: no family's name
    (nor the measurements that belong beside a family) in ser/runtime/."""
    found = [
        f"{path.name}: {name}"
        for path in sorted(RUNTIME.rglob("*.py"))
        for name in FAMILIES
        if re.search(re.escape(name), path.read_text(encoding="utf-8"), re.IGNORECASE)
    ]
    assert not found
    assert set(FAMILIES) >= {"dialog", "msmser", "late_prob", "unimodal"}  # searched for


def test_costs_are_the_registry_entries_and_refuse_an_unknown_name() -> None:
    assert costs(["dialog", "dialog"]) == {"dialog": FAMILIES["dialog"].cost}
    with pytest.raises(ConfigError, match="unknown model family 'nope'"):
        costs(["dialog", "nope"])


@pytest.mark.parametrize(
    "fields",
    [
        {"stack_width": -1},
        {"min_seconds": 40.0},
        {"min_seconds": 40.0, "rate": (1e-3, 0.0)},
        {"thread_gain": 0.0},
    ],
)
def test_an_inconsistent_cost_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FamilyCost(**fields)  # type: ignore[arg-type]


def test_a_cost_without_a_rate_has_no_seconds() -> None:
    with pytest.raises(ValueError, match="rate is unmeasured"):
        FamilyCost().seconds(10, 10)
    assert replace(FamilyCost(), rate=(1.0, 0.5)).seconds(2, 4) == 6.0


def test_doctests() -> None:
    assert doctest.testmod(cost_module).failed == 0
