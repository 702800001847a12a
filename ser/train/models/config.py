"""Model configuration: which family a config selects, its paper defaults, its inputs.

Family selection (`family_of`):

=====================================  ==========  ==========================================
config                                 family      model
=====================================  ==========  ==========================================
fusion "mit"                           msmser      MSMSER (one feature set: the paper's
                                                   Text / Audio ablation, MIT over it alone)
fusion "concat", fusion_at None        msmser      MSMSER w/o MIT (pooled branches concat)
fusion add|concat|attention + at       dialog      Wu et al.'s fusion study (Table 2 cells)
fusion "none", context True            dialog      Wu et al.'s unimodal framework (Table 1)
fusion "late-prob"                     late_prob   Zhou et al.: CNN + text head, late fusion
fusion "none", context False           unimodal    mean-pooled features -> 2-layer MLP
=====================================  ==========  ==========================================

Options a family does not use raise `ConfigError` when set (never silently ignored):
`heads`, `layers` (msmser, dialog), `decoder_layers`, `queries` (msmser with MIT),
`encoder` / `selfatt` off and `eval_mask` (msmser), `cnn_channels` and `staged` (late_prob),
`loss="perspective"` (two-modality dialog and late_prob: the only families with a head per
modality), `context` (fusion "none"; implied by the fusion study). `rmm` is on by default
and only MSMSER with two modalities uses it. `option_applies` is that table, per option.

>>> config = ModelConfig(fusion="add", fusion_at="logits", loss="perspective")
>>> family_of(config)
'dialog'
>>> unit, specs = plan_inputs(config, [FeatureInfo("is13", "audio", "utterance", 6373),
...                                    FeatureInfo("bert", "text", "token", 768)])
>>> unit, [s.view for s in specs]
('dialog', ['vector', 'vector'])
>>> resolve(config).d_model, train_defaults(config).epochs
(100, 150)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ser.errors import ConfigError
from ser.train.batch import InputSpec
from ser.train.rmm import RmmSchedule

FUSIONS = ("mit", "concat", "add", "attention", "late-prob", "none")
FUSION_POSITIONS = ("early", "middle", "late", "logits")
LOSSES = ("single", "perspective")
MODALITIES = ("audio", "text")
LEVELS = ("frame", "token", "utterance")
DEFAULT_QUERIES = 30
T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Every model option; None means "the family's paper default" (see `resolve`)."""

    fusion: str  # "mit" | "concat" | "add" | "attention" | "late-prob" | "none"
    fusion_at: str | None = None  # None | "early" | "middle" | "late" | "logits"
    loss: str = "single"  # "single" | "perspective"
    queries: int = DEFAULT_QUERIES  # MSMSER L (paper: 30)
    rmm: bool = True  # MSMSER random modality masking
    encoder: bool = True  # MSMSER uni-modal transformer encoders (False: w/o Encoder)
    selfatt: bool = True  # MSMSER frame self-attention scaling (False: w/o SelfAtt)
    eval_mask: str | None = None  # None | "text" | "audio": drop it at evaluation
    d_model: int | None = None  # msmser 768, dialog 100, late_prob 256, unimodal 256
    heads: int | None = None  # msmser 8, dialog 4
    layers: int | None = None  # msmser encoder layers 2, dialog Bi-GRU layers 1
    decoder_layers: int | None = None  # msmser MIT decoder layers 2 (paper silent)
    dropout: float | None = None  # msmser 0.1, dialog 0.2, late_prob 0.6, unimodal 0.2
    context: bool = False  # fusion "none": Wu et al.'s dialog-context unimodal framework
    cnn_channels: tuple[int, ...] | None = None  # late_prob: (32, 64, 128, 256, 256)
    staged: bool | None = None  # late_prob: train each branch alone first (paper: True)
    rmm_p0: float = 0.8  # RMM start probability
    rmm_end: float = 0.7  # fraction of the epochs at which p reaches 0
    rmm_text: float = 0.6  # share of masked samples that lose the text (else audio)

    def __post_init__(self) -> None:
        _choice("fusion", self.fusion, FUSIONS)
        _choice("fusion_at", self.fusion_at, (None, *FUSION_POSITIONS))
        _choice("loss", self.loss, LOSSES)
        _choice("eval_mask", self.eval_mask, (None, *MODALITIES))
        for name in ("queries", "d_model", "heads", "layers", "decoder_layers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.cnn_channels is not None and (not self.cnn_channels or min(self.cnn_channels) < 1):
            raise ConfigError(f"cnn_channels must be positive numbers, got {self.cnn_channels}")
        self.rmm_schedule()  # validates the RMM numbers

    def rmm_schedule(self) -> RmmSchedule:
        return RmmSchedule(p0=self.rmm_p0, end_fraction=self.rmm_end, text_share=self.rmm_text)


@dataclass(frozen=True)
class FeatureInfo:
    """A feature set as the store describes it (what `plan_inputs` decides views from)."""

    name: str
    modality: str  # "audio" | "text"
    level: str  # "frame" | "token" | "utterance"
    dim: int


@dataclass(frozen=True)
class TrainDefaults:
    """The papers' training settings per family (our choice where a paper is silent)."""

    epochs: int
    batch_size: int  # utterances, or dialogs for unit "dialog"
    lr: float
    weight_decay: float
    optimizer: str = "adam"
    classes: str = "4"  # the paper's label set
    protocol: str = "loso"  # the paper's evaluation protocol
    seeds: int = 1  # the paper's repeats


_TRAIN_DEFAULTS = {
    # Wang et al. 3.2: Adam 2e-5, batch 8, 100 epochs, 5-fold leave-one-session-out.
    "msmser": TrainDefaults(100, 8, 2e-5, 0.0, classes="4", protocol="loso"),
    # Wu et al. 3.1/3.3: Adam 1e-3, L2 1e-5, 150 epochs, 20 dialogs, sessions 1-4 vs 5, 20 runs.
    "dialog": TrainDefaults(150, 20, 1e-3, 1e-5, classes="4", protocol="session5", seeds=20),
    # Zhou et al. table 2: Adam 1.5e-4, weight decay 1e-3, 15 epochs, 5 classes, 70/20/10
    # random split; batch size not given (32 is ours).
    "late_prob": TrainDefaults(15, 32, 1.5e-4, 1e-3, classes="5", protocol="random"),
    # Our baseline.
    "unimodal": TrainDefaults(50, 32, 1e-3, 1e-5, classes="4", protocol="loso"),
}

_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Paper: hidden 768, 8 heads; layer counts and dropout unstated (ours: 2, 2, 0.1).
    "msmser": {"d_model": 768, "heads": 8, "layers": 2, "decoder_layers": 2, "dropout": 0.1},
    # Paper: FC to 100, Bi-GRU 100 (50 per direction, as the published code), 4 heads, 0.2.
    "dialog": {"d_model": 100, "heads": 4, "layers": 1, "dropout": 0.2},
    # Paper: 5 conv layers, dropout 0.6; channels and linear width unstated (ours).
    # Paper: each branch is trained alone, then the combined model "is trained again".
    "late_prob": {
        "d_model": 256,
        "dropout": 0.6,
        "cnn_channels": (32, 64, 128, 256, 256),
        "staged": True,
    },
    "unimodal": {"d_model": 256, "dropout": 0.2},
}


def family_of(config: ModelConfig) -> str:
    """ "msmser" | "dialog" | "late_prob" | "unimodal" (table in the module docstring)."""
    if config.fusion_at is not None:
        if config.fusion not in ("add", "concat", "attention"):
            raise ConfigError(
                f"--fusion-at applies to the fusion study (add|concat|attention), "
                f"not to fusion {config.fusion!r}"
            )
        return "dialog"
    if config.fusion in ("add", "attention"):
        raise ConfigError(
            f"fusion {config.fusion!r} is the fusion study's: give --fusion-at "
            f"{'|'.join(FUSION_POSITIONS)}"
        )
    if config.fusion in ("mit", "concat"):
        family = "msmser"
    elif config.fusion == "late-prob":
        family = "late_prob"
    else:
        family = "dialog" if config.context else "unimodal"
    if config.context and config.fusion != "none":
        raise ConfigError(
            f"context applies to fusion 'none' (the fusion study always uses dialog "
            f"context), not to fusion {config.fusion!r}"
        )
    return family


def resolve(config: ModelConfig) -> ModelConfig:
    """`config` with the family's paper defaults filled in and inapplicable options refused."""
    family = family_of(config)
    _check_applicable(config, family)
    filled = {k: v for k, v in _MODEL_DEFAULTS[family].items() if getattr(config, k) is None}
    resolved = replace(config, **filled)
    d_model = need(resolved.d_model)
    if family in ("msmser", "dialog") and d_model % need(resolved.heads):
        raise ConfigError(f"d_model {d_model} is not divisible by {resolved.heads} heads")
    if family == "dialog" and d_model % 2:
        raise ConfigError(f"the Bi-GRU splits d_model in two directions: {d_model} is odd")
    return resolved


def need(value: T | None) -> T:
    """A resolved option's value (models call this on options `resolve` fills in)."""
    if value is None:
        raise TypeError("unresolved ModelConfig option: call resolve() first")
    return value


def train_defaults(config: ModelConfig) -> TrainDefaults:
    """The paper's optimiser, epochs, batch size, label set and protocol for the family."""
    return _TRAIN_DEFAULTS[family_of(config)]


def plan_inputs(config: ModelConfig, features: list[FeatureInfo]) -> tuple[str, list[InputSpec]]:
    """(unit, input specs with views) for these feature sets, or ConfigError.

    msmser: "sequence" views (an utterance-level set is a length-1 sequence), unit
    utterance. dialog: "vector" views (mean-pooled), unit dialog. late_prob: the
    frame-level audio set as "sequence" (the CNN's time axis), the text set as "vector"
    (frozen features stand in for the paper's fine-tuned BERT). unimodal: "vector".
    """
    family = family_of(config)
    _check_applicable(config, family)
    for feature in features:
        _choice(f"modality of {feature.name}", feature.modality, MODALITIES)
        _choice(f"level of {feature.name}", feature.level, LEVELS)
    _check_modalities(config, family, [(f.name, f.modality) for f in features], _describe(features))
    if family == "late_prob":
        audio = next(f for f in features if f.modality == "audio")
        if audio.level != "frame":
            raise ConfigError(
                f"fusion 'late-prob' runs a CNN over time and needs a frame-level audio set "
                f"(e.g. logmel80); got {_describe(features)}"
            )
    unit = "dialog" if family == "dialog" else "utterance"
    specs = [InputSpec(f.name, f.modality, f.dim, _view(family, f.modality)) for f in features]  # type: ignore[arg-type]
    return unit, specs


def check_inputs(config: ModelConfig, family: str, inputs: list[InputSpec]) -> None:
    """build_model's check: the same rules as plan_inputs, on specs (views included)."""
    described = ", ".join(f"{s.name} ({s.modality}, {s.view}, {s.dim}-d)" for s in inputs)
    _check_modalities(config, family, [(s.name, s.modality) for s in inputs], described)
    for spec in inputs:
        want = _view(family, spec.modality)
        if spec.view != want:
            raise ConfigError(
                f"fusion {config.fusion!r} takes a {want} view of {spec.name}, got {spec.view}"
            )


def _view(family: str, modality: str) -> str:
    if family == "msmser" or (family == "late_prob" and modality == "audio"):
        return "sequence"
    return "vector"


def _check_modalities(
    config: ModelConfig, family: str, items: list[tuple[str, str]], described: str
) -> None:
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"a feature set is named twice: {described}")
    modalities = sorted(modality for _, modality in items)
    label = f"fusion {config.fusion!r}" + (f" at {config.fusion_at}" if config.fusion_at else "")
    one_set = family == "unimodal" or (family == "dialog" and config.fusion == "none")
    if one_set and len(items) != 1:
        raise ConfigError(f"{label} takes exactly one feature set; got {described or 'none'}")
    two_sets = family == "late_prob" or (family == "dialog" and config.fusion != "none")
    if two_sets and modalities != ["audio", "text"]:
        raise ConfigError(
            f"{label} fuses one audio and one text feature set; got {described or 'none'}"
        )
    if family == "msmser" and (not 1 <= len(items) <= 2 or len(set(modalities)) != len(items)):
        raise ConfigError(
            f"{label} takes one audio and/or one text feature set; got {described or 'none'}"
        )
    if config.eval_mask is not None and len(items) != 2:
        raise ConfigError(
            f"--eval-mask {config.eval_mask} needs both modalities to keep one; got {described}"
        )
    if config.loss == "perspective" and len(items) != 2:
        raise ConfigError(f"the perspective loss needs an audio and a text set; got {described}")


def option_applies(config: ModelConfig, family: str, n_sets: int | None = None) -> dict[str, bool]:
    """Per option (a `ModelConfig` field but `fusion`): whether `family`, selected by
    `config`, reads it. `resolve` refuses the options set off their defaults where False;
    a report names only options that apply (`ser.train.report.run_settings`). RMM and its
    schedule apply to MSMSER over two feature sets: `n_sets`, None when not known."""
    uses_mit = family == "msmser" and config.fusion == "mit"
    two_sets = n_sets is None or n_sets == 2
    return {
        "fusion_at": family == "dialog" and config.fusion != "none",
        "loss": family in ("dialog", "late_prob"),  # the perspective loss
        "queries": uses_mit,
        **dict.fromkeys(("rmm", "rmm_p0", "rmm_end", "rmm_text"), family == "msmser" and two_sets),
        **dict.fromkeys(("encoder", "selfatt", "eval_mask"), family == "msmser"),
        "d_model": True,
        "heads": family in ("msmser", "dialog"),
        "layers": family in ("msmser", "dialog"),
        "decoder_layers": uses_mit,
        "dropout": True,
        "context": config.fusion == "none",
        **dict.fromkeys(("cnn_channels", "staged"), family == "late_prob"),
    }


# Options refused where they do not apply, as the refusal names them, in its order.
_REFUSED = {
    "heads": "heads", "layers": "layers", "decoder_layers": "decoder_layers",
    "queries": "queries", "encoder": "no-encoder", "selfatt": "no-selfatt",
    "eval_mask": "eval_mask", "cnn_channels": "cnn_channels", "staged": "staged",
    "loss": "perspective loss",
}  # fmt: skip


def _check_applicable(config: ModelConfig, family: str) -> None:
    applies = option_applies(config, family)
    bare = ModelConfig(fusion=config.fusion)  # every option at its default
    for field, option in _REFUSED.items():
        if getattr(config, field) != getattr(bare, field) and not applies[field]:
            where = f" at {config.fusion_at}" if config.fusion_at else ""
            raise ConfigError(f"{option} does not apply to fusion {config.fusion!r}{where}")


def _describe(features: list[FeatureInfo]) -> str:
    return ", ".join(f"{f.name} ({f.modality}, {f.level}, {f.dim}-d)" for f in features)


def _choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        shown = "|".join(str(a) for a in allowed if a is not None)
        raise ConfigError(f"unknown {name} {value!r}; choose {shown}")
