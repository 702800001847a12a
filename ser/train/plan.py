"""What a training run's config (`ser.train.options.TrainConfig`) resolves to: the same
config with its defaults filled in (`resolve`: class set, protocol, epochs, batch size,
rates, seed count, class weights, the cross-corpus test class set, device, precision and
name), from the config and its store's corpus kind alone, reading no data (`resolve_in`:
with the corpora of the stores `open_stores` opened once for several configs); what a run
derives from its resolved config (`seeds_of`, `device_of`, `run_dir`, `run_targets`,
`tracking_of`, and with its opened stores' corpora `protocol_of`, `tested`); `Prepared`:
a run opened for training (`ser.train.prepare`), and each of its (seed, fold)s a `Job`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.cache.corpus import StoreCorpus
from ser.corpus.protocols.cross import CrossCorpus
from ser.corpus.protocols.folds import VAL_MODES, Fold, Protocol
from ser.corpus.registry import (
    CorpusKind,
)
from ser.errors import ConfigError
from ser.finetune.tuning import Tuning, parse_all
from ser.models import family_of
from ser.models.batch import InputSpec, Unit
from ser.models.targets import Targets
from ser.runs.predictions import PredictionTable
from ser.runs.record import RunRecord
from ser.runtime.device import pick_device
from ser.runtime.precision import resolve_precision
from ser.runtime.threads import parse_threads
from ser.track.tracking import Tracking
from ser.train.augment import augment_of, check_targets
from ser.train.data import TrainData
from ser.train.identity import default_name
from ser.train.options import ATTRIBUTE_WEIGHT, ResolvedConfig, TrainConfig, resolved_type


@dataclass(kw_only=True)
class Prepared:
    """A run ready to train (`ser.train.recipe`): its resolved config (`resolve`), record
    and data, and the (seed, fold) jobs its record does not hold yet; built once, whole
    (`ser.train.prepare`). Its `record` alone changes after: it grows as each group ends."""

    config: ResolvedConfig
    record: RunRecord
    data: TrainData
    unit: Unit
    specs: list[InputSpec]
    todo: list[tuple[int, int, Fold]]  # (seed, fold index, fold)
    # The store's provenance of its sets as its checkpoints hold them, read once when the
    # run opens the store (`ser.train.prepare.provenance`), not per checkpoint.
    provenance: dict[str, Any]
    # (seed, fold) -> its test predictions (`ser.runs.predictions`): predictions.csv's rows
    predictions: dict[tuple[int, str], PredictionTable] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    planned: int = 0  # (seed, fold) jobs of the whole run, done or not: seeds x folds
    tuning: Tuning | None = None  # the inputs whose encoder's top layers train
    # --calibrate: utt_id -> its annotators' vote distribution (`ser.train.calibration`)
    votes: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One (seed, fold) of a prepared run; `k` is the fold's index in the protocol."""

    run: Prepared
    seed: int
    k: int
    fold: Fold

    @property
    def stream(self) -> int:
        """The seed of this job's batch order (and of its draws when trained alone)."""
        return self.seed * 1000 + self.k


def resolve(
    config: TrainConfig, corpus: CorpusKind, test: StoreCorpus | None = None
) -> ResolvedConfig:
    """`config` with its defaults filled in and its options checked, for a store of
    `corpus`'s kind (what the store's `corpus` hands out) and, cross-corpus, the opened
    test store's `test`: no data read. Its `--target` is named as the kind means it."""
    defaults = family_of(config.model).train
    classes = config.classes or corpus.classes
    tested = _test_store(config, classes, test)
    protocol = protocol_of(config, corpus, test)
    if config.val not in VAL_MODES:
        raise ConfigError(
            f"unknown validation mode {config.val!r}: choose one of {', '.join(VAL_MODES)}"
        )
    class_weights = config.class_weights or corpus.class_weights
    spelled = dataclasses.replace(config, target=corpus.target(config.target))  # one name
    targets = run_targets(spelled)
    _check_targets(config, targets, class_weights, tested)
    n_seeds = defaults.seeds if config.seeds is None else config.seeds
    parse_threads(config.threads)
    for name in ("epochs", "batch_size", "seeds", "patience", "members_at_once", "processes"):
        value = n_seeds if name == "seeds" else getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    _check_validation(config, targets)
    device = pick_device(config.device)
    precision = resolve_precision(config.precision, device, "train")
    _check_steps(config, device, precision)
    _check_finetune(config)
    where = str(protocol)
    if config.test_store:  # e.g. iemocap-to-meld: both stores' names
        where = f"{Path(config.store).stem}-to-{Path(config.test_store).stem}"
    context = {"classes": classes, "own_weights": corpus.class_weights}
    name = config.name or default_name(spelled, where, context)
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"--name {name!r} is not a usable directory name")
    masks = augment_of(config) if config.augment == "mask" else None  # else none drawn
    asked = {f.name: getattr(spelled, f.name) for f in dataclasses.fields(spelled)}
    filled_in: dict[str, Any] = {
        "classes": classes,
        "protocol": str(protocol),
        "epochs": config.epochs or defaults.epochs,
        "batch_size": config.batch_size or defaults.batch_size,
        "lr": defaults.lr if config.lr is None else config.lr,
        "weight_decay": defaults.weight_decay
        if config.weight_decay is None
        else config.weight_decay,
        "seeds": n_seeds,
        "class_weights": class_weights,
        "test_classes": None if tested is None else tested["classes"],
        "device": str(device),
        "precision": precision,
        "name": name,
        "attribute_weight": targets.weight,
        "mask_time": None if masks is None else masks.time,
        "mask_features": None if masks is None else masks.features,
    }
    return resolved_type(type(config))(**asked | filled_in)


def seeds_of(config: ResolvedConfig) -> tuple[int, ...]:
    """A resolved config's seeds: seed, seed+1, ... (`--seeds` of them)."""
    return tuple(range(config.seed, config.seed + config.seeds))


def device_of(config: TrainConfig) -> torch.device:
    """The device a resolved config trains on."""
    return pick_device(config.device)


def run_dir(config: ResolvedConfig) -> Path:
    """A resolved config's run folder: ``<out>/<name>``."""
    return Path(config.out) / config.name


def tracking_of(config: TrainConfig) -> Tracking | None:
    """Where the run is logged (`--track`, `--track-uri`; None: untracked)."""
    return Tracking.of(config.track, config.track_uri, config.out)


def run_targets(config: TrainConfig) -> Targets:
    """The run's `Targets`, its `--target` named as its store's kind means it (a resolved
    config's is: `CorpusKind.target`)."""
    weight = ATTRIBUTE_WEIGHT if config.attribute_weight is None else config.attribute_weight
    return Targets.parse(
        config.target, config.attribute_loss, weight, config.labels, config.emotions_as
    )


def protocol_of(config: TrainConfig, corpus: CorpusKind, test: StoreCorpus | None) -> Protocol:
    """The run's protocol on a store of `corpus`'s kind: its `--protocol` (or the kind's
    default) parsed, or cross-corpus (`test`: the opened test store's corpus) one fold
    trained on the store and tested on the test store."""
    if config.test_store is not None and test is not None:
        return CrossCorpus("cross", corpus.title, test.title)
    return corpus.parse_protocol(config.protocol or corpus.protocol)


def tested(config: ResolvedConfig, test: StoreCorpus | None) -> dict[str, str] | None:
    """A resolved cross-corpus run's test store as its record holds it: corpus kind,
    manifest (`StoreCorpus.digest`), class set (None: not cross-corpus)."""
    if test is None or config.test_store is None:
        return None
    return {"corpus": test.name, "manifest": test.digest, "classes": str(config.test_classes)}


def weights_from(config: TrainConfig, corpus: CorpusKind) -> str:
    """The corpus whose default class weights an asked (not resolved) config takes ("":
    none, or the ones asked for)."""
    class_weights = config.class_weights or corpus.class_weights
    return corpus.title if class_weights not in ("none", config.class_weights) else ""


def _check_validation(config: TrainConfig, targets: Targets) -> None:
    """Options that need a validation side, or classes, refused without them."""
    if config.val == "none" and config.patience is not None:
        raise ConfigError(
            "--patience stops on validation scores; --val none has no validation side "
            "(it trains the fixed epochs and tests the last)"
        )
    if targets.category is None and config.calibrate != "none":
        raise ConfigError(
            f"--calibrate {config.calibrate} scales class probabilities: --target "
            f"{targets.name} has no classes"
        )
    if config.val == "none" and config.calibrate != "none":
        raise ConfigError(
            f"--calibrate {config.calibrate} fits on the validation side; --val none has "
            "none (keep a validation side, or leave --calibrate out)"
        )


def _check_steps(config: TrainConfig, device: torch.device, precision: str) -> None:
    """Processes and steps that the device or precision cannot take refused."""
    if (config.processes or 1) > 1 and device.type != "cpu":
        raise ConfigError(
            f"--processes {config.processes} trains on the CPU; on {device} the members "
            "stack on the device (leave --processes out)"
        )
    if config.step == "graphed" and precision == "fp16":
        raise ConfigError(
            "--step graphed takes fp32 or bf16: fp16's loss scaling checks every step for "
            "overflow on the host, which a CUDA graph cannot (use --precision bf16)"
        )


def _check_finetune(config: TrainConfig) -> None:
    """Options that do not go with trainable encoder layers refused."""
    if not config.finetune:
        return
    if config.step in ("graphed", "compiled"):
        raise ConfigError(
            f"--step {config.step} does not go with --finetune: a model with trainable "
            "encoder layers steps eagerly (their attention builds its masks each step)"
        )
    if (config.members_at_once or 1) > 1:
        raise ConfigError(
            "--members-at-once above 1 does not go with --finetune: a member with "
            "trainable encoder layers trains alone (its layers are a copy of the encoder's)"
        )
    requests = set(config.features)
    for tune in parse_all(config.finetune):
        if tune.feature not in requests:
            raise ConfigError(
                f"--finetune {tune.spelled}: {tune.feature} is not one of --features "
                f"{'+'.join(config.features)}: name the set as --features does"
            )


def _check_targets(
    config: TrainConfig, targets: Targets, class_weights: str, tested: dict[str, str] | None
) -> None:
    """`ConfigError` for options that do not go with the run's targets."""
    if targets.category is None and class_weights != "none" and config.class_weights:
        raise ConfigError(f"--class-weights weighs classes: --target {targets.name} has none")
    if tested is not None and (targets.name != Targets().name or targets.soft):
        raise ConfigError(
            "--test-store scores categories across corpora: other targets (attributes, "
            "further heads) and soft labels train and test on one store (corpora rate "
            "attributes on their own scales)"
        )
    augment_of(config)  # its options checked
    check_targets(config, targets)


def _test_store(
    config: TrainConfig, classes: str, test: StoreCorpus | None
) -> dict[str, str] | None:
    """A cross-corpus run's test store as its record holds it (`tested`; None: not
    cross-corpus); `ConfigError` for options that do not go with it."""
    if config.test_store is None:
        if config.test_classes is not None:
            raise ConfigError("--test-classes goes with --test-store")
        return None
    if test is None:
        raise ValueError(
            "a cross-corpus config resolves with its test store's corpus"
        )  # a caller's bug
    for given, why in ((config.protocol, "--protocol"), (config.final or None, "--final")):
        if given is not None:
            raise ConfigError(
                f"{why} does not go with --test-store: a cross-corpus run trains one model "
                "on all of --store (validation carved from it) and tests it on the test store"
            )
    own = test.kind.class_sets
    test_classes = config.test_classes or (classes if classes in own else "all")
    if test_classes not in own:
        raise ConfigError(
            f"--test-classes {test_classes}: {test.title} has class sets {', '.join(own)}"
        )
    return {"corpus": test.name, "manifest": test.digest, "classes": test_classes}


Stores = Mapping[str, FeatureStore]  # path as a config names it -> the store opened


def open_stores(configs: Sequence[TrainConfig]) -> dict[str, FeatureStore]:
    """Each config's store and test store, opened once (`StoreError`: missing or not a
    store)."""
    paths = [p for c in configs for p in (c.store, c.test_store) if p is not None]
    return {path: FeatureStore.open(path) for path in dict.fromkeys(paths)}


def resolve_in(config: TrainConfig, stores: Stores) -> ResolvedConfig:
    """`resolve` with the corpora of the config's opened stores."""
    return resolve(config, stores[config.store].corpus.kind, test_corpus(config, stores))


def test_corpus(config: TrainConfig, stores: Stores) -> StoreCorpus | None:
    """A cross-corpus run's opened test store's corpus (None: not cross-corpus)."""
    return stores[config.test_store].corpus if config.test_store else None
