"""What a training run is asked for (`TrainConfig`, the `ser train` options) and what it
resolves to (`Plan`: every default filled in, the device and precision picked, the run's
name), checked before any data is read; `config_record` is the record's copy of both."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ser.cache.formats import backend_for
from ser.corpus.registry import CLASS_WEIGHTS, CorpusKind, class_set_names, store_kind
from ser.errors import ConfigError
from ser.models import FamilyConfig, family_of
from ser.models.batch import InputSpec, Unit
from ser.models.config import field_defaults, option
from ser.models.registry import config_record as model_record
from ser.report.predictions import PredictionTable
from ser.runtime.device import DEVICE_HELP, pick_device
from ser.runtime.precision import PRECISIONS, auto_help, resolve_precision
from ser.runtime.threads import parse_threads
from ser.train.data import TrainData
from ser.train.group_protocols import parse_protocol
from ser.train.protocols import PROTOCOLS, VAL_MODES, Fold, ProtocolConfig

# How a run selected its epoch, as records and reports name it.
VALIDATION = {
    "session": "one training session held out; best validation epoch tested",
    "random10": "10 % of the training side held out; best validation epoch tested",
    "none": "none: all training sessions, fixed epochs, last epoch tested (the papers' "
    "training set)",
}
# The same under the corpora's own protocols, whose groups are not sessions.
GROUP_VALIDATION = {
    "official": {
        "session": "the official dev partition; best validation epoch tested",
        "none": "none: train and dev trained on, fixed epochs, last epoch tested",
    },
    "grouped": {
        "session": "the next group of the training side held out; best validation epoch tested",
        "none": "none: every training group, fixed epochs, last epoch tested",
    },
}


def validation_text(protocol: str, val: str) -> str:
    """How a run under `protocol` selected its epoch with `--val val`, as records say it."""
    grouped = parse_protocol(protocol)
    if grouped is not None:
        kind = "official" if grouped.kind == "official" else "grouped"
        return GROUP_VALIDATION[kind].get(val, VALIDATION.get(val, val))
    return VALIDATION.get(val, val)


@dataclass(frozen=True)
class TrainConfig:
    """Everything `ser train` is asked to do (its options: `ser.train.options`); None
    means the model family's paper default."""

    store: str = field(metadata={"help": "Feature store (.zarr or .h5).", "envvar": "SER_STORE"})
    features: tuple[str, ...] = field(
        metadata={
            "kind": "features",
            "metavar": "A+B",
            "help": "Feature sets joined by '+', by name or extractor (hubert+mpnet, is13+bert).",
        }
    )
    model: FamilyConfig  # its options: the registered families' config fields
    classes: str | None = option(
        None,
        "Label set: IEMOCAP's 4, 5, 6; a corpus's own (crema-d 6, ravdess 8, all: a "
        "manifest's every label).",
        choices=class_set_names(),
    )
    protocol: str | None = option(
        None,
        f"Evaluation protocol: {', '.join(PROTOCOLS)} (IEMOCAP's sessions), "
        "speaker-kfold[:K[:SEED]], logo:<column>, official (a manifest's split) [default: "
        "the family's on IEMOCAP, else the corpus's].",
    )
    val: str = option(
        "session",
        "Validation carved from the training side; none: train on all training sessions "
        "for the fixed epochs and test the last (the papers' training set).",
        choices=VAL_MODES,
    )
    epochs: int | None = option(None, "Training epochs.")
    batch_size: int | None = option(None, "Utterances, or dialogs for dialog-context models.")
    lr: float | None = option(None, "Learning rate (Adam).")
    weight_decay: float | None = option(None, "Adam's L2 weight decay.")
    seed: int = option(0, "The first seed.")
    seeds: int | None = option(None, "Repeats with seeds seed, seed+1, ...")
    patience: int | None = option(None, "Early stopping patience (off by default).")
    class_weights: str | None = option(
        None,
        "Cross-entropy weights per class: balanced (n / (classes x n_class), from each "
        "fold's own training side; every loss of the family, never validation), none "
        "[default: the corpus's: none, MELD balanced]. Recorded per fold.",
        choices=CLASS_WEIGHTS,
    )
    device: str = option("auto", f"Training device. {DEVICE_HELP}", metavar="auto|cpu|cuda[:N]")
    precision: str = option(
        "auto",
        f"{auto_help('train')} bf16 autocast on a CPU is ~20% faster but scored ~0.5 UA "
        "points lower on average in our tests. Recorded.",
        choices=PRECISIONS,
    )
    # torch CPU threads; None: from the CPU budget; its help: ser/runtime/threads.py
    threads: int | None = field(default=None, metadata={"kind": "threads", "metavar": "N"})
    members_at_once: int | None = option(
        None,
        "(seed, fold) runs trained together as the members of one ensemble [all of them on "
        "a GPU, and on the CPU for the unimodal and dialog models, else 1]; lower it to "
        "bound memory, 1 trains them one after another. Without dropout or RMM the same "
        "results up to float rounding; with them each member draws its own random numbers.",
    )
    processes: int | None = option(
        None,
        "Processes training the (seed, fold) runs side by side on the CPU, each with cores "
        "// N torch threads unless --threads; 1 trains in this process [default: on the "
        "CPU one 1-thread process per core (one left free above 2 cores), at most one per "
        "(seed, fold) run, for a run big enough to pay for their start-up "
        "(ser/train/pool.py); else 1]. Recorded.",
        metavar="N",
    )
    out: str = option("runs", "Folder of the runs.")
    name: str | None = option(None, "Run name [derived from the config].")
    overwrite: bool = option(False, "Discard an existing run of the same name.")
    final: bool = option(
        False,
        "Also train one model on every session for the folds' median selected epoch "
        "(checkpoint 'final', for `ser predict --checkpoint final`).",
    )


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
    class_weights: str = "none"  # resolved: "none" | "balanced"
    class_weights_from: str = ""  # "" (asked for) or the corpus whose default it is


@dataclass
class Prepared:
    """A run ready to train (`ser.train.run`): its plan, record and data, and the (seed,
    fold) jobs its record does not hold yet."""

    config: TrainConfig
    plan: Plan
    record: dict[str, Any]
    data: TrainData
    unit: Unit
    specs: list[InputSpec]
    todo: list[tuple[int, int, Fold]]  # (seed, fold index, fold)
    # The store's provenance of its sets as its checkpoints hold them, read once when the
    # run opens the store (`ser.train.checkpoint.provenance`), not per checkpoint.
    provenance: dict[str, Any]
    # (seed, fold) -> its test predictions (`ser.report.predictions`): predictions.csv's rows
    predictions: dict[tuple[int, str], PredictionTable] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    planned: int = 0  # (seed, fold) jobs of the whole run, done or not: seeds x folds


def make_plan(config: TrainConfig) -> Plan:
    """Resolve defaults and check options that need no data."""
    family = family_of(config.model)
    defaults = family.train
    classes = config.classes or defaults.classes
    kind = corpus_of(config.store)
    protocol = config.protocol or corpus_protocol(kind) or defaults.protocol
    class_weights = config.class_weights or (kind.class_weights if kind else "none")
    weights_from = kind.title if kind and not config.class_weights else ""
    ProtocolConfig(protocol, config.val, config.seed)  # validates the names
    n_seeds = defaults.seeds if config.seeds is None else config.seeds
    parse_threads(config.threads)
    for name in ("epochs", "batch_size", "seeds", "patience", "members_at_once", "processes"):
        value = n_seeds if name == "seeds" else getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if config.val == "none" and config.patience is not None:
        raise ConfigError(
            "--patience stops on validation scores; --val none has no validation side "
            "(it trains the fixed epochs and tests the last)"
        )
    device = pick_device(config.device)
    precision = resolve_precision(config.precision, device, "train")
    if (config.processes or 1) > 1 and device.type != "cpu":
        raise ConfigError(
            f"--processes {config.processes} trains on the CPU; on {device} the members "
            "stack on the device (leave --processes out)"
        )
    name = config.name or default_name(config, protocol, classes, kind)
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"--name {name!r} is not a usable directory name")
    return Plan(
        family=family.name,
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
        class_weights=class_weights,
        class_weights_from=weights_from if class_weights != "none" else "",
    )


def corpus_of(store: str) -> CorpusKind | None:
    """The corpus kind of the store, from its root attrs only; None for a store not there
    yet (the run's own open says what is wrong)."""
    try:
        attrs = backend_for(Path(store).absolute(), writable=False).root_attrs()
    except Exception:
        return None
    return store_kind(attrs)


def corpus_protocol(kind: CorpusKind | None) -> str | None:
    """The default protocol of a store's corpus kind (`corpus_of`); None for IEMOCAP (its
    families' papers' protocols) or a store not there yet."""
    return None if kind is None or kind.name == "iemocap" else kind.protocol


def default_name(
    config: TrainConfig, protocol: str, classes: str, kind: CorpusKind | None = None
) -> str:
    """e.g. ``hubert+mpnet_mit_loso_c4``, ``is13+bert_add-logits-perspective_session5_c4``;
    model options off their defaults follow (``_queries10_no-rmm_eval-mask-text``), so
    the ablations of one table get a directory each, and class weights other than the
    corpus's (`kind`'s) own (``_class-weights-balanced``)."""
    model = config.model
    defaults = field_defaults(type(model))
    changed = {k: v for k, v in dataclasses.asdict(model).items() if v != defaults.get(k, v)}
    fusion = "-".join(str(v) for v in (model.fusion, changed.pop("fusion_at", None)) if v)
    if "loss" in changed:
        fusion += f"-{changed.pop('loss')}"
    name = f"{'+'.join(config.features)}_{fusion}_{protocol}_c{classes}"
    for option_name, value in changed.items():
        key = option_name.replace("_", "-")
        if isinstance(value, bool):
            name += f"_{key}" if value else f"_no-{key}"
        elif isinstance(value, tuple):
            name += f"_{key}{'-'.join(map(str, value))}"
        else:
            name += f"_{key}{'-' if isinstance(value, str) else ''}{value}"
    own = kind.class_weights if kind else "none"
    if config.class_weights not in (None, own):
        name += f"_class-weights-{config.class_weights}"
    return name


def config_record(config: TrainConfig, plan: Plan) -> dict[str, Any]:
    """The run's config as recorded: the model's options flattened beside its family's
    name (`models.registry.config_record`), defaults resolved."""
    return {
        "store": str(config.store),
        "features": "+".join(config.features),
        **model_record(config.model),
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
        # only when weighted: the records of every unweighted run stay as they were
        **({"class_weights": plan.class_weights} if plan.class_weights != "none" else {}),
        "device": str(plan.device),  # resolved (the request "auto" says nothing)
        "precision": plan.precision,
        "out": str(config.out),
        "name": plan.name,
    }
