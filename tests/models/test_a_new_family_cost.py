"""A new model family states its cost where it is declared, and the execution policy
takes it from there: no table of ser's to edit. The family (tests/families.py: an MLP on
each set's mean vector, averaged) states its cost below, one registry line; trained
through the library call `ser train` makes, its members stack on the CPU by its own
`stack_width` (a family stating no cost trains them one after another), and the policy
sends a big run of it to processes and its sweep cells one per process as its cost says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ser.models import FAMILIES, Family, TrainDefaults
from ser.models.registry import costs
from ser.runs.provenance import ExecutionRecord
from ser.runtime.cost import FamilyCost
from ser.runtime.execution import Training, for_sweep, for_training
from ser.runtime.threads import CpuBudget, ThreadChoice
from ser.train.option_table import train_config
from ser.train.recipe import train

# Made up for the test, as `benchmarks/bench_family_cost.py --family mean_logits` prints
# a measured one: members stack up to 64 input dims, processes pay from 30 s of training.
COST = FamilyCost(
    stack_width=64, rate=(1e-5, 1e-8), min_seconds=30.0, thread_gain=1.2, cell_per_process=True
)

# --- the test -----------------------------------------------------------------------


@pytest.fixture
def registered(new_family: Callable[..., Family]) -> Family:
    """The family, its cost stated where it is declared, trained one epoch by default."""
    return new_family(train=TrainDefaults(1, 8, 1e-2, 0.0), cost=COST)


@pytest.fixture(scope="module")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    sets = {"is13": ("is13", "audio", "utterance", 7, "float32"),
            "bert-tiny": ("bert", "text", "token", 5, "float16")}  # fmt: skip
    return labelled_stores(sets)


def train_default(store: Path, out: Path) -> ExecutionRecord:
    """Two seeds of the family trained with no execution option: its record's choice."""
    options = {"store": str(store), "features": "is13+bert-tiny", "fusion": "mean-logits",
               "protocol": "session5", "seeds": "2", "classes": "4", "device": "cpu",
               "out": str(out)}  # fmt: skip
    record = train(train_config(options))
    assert record.complete and len(record.folds) == 2
    assert record.execution is not None
    return record.execution


def test_the_policy_stacks_its_members_by_the_cost_it_states(
    registered: Family, store_path: Path, tmp_path: Path
) -> None:
    stated = train_default(store_path, tmp_path / "stated")
    assert (stated.processes, stated.stacked) == (1, None)  # 12-d members: <= 64
    assert "s of training, under 30 s" in stated.source  # its min_seconds
    FAMILIES[registered.name] = replace(registered, cost=FamilyCost())  # a family stating none
    unstated = train_default(store_path, tmp_path / "unstated")
    assert (unstated.processes, unstated.stacked) == (1, 1)
    assert "one process for mean_logits: processes unmeasured" in unstated.source


def test_big_runs_and_sweeps_of_it_go_to_processes_as_its_cost_says(registered: Family) -> None:
    two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
    here = ThreadChoice(2, "all 2")
    # 4 members x 10**6 utterance-epochs at 12 dims: ~10 s at its rate, under its 30 s.
    small = Training(costs({"mean_logits"}), 4, 10**6, 12)
    assert for_training(small, device="cpu", budget=two, threads=here).processes == 1
    big = replace(small, work=10**7)  # ~100 s
    chosen = for_training(big, device="cpu", budget=two, threads=here)
    assert (chosen.processes, chosen.threads, chosen.stacked) == (2, 1, None)
    assert "default for mean_logits runs of 12-d inputs" in chosen.source
    sweep = for_sweep(two, families=costs({"mean_logits"}), cells=4, cuda=False)
    assert (sweep.processes, sweep.threads, sweep.cluster) == (2, 1, True)
    unstated = {"mean_logits": FamilyCost()}
    assert for_sweep(two, families=unstated, cells=4, cuda=False).processes == 1
