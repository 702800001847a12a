"""Groups of (run, seed, fold) jobs trained as the members of one `Ensemble`: grouped
(`make_groups`), their members built (`build`), tested as their runs test (`test_runs`)
and each job's outcome gathered (`outcomes`); `ser.train.recipe.train_group` runs those
stages with the engine's (`fit`), calibration's and the checkpoints'.

Jobs join one group (`group_key`) when an element-wise optimizer over stacked tensors can
step them all at once: same data, inputs, model and optimiser settings and steps per
epoch (patience may differ). Member (seed, fold k) starts from `seed`'s weights and
shuffles with seed * 1000 + k; its draws come from the group's generator, seeded with
the first member's stream, so alone it draws exactly what a one-member group draws.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from typing import Any, NamedTuple

import numpy as np
import torch

from ser import Json
from ser.errors import SerError
from ser.finetune.tuning import trained_state
from ser.models import SerModel, build_model
from ser.runs.fold_entry import FoldEntry
from ser.runs.predictions import PredictionTable
from ser.track.progress import Progress
from ser.train.augment import augment_of
from ser.train.batches import Batches
from ser.train.data import ZScore, fit_class_weights, fit_target_scale, fit_zscore
from ser.train.engine import Evaluation, Member, Selection, Steps, test
from ser.train.engine.ensemble import Ensemble
from ser.train.identity import member_key, run_key
from ser.train.options import ResolvedConfig
from ser.train.plan import Job, Prepared, device_of, run_targets


class PartlySaved(Exception):
    """A group whose checkpoints stopped being written part way (a full disk): the
    record entries of its first members, whose checkpoints are whole, and the `error`
    that stopped the rest. The caller records those entries before raising `error`, so
    the same command run again trains only the members that have no checkpoint."""

    def __init__(self, entries: list[FoldEntry], error: SerError) -> None:
        super().__init__(entries, error)  # both in args: it crosses a process pool
        self.entries = entries
        self.error = error
        self.tables: list[PredictionTable] = []  # their predictions, from a training process


def group_key(job: Job, by_steps: bool = True) -> tuple[Hashable, ...]:
    """What the jobs that share an ensemble share; `by_steps`: their steps an epoch too
    (an element-wise optimiser steps every member at once)."""
    run = job.run
    key = (*run_key(run.config), id(run.data), tuple(run.specs))
    if not by_steps:
        return key
    size = run.config.batch_size
    return (*key, len(Batches(run.data, job.fold.train, run.specs, run.unit, size)))


def make_groups(jobs: Sequence[Job], at_once: int | None, masked: bool = False) -> list[list[Job]]:
    """Jobs grouped by `group_key` (in order of first appearance), each group cut into
    pieces of at most `at_once` members (None: no bound), the jobs that share a training
    (`by_training`) in one piece; `masked`: members of unequal steps an epoch share a
    group too (graphed steps: `ser.train.engine.member_adam`)."""
    by_key: dict[tuple[Hashable, ...], list[Job]] = {}
    for job in jobs:
        by_key.setdefault(group_key(job, by_steps=not masked), []).append(job)
    groups = []
    for members in by_key.values():
        trainings = by_training(members)
        size = at_once or max(len(trainings), 1)
        for i in range(0, len(trainings), size):
            groups.append([job for shared in trainings[i : i + size] for job in shared])
    return groups


def shared_trainings(group: Sequence[Job]) -> list[int]:
    """Each job's training, as an index into the group's distinct ones: jobs of runs that
    differ only in how they are tested (`FamilyConfig.as_trained`), at one (seed, fold)
    and patience, train one member, tested once for each of them."""
    first: dict[tuple[Hashable, ...], int] = {}
    return [
        first.setdefault(
            (*group_key(j, by_steps=False), *member_key(j.run.config), j.seed, j.k), len(first)
        )
        for j in group
    ]


def by_training(group: Sequence[Job]) -> list[list[Job]]:
    """The group's jobs, those that share a training (`shared_trainings`) together, in
    order of the first of each."""
    bundles: list[list[Job]] = []
    for job, i in zip(group, shared_trainings(group), strict=True):
        if i == len(bundles):
            bundles.append([])
        bundles[i].append(job)
    return bundles


def describe(group: Sequence[Job]) -> str:
    """e.g. "fold1" (one member), "fold1 x seeds 0-2 (3 members stacked)" or
    "session5 x seed 0 (6 members stacked, 6 runs)"; "session5 x seed 0 (1 member for 3
    runs)" when runs differ only in how they are tested."""
    if len(group) == 1:
        return group[0].fold.name
    folds = sorted({job.fold.name for job in group})
    seeds = sorted({job.seed for job in group})
    runs = len({id(job.run) for job in group})
    trained = max(shared_trainings(group)) + 1
    where = folds[0] if len(folds) == 1 else f"{folds[0]}..{folds[-1]}"
    over = f", {runs} runs" if runs > 1 else ""
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    if trained < len(group):  # runs tested apart from the same members
        return f"{where} x {which} ({trained} member{'s' * (trained > 1)} for {runs} runs)"
    return f"{where} x {which} ({len(group)} members stacked{over})"


class Built(NamedTuple):
    """A group's members built (`build`): its jobs, each job's training (`shared`: an
    index into `trained`, the job that stands for each distinct training), and each
    training's model, built from its seed, and its training side's statistics: its
    inputs' z-scores, its loss's class weights, its attributes' scale."""

    group: list[Job]
    shared: list[int]
    trained: list[Job]
    modules: list[SerModel]
    zscores: list[dict[str, ZScore]]
    weights: list[np.ndarray | None]
    scales: list[ZScore | None]
    steps: Steps  # how its steps run: scoring alone, batches as large as compiled ones

    @property
    def classes(self) -> tuple[str, ...]:
        return self.group[0].run.data.classes

    def sides(self) -> list[Member]:
        """Each training's sides (`_member`), its batch order drawn anew each call: each
        stage shuffles from the members' seeds anew, as a member stopped early trains on
        unrecorded in a stack and must not leave the next stage another batch order."""
        jobs = zip(self.trained, self.zscores, self.weights, self.scales, strict=True)
        rows = self.steps.eval_rows
        return [_member(j, z, w, scale, rows) for j, z, w, scale in jobs]


class Trained(NamedTuple):
    """A job's outcome (`outcomes`): its training's selected `state`, statistics and
    selection (`chosen`, its earlier stages' inside), its test predictions (`tested`:
    calibrated where `temperature` is not None), its model's layer weights and its loss's
    class weights, and the members its group trained (`members`)."""

    job: Job
    state: dict[str, torch.Tensor]
    zscore: dict[str, ZScore]
    scale: ZScore | None
    chosen: Selection
    tested: Evaluation
    temperature: float | None
    layer_weights: dict[str, list[float]]
    weights: np.ndarray | None
    members: int

    @property
    def sidecar(self) -> dict[str, Json]:
        """What its checkpoint's sidecar says of its training (`save_member`): its selected
        epoch, its test rows and predicted classes, and its temperature where it has one."""
        t = self.tested
        extra: dict[str, Json] = {
            "best_epoch": self.chosen.best_epoch,
            "test": {"rows": t.index.tolist(), "pred": t.y_pred.tolist()},
        }
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        return extra


def build(group: Sequence[Job], progress: Progress, steps: Steps) -> Built:
    """The group said as it starts (`progress.fold_start`), then one member per distinct
    training (`shared_trainings`: jobs that differ only in how they are tested share
    one): its model built from its seed, its training side's statistics fitted."""
    _said(group, progress)
    shared = shared_trainings(group)
    trained = [group[shared.index(i)] for i in range(max(shared) + 1)]
    modules = _built(trained)
    zscores, weights, scales = _fitted(trained)
    return Built(list(group), shared, trained, modules, zscores, weights, scales, steps)


@contextmanager
def drawing(group: Sequence[Job]) -> Iterator[None]:
    """torch's generator for the group's draws (dropout, mixup, masks): seeded with its
    first job's stream, and restored after, so a member alone draws exactly what a
    one-member group draws."""
    with torch.random.fork_rng(devices=cuda_devices(device_of(group[0].run.config))):
        torch.manual_seed(group[0].stream)
        yield


def test_runs(
    built: Built,
    ensemble: Ensemble,
    members: Sequence[Member],
    side: str,
    progress: Progress,
    steps: Steps,
) -> list[Evaluation]:
    """Each job's selected state on its `side` ("test", or "val" as the test side is
    scored), as its run tests (`test_as_runs`: its own eval mask)."""
    masks = [job.run.config.model.eval_mask for job in built.group]
    return test_as_runs(
        lambda ms: test(ensemble, ms, built.classes, progress.step, steps, side),
        members,
        masks,
        built.shared,
    )


def test_as_runs(
    tested: Callable[[Sequence[Member]], list[Evaluation]],
    members: Sequence[Member],
    masks: Sequence[str | None],
    shared: Sequence[int],
) -> list[Evaluation]:
    """Each run's evaluation when runs that differ only in their eval mask share members:
    run k's member `shared[k]` tested (`tested`: `test` on one side) with its `masks[k]`,
    one pass of the ensemble per mask."""
    found: dict[int, Evaluation] = {}
    for mask in dict.fromkeys(masks):
        as_run = [replace(m, eval_mask=mask) for m in members]
        evaluations = tested(as_run)
        for k, (own, member) in enumerate(zip(masks, shared, strict=True)):
            if own == mask:
                found[k] = evaluations[member]
    return [found[k] for k in range(len(masks))]


def outcomes(
    built: Built,
    ensemble: Ensemble,
    chosen: Sequence[Selection],
    tested: Sequence[Evaluation],
    temperatures: Sequence[float | None],
) -> list[Trained]:
    """Each job's outcome (`Trained`), from its training's selected state and selections
    and its own test predictions and temperature (`ser.train.calibration.calibrate`)."""
    return [
        _outcome(built, ensemble, chosen, tested[k], temperatures[k], k) for k in range(len(tested))
    ]


def _outcome(
    built: Built,
    ensemble: Ensemble,
    chosen: Sequence[Selection],
    tested: Evaluation,
    temperature: float | None,
    k: int,
) -> Trained:
    i = built.shared[k]
    state = trained_state(built.modules[i], ensemble.member_state(i))
    return Trained(
        built.group[k],
        state,
        built.zscores[i],
        built.scales[i],
        chosen[i],
        tested,
        temperature,
        built.modules[i].layer_weights(state),
        built.weights[i],
        len(built.trained),
    )


def _said(group: Sequence[Job], progress: Progress) -> None:
    """The group's start, and the score its members select on, said."""
    config = group[0].run.config
    progress.fold_start(group[0].seed, describe(group), config.epochs)
    progress.selects_on(run_targets(config).heads[0].score_name)


def _built(group: Sequence[Job]) -> list[SerModel]:
    """Each member's model, built from its seed (with its own fine-tuned top layers), on
    the training device."""
    first = group[0].run
    classes, targets = first.data.classes, run_targets(first.config)
    return [
        tuned(
            build_model(job.run.config.model, list(first.specs), len(classes), job.seed, targets),
            job.run,
            job.seed,
        ).to(device_of(first.config))
        for job in group
    ]


def _fitted(
    group: Sequence[Job],
) -> tuple[list[dict[str, ZScore]], list[np.ndarray | None], list[ZScore | None]]:
    """Each member's statistics of its own training side alone: its inputs' z-scores,
    its loss's class weights, its attributes' scale."""
    zscores = [fit_zscore(job.run.data, job.fold.train) for job in group]
    balanced = [  # once a job
        fit_class_weights(job.run.data, job.fold.train, job.run.config.class_weights)
        for job in group
    ]
    scales = [fit_target_scale(job.run.data, job.fold.train) for job in group]
    return zscores, balanced, scales


def tuned(model: SerModel, run: Prepared, seed: int) -> SerModel:
    """`model` with its own copy of the run's fine-tuned top layers (none: as it is)."""
    return model if run.tuning is None else run.tuning.attach(model, seed)


def on(weights: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    """Class weights [C] as the loss reads them: float32 on the training device."""
    return None if weights is None else torch.tensor(weights, dtype=torch.float32, device=device)


def cuda_devices(device: torch.device) -> list[int]:
    """The CUDA device whose generator `fork_rng` must restore too (none on the CPU)."""
    return [device.index or 0] if device.type == "cuda" else []


def _member(
    job: Job,
    zscore: dict[str, Any],
    weights: np.ndarray | None,
    scale: ZScore | None,
    eval_rows: int | None = None,
) -> Member:
    """One (seed, fold)'s sides, z-scored with its own training side's statistics only;
    its batch order drawn from its own stream, anew each call. Dialog models score a whole
    side in one batch: its vectors are small, and one recurrence over all dialogs costs
    about what one over a training batch does."""
    run, fold, config = job.run, job.fold, job.run.config
    batch_size, augment = config.batch_size, augment_of(config)
    on_device = on(weights, device_of(config))  # the training side's loss

    def side(rows: np.ndarray, train: bool = False) -> Batches:
        whole = run.unit == "dialog" and not train
        size = max(batch_size, len(rows)) if whole else batch_size
        if eval_rows is not None and not train and not whole:
            size = max(size, eval_rows)  # scoring alone: batches as large as compiled ones
        return Batches(
            run.data,
            rows,
            run.specs,
            run.unit,
            size,
            zscore=zscore,
            shuffle=train,
            seed=job.stream,
            class_weights=on_device if train else None,
            target_scale=scale,
            sampler=run.config.sampler,
            augment=augment if train else None,
        )

    own = {"eval_mask": config.model.eval_mask, "name": f"seed {job.seed} {fold.name}"}
    return member(config, side(fold.train, train=True), side(fold.val), side(fold.test), **own)


def member(
    config: ResolvedConfig, train: Batches, val: Batches, test: Batches, **own: Any
) -> Member:
    """A member of `config`'s run on these sides: each option `Member` declares too taken
    from the run's config by its name (epochs, lr, weight decay, patience, precision, ...),
    but those given as `own` (its name is the member's, not the run's)."""
    settings = {f.name for f in fields(Member)[3:]}  # after its sides (a run's val is a mode)
    named = settings & {f.name for f in fields(config)}
    taken = {name: getattr(config, name) for name in named - {"name", *own}}
    return Member(train, val, test, **taken | own)
