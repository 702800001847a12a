"""What every model family's config is made of (`FamilyConfig`, `option`), and the input
planning they share (how a family declares its config: docs/dev/add-family.md).

>>> from ser.models.registry import ModelConfig
>>> config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
>>> unit, specs = plan_inputs(config, [FeatureInfo("is13", "audio", "utterance", 6373),
...                                    FeatureInfo("bert", "text", "token", 768)])
>>> type(config).__name__, config.d_model, unit, [s.view for s in specs]
('DialogConfig', 100, 'dialog', ['vector', 'vector'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, TypeVar

from ser.cache.fingerprint import LEVELS, MODALITIES
from ser.errors import ConfigError
from ser.models.batch import InputSpec, Unit, View

LOSSES = ("single", "perspective")
T = TypeVar("T")


def option(default: T, help: str | Callable[[], str], **meta: Any) -> T:
    """A config field: its default, its `ser train` help and checks the base class makes
    (`choices`, a `least` value, a value `below` which it must stay); `tested=True` for
    one that changes only how the trained model is tested (`FamilyConfig.as_trained`). A
    callable `help` or `choices` is called when the option table is made (from
    registries that grow)."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class FeatureInfo:
    """A feature set as the store describes it (what a config plans its inputs from)."""

    name: str
    modality: str  # "audio" | "text"
    level: str  # "frame" | "token" | "utterance"
    dim: int
    layers: int = 1  # layer sets of one encoder read as one input (a learnt weighted sum)


@dataclass(frozen=True)
class TrainDefaults:
    """A paper's training settings (our choice where it is silent). Its class set and
    protocol are not here: they are the corpus kind's (`ser.corpus.kind.CorpusKind`),
    and a paper's own setup is its sweep preset's (`ser.sweep.presets`)."""

    epochs: int
    batch_size: int  # utterances, or dialogs for unit "dialog"
    lr: float
    weight_decay: float
    optimizer: str = "adam"
    seeds: int = 1  # the paper's repeats


@dataclass(frozen=True)
class FamilyConfig:
    """The base of every family's config (module docstring)."""

    FUSIONS: ClassVar[dict[str, tuple[str, ...]]] = {}  # fusion -> options given with it
    fusion: str

    def __post_init__(self) -> None:
        check_choice("fusion", self.fusion, list(self.FUSIONS))
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if "choices" in meta:
                check_choice(f.name, value, meta["choices"])
            if "least" in meta and value < meta["least"]:
                raise ConfigError(f"{f.name} must be at least {meta['least']}, got {value}")
            if "below" in meta and value >= meta["below"]:
                raise ConfigError(f"{f.name} must be below {meta['below']}, got {value}")

    # What every model and the loop read; a family that has these options declares them
    # as fields (MSMSER's eval_mask, the perspective loss of the two-headed families).
    @property
    def loss(self) -> str:
        return "single"

    @property
    def eval_mask(self) -> str | None:
        return None

    @property
    def where(self) -> str:
        """How messages name the model: "fusion 'add' at early"."""
        return f"fusion {self.fusion!r}"

    def as_trained(self) -> FamilyConfig:
        """This config with the options that only change testing at their defaults: what
        training sees. Runs whose configs differ in those alone (MSMSER's Table 3 tests one
        model unmasked, without its audio and without its text) train one model, which
        `ser.train.group` trains once for them all."""
        tested: dict[str, Any] = {
            f.name: f.default for f in fields(self) if f.metadata.get("tested")
        }
        return replace(self, **tested) if tested else self

    def only_defaults(self, *names: str) -> None:
        """ConfigError for the first of these fields set off its default: options this
        model (e.g. an ablation of the family) has no use for."""
        defaults = field_defaults(type(self))
        for name in names:
            value = getattr(self, name)
            if value != defaults[name]:
                raise ConfigError(f"{as_flag(name, value)} does not apply to {self.where}")

    def plan(self, features: Sequence[FeatureInfo]) -> tuple[Unit, list[InputSpec]]:
        """(unit, an input spec with its view per feature set), or ConfigError."""
        raise NotImplementedError

    def check_sets(self, features: Sequence[FeatureInfo], sets: str) -> None:
        """ConfigError unless the feature sets are as `sets` ("one", "both", "either") says."""
        # `plan_inputs` has checked the modalities: one set is one audio or one text set.
        one = len(features) == 1
        both = sorted(f.modality for f in features) == list(MODALITIES)
        if not {"one": one, "both": both, "either": one or both}[sets]:
            takes = {
                "one": "takes exactly one feature set",
                "both": "fuses one audio and one text feature set",
                "either": "takes one audio and/or one text feature set",
            }
            raise ConfigError(f"{self.where} {takes[sets]}; got {describe(features)}")


def plan_inputs(
    config: FamilyConfig, features: Sequence[FeatureInfo]
) -> tuple[Unit, list[InputSpec]]:
    """`config.plan(features)` after the checks every family shares; a layered set's
    spec gets its layer count (the model mixes them before its family's forward)."""
    for feature in features:
        check_choice(f"modality of {feature.name}", feature.modality, MODALITIES)
        check_choice(f"level of {feature.name}", feature.level, LEVELS)
    if len({f.name for f in features}) != len(features):
        raise ConfigError(f"a feature set is named twice: {describe(features)}")
    if config.eval_mask is not None and len(features) != 2:
        raise ConfigError(
            f"--eval-mask {config.eval_mask} needs both modalities to keep one; "
            f"got {describe(features)}"
        )
    if config.loss == "perspective" and len(features) != 2:
        raise ConfigError(
            f"the perspective loss needs an audio and a text set; got {describe(features)}"
        )
    unit, planned = config.plan(features)
    layers = {f.name: f.layers for f in features}
    return unit, [replace(s, layers=layers[s.name]) if layers[s.name] > 1 else s for s in planned]


def specs(features: Sequence[FeatureInfo], view: View) -> list[InputSpec]:
    """Every set with one view."""
    return [InputSpec(f.name, f.modality, f.dim, view) for f in features]  # type: ignore[arg-type]


def field_defaults(config: type[FamilyConfig]) -> dict[str, Any]:
    """Field -> default of a family's config class (`fusion`, which has none, left out)."""
    return {f.name: f.default for f in fields(config) if f.name != "fusion"}


def as_flag(name: str, value: object) -> str:
    """An option as `ser train` spells it: "--queries 10", "--no-encoder", "--staged"."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return f"{flag} {shown}"


def describe(features: Sequence[FeatureInfo]) -> str:
    """e.g. "hubert (audio, frame, 768-d), mpnet (text, token, 768-d)", or "none"."""
    return ", ".join(f"{f.name} ({f.modality}, {f.level}, {_dim(f)})" for f in features) or "none"


def _dim(feature: FeatureInfo) -> str:
    return f"{feature.dim}-d" + (f" x {feature.layers} layers" if feature.layers > 1 else "")


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        shown = "|".join(str(a) for a in allowed if a is not None)
        raise ConfigError(f"unknown {name} {value!r}; choose {shown}")
