"""Groups of (run, seed, fold) jobs trained as the members of one stacked model.

A job is one (seed, fold) of one run (`ser.train.run`). Jobs of several runs join one
group when their members can share a model and a loop: the same data, input specs and
shape options (`shape_key`), the same epochs, batch size, precision, batch order and
CUDA graphs or not. The options a member keeps for itself (lr, weight decay, dropout,
RMM, patience, eval mask) may differ, so a sweep's Table 3 (RMM on/off, tested
unmasked / text-only / audio-only) trains as one stacked model. Every member gets the
result it gets trained alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ser.train.batch import Unit
from ser.train.checkpoint import fold_key, save_fold_checkpoint
from ser.train.data import Batches, fit_zscore
from ser.train.loop import FitResult, LoopConfig, Member, fit, select
from ser.train.models.base import shape_key
from ser.train.nn.stacked import member_state
from ser.train.protocols import Fold

if TYPE_CHECKING:
    from ser.train.run import Prepared, Progress


@dataclass(frozen=True)
class Job:
    """One (seed, fold) of a prepared run; `k` is the fold's index in the protocol."""

    run: Prepared
    seed: int
    k: int
    fold: Fold


def group_key(run: Prepared) -> tuple[Hashable, ...]:
    """What members of one stacked model must share (see the module docstring)."""
    plan = run.plan
    return (
        id(run.data),
        run.unit,
        tuple(run.specs),
        shape_key(run.config.model),
        plan.epochs,
        plan.batch_size,
        plan.precision,
        plan.graphs,
        str(plan.device),
        plan.seeds[0],  # the batch order all members follow
    )


def make_groups(jobs: Sequence[Job], at_once: int | None) -> list[list[Job]]:
    """Jobs grouped by `group_key` (in order of first appearance), each group cut into
    pieces of at most `at_once` members (None: no bound)."""
    by_key: dict[tuple[Hashable, ...], list[Job]] = {}
    for job in jobs:
        by_key.setdefault(group_key(job.run), []).append(job)
    groups = []
    for members in by_key.values():
        size = at_once or max(len(members), 1)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    return groups


def describe(group: Sequence[Job]) -> str:
    """e.g. "fold1" (one member), "fold1..fold5 x seeds 0-2 (15 members stacked)" or
    "session5 x seed 0 (6 members stacked, 6 runs)"."""
    if len(group) == 1:
        return group[0].fold.name
    folds = sorted({job.fold.name for job in group})
    seeds = sorted({job.seed for job in group})
    runs = len({id(job.run) for job in group})
    where = folds[0] if len(folds) == 1 else f"{folds[0]}..{folds[-1]}"
    over = f", {runs} runs" if runs > 1 else ""
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    return f"{where} x {which} ({len(group)} members stacked{over})"


def train_group(group: Sequence[Job], progress: Progress) -> list[FitResult]:
    """Train the jobs of `group` as the members of one stacked model.

    Member (seed, fold k) is initialised from `seed` (every fold of a seed starts from
    the same weights), shuffles its batches with seed * 1000 + k and draws its dropout
    and modality masks from a generator seeded likewise: its result is the one it gets
    trained alone (`--members-at-once 1`).
    """
    from ser.train.models import build_model

    first = group[0].run
    seeds = [job.seed for job in group]
    configs = [job.run.config.model for job in group]
    model = build_model(configs, list(first.specs), len(first.data.classes), seeds)
    model = model.to(first.plan.device)
    members = [_member(job) for job in group]
    stages, planned = {}, model.stages()  # e.g. Zhou et al.'s branches, each alone first
    total = len(planned) + 1
    for n, (name, stage) in enumerate(planned, 1):
        progress.stage(n, total, f"{name} alone")
        stages[name] = select(stage, members, first.data.classes, progress.epoch, progress.step)
    if planned:
        progress.stage(total, total, "the whole model")
    results = fit(model, members, first.data.classes, progress.epoch, progress.step)
    for k, (job, member, result) in enumerate(zip(group, members, results, strict=True)):
        _save(job, member, result, member_state(model, k))
    if not stages:
        return results
    return [
        dataclasses.replace(
            result,
            stages={name: chosen[k] for name, chosen in stages.items()},
            seconds=result.seconds + sum(chosen[k].seconds for chosen in stages.values()),
        )
        for k, result in enumerate(results)
    ]


def _save(job: Job, member: Member, result: FitResult, state: dict[str, torch.Tensor]) -> None:
    """The member's selected weights, saved before its record entry exists."""
    run = job.run
    extra = {"seed": job.seed, "fold": job.fold.name, "best_epoch": result.best_epoch}
    extra["test"] = {"rows": result.test.index, "pred": result.test.y_pred}
    save_fold_checkpoint(
        run.plan.run_dir, fold_key(job.seed, job.fold.name), state,
        store=run.config.store, config=run.config.model, classes=run.data.classes,
        specs=run.specs, unit=run.unit, precision=run.plan.precision, zscore=member.zscore,
        extra=extra,
    )  # fmt: skip


def _member(job: Job) -> Member:
    """One (seed, fold) run's sides: z-scores from its own training side only. Its batch
    order follows the run's first seed (shared by all members: aligned lengths)."""
    run, fold, seed = job.run, job.fold, job.seed
    size = run.plan.batch_size
    zscore = fit_zscore(run.data, fold.train)
    train = Batches(
        run.data, fold.train, run.specs, run.unit, size, zscore=zscore, shuffle=True,
        seed=seed * 1000 + job.k, order_seed=run.plan.seeds[0],
    )  # fmt: skip
    val, test = (
        Batches(
            run.data, rows, run.specs, run.unit, _eval_size(run.unit, size, rows), zscore=zscore
        )
        for rows in (fold.val, fold.test)
    )
    return Member(
        train=train, val=val, test=test, config=loop_config(run), seed=seed * 1000 + job.k,
        zscore=zscore,
    )  # fmt: skip


def loop_config(run: Prepared) -> LoopConfig:
    return LoopConfig(
        epochs=run.plan.epochs,
        lr=run.plan.lr,
        weight_decay=run.plan.weight_decay,
        patience=run.config.patience,
        eval_mask=run.config.model.eval_mask,
        precision=run.plan.precision,
        graphs=run.plan.graphs,
    )


def _eval_size(unit: Unit, size: int, positions: np.ndarray) -> int:
    """Dialog models score a whole side in one batch: its vectors are small, and one
    recurrence over all dialogs costs about what one over a training batch does."""
    return max(size, len(positions)) if unit == "dialog" else size


__all__ = ["Job", "describe", "group_key", "loop_config", "make_groups", "train_group"]
