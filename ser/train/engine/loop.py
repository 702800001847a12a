"""The training loop: K members, each its own run (`Member`), trained as one `Ensemble`.

The loss is the sum of the members' losses, so member k's gradient is its own and Adam
over the stacked tensors updates each member as it would alone. Each member selects on
its own validation side (best UA, ties: lower loss; an empty side: the fixed epochs, the
last kept) and never looks at its test side before the end. fp16 shares one `GradScaler`
across the stack: a step skipped for an overflow is skipped by every member.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from ser.errors import ConfigError
from ser.finetune.tuning import param_groups, top_layers, warmup
from ser.models.targets import Targets
from ser.runtime.precision import autocast
from ser.train.batches import Batches, StackedSides
from ser.train.engine.ensemble import Ensemble
from ser.train.engine.graphs import GraphedTraining, step_variant, whole_step
from ser.train.engine.member_adam import MemberAdam
from ser.train.engine.steps import Steps, batch_tensors, evaluation, training_loss
from ser.train.engine.tracker import (
    Evaluation,
    Selection,
    Tracker,
    diverged,
    diverged_error,
    targets_of,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Member:
    """One training run of an ensemble (one fold, one seed): its sides and its
    optimisation settings."""

    train: Batches
    val: Batches
    test: Batches
    epochs: int
    lr: float
    weight_decay: float = 0.0
    patience: int | None = None  # stop after this many epochs without a better val UA
    eval_mask: str | None = None  # modality masked when testing only ("text" | "audio")
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16" (autocast), resolved by the caller
    name: str = "the model"  # as errors name it: "seed 0 fold1"
    grad_clip: float | None = None  # each member's gradient norm at most this (None: any)


EpochHook = Callable[[int, int, float, float], None]  # (epoch, epochs, train loss, val UA)
# After every step (phase "train" | "val" | "test", steps done, steps in the epoch or None).
StepHook = Callable[[str, int, int | None], None]


def select(
    ensemble: Ensemble,
    members: Sequence[Member],
    classes: Sequence[str],
    on_epoch: EpochHook,
    on_step: StepHook,
    steps: Steps | None = None,
) -> list[Selection]:
    """Train each member for its configured epochs, scoring its `val` after each; the
    state of each member's best epoch is loaded into the ensemble at the end. `steps`:
    how the members' steps run (eager by default)."""
    steps = steps or Steps()
    if steps.graphed and members[0].train.unit == "dialog":
        raise ConfigError(
            "--step graphed takes utterance models: dialog batches train in parts whose "
            "gradients add before one update"
        )
    start = time.perf_counter()
    epochs, precision = (
        _shared([m.epochs for m in members], "epochs"),
        _shared([m.precision for m in members], "precision"),
    )
    lr = _shared([m.lr for m in members], "lr")
    decay = _shared([m.weight_decay for m in members], "weight_decay")
    optimizer: torch.optim.Optimizer
    if len({len(m.train) for m in members}) > 1:  # members that run out of batches first
        if not steps.graphed:
            raise ValueError("members of one ensemble must take the same steps per epoch")
        optimizer = MemberAdam(ensemble.parameters(), lr=lr, weight_decay=decay)
    else:
        optimizer = torch.optim.Adam(
            _groups(ensemble, lr),
            lr=lr,
            weight_decay=decay,
            fused=True,  # one kernel for every tensor: ~5x the default's step on the CPU
            capturable=steps.graphed and ensemble.parameters()[0].is_cuda,  # its step count too
        )
    clip = _shared([m.grad_clip for m in members], "grad_clip")
    if clip is not None:  # before every update, eager or graphed, once fp16's scale is off
        optimizer.register_step_pre_hook(lambda *_: clip_gradients(ensemble, clip))
    device = ensemble.parameters()[0].device
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    tuned = top_layers(ensemble.base) is not None  # its encoder's rate warms up
    schedule = warmup(optimizer, epochs * len(members[0].train)) if tuned else None
    tracker = Tracker(ensemble, [len(m.val) > 0 for m in members])
    active = [True] * len(members)
    train_sides = StackedSides([m.train for m in members], static=steps.static)
    val_sides = StackedSides([m.val for m in members], static=steps.static)
    whole = None
    if steps.graphed:
        run = whole_step(ensemble, optimizer, precision)
        whole = GraphedTraining(run, device, steps.shapes_seen)
    for epoch in range(epochs):
        if not any(active):
            break
        ensemble.set_epoch(epoch, epochs)
        losses = train_epoch(
            ensemble, train_sides, optimizer, scaler, precision, on_step, steps, whole, schedule
        )
        if broken := diverged(ensemble, losses):
            lost = [(members[k].name, losses[k]) for k in broken]
            raise diverged_error(epoch + 1, lost, top_layers(ensemble.base))
        with masked(ensemble.base, None):
            found = predict(ensemble, val_sides, precision, on_step, "val", steps)
            scored = in_range(found, members, targets_of(ensemble))
        for k, (loss, result) in enumerate(zip(losses, scored, strict=True)):
            if active[k]:
                tracker.record(k, epoch + 1, loss, result, list(classes))
                patience = members[k].patience
                if patience is not None and tracker.stale(k) >= patience:
                    active[k] = False
        tracker.keep_best()
        on_epoch(epoch + 1, epochs, *tracker.latest())
    tracker.load_best()
    if device.type == "cuda":  # the queued kernels finish inside the timing
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / len(members)
    for selected in tracker.selected:
        selected.seconds = seconds
    return tracker.selected


def test(
    ensemble: Ensemble,
    members: Sequence[Member],
    classes: Sequence[str],
    on_step: StepHook,
    steps: Steps | None = None,
    side: str = "test",
) -> list[Evaluation]:
    """Each member's selected state on its own test side (`side` "val": its validation
    side, as the test side is scored: its eval mask applied)."""
    steps = steps or Steps()
    with masked(ensemble.base, _shared([m.eval_mask for m in members], "eval_mask")):
        sides = StackedSides([getattr(m, side) for m in members], static=steps.static)
        precision = _shared([m.precision for m in members], "precision")
        found = predict(ensemble, sides, precision, on_step, side, steps)
    targets = targets_of(ensemble)
    found = in_range(found, members, targets, side)
    return [
        replace(p, **targets.evaluate(p.outputs, p.golds, classes, (p.y_true, p.y_pred)))
        for p in found
    ]


def train_epoch(
    ensemble: Ensemble,
    sides: StackedSides,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    precision: str = "fp32",
    on_step: StepHook | None = None,
    steps: Steps | None = None,
    whole: GraphedTraining | None = None,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> list[float]:
    """One epoch of every member; returns each member's mean training loss. `whole`: the
    graphed step (`whole_step`'s), for graphed runs; `schedule`: stepped after each
    update (a fine-tuned encoder's warm-up)."""
    step_fn = (steps or Steps())(training_loss)
    ensemble.train()
    device = ensemble.parameters()[0].device
    total = torch.zeros(ensemble.members, device=device)
    count = torch.zeros(ensemble.members, device=device)
    n_steps, done = len(sides), 0
    optimizer.zero_grad(set_to_none=True)
    for present, batch, step in sides.epoch():
        if whole is None and not all(present):
            raise ValueError("members of one ensemble must take the same steps per epoch")
        if not step and not getattr(ensemble.base, "summed_loss", False):
            raise ValueError("a batch in parts needs a summed loss (the parts' gradients add)")
        if whole is not None:  # a member without a batch here is all padding, not updated
            # which members have one [K], from the device: a copy from the host would wait
            here = (batch.index >= 0).flatten(1).any(dim=1)
            loss, n = whole(
                (*batch_tensors(batch), batch.class_weights, here), step_variant(ensemble)
            )
            total += loss * n
            count += n
        elif batch.labels.shape[1]:  # (a part may be empty: a batch of one dialog)
            with autocast(device, precision):
                tensors = (*batch_tensors(batch), batch.class_weights)  # weights last
                loss, objective, n = ensemble.call(step_fn, *tensors)  # [K]
            scaler.scale(objective.sum()).backward()  # member k's gradient is its own
            total += loss.detach().float() * n
            count += n
        if step:
            if whole is None:
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if schedule is not None:
                    schedule.step()
            done += 1
            if on_step is not None:
                on_step("train", done, n_steps)
    return (total / count.clamp_min(1)).tolist()  # the epoch's only device -> host sync


@torch.no_grad()
def predict(
    ensemble: Ensemble,
    sides: StackedSides,
    precision: str,
    on_step: StepHook,
    phase: str,
    steps: Steps | None = None,
) -> list[Evaluation]:
    """Each member's predictions (every head's, with its gold) and loss on its side (eval
    mode, no gradients), not scored yet."""
    step_fn = (steps or Steps())(evaluation)
    ensemble.eval()
    device = ensemble.parameters()[0].device
    total = torch.zeros(ensemble.members, device=device)
    kept: list[tuple[torch.Tensor, ...]] = []
    n_steps = len(sides)
    for done, (_, batch, _) in enumerate(sides.epoch(), 1):
        with autocast(device, precision):
            # [K], [K, ...], then each head's predictions [K, ..., W] and gold [K, ..., G]
            summed, pred, *per_head = ensemble.call(step_fn, *batch_tensors(batch))
        total += summed.float()
        flat = (batch.labels.flatten(1), pred.flatten(1), batch.index.flatten(1))
        kept.append((*flat, *(t.float().flatten(1, -2) for t in per_head)))  # [K, items, W]
        on_step(phase, done, n_steps)
    if not kept:
        empty = np.zeros(0, dtype=np.int64)
        none = Evaluation(math.nan, empty, empty, empty)
        return [none] * ensemble.members
    labels, preds, index, *heads = (
        torch.cat(t, dim=1).cpu().numpy() for t in zip(*kept, strict=True)
    )
    out = []
    for k, summed_k in enumerate(total.tolist()):
        real = labels[k] != -100
        y_true = labels[k][real]
        loss = summed_k / max(len(y_true), 1)
        outputs, golds = (tuple(t[k][real] for t in half) for half in _halves(heads))
        out.append(Evaluation(loss, y_true, preds[k][real], index[k][real], outputs, golds))
    return out


def _halves(heads: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each head's predictions, then each head's gold."""
    n = len(heads) // 2
    return heads[:n], heads[n:]


def in_range(
    found: list[Evaluation], members: Sequence[Member], targets: Targets, side: str = "val"
) -> list[Evaluation]:
    """Each member's predictions, each head's held to its training side's range
    (`Head.bounded`: the attributes clipped to it)."""
    scales = [getattr(m, side).target_scale for m in members]
    out = []
    for p, scale in zip(found, scales, strict=True):
        out.append(replace(p, outputs=targets.bounded(p.outputs, scale)))
    return out


def clip_gradients(ensemble: Ensemble, max_norm: float) -> None:
    """Each member's gradient scaled to an L2 norm of at most `max_norm` over all of its
    parameters, as `torch.nn.utils.clip_grad_norm_` scales one model's: a stacked
    member's as it would be alone. No host sync: a graphed step captures it."""
    grads = [p.grad for p in ensemble.parameters() if p.grad is not None]
    if not grads:
        return
    k = ensemble.members  # a member alone holds its own tensors: no leading K (scale [1])
    norm = torch.stack([g.reshape(k, -1).float().pow(2).sum(dim=1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)  # [K]
    for g in grads:
        g.mul_((scale.view(k, *[1] * (g.dim() - 1)) if k > 1 else scale).to(g.dtype))


def _groups(ensemble: Ensemble, lr: float) -> list[torch.Tensor] | list[dict[str, object]]:
    """The optimiser's parameters: the stack's tensors, or a member with fine-tuned top
    layers in groups (`ser.finetune.tuning.param_groups`), trained alone."""
    if top_layers(ensemble.base) is None:
        return ensemble.parameters()
    if ensemble.members != 1:
        raise ValueError("a member with trainable encoder layers trains alone")
    return param_groups(ensemble.base, lr)


def _shared(values: Sequence[T], name: str) -> T:
    """The one value the members share of setting `name`."""
    kept = set(values)
    if len(kept) != 1:
        raise ValueError(f"members of one ensemble must share {name}, got {sorted(map(str, kept))}")
    return kept.pop()


@contextmanager
def masked(model: nn.Module, modality: str | None) -> Iterator[None]:
    """The model's (an ensemble's `base`: its members') `eval_mask` set inside the block
    (None: no masking)."""
    old = model.eval_mask
    model.eval_mask = modality  # type: ignore[assignment]  # a SerModel's, not a tensor
    try:
        yield
    finally:
        model.eval_mask = old
