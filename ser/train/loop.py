"""The training loop of stacked models: K members, each its own run, trained as one.

A `Member` is one training run: its data sides (its own fold and batches), its
settings (`LoopConfig`) and its random stream. `fit(model, members, classes)` trains the
K members of a stacked model (`ser.train.models`) together and returns each member's
`FitResult`, exactly what that member gives when trained alone (K = 1):

- each training step stacks the members' next batches (`ser.train.stack`); a member whose
  epoch has ended, or that stopped early, is padding in the stack and is not updated;
- the loss is the sum of the members' own losses, so member k's gradient is its own (a
  model with `summed_loss` is trained on each member's loss summed over its labelled
  utterances instead of their mean, and reports the mean);
  `MemberAdam` updates each member with its own settings and step count;
- dropout and modality masks come from each member's generator at its own shapes;
- each member scores its own validation side after every epoch and keeps the state of its
  best epoch (validation UA, ties: lower validation loss); with `patience` it stops when
  that has not improved for so many epochs; a member with an empty validation side
  (`--val none`) trains the fixed epochs and keeps the last;
- at the end each member's selected state is tested on its own test side. The test side
  is never looked at before that, so neither the best epoch nor early stopping can
  depend on it.

With a low `precision` the forward pass runs under `torch.autocast`: fp16 (CUDA) with a
loss scale per member, bf16 without one (its range is float32's). Losses are summed on
the device and read once per epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ser.train.batch import Batch
from ser.train.capture import StepGraphs, evaluation_step, training_step
from ser.train.metrics import Metrics, compute_metrics, ua_wa
from ser.train.nn.noise import Noise, Streams
from ser.train.optim import MemberAdam
from ser.train.stack import Sides, padded_sizes, sides_of


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation settings of one training run (one fold, one seed)."""

    epochs: int
    lr: float
    weight_decay: float = 0.0
    patience: int | None = None  # stop after this many epochs without a better val UA
    eval_mask: str | None = None  # modality masked when testing only ("text" | "audio")
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16" (autocast), resolved by the caller
    # Training steps at static shapes, replayed from CUDA graphs (`ser.train.capture`;
    # on the CPU from the same fixed buffers, eagerly).
    graphs: bool = False


@dataclass(frozen=True)
class Member:
    """One training run of a stacked model: its sides, settings and random stream."""

    train: Iterable[Batch]
    val: Iterable[Batch]
    test: Iterable[Batch]
    config: LoopConfig
    seed: int  # seeds the member's generator (dropout, modality masking)
    zscore: Mapping[str, Any] = field(default_factory=dict)  # its training side's statistics


@dataclass
class Curves:
    """Per-epoch training loss and validation scores (epochs counted from 1); the
    validation entries are NaN where there is no validation side."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_ua: list[float] = field(default_factory=list)
    val_wa: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Predictions:
    """A model's predictions on one side of a fold."""

    loss: float  # mean over labelled utterances of the model's loss
    y_true: np.ndarray  # [N] class index
    y_pred: np.ndarray  # [N]
    index: np.ndarray  # [N] manifest rows


@dataclass(frozen=True)
class Evaluation(Predictions):
    """Predictions on one side of a fold, scored with every metric."""

    metrics: Metrics


@dataclass(frozen=True)
class Selection:
    """What training with model selection produced (the model holds the chosen state)."""

    best_epoch: int  # 1-based
    curves: Curves
    seconds: float


@dataclass(frozen=True)
class FitResult:
    """What training one fold produced."""

    best_epoch: int  # 1-based
    curves: Curves
    test: Evaluation
    # The member's share of training and evaluation, data loading excluded: the stacked
    # model's time divided by its `stacked` members (1: trained alone).
    seconds: float
    stages: dict[str, Selection] = field(default_factory=dict)  # earlier stages, if any
    stacked: int = 1


EpochHook = Callable[[int, int, float, float], None]  # (epoch, epochs, train loss, val UA)
# (phase "train" | "val" | "test", steps done, steps in the epoch or None): after every
# step, for a heartbeat during long epochs (`ser.train.progress`); reads nothing back from
# the device.
StepHook = Callable[[str, int, int | None], None]


def fit(
    model: nn.Module,
    members: Sequence[Member],
    classes: Sequence[str],
    on_epoch: EpochHook | None = None,
    on_step: StepHook | None = None,
) -> list[FitResult]:
    """Train the members, select each one's epoch on its `val`, test it on its `test`."""
    start = time.perf_counter()
    chosen = select(model, members, classes, on_epoch, on_step)
    everyone = [True] * len(members)
    tests = sides_of([m.test for m in members])
    with masked(model, [m.config.eval_mask for m in members]):
        tested = evaluate(
            model, tests, everyone, classes, members[0].config.precision, on_step=on_step
        )
    seconds = _elapsed(model, start) / len(members)  # each member's share of the time
    return [
        FitResult(c.best_epoch, c.curves, _present(t), seconds, stacked=len(members))
        for c, t in zip(chosen, tested, strict=True)
    ]


def _present(evaluation: Evaluation | None) -> Evaluation:
    """An active member's evaluation (`evaluate` gives None for inactive members only)."""
    if evaluation is None:
        raise RuntimeError("an active member was not evaluated")
    return evaluation


def select(
    model: nn.Module,
    members: Sequence[Member],
    classes: Sequence[str],
    on_epoch: EpochHook | None = None,
    on_step: StepHook | None = None,
) -> list[Selection]:
    """Train each member for its configured epochs, scoring its `val` after each; the
    state of each member's best epoch is loaded into the model at the end."""
    start = time.perf_counter()
    configs = [m.config for m in members]
    epochs, precision = _shared(configs, "epochs"), _shared(configs, "precision")
    device = next(model.parameters()).device
    optimizer = MemberAdam(
        model.parameters(),
        lr=[c.lr for c in configs],
        weight_decay=[c.weight_decay for c in configs],
        scaled=precision == "fp16",
    )
    graphs = StepGraphs(model, optimizer, precision) if _shared(configs, "graphs") else None
    streams = Streams([torch.Generator(device).manual_seed(m.seed) for m in members])
    tracker = _Tracker(model, [_has_batches(m.val) for m in members])
    active = [True] * len(members)
    static = graphs is not None
    train_sides, val_sides = (
        sides_of([m.train for m in members], static),
        sides_of([m.val for m in members], static),
    )
    for epoch in range(epochs):
        if not any(active):
            break
        model.set_epoch(epoch, epochs)  # type: ignore[operator]
        losses = train_epoch(
            model, train_sides, active, optimizer, streams, precision, graphs, on_step
        )
        with masked(model, None):
            scored = predict(model, val_sides, active, precision, graphs, on_step, "val")
        for k, (loss, result) in enumerate(zip(losses, scored, strict=True)):
            if active[k]:
                tracker.record(k, epoch + 1, loss, result, len(classes))
                patience = configs[k].patience
                if patience is not None and tracker.stale(k) >= patience:
                    active[k] = False
        tracker.keep_best()
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs, *tracker.latest())
    tracker.load_best()
    seconds = _elapsed(model, start) / len(members)
    return [
        Selection(tracker.best_epoch[k], tracker.curves[k], seconds) for k in range(len(members))
    ]


def train_epoch(
    model: nn.Module,
    sides: Sides,
    active: Sequence[bool],
    optimizer: MemberAdam,
    streams: Streams,
    precision: str = "fp32",
    graphs: StepGraphs | None = None,
    on_step: StepHook | None = None,
) -> list[float]:
    """One epoch of every active member (its steps replayed by `graphs` if given);
    returns each member's mean training loss (NaN for inactive members)."""
    model.train()
    device = next(model.parameters()).device
    total = torch.zeros(len(active), device=device)
    count = torch.zeros(len(active), device=device)
    steps = _steps(sides, active) if on_step is not None else None
    for done, (present, batch) in enumerate(sides.epoch(active), 1):
        streams.next_step()
        batch.noise = Noise(
            streams, batch.sizes or {}, dict(batch.extents or {}), padded=padded_sizes(batch),
            ahead=True if graphs is not None else None,  # a replay reads the lanes made ahead
        )  # fmt: skip
        optimizer.zero_grad()
        if graphs is None:
            losses, n = training_step(model, batch, present, optimizer, precision)
        else:
            losses, n = graphs.step(batch, present)
        total += losses.float() * n
        count += n
        if on_step is not None:
            on_step("train", done, steps)
    means = (total / count.clamp_min(1)).tolist()  # the epoch's only device -> host sync
    return [mean if a else math.nan for mean, a in zip(means, active, strict=True)]


@torch.no_grad()
def predict(
    model: nn.Module,
    sides: Sides,
    active: Sequence[bool],
    precision: str = "fp32",
    graphs: StepGraphs | None = None,
    on_step: StepHook | None = None,
    phase: str = "val",
) -> list[Predictions | None]:
    """Each active member's predictions and loss on its side (eval mode, no gradients;
    its steps replayed by `graphs` if given; `on_step` told each as `phase`)."""
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros(len(active), device=device)
    kept: list[tuple[torch.Tensor, ...]] = []
    steps = _steps(sides, active) if on_step is not None else None
    for done, (_, batch) in enumerate(sides.epoch(active), 1):
        if graphs is None:
            summed, *rest = evaluation_step(model, batch, precision)
        else:
            summed, *rest = graphs.evaluate(batch, active)
        total += summed
        kept.append(tuple(rest))  # labels, predicted classes, manifest rows: [K, N] each
        if on_step is not None:
            on_step(phase, done, steps)
    totals = total.tolist()
    out_list: list[Predictions | None] = []
    if not kept:
        return [None] * len(active)
    labels, preds, index = (torch.cat(t, dim=1).cpu().numpy() for t in zip(*kept, strict=True))
    for k, a in enumerate(active):
        if not a:
            out_list.append(None)
            continue
        real = labels[k] != -100
        y_true = labels[k][real]
        out_list.append(
            Predictions(totals[k] / max(len(y_true), 1), y_true, preds[k][real], index[k][real])
        )
    return out_list


def evaluate(
    model: nn.Module,
    sides: Sides,
    active: Sequence[bool],
    classes: Sequence[str],
    precision: str = "fp32",
    on_step: StepHook | None = None,
) -> list[Evaluation | None]:
    """`predict`, scored with every metric (`on_step` told each step as "test")."""
    out: list[Evaluation | None] = []
    for p in predict(model, sides, active, precision, on_step=on_step, phase="test"):
        if p is None:
            out.append(None)
            continue
        metrics = compute_metrics(p.y_true, p.y_pred, classes)
        out.append(Evaluation(p.loss, p.y_true, p.y_pred, p.index, metrics))
    return out


class _Tracker:
    """Each member's curves, best epoch and best state (kept stacked on the device)."""

    def __init__(self, model: nn.Module, has_val: list[bool]) -> None:
        self.model, self.has_val = model, has_val
        k = len(has_val)
        self.curves = [Curves() for _ in range(k)]
        self.best_key = [(-math.inf, 0.0)] * k
        self.best_epoch = [0] * k
        self.last_epoch = [0] * k
        self.improved = [False] * k
        self.state = {n: t.detach().clone() for n, t in model.state_dict().items()}

    def record(
        self, k: int, epoch: int, loss: float, result: Predictions | None, n_classes: int
    ) -> None:
        ua = wa = val_loss = math.nan
        if self.has_val[k] and result is not None:
            ua, wa = ua_wa(result.y_true, result.y_pred, n_classes)
            val_loss = result.loss
        curves = self.curves[k]
        for name, value in (("epoch", epoch), ("train_loss", loss), ("val_loss", val_loss),
                            ("val_ua", ua), ("val_wa", wa)):  # fmt: skip
            getattr(curves, name).append(value)
        self.last_epoch[k] = epoch
        key = (ua, -val_loss) if self.has_val[k] else (float(epoch), 0.0)
        if key > self.best_key[k]:
            self.best_key[k], self.best_epoch[k], self.improved[k] = key, epoch, True

    def stale(self, k: int) -> int:
        """Epochs since member k's best (0 without validation: never stops early)."""
        return self.last_epoch[k] - self.best_epoch[k] if self.has_val[k] else 0

    def latest(self) -> tuple[float, float]:
        """Mean training loss and validation UA of the last epoch over members that ran it."""
        last = max(self.last_epoch)
        rows = [c for c, e in zip(self.curves, self.last_epoch, strict=True) if e == last]
        losses = [c.train_loss[-1] for c in rows]
        uas = [c.val_ua[-1] for c in rows if not math.isnan(c.val_ua[-1])]
        return float(np.mean(losses)), float(np.mean(uas)) if uas else math.nan

    @torch.no_grad()
    def keep_best(self) -> None:
        """Copy the improved members' current weights into the kept state."""
        if not any(self.improved):
            return
        current = self.model.state_dict()
        which = torch.tensor(self.improved, device=next(iter(current.values())).device)
        for name, t in current.items():
            mask = which.view(-1, *([1] * (t.dim() - 1)))
            self.state[name].copy_(torch.where(mask, t, self.state[name]))
        self.improved = [False] * len(self.improved)

    def load_best(self) -> None:
        self.model.load_state_dict(self.state)


def _shared(configs: Sequence[LoopConfig], name: str) -> Any:
    values = {getattr(c, name) for c in configs}
    if len(values) != 1:
        raise ValueError(f"members of one stacked run must share {name}, got {sorted(values)}")
    return values.pop()


def _steps(sides: Sides, active: Sequence[bool]) -> int | None:
    """Steps in an epoch of the active members: the longest side's batches (None when a
    side does not know its length)."""
    own = getattr(sides, "sides", None)  # None: a stand-in (benchmarks' first steps only)
    if own is None:
        return None
    lengths = [getattr(s, "__len__", None) for s, a in zip(own, active, strict=True) if a]
    if any(n is None for n in lengths):
        return None
    return max((n() for n in lengths if n is not None), default=0)


def _has_batches(side: Iterable[Batch]) -> bool:
    return len(side) > 0 if hasattr(side, "__len__") else True  # type: ignore[arg-type]


def _elapsed(model: nn.Module, start: float) -> float:
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


@contextmanager
def masked(model: Any, modalities: Sequence[str | None] | None) -> Iterator[None]:
    """`model.eval_mask` set per member inside the block (None: no member masks):
    masking happens at test only."""
    old = model.eval_mask
    model.eval_mask = modalities
    try:
        yield
    finally:
        model.eval_mask = old
