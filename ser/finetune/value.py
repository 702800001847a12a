"""One `--finetune SET:top=K[,lora=R,...]` value read and checked (`FineTune`): each key
typed and within its bounds where it is parsed, so what a run records is what trained.

>>> tune = FineTune.parse("hubert.L9:top=3,lora=8")
>>> tune.top, tune.lora, tune.lora_alpha, tune.encoder_lr, tune.name_part
(3, 8, 16, 0.0001, '_ft-hubert.L9-top3-lora8')
>>> FineTune.parse("hubert.L9:lora=8,top=3").spelled
'hubert.L9:top=3,lora=8'
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ser.errors import ConfigError

#: The encoder's learning rate where none is given: SpeechBrain's IEMOCAP recipe's for
#: wav2vec2's whole layers; LoRA's adapters start at zero and take a larger one.
WHOLE_LR, LORA_LR = 1e-5, 1e-4
NORMS = ("train", "frozen")


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split("/") if v.strip())


# Each key: how its text reads, what values it takes, and those bounds in words.
_KEYS: dict[str, tuple[Callable[[str], Any], Callable[[Any], bool], str]] = {
    "top": (int, lambda v: v >= 1, "a whole number of layers (1 or more)"),
    "lora": (int, lambda v: v >= 1, "a whole number (LoRA's rank, 1 or more)"),
    "alpha": (int, lambda v: v >= 1, "a whole number (LoRA's scale, 1 or more; default 2 x lora)"),
    "targets": (_names, bool, "module names joined by / (e.g. q_proj/v_proj)"),
    "lr": (
        float,
        lambda v: math.isfinite(v) and v > 0,
        "a finite number above 0 (the encoder's learning rate, e.g. 1e-05)",
    ),
    "warmup": (
        float,
        lambda v: 0 <= v < 1,
        "a share of the steps, 0 or more and under 1 (e.g. 0.1)",
    ),
    "norms": (str, lambda v: v in NORMS, f"one of {', '.join(NORMS)}"),
}


@dataclass(frozen=True)
class FineTune:
    """One `--finetune` value: the `--features` request it tunes and how.

    top: the encoder layers above the cached one that train; lora: their LoRA adapters'
    rank (None: the layers whole); alpha: LoRA's scale (None: twice the rank, what
    `lora_alpha` gives); targets: LoRA's modules (none: the architecture's attention query
    and value); lr: the encoder's learning rate (None: `WHOLE_LR` or `LORA_LR`; the head
    keeps `--lr`); warmup: the share of training steps over which the encoder's rate rises
    from zero; norms: the layers' LayerNorms "train" (with LoRA too, beside the adapters)
    or stay "frozen"."""

    feature: str
    top: int
    lora: int | None = None
    alpha: int | None = None
    targets: tuple[str, ...] = ()
    lr: float | None = None
    warmup: float = 0.1
    norms: str = "train"

    @classmethod
    def parse(cls, text: str) -> FineTune:
        """`SET:top=K[,lora=R,alpha=A,targets=q_proj/v_proj,lr=X,warmup=F,norms=frozen]`."""
        text = text.strip()
        feature, _, options = text.partition(":")
        if not feature.strip() or not options.strip():
            raise ConfigError(
                f"{text or repr(text)}: give a feature set and its top layers, e.g. "
                "hubert.L9:top=3 or hubert.L9:top=3,lora=8"
            )
        values: dict[str, Any] = {}
        for part in options.split(","):
            key, value = _typed(text, *(s.strip() for s in part.partition("=")[::2]))
            if key in values:
                raise ConfigError(f"{text}: {key} is given twice")
            values[key] = value
        if "top" not in values:
            raise ConfigError(f"{text}: say how many layers train, e.g. top=2")
        made = cls(feature.strip(), **values)
        made.check(text)
        return made

    def check(self, text: str | None = None) -> None:
        """Every value within its bounds and with the keys it goes with; `ConfigError`
        naming the value given (`text`, else this one as spelled) otherwise."""
        said = text or self.spelled
        for key, (_, fits, bounds) in _KEYS.items():
            value = getattr(self, key)
            if value != _default(key) and not fits(value):
                raise ConfigError(f"{said}: {key} must be {bounds}")
        if self.alpha is not None and self.lora is None:
            raise ConfigError(f"{said}: alpha goes with lora (LoRA's scale)")
        if self.targets and self.lora is None:
            raise ConfigError(f"{said}: targets go with lora (the modules LoRA adapts)")

    @property
    def spelled(self) -> str:
        """The canonical text: the set, then each value off its default, in field order."""
        parts = []
        for f in dataclasses.fields(self)[1:]:
            value = getattr(self, f.name)
            if value != f.default:
                shown = (
                    "/".join(value)
                    if isinstance(value, tuple)
                    else f"{value:g}"
                    if (isinstance(value, float))
                    else str(value)
                )
                parts.append(f"{f.name}={shown}")
        return f"{self.feature}:{','.join(parts)}"

    @property
    def name_part(self) -> str:
        """How a run's default name says it: "_ft-hubert.L9-top3-lora8"."""
        rest = self.spelled.partition(":")[2].replace("=", "").replace(",", "-")
        return f"_ft-{self.feature}-{rest.replace('/', '+')}"

    @property
    def encoder_lr(self) -> float:
        return self.lr if self.lr is not None else LORA_LR if self.lora else WHOLE_LR

    @property
    def lora_alpha(self) -> int:
        """LoRA's scale as it trains: `alpha`, else twice the rank (0 without LoRA)."""
        return self.alpha if self.alpha is not None else 2 * (self.lora or 0)

    def describe(self, from_layer: int | None = None, default_targets: Sequence[str] = ()) -> str:
        """What trained, in words: the layers (numbered from 1, as the encoder's own; its
        cached layer `from_layer`, else the set's `.L<n>`), whole or with LoRA, the rate.

        >>> FineTune.parse("hubert.L9:top=2").describe()
        "hubert.L9's encoder layers 10-11 whole (lr 1e-05, warm-up 10 % of steps)"
        """
        below = from_layer if from_layer is not None else cached_layer(self.feature)
        if below is None:
            where = f"top {self.top} encoder layer{'s' if self.top > 1 else ''}"
        elif self.top == 1:
            where = f"encoder layer {below + 1}"
        else:
            where = f"encoder layers {below + 1}-{below + self.top}"
        if self.lora is None:
            how = "whole" + (", LayerNorms frozen" if self.norms == "frozen" else "")
        else:
            on = ", ".join(self.targets or default_targets) or "its default modules"
            how = f"with LoRA rank {self.lora} (alpha {self.lora_alpha}) on {on}"
        rate = f"lr {self.encoder_lr:g}, warm-up {100 * self.warmup:g} % of steps"
        return f"{self.feature}'s {where} {how} ({rate})"


def _default(key: str) -> object:
    field = next(f for f in dataclasses.fields(FineTune) if f.name == key)
    return field.default


def _typed(text: str, key: str, value: str) -> tuple[str, object]:
    """One `key=value` of a --finetune value (`text`) as its field's type, in its bounds."""
    if not key:
        raise ConfigError(f"{text}: an empty key=value (a stray comma?)")
    if key not in _KEYS:
        raise ConfigError(f"{text}: unknown key {key!r} (use {', '.join(_KEYS)})")
    read, fits, bounds = _KEYS[key]
    try:
        typed = read(value)
    except ValueError:
        typed = None
    if typed is None or not fits(typed):
        raise ConfigError(f"{text}: {key} must be {bounds}")
    return key, typed


def cached_layer(feature: str) -> int | None:
    """The layer a `--features` request's set holds, as its name says (`hubert.L9`,
    `mpnet.L3@asr-w`); None: not said."""
    found = re.search(r"\.L(\d+)(?:@|$)", feature)
    return None if found is None else int(found.group(1))


def parse_all(texts: Sequence[str]) -> tuple[FineTune, ...]:
    """Every --finetune value; one set tuned twice is refused."""
    tunes = tuple(FineTune.parse(t) for t in texts)
    named = [t.feature for t in tunes]
    if len(set(named)) < len(named):
        raise ConfigError(f"{max(named, key=named.count)} is named twice")
    return tunes
