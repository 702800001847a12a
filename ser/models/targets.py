"""What a model is trained to predict (`Targets`) and the attribute losses.

A run predicts the emotion category (`emotion`), emotion attributes (arousal, valence,
dominance: `ser.corpus.records.ATTRIBUTES`), or both from one shared body. Every family's
last linear layer then has C + A outputs: the model's logits [..., C + A] are the C class
logits followed by the A attribute predictions, each output row a linear head of its own
(`split`). Attribute predictions live on a normalised scale, the training side's z-score
of the corpus's values; the loop maps them back to the corpus's scale.

The attribute loss is 1 - CCC per attribute, averaged over the attributes (Lin's
concordance correlation coefficient over the batch, as the MSP-Podcast challenge's
baseline trains), or the mean squared error (`--attribute-loss mse`). Items without a
value for an attribute (NaN) are left out of that attribute's term, with no branch on the
data (the model runs under `vmap`).

>>> import torch
>>> gold = torch.tensor([[1.0], [2.0], [3.0], [float("nan")]])
>>> round(ccc_loss(gold.nan_to_num(0.0), gold).item(), 4)  # a perfect prediction
0.0
>>> round(ccc_loss(torch.zeros(4, 1), gold).item(), 4)  # a constant one: CCC 0
1.0
>>> Targets.parse("emotion+attributes").name, Targets.parse("valence").attributes
('emotion+attributes', ('valence',))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ser.corpus.records import ATTRIBUTES
from ser.errors import ConfigError

#: `--target` values: the category, all attributes, one attribute, or the category with them.
TARGETS = ("emotion", "attributes", *ATTRIBUTES, "emotion+attributes",
           *(f"emotion+{a}" for a in ATTRIBUTES))  # fmt: skip
ATTRIBUTE_LOSSES = ("ccc", "mse")
LABELS = ("hard", "soft")
#: Keeps a CCC's denominator away from 0 (a constant batch of gold and predictions).
EPS = 1e-8


@dataclass(frozen=True)
class Targets:
    """A run's targets: the category or not, the attributes (in `ATTRIBUTES` order), the
    attribute loss and its weight beside the category's, hard or soft class labels."""

    emotion: bool = True
    attributes: tuple[str, ...] = ()
    loss: str = "ccc"
    weight: float = 1.0
    soft: bool = False

    @classmethod
    def parse(
        cls, target: str = "emotion", loss: str = "ccc", weight: float = 1.0, labels: str = "hard"
    ) -> Targets:
        """From `ser train`'s --target, --attribute-loss, --attribute-weight, --labels."""
        if target not in TARGETS:
            raise ConfigError(f"--target {target!r}: choose one of {', '.join(TARGETS)}")
        if loss not in ATTRIBUTE_LOSSES or labels not in LABELS:
            raise ConfigError(f"--attribute-loss {loss!r} / --labels {labels!r}: not known")
        if weight <= 0:
            raise ConfigError(f"--attribute-weight must be above 0, got {weight}")
        parts = target.split("+")
        named = [p for p in parts if p != "emotion"]
        attributes = ATTRIBUTES if named == ["attributes"] else tuple(named)
        emotion = "emotion" in parts
        if labels == "soft" and not emotion:
            raise ConfigError("--labels soft trains the categorical head: --target has none")
        return cls(emotion, attributes, loss, weight, labels == "soft")

    @property
    def name(self) -> str:
        """The --target value these targets are."""
        named = "attributes" if self.attributes == ATTRIBUTES else "+".join(self.attributes)
        return "+".join(p for p in ("emotion" if self.emotion else "", named) if p)

    def outputs(self, n_classes: int) -> int:
        """The width of a model's last layer: its class logits, then its attributes."""
        return (n_classes if self.emotion else 0) + len(self.attributes)


def split(logits: torch.Tensor, n_attributes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., C + A] -> class logits [..., C], attribute predictions [..., A]."""
    c = logits.shape[-1] - n_attributes
    return logits[..., :c], logits[..., c:]


def attribute_loss(pred: torch.Tensor, gold: torch.Tensor, loss: str = "ccc") -> torch.Tensor:
    """`pred`, `gold` [..., A] (gold NaN where an item has no value) -> the loss: the
    mean over attributes of 1 - CCC, or the MSE over the items with values."""
    flat_pred = pred.reshape(-1, pred.shape[-1]).float()  # [N, A]
    flat_gold = gold.reshape(-1, gold.shape[-1]).float()
    if loss == "mse":
        has = flat_gold.isfinite()
        err = torch.where(has, flat_pred - flat_gold.nan_to_num(0.0), 0.0)
        return err.square().sum() / has.sum().clamp_min(1)
    return ccc_loss(flat_pred, flat_gold)


def ccc_loss(pred: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """[N, A], [N, A] (NaN: no value) -> mean over attributes with 2+ values of 1 - CCC
    (population moments over the items with values); 0 when none has two."""
    has = gold.isfinite()  # [N, A]
    w = has.float()
    n = w.sum(0).clamp_min(1)  # [A]
    g = gold.nan_to_num(0.0)
    mean_p, mean_g = (pred * w).sum(0) / n, (g * w).sum(0) / n  # [A]
    dp, dg = (pred - mean_p) * w, (g - mean_g) * w  # [N, A], 0 where no value
    var_p, var_g, cov = dp.square().sum(0) / n, dg.square().sum(0) / n, (dp * dg).sum(0) / n
    ccc = 2 * cov / (var_p + var_g + (mean_p - mean_g).square() + EPS)  # [A]
    scored = (has.sum(0) >= 2).float()  # [A]
    return ((1 - ccc) * scored).sum() / scored.sum().clamp_min(1)
