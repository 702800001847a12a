"""What a run is trained to predict (`Targets`): its heads, in order.

A run predicts the emotion category (`emotion`), emotion attributes (arousal, valence,
dominance: `ser.corpus.records.ATTRIBUTES`), further registered heads (`others`:
`ser.heads.registry`), or several of them from one shared body. Its model's last layer
has their outputs side by side in that order (`split`): the category's C logits, the A
attributes, then each further head's. Everything else is said by the heads
(`ser.heads.base.Head`), which every user iterates over (`heads`).

>>> Targets.parse("emotion+attributes").name, Targets.parse("valence").attributes
('emotion+attributes', ('valence',))
>>> [h.name for h in Targets.parse("emotion+sentiment").heads]
['emotion', 'sentiment']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ser.corpus.records import ATTRIBUTES
from ser.errors import ConfigError
from ser.heads.attributes import ATTRIBUTE_LOSSES, AttributeHead
from ser.heads.base import Head
from ser.heads.emotion import EmotionHead
from ser.heads.registry import HEADS, head_of

#: `--target` values of the category and the attributes (registered heads join them
#: with `+`: `emotion+sentiment`).
TARGETS = ("emotion", "attributes", *ATTRIBUTES, "emotion+attributes",
           *(f"emotion+{a}" for a in ATTRIBUTES))  # fmt: skip
LABELS = ("hard", "soft")


@dataclass(frozen=True)
class Targets:
    """A run's targets: the category or not, the attributes (in `ATTRIBUTES` order), the
    attribute loss and its weight beside the category's, hard or soft class labels, the
    further heads' names."""

    emotion: bool = True
    attributes: tuple[str, ...] = ()
    loss: str = "ccc"
    weight: float = 1.0
    soft: bool = False
    others: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, target: str = "emotion", loss: str = "ccc", weight: float = 1.0, labels: str = "hard"
    ) -> Targets:
        """From `ser train`'s --target, --attribute-loss, --attribute-weight, --labels."""
        parts = target.split("+")
        known = ("emotion", "attributes", *ATTRIBUTES, *HEADS)
        if any(p not in known for p in parts) or len(set(parts)) < len(parts):
            raise ConfigError(
                f"--target {target!r}: choose one of {', '.join(TARGETS)}, or heads joined "
                f"with + from {', '.join(known)}"
            )
        if loss not in ATTRIBUTE_LOSSES or labels not in LABELS:
            raise ConfigError(f"--attribute-loss {loss!r} / --labels {labels!r}: not known")
        if weight <= 0:
            raise ConfigError(f"--attribute-weight must be above 0, got {weight}")
        named = [p for p in parts if p in ("attributes", *ATTRIBUTES)]
        if "attributes" in named and len(named) > 1:
            raise ConfigError(f"--target {target!r}: attributes already holds {named[1]}")
        attributes = ATTRIBUTES if named == ["attributes"] else tuple(named)
        emotion, others = "emotion" in parts, tuple(p for p in parts if p in HEADS)
        if labels == "soft" and not emotion:
            raise ConfigError("--labels soft trains the categorical head: --target has none")
        return cls(emotion, attributes, loss, weight, labels == "soft", others)

    @classmethod
    def from_record(cls, meta: Mapping[str, Any]) -> Targets:
        """From a checkpoint's or an export's record of them (`dataclasses.asdict`)."""
        lists = {k: tuple(meta.get(k, ())) for k in ("attributes", "others")}
        return cls(**{**meta, **lists})

    @property
    def name(self) -> str:
        """The --target value these targets are."""
        named = "attributes" if self.attributes == ATTRIBUTES else "+".join(self.attributes)
        return "+".join(p for p in ("emotion" if self.emotion else "", named, *self.others) if p)

    @property
    def heads(self) -> tuple[Head, ...]:
        """The run's heads, in the order of their outputs."""
        heads: list[Head] = [EmotionHead(self.soft)] if self.emotion else []
        if self.attributes:
            weight = self.weight if self.emotion else 1.0  # alone, nothing to weigh against
            heads.append(AttributeHead(self.attributes, self.loss, weight))
        return (*heads, *(head_of(name) for name in self.others))

    def widths(self, n_classes: int) -> tuple[int, ...]:
        """Each head's outputs in the model's last layer."""
        return tuple(h.width(n_classes) for h in self.heads)

    def outputs(self, n_classes: int) -> int:
        """The width of a model's last layer: every head's outputs."""
        return sum(self.widths(n_classes))

    def split(self, logits: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, ...]:
        """[..., sum of widths] -> each head's outputs [..., W]."""
        return tuple(logits.split(self.widths(n_classes), dim=-1))

    def names(self, classes: Sequence[str]) -> tuple[tuple[str, ...], ...]:
        """Each head's outputs' names."""
        return tuple(h.names(classes) for h in self.heads)

    def selection(self, scores: Sequence[float]) -> float:
        """What validation selects on, of each head's `Head.score` (in head order): the
        score of one head; with several, their mean on one scale (percentages / 100)."""
        if len(scores) == 1:
            return scores[0]
        scaled = [s / h.scale for h, s in zip(self.heads, scores, strict=True)]
        mean = sum(scaled) / len(scaled)
        return -math.inf if math.isnan(mean) else mean
