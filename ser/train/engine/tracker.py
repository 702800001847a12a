"""Each member's per-epoch curves and its best epoch (`Selection`), and the state it had
then, kept stacked on the device while an ensemble trains (`ser.train.engine.loop.select`),
from what its validation side gave each epoch (`Evaluation`, as the loop's predictions on
any side are), and whether an epoch left a member's weights NaN (`diverged`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ser import Json
from ser.errors import TrainingDiverged
from ser.heads.attribute_metrics import AttributeMetrics
from ser.heads.metrics import Metrics
from ser.models.targets import Targets
from ser.train.engine.ensemble import Ensemble

if TYPE_CHECKING:
    from ser.finetune.tuning import TunedInputs


@dataclass(frozen=True)
class Evaluation:
    """A model's predictions on one side of a fold, and (`ser.train.engine.loop.test`'s)
    their scores with every metric: `metrics` the category's (None: a run without it, or
    predictions not scored yet), `attribute_metrics` the attributes' (None: a run without
    them), `scores` every head's (`Head.metrics`, by head name)."""

    loss: float  # mean over labelled utterances of the model's loss
    y_true: np.ndarray  # [N] class index
    y_pred: np.ndarray  # [N]
    index: np.ndarray  # [N] manifest rows
    # Each of the run's heads' predictions [N, W] (`Head.reported`: the category's a
    # float32 softmax, the attributes' on the corpus's scale) and gold [N, G]
    # (`Head.batch_gold`), in head order (`Targets.output_of` picks a head's); none: a
    # side without items.
    outputs: tuple[np.ndarray, ...] = ()
    golds: tuple[np.ndarray, ...] = ()
    metrics: Metrics | None = None
    attribute_metrics: AttributeMetrics | None = None
    scores: dict[str, dict[str, Json]] = field(default_factory=dict)


@dataclass
class Selection:
    """What training with model selection made of a member (the ensemble holds the chosen
    state): its best epoch, its time, and its per-epoch training loss and validation
    scores (NaN without a validation side)."""

    best_epoch: int = 0  # 1-based
    seconds: float = 0.0  # the ensemble's time (data loading excluded) / its members
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_ua: list[float] = field(default_factory=list)
    val_wa: list[float] = field(default_factory=list)
    val_ccc: list[float] = field(default_factory=list)  # mean CCC (attribute targets only)
    # Further heads' scores (`Head.score`) by name: `val_<head>`.
    val_heads: dict[str, list[float]] = field(default_factory=dict)
    # The run's first head's validation score: what progress lines show (not recorded).
    lead: list[float] = field(default_factory=list)
    # The member's earlier stages' selections, by stage name (Zhou et al.'s branches
    # trained alone before the whole model; none for a one-stage family).
    stages: dict[str, Selection] = field(default_factory=dict)


class Tracker:
    """Each member's `Selection` so far and its best state (kept stacked on the device)."""

    def __init__(self, ensemble: Ensemble, has_val: list[bool]) -> None:
        self.ensemble, self.has_val = ensemble, has_val
        self.targets = targets_of(ensemble)
        k = len(has_val)
        self.selected = [Selection() for _ in range(k)]
        self.best_key = [(-math.inf, 0.0)] * k
        self.improved = [False] * k
        self.state = {n: t.detach().clone() for n, t in ensemble.state().items()}

    def record(
        self, k: int, epoch: int, loss: float, result: Evaluation, classes: list[str]
    ) -> None:
        targets = self.targets
        values = dict.fromkeys(targets.curve_keys(), math.nan)
        score = val_loss = math.nan
        if self.has_val[k]:
            decided = (result.y_true, result.y_pred)
            found, score = targets.validation(result.outputs, result.golds, decided, classes)
            values |= found
            val_loss = result.loss
        curves = self.selected[k]
        curves.epoch.append(epoch)
        curves.train_loss.append(loss)
        curves.val_loss.append(val_loss)
        curves.val_ua.append(values.get("val_ua", math.nan))
        curves.val_wa.append(values.get("val_wa", math.nan))
        for name, value in values.items():
            if name == "val_ccc":
                curves.val_ccc.append(value)
            elif name not in ("val_ua", "val_wa"):
                curves.val_heads.setdefault(name, []).append(value)
        curves.lead.append(next(iter(values.values()), math.nan))
        key = (score, -val_loss) if self.has_val[k] else (float(epoch), 0.0)
        if key > self.best_key[k]:
            self.best_key[k], curves.best_epoch, self.improved[k] = key, epoch, True

    def stale(self, k: int) -> int:
        """Epochs since member k's best (0 without validation: never stops early)."""
        member = self.selected[k]
        return member.epoch[-1] - member.best_epoch if self.has_val[k] else 0

    def latest(self) -> tuple[float, float]:
        """Mean training loss and validation UA (a run on attributes alone: mean CCC) of
        the last epoch over members that ran it."""
        last = max(c.epoch[-1] for c in self.selected)
        rows = [c for c in self.selected if c.epoch[-1] == last]
        losses = [c.train_loss[-1] for c in rows]
        scores = [c.lead[-1] for c in rows]
        uas = [s for s in scores if not math.isnan(s)]
        return float(np.mean(losses)), float(np.mean(uas)) if uas else math.nan

    @torch.no_grad()
    def keep_best(self) -> None:
        """Copy the improved members' current state into the kept state."""
        if not any(self.improved):
            return
        current = self.ensemble.state()
        which = torch.tensor(self.improved, device=next(iter(current.values())).device)
        for name, t in current.items():
            mask = which.view(-1, *([1] * (t.dim() - 1)))
            self.state[name].copy_(torch.where(mask, t, self.state[name]))
        self.improved = [False] * len(self.improved)

    @torch.no_grad()
    def load_best(self) -> None:
        for name, t in self.ensemble.state().items():
            t.copy_(self.state[name])


def targets_of(ensemble: Ensemble) -> Targets:
    """What the ensemble's members predict (their family's model's `targets`)."""
    targets = getattr(ensemble.base, "targets", None)
    return targets if isinstance(targets, Targets) else Targets()


def diverged_error(
    epoch: int, losses: Sequence[tuple[str, float]], tuned: TunedInputs | None = None
) -> TrainingDiverged:
    """The error of members (name, epoch loss) whose weights became NaN, with what to try:
    with fine-tuned inputs (`tuned`, the model's top layers), their encoder's rate as well
    as the head's."""
    each = ", ".join(f"{name} (training loss {loss})" for name, loss in losses)
    lower = "a lower --lr"
    if tuned is not None:
        rates = ", ".join(f"{t.feature} at lr {t.encoder_lr:g}" for _, _, t in tuned.tops())
        lower = f"a lower --lr (the head's rate) or a lower lr= in --finetune ({rates})"
    return TrainingDiverged(
        f"training diverged at epoch {epoch}: the weights of {each} became NaN or infinite, "
        f"so the model would score as chance; train again with {lower}, or with "
        "--precision fp32"
    )


def diverged(ensemble: Ensemble, losses: Sequence[float]) -> list[int]:
    """The members whose epoch loss is not finite and whose weights hold NaN or Inf. A loss
    that overflowed in fp16 leaves the weights finite (its update is skipped); any other
    such loss has spread into them, and each later step and score would be NaN. Read only
    after a non-finite loss: no step waits for it."""
    suspects = [k for k, loss in enumerate(losses) if not math.isfinite(loss)]
    if not suspects:
        return []
    members = len(losses)
    broken = torch.zeros(members, dtype=torch.bool)
    for tensor in ensemble.state().values():  # [K, ...] each
        if tensor.is_floating_point():
            finite = torch.isfinite(tensor.detach().reshape(members, -1)).all(dim=1)
            broken |= ~finite.cpu()
    return [k for k in suspects if broken[k]]
