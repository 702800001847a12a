"""What a training run is asked for (`TrainConfig`, the `ser train` options) and what it
resolves to (`Plan`: every default filled in, the device and precision picked, the run's
name), checked before any data is read; `config_record` is the record's copy of both."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ser.corpus.labels import get_label_set
from ser.errors import ConfigError
from ser.runtime.precision import resolve_precision
from ser.runtime.threads import Threads, parse_threads
from ser.train.models.config import ModelConfig, family_of, resolve, train_defaults
from ser.train.protocols import ProtocolConfig

DEVICES = ("auto", "cpu", "cuda")
# How a run selected its epoch, as records and reports name it.
VALIDATION = {
    "session": "one training session held out; best validation epoch tested",
    "random10": "10 % of the training side held out; best validation epoch tested",
    "none": "none: all training sessions, fixed epochs, last epoch tested (the papers' "
    "training set)",
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything `ser train` is asked to do; None means the model family's paper default."""

    store: str
    features: tuple[str, ...]
    model: ModelConfig
    classes: str | None = None  # "4" | "5" | "6"
    protocol: str | None = None  # "loso" | "session5" | "random"
    val: str = "session"  # "session" | "random10" | "none" (fixed epochs, last tested)
    epochs: int | None = None
    batch_size: int | None = None  # utterances, or dialogs for dialog-context models
    lr: float | None = None
    weight_decay: float | None = None
    seed: int = 0
    seeds: int | None = None  # number of repeats, seeds seed, seed+1, ...
    patience: int | None = None  # early stopping; None: the papers' fixed epochs
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # "auto": fp16 autocast on CUDA, fp32 on the CPU ("bf16" is opt-in there: faster,
    # ~0.5 UA point lower on average in our measurements); see ser/runtime/precision.py.
    precision: str = "auto"
    # torch CPU threads; None: from the CPU budget, "follow": the machine's load (the
    # results then depend on it); ser/runtime/threads.py
    threads: Threads = None
    # (seed, fold) runs trained at once as the members of one stacked model; None: all of
    # them (1: one after another). Bounds memory; results equal up to float rounding.
    members_at_once: int | None = None
    out: str = "runs"
    name: str | None = None
    overwrite: bool = False  # discard an existing record of the same name
    final: bool = False  # also train one model on every session (checkpoint "final")


@dataclass(frozen=True)
class Plan:
    """`TrainConfig` with every default resolved."""

    family: str
    classes: str
    protocol: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seeds: tuple[int, ...]
    device: torch.device
    precision: str  # resolved: "fp32" | "bf16" | "fp16"
    name: str
    run_dir: Path


def make_plan(config: TrainConfig) -> Plan:
    """Resolve defaults and check options that need no data."""
    family = family_of(config.model)
    defaults = train_defaults(config.model)
    classes = config.classes or defaults.classes
    get_label_set(classes)
    protocol = config.protocol or defaults.protocol
    ProtocolConfig(protocol, config.val, config.seed)  # validates the names
    n_seeds = defaults.seeds if config.seeds is None else config.seeds
    parse_threads(config.threads)
    for option in ("epochs", "batch_size", "seeds", "patience", "members_at_once"):
        value = n_seeds if option == "seeds" else getattr(config, option)
        if value is not None and value < 1:
            raise ConfigError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if config.val == "none" and config.patience is not None:
        raise ConfigError(
            "--patience stops on validation scores; --val none has no validation side "
            "(it trains the fixed epochs and tests the last)"
        )
    device = pick_device(config.device)
    precision = _training_precision(config.precision, device)
    name = config.name or default_name(config, protocol, classes)
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"--name {name!r} is not a usable directory name")
    return Plan(
        family=family,
        classes=classes,
        protocol=protocol,
        epochs=config.epochs or defaults.epochs,
        batch_size=config.batch_size or defaults.batch_size,
        lr=defaults.lr if config.lr is None else config.lr,
        weight_decay=defaults.weight_decay if config.weight_decay is None else config.weight_decay,
        seeds=tuple(range(config.seed, config.seed + n_seeds)),
        device=device,
        precision=precision,
        name=name,
        run_dir=Path(config.out) / name,
    )


def _training_precision(precision: str, device: torch.device) -> str:
    """ "auto": bf16 autocast on GPUs that have it (no loss scaling: its range is
    float32's), fp16 on older GPUs, float32 on the CPU."""
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return resolve_precision(precision, device, cpu_bf16=False)


def default_name(config: TrainConfig, protocol: str, classes: str) -> str:
    """e.g. ``hubert+mpnet_mit_loso_c4``, ``is13+bert_add-logits-perspective_session5_c4``;
    model options off their defaults follow (``_queries10_no-rmm_eval-mask-text``), so
    the ablations of one table get a directory each."""
    model = config.model
    fusion = "-".join(str(v) for v in (model.fusion, model.fusion_at) if v)
    if model.loss != "single":
        fusion += f"-{model.loss}"
    name = f"{'+'.join(config.features)}_{fusion}_{protocol}_c{classes}"
    defaults = ModelConfig(fusion=model.fusion)
    for f in dataclasses.fields(ModelConfig):
        value = getattr(model, f.name)
        if f.name in ("fusion", "fusion_at", "loss") or value == getattr(defaults, f.name):
            continue
        key = f.name.replace("_", "-")
        if isinstance(value, bool):
            name += f"_{key}" if value else f"_no-{key}"
        elif isinstance(value, tuple):
            name += f"_{key}{'-'.join(map(str, value))}"
        else:
            name += f"_{key}{'-' if isinstance(value, str) else ''}{value}"
    return name


def pick_device(name: str) -> torch.device:
    """ "auto": CUDA when available, else CPU; "cuda" without a GPU is refused."""
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def config_record(config: TrainConfig, plan: Plan) -> dict[str, Any]:
    """The run's config as recorded: model options flattened, defaults resolved."""
    model = {k: _jsonable(v) for k, v in dataclasses.asdict(resolve(config.model)).items()}
    return {
        "store": str(config.store),
        "features": "+".join(config.features),
        **model,
        "family": plan.family,
        "classes": plan.classes,
        "protocol": plan.protocol,
        "val": config.val,
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "lr": plan.lr,
        "weight_decay": plan.weight_decay,
        "seed": config.seed,
        "seeds": list(plan.seeds),
        "patience": config.patience,
        "device": config.device,
        "precision": plan.precision,
        "out": str(config.out),
        "name": plan.name,
    }


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
