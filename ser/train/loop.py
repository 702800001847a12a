"""The training loop: plain PyTorch, Adam, model selection on validation only.

Each epoch trains on the training side, then scores the validation side; the state of
the epoch with the best validation UA (ties: lower validation loss) is kept in memory
and is the one tested at the end. The test side is never looked at before that, so
neither the best epoch nor early stopping can depend on it.

With a low `precision` the forward pass runs under `torch.autocast`: fp16 (CUDA) with a
`GradScaler`, bf16 without one (its range is float32's). Losses are summed on the device
and read once per epoch.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ser.precision import autocast
from ser.train.batch import Batch
from ser.train.metrics import Metrics, compute_metrics, ua_wa
from ser.train.optim import Adam, fused_supported

Optimizer = Adam | torch.optim.Optimizer


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation settings of one training run (one fold, one seed)."""

    epochs: int
    lr: float
    weight_decay: float = 0.0
    patience: int | None = None  # stop after this many epochs without a better val UA
    eval_mask: str | None = None  # modality masked when testing only ("text" | "audio")
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16" (autocast), resolved by the caller


@dataclass
class Curves:
    """Per-epoch training loss and validation scores (epochs counted from 1)."""

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
    seconds: float  # training and evaluation, data loading excluded
    stages: dict[str, Selection] = field(default_factory=dict)  # earlier stages, if any


EpochHook = Callable[[int, int, float, float], None]  # (epoch, epochs, train loss, val UA)


def fit(
    model: nn.Module,
    train: Iterable[Batch],
    val: Iterable[Batch],
    test: Iterable[Batch],
    classes: Sequence[str],
    config: LoopConfig,
    on_epoch: EpochHook | None = None,
) -> FitResult:
    """Train `model`, select the epoch on `val`, test that epoch's state on `test`."""
    start = time.perf_counter()
    chosen = select(model, train, val, classes, config, on_epoch)
    device = next(model.parameters()).device
    with _masked(model, config.eval_mask):
        tested = evaluate(model, test, classes, config.precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return FitResult(chosen.best_epoch, chosen.curves, tested, time.perf_counter() - start)


def select(
    model: nn.Module,
    train: Iterable[Batch],
    val: Iterable[Batch],
    classes: Sequence[str],
    config: LoopConfig,
    on_epoch: EpochHook | None = None,
) -> Selection:
    """Train `model` for the configured epochs, scoring `val` after each; the state of
    the best epoch (validation UA, ties: lower loss) is loaded into `model` at the end."""
    start = time.perf_counter()
    device = next(model.parameters()).device
    precision = config.precision
    optimizer = adam(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    curves, best_key, best_state, best_epoch = Curves(), (-1.0, 0.0), None, 0
    for epoch in range(config.epochs):
        model.set_epoch(epoch, config.epochs)  # type: ignore[operator]
        train_loss = train_epoch(model, train, optimizer, scaler, precision)
        with _masked(model, None):
            result = predict(model, val, precision)
        ua, wa = ua_wa(result.y_true, result.y_pred, len(classes))
        _record(curves, epoch + 1, train_loss, result.loss, ua, wa)
        key = (ua, -result.loss)
        if key > best_key:
            best_key, best_epoch = key, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        if on_epoch is not None:
            on_epoch(epoch + 1, config.epochs, train_loss, ua)
        if config.patience is not None and epoch + 1 - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return Selection(best_epoch, curves, time.perf_counter() - start)


def adam(model: nn.Module, config: LoopConfig) -> Optimizer:
    """Adam on PyTorch's fused kernel (one kernel for all parameters instead of ~10 ops
    per tensor) where the parameters' device has it, else `torch.optim.Adam`."""
    params = list(model.parameters())
    if fused_supported(params):
        return Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def train_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    optimizer: Optimizer,
    scaler: torch.amp.GradScaler,
    precision: str = "fp32",
) -> float:
    model.train()
    device = next(model.parameters()).device
    total = torch.zeros((), device=device)
    count = torch.zeros((), device=device)
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = model.loss(model(batch), batch)  # type: ignore[operator]
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # type: ignore[arg-type]  # duck-typed: param_groups, step
        scaler.update()
        n = (batch.labels != -100).sum()
        total += loss.detach().float() * n
        count += n
    return float(total / count.clamp_min(1))  # the epoch's only device -> host sync


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable[Batch], precision: str = "fp32") -> Predictions:
    """Predictions and loss of `model` on `batches` (eval mode, no gradients)."""
    model.eval()
    device = next(model.parameters()).device
    total = torch.zeros((), device=device)
    truths, preds, indices = [], [], []
    for batch in batches:
        with autocast(device, precision):
            out = model(batch)
            loss = model.loss(out, batch)  # type: ignore[operator]
        labelled = batch.labels != -100  # [B] or [B, U]
        total += loss.float() * labelled.sum()
        truths.append(batch.labels[labelled])
        preds.append(out.logits.argmax(dim=-1)[labelled])
        indices.append(batch.index[labelled])
    y_true = torch.cat(truths).cpu().numpy()
    loss_mean = float(total) / max(len(y_true), 1)
    return Predictions(
        loss_mean, y_true, torch.cat(preds).cpu().numpy(), torch.cat(indices).cpu().numpy()
    )


def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    classes: Sequence[str],
    precision: str = "fp32",
) -> Evaluation:
    """`predict`, scored with every metric."""
    p = predict(model, batches, precision)
    metrics = compute_metrics(p.y_true, p.y_pred, classes)
    return Evaluation(p.loss, p.y_true, p.y_pred, p.index, metrics)


def _record(
    curves: Curves, epoch: int, train_loss: float, val_loss: float, ua: float, wa: float
) -> None:
    curves.epoch.append(epoch)
    curves.train_loss.append(train_loss)
    curves.val_loss.append(val_loss)
    curves.val_ua.append(ua)
    curves.val_wa.append(wa)


@contextmanager
def _masked(model: Any, modality: str | None) -> Iterator[None]:
    """`model.eval_mask` set to `modality` inside the block: masking happens at test only."""
    old = getattr(model, "eval_mask", None)
    model.eval_mask = modality
    try:
        yield
    finally:
        model.eval_mask = old
