"""A new model family states its cost where it is declared, and the execution policy
takes it from there: no table of ser's to edit. The family below (an MLP on each set's
mean vector, summed) is this file alone, one registry line; trained through the library
call `ser train` makes, its members stack on the CPU by its own `stack_width` (a family
stating no cost trains them one after another), and the policy sends a big run of it to
processes and its sweep cells one per process as its cost says."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from ser.models import (
    FAMILIES,
    Family,
    FamilyConfig,
    FeatureInfo,
    ModelOutput,
    SerModel,
    TrainDefaults,
    register,
)
from ser.models.batch import Batch, InputSpec, Unit
from ser.models.config import option, specs
from ser.models.nn.blocks import MLP
from ser.models.registry import costs
from ser.runs.provenance import ExecutionRecord
from ser.runtime.cost import FamilyCost
from ser.runtime.execution import Training, for_sweep, for_training
from ser.runtime.threads import CpuBudget, ThreadChoice
from ser.train.option_table import train_config
from ser.train.recipe import train

# --- the family's file --------------------------------------------------------------


@dataclass(frozen=True)
class SumConfig(FamilyConfig):
    """An MLP per feature set, their logits summed: --fusion sum-logits."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {"sum-logits": ()}
    hidden: int = option(8, "Hidden width of each set's MLP.", least=1)

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        return "utterance", specs(features, "vector")


class SumLogits(SerModel):
    """x[set] [B, D_set] -> MLP -> [B, C], summed over the sets."""

    def __init__(self, config: SumConfig, inputs: list[InputSpec], n_classes: int) -> None:
        super().__init__(config, inputs)
        self.mlps = nn.ModuleList(MLP(s.dim, config.hidden, n_classes, 0.0) for s in inputs)

    def forward(self, batch: Batch) -> ModelOutput:
        logits = [mlp(batch.x[s.name]) for mlp, s in zip(self.mlps, self.inputs, strict=True)]
        return ModelOutput(torch.stack(logits).sum(dim=0))  # [B, C]


# Made up for the test, as `benchmarks/bench_family_cost.py --family sum_logits` prints
# a measured one: members stack up to 64 input dims, processes pay from 30 s of training.
COST = FamilyCost(
    stack_width=64, rate=(1e-5, 1e-8), min_seconds=30.0, thread_gain=1.2, cell_per_process=True
)
FAMILY = Family("sum_logits", SumConfig, SumLogits, TrainDefaults(1, 8, 1e-2, 0.0), COST)

# --- the test -----------------------------------------------------------------------


@pytest.fixture
def registered() -> Iterator[Family]:
    register(FAMILY)  # the one line a family of ser's own has in ser/models/__init__.py
    yield FAMILY
    del FAMILIES[FAMILY.name]


@pytest.fixture(scope="module")
def store_path(labelled_stores: Callable[..., Path]) -> Path:
    sets = {"is13": ("is13", "audio", "utterance", 7, "float32"),
            "bert-tiny": ("bert", "text", "token", 5, "float16")}  # fmt: skip
    return labelled_stores(sets)


def train_default(store: Path, out: Path) -> ExecutionRecord:
    """Two seeds of the family trained with no execution option: its record's choice."""
    options = {"store": str(store), "features": "is13+bert-tiny", "fusion": "sum-logits",
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
    FAMILIES[FAMILY.name] = replace(FAMILY, cost=FamilyCost())  # a family stating none
    unstated = train_default(store_path, tmp_path / "unstated")
    assert (unstated.processes, unstated.stacked) == (1, 1)
    assert "one process for sum_logits: processes unmeasured" in unstated.source


def test_big_runs_and_sweeps_of_it_go_to_processes_as_its_cost_says(registered: Family) -> None:
    two = CpuBudget(cores=2, affinity=2, quota=None, workers=1)
    here = ThreadChoice(2, "all 2")
    # 4 members x 10**6 utterance-epochs at 12 dims: ~10 s at its rate, under its 30 s.
    small = Training(costs({"sum_logits"}), 4, 10**6, 12)
    assert for_training(small, device="cpu", budget=two, threads=here).processes == 1
    big = replace(small, work=10**7)  # ~100 s
    chosen = for_training(big, device="cpu", budget=two, threads=here)
    assert (chosen.processes, chosen.threads, chosen.stacked) == (2, 1, None)
    assert "default for sum_logits runs of 12-d inputs" in chosen.source
    sweep = for_sweep(two, families=costs({"sum_logits"}), cells=4, cuda=False)
    assert (sweep.processes, sweep.threads, sweep.cluster) == (2, 1, True)
    unstated = {"sum_logits": FamilyCost()}
    assert for_sweep(two, families=unstated, cells=4, cuda=False).processes == 1
