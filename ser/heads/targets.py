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

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ser import Json
from ser.corpus.labels import LabelSet
from ser.corpus.records import ATTRIBUTES
from ser.errors import ConfigError
from ser.heads.attributes import ATTRIBUTE_LOSSES, AttributeHead
from ser.heads.base import GoldSource, Head, ScaleView, Side
from ser.heads.emotion import EmotionHead
from ser.heads.registry import HEADS, head_of, options_of

if TYPE_CHECKING:  # torch loads where a head trains or predicts, never for a report
    import torch

#: `--target` values of the category and the attributes (registered heads join them
#: with `+`: `emotion+sentiment`).
TARGETS = (
    "emotion",
    "attributes",
    *ATTRIBUTES,
    "emotion+attributes",
    *(f"emotion+{a}" for a in ATTRIBUTES),
)
LABELS = ("hard", "soft")


@dataclass(frozen=True)
class Targets:
    """A run's targets: the category or not, the attributes (in `ATTRIBUTES` order), the
    attribute loss and its weight beside the category's, hard or soft class labels, the
    further heads' names, and the further heads' options (each a field named as the
    head's constructor names it: `ser.heads.registry.options_of`)."""

    emotion: bool = True
    attributes: tuple[str, ...] = ()
    loss: str = "ccc"
    weight: float = 1.0
    soft: bool = False
    others: tuple[str, ...] = ()
    emotions_as: str = "presence"  # `ser.heads.emotion_intensities`: presence or intensity

    @classmethod
    def parse(
        cls,
        target: str = "emotion",
        loss: str = "ccc",
        weight: float = 1.0,
        labels: str = "hard",
        emotions_as: str = "presence",
    ) -> Targets:
        """From `ser train`'s --target, --attribute-loss, --attribute-weight, --labels,
        --emotions-as."""
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
        parsed = cls(emotion, attributes, loss, weight, labels == "soft", others, emotions_as)
        taken = {k for name in others for k in options_of(name)}
        if parsed.emotions_as != cls.emotions_as and "emotions_as" not in taken:
            raise ConfigError(f"--emotions-as trains the emotions head: --target {target} has none")
        for name in others:  # a head refuses an option value it does not know
            if head_of(name, dataclasses.asdict(parsed)).of_the_classes and not emotion:
                raise ConfigError(
                    f"--target {name} marks the classes of the run's category: train it "
                    f"beside them (--target emotion+{name})"
                )
        return parsed

    @classmethod
    def from_record(cls, meta: Mapping[str, Any]) -> Targets:
        """From a checkpoint's or an export's record of them (`dataclasses.asdict`)."""
        lists = {k: tuple(meta.get(k, ())) for k in ("attributes", "others")}
        return cls(**{**meta, **lists})

    def to_record(self) -> dict[str, Json]:
        """What a checkpoint or an export records of them (`from_record` reads it back):
        `others` only where there are some, so the older records stay as they were."""
        record = dataclasses.asdict(self)
        if not self.others:
            del record["others"]
        if self.emotions_as == Targets.emotions_as:
            del record["emotions_as"]
        return record

    def record_keys(self) -> dict[str, Json]:
        """A run record's keys of them, each on or off (off: null): the --target where not
        the category alone, the attribute loss (and its weight beside the category) where
        attributes train, soft labels, and the options of the further heads that take some
        (`--emotions-as`) where those heads train."""
        keys: dict[str, Json] = {"target": self.name if self.name != "emotion" else None}
        keys["attribute_loss"] = self.loss if self.attributes else None
        keys["attribute_weight"] = self.weight if self.attributes and self.emotion else None
        keys |= {k: getattr(self, k) for name in self.others for k in options_of(name)}
        return keys | {"labels": "soft" if self.soft else None}

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
        options = dataclasses.asdict(self)
        return (*heads, *(head_of(name, options) for name in self.others))

    @property
    def category(self) -> Head | None:
        """The head that is the run's category (`Head.category`), None: it has none."""
        return next((h for h in self.heads if h.category), None)

    def classes(self, label_set: LabelSet) -> tuple[str, ...]:
        """The run's classes: the class set's with the category, none without."""
        return label_set.classes if self.emotion else ()

    def scaled(self, gold: Mapping[str, np.ndarray], rows: np.ndarray) -> np.ndarray | None:
        """The values [n, A] of the targets fitted on a training side's scale (the
        attributes') of `gold` (`Head.gold` by head) at `rows`; None: none."""
        return gold[AttributeHead.name][rows] if self.attributes else None

    def gold(self, source: GoldSource) -> dict[str, np.ndarray]:
        """Every head's gold [N, G] (`Head.gold`), by name; `ConfigError` for a head of
        which no utterance has any (a column of another kind's values, say)."""
        gold = {h.name: h.gold(source) for h in self.heads}
        for name, values in gold.items():
            if not np.isfinite(values).any():
                raise ConfigError(
                    f"--target {self.name}: no utterance of {source.store.path} has a "
                    f"{name} value this head reads"
                )
        return gold

    def widths(self, n_classes: int) -> tuple[int, ...]:
        """Each head's outputs in the model's last layer."""
        return tuple(h.width(n_classes) for h in self.heads)

    def outputs(self, n_classes: int) -> int:
        """The width of a model's last layer: every head's outputs."""
        return sum(self.widths(n_classes))

    def split(self, logits: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, ...]:
        """[..., sum of widths] -> each head's outputs [..., W]."""
        return tuple(logits.split(self.widths(n_classes), dim=-1))

    def category_attributes(
        self, logits: torch.Tensor, n_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., sum of widths] -> the category's logits [..., C] and the attributes'
        predictions [..., A] (each [..., 0] where the run has none)."""
        parts = self.split(logits, n_classes)
        none = logits[..., :0]
        i = 1 if self.emotion else 0
        return parts[0] if self.emotion else none, parts[i] if self.attributes else none

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

    def curve_keys(self) -> tuple[str, ...]:
        """The curve values `validation` gives (NaN where a side has no validation)."""
        keys = [
            *(("val_ua", "val_wa") if self.emotion else ()),
            *(("val_ccc",) if self.attributes else ()),
        ]
        return (*keys, *(f"val_{name}" for name in self.others))

    def decide(self, parts: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The predicted class [...] of each item (`split`'s `parts`): the category's
        argmax, class 0 in a run without it."""
        import torch

        return parts[0].argmax(dim=-1) if self.emotion else torch.zeros_like(labels)

    def bounded(
        self, outputs: Sequence[np.ndarray], scale: ScaleView | None
    ) -> tuple[np.ndarray, ...]:
        """Each head's predictions [N, W] (in head order) held to the training side's
        `scale` as the head holds them (`Head.bounded`); none: a side without items."""
        if not outputs:
            return ()
        return tuple(h.bounded(o, scale) for h, o in zip(self.heads, outputs, strict=True))

    def output_of(self, name: str, parts: Sequence[np.ndarray]) -> np.ndarray | None:
        """The entry of `parts` (one per head, in head order: outputs, golds) of the head
        named `name`; None: the run has no such head."""
        names = [h.name for h in self.heads]
        return parts[names.index(name)] if name in names else None

    def evaluate(
        self,
        outputs: Sequence[np.ndarray],
        golds: Sequence[np.ndarray],
        classes: Sequence[str],
        decided: tuple[np.ndarray, np.ndarray],
    ) -> dict[str, Any]:
        """The category's metrics of a side's predictions (`metrics`) and the attributes'
        (`attribute_metrics`), and every other head's as a fold entry's ``heads`` keeps
        them (`scores`, by head name: `Head.write`); the category scores the classes
        `decided` (gold, predicted) on the device."""
        scores = {
            h.name: h.evaluate(Side(o, g, h.names(classes), decided))
            for h, o, g in zip(self.heads, outputs, golds, strict=True)
        }
        metrics, attributes = scores.get(EmotionHead.name), scores.get(AttributeHead.name)
        typed = (EmotionHead.name, AttributeHead.name)  # the entry's own fields hold them
        written = {h.name: h.write(scores[h.name]) for h in self.heads if h.name not in typed}
        return {"metrics": metrics, "attribute_metrics": attributes, "scores": written}

    def validation(
        self,
        outputs: Sequence[np.ndarray],
        golds: Sequence[np.ndarray],
        decided: tuple[np.ndarray, np.ndarray],
        classes: Sequence[str],
    ) -> tuple[dict[str, float], float]:
        """A validation side's curve values (``val_ua``, ``val_wa``: the category's;
        ``val_ccc``: the attributes' mean CCC; ``val_<head>``: another head's score) and
        the score selection compares (`selection`)."""
        values: dict[str, float] = {}
        scores = []
        for h, o, g in zip(self.heads, outputs, golds, strict=True):
            curve, score = h.validate(Side(o, g, h.names(classes), decided))
            values |= curve
            scores.append(score)
        return values, self.selection(scores)
