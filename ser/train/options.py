"""What a training run is asked for, each option declared once: `TrainConfig` (the `ser
train` options; None: the model family's paper default), how each is recorded, named,
shown and whether it changes training (`Recorded`), and `ResolvedConfig`, what a run
trains with once its defaults are filled in (`ser.train.plan.resolve`). What the
declarations derive: the option table and `train_config` (`ser.train.option_table`), the
record (`ser.train.record`), the training identity and the run's name
(`ser.train.identity`), `ser report`'s settings (`shown_defaults`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ser.corpus.protocols.folds import RECORDED_VAL, VAL_ALIASES, VAL_MODES
from ser.corpus.registry import (
    CLASS_WEIGHTS,
    class_set_names,
    class_weights_help,
    classes_help,
    protocols_help,
)
from ser.finetune.tuning import FineTune
from ser.heads.emotion_intensities import EMOTIONS_AS
from ser.models import Family, FamilyConfig, TrainDefaults
from ser.models.config import field_defaults, option
from ser.models.registry import config_record as model_record
from ser.models.targets import ATTRIBUTE_LOSSES, LABELS
from ser.runtime.device import DEVICE_HELP
from ser.runtime.precision import PRECISIONS, auto_help
from ser.track.tracking import TRACKERS

#: --calibrate's choices: the softmax's own probabilities, or temperature scaling.
CALIBRATIONS = ("none", "temperature")
#: --attribute-weight's default: the attribute loss beside the category's (measured).
ATTRIBUTE_WEIGHT = 1.0
MASK_DEFAULT = (2, 10)  # --mask-time's, --mask-features': why, in ser/train/augment.py


#: What an option changes (`Recorded.changes`): how every member of the run trains; only
#: how the trained members are tested; which (seed, fold) members the run has (each
#: member's own seed is its identity); or nothing a run produces (where it is written).
Changes = Literal["training", "testing", "members", "nothing"]


#: What an option's part of a run's default name may read beside the asked config (its
#: `Recorded.named`): the resolved class set ("classes") and the class weights the store's
#: corpus takes by default ("own_weights").
NameContext = Mapping[str, str]


@dataclass(frozen=True)
class Recorded:
    """Everything ser derives from an option that is recorded (`ser.train.record.config_record`
    walks `TrainConfig`'s fields): under `key` (None: the option's name), as the JSON
    `spell` makes of its value (None: tuples as lists, a parsed value as its text), null
    when the value is `off`. `resolved`: the value the run's resolved config holds (a
    default filled in), looked up by `key`; one left out is not recorded. `of_targets`: an
    option of the run's targets, recorded as they say (`Targets.record_keys`: a head's
    options only where that head trains). `flat`: the spelled value is a mapping whose keys
    join the config's (the model's options beside its family's name). `once_left_out`:
    records written before every option was recorded leave it out when off (a sweep cell's
    key hashes the config without it then: `ser.train.record.cell_config`). `compared`:
    False where it says where a run executes, not what it trains (a resume may change it).

    `changes` (`Changes`) decides the training identity (`ser.train.identity.run_key`):
    runs whose options that change training agree share their trained members;
    `per_member`: members of one stack may differ in it (patience: each stops on its own),
    so it keys a member's training but not its stack; `identity`: what of the value keys it
    (the model: `as_trained`, without its options that change only testing). `named`: the
    option's part of a run's default name when on (True: `name_part`'s spelling; False:
    never; a callable: its own spelling, "" for none). `shown`: `ser report`'s settings
    column shows it when on (off its paper default, for an option a family has one of).
    An option that cannot change a result is declared `unrecorded` instead, saying why."""

    key: str | None = None
    off: object = None
    spell: Callable[[Any], Any] | None = None
    resolved: bool = False
    of_targets: bool = False
    flat: bool = False
    once_left_out: bool = False
    compared: bool = True
    changes: Changes = "training"
    per_member: bool = False
    identity: Callable[[Any], Hashable] | None = None
    named: bool | Callable[[Any, TrainConfig, NameContext], str] = True
    shown: bool = True


def _recorded_val(mode: str) -> str:
    return RECORDED_VAL.get(mode, mode)  # under its old name (`RECORDED_VAL`)


def _spelled(tuned: tuple[str, ...]) -> list[str]:
    return [FineTune.parse(text).spelled for text in tuned]  # as --finetune spells them


def name_part(name: str, value: object) -> str:
    """An option's part of a run's name as most options spell it: ``_no-rmm`` (a flag
    off), ``_mask-time2-10`` (a tuple), ``_sampler-balanced`` (a text), ``_mixup0.2`` (a
    number)."""
    key = name.replace("_", "-")
    if isinstance(value, bool):
        return f"_{key}" if value else f"_no-{key}"
    if isinstance(value, tuple | list):
        return f"_{key}{'-'.join(map(str, value))}"
    if isinstance(value, str):
        return f"_{key}-{value}"
    return f"_{key}{value:g}" if isinstance(value, float) else f"_{key}{value}"


def _as_trained(model: FamilyConfig) -> FamilyConfig:
    return model.as_trained()  # the options that change testing alone are not its training's


def fusion_named(model: FamilyConfig) -> str:
    """A run name's second part: the fusion, where and the loss (``add-logits-perspective``)."""
    defaults = field_defaults(type(model))
    at, loss = (getattr(model, k, None) for k in ("fusion_at", "loss"))
    parts = [model.fusion, at if at != defaults.get("fusion_at", at) else None]
    return "-".join(str(p) for p in parts if p) + (
        f"-{loss}" if "loss" in defaults and loss != defaults["loss"] else ""
    )


def _model_named(model: FamilyConfig, config: TrainConfig, context: NameContext) -> str:
    """The model's options off their defaults but those `fusion_named` spells
    (``_queries10_no-rmm_eval-mask-text``)."""
    defaults = field_defaults(type(model))
    changed = {k: v for k, v in dataclasses.asdict(model).items() if v != defaults.get(k, v)}
    name = ""
    for option_name, value in changed.items():
        if option_name in ("fusion", "fusion_at", "loss"):
            continue
        if isinstance(value, bool | tuple):
            name += name_part(option_name, value)
        else:  # a model's numbers as str() spells them (its names have always been so)
            key = option_name.replace("_", "-")
            name += f"_{key}{'-' if isinstance(value, str) else ''}{value}"
    return name


def _weights_named(value: str | None, config: TrainConfig, context: NameContext) -> str:
    return "" if value in (None, context["own_weights"]) else name_part("class_weights", value)


def _test_classes_named(value: str | None, config: TrainConfig, context: NameContext) -> str:
    return "" if value in (None, context["classes"]) else f"_test-c{value}"


def _finetune_named(value: tuple[str, ...], config: TrainConfig, context: NameContext) -> str:
    return "".join(FineTune.parse(text).name_part for text in value)


def _target_named(value: str, config: TrainConfig, context: NameContext) -> str:
    return "" if value == "emotion" else name_part("target", value)


def _attribute_loss_named(value: str, config: TrainConfig, context: NameContext) -> str:
    named = config.target != "emotion" and value != "ccc"  # a loss of attributes only
    return name_part("attribute_loss", value) if named else ""


def _attribute_weight_named(value: float | None, config: TrainConfig, context: NameContext) -> str:
    named = value is not None and "+" in config.target  # beside the category's loss only
    return name_part("attribute_weight", value) if named else ""


def _emotions_as_named(value: str, config: TrainConfig, context: NameContext) -> str:
    return "" if value == "presence" else name_part("emotions_as", value)


def _labels_named(value: str, config: TrainConfig, context: NameContext) -> str:
    return "_soft-labels" if value == "soft" else ""


def _mask_named(key: str) -> Callable[[tuple[int, ...] | None, TrainConfig, NameContext], str]:
    def named(value: tuple[int, ...] | None, config: TrainConfig, context: NameContext) -> str:
        return "" if value in (None, MASK_DEFAULT) else name_part(key, value)

    return named


def _views_named(value: str | None, config: TrainConfig, context: NameContext) -> str:
    return "" if value is None else f"_views-{'-'.join(p.strip() for p in value.split(','))}"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything `ser train` is asked to do (its options: `train_options`); None means
    the model family's paper default."""

    store: str = field(
        metadata={
            "help": "Feature store (.zarr or .h5).",
            "envvar": "SER_STORE",
            "record": Recorded(compared=False, named=False, shown=False),
        }
    )
    features: tuple[str, ...] = field(
        metadata={
            "kind": "features",
            "metavar": "A+B",
            "help": "Feature sets joined by '+', by name or extractor (hubert+mpnet, is13+bert).",
            "record": Recorded(spell="+".join, named=False, shown=False),
        }
    )
    # its options: the registered families' config fields, recorded beside its family's name
    model: FamilyConfig = field(
        metadata={
            "record": Recorded(
                spell=model_record, flat=True, identity=_as_trained, named=_model_named
            )
        }
    )
    # Help and choices from the registered kinds, read when `ser train` is run.
    classes: str | None = option(
        None,
        classes_help,
        choices=class_set_names,
        record=Recorded(resolved=True, named=False, shown=False),
    )
    protocol: str | None = option(
        None, protocols_help, record=Recorded(resolved=True, named=False, shown=False)
    )
    val: str = option(
        "next-group",
        "Validation carved from the training side: next-group (the next session, speaker "
        "group or the dev partition held out); random10; none: train on every training "
        "group for the fixed epochs and test the last. `session` still works.",
        choices=VAL_MODES,
        aliases=VAL_ALIASES,
        record=Recorded(spell=_recorded_val, named=False, shown=False),
    )
    epochs: int | None = option(
        None, "Training epochs.", record=Recorded(resolved=True, named=False)
    )
    batch_size: int | None = option(
        None,
        "Utterances, or dialogs for dialog-context models.",
        record=Recorded(resolved=True, named=False),
    )
    lr: float | None = option(
        None, "Learning rate (Adam).", above=0.0, record=Recorded(resolved=True, named=False)
    )
    weight_decay: float | None = option(
        None, "Adam's L2 weight decay.", least=0.0, record=Recorded(resolved=True, named=False)
    )
    grad_clip: float | None = option(
        None,
        "Each member's gradient scaled to at most this L2 norm before each update, as "
        "torch's clip_grad_norm_ does [default: off]. Recorded.",
        above=0.0,
        metavar="NORM",
        record=Recorded(),
    )
    seed: int = option(
        0, "The first seed.", record=Recorded(changes="members", named=False, shown=False)
    )
    seeds: int | None = option(
        None,
        "Repeats with seeds seed, seed+1, ...",
        record=Recorded(resolved=True, changes="members", named=False, shown=False),
    )
    patience: int | None = option(
        None,
        "Early stopping patience (off by default).",
        record=Recorded(per_member=True, named=False),
    )
    class_weights: str | None = option(
        None,
        class_weights_help,
        choices=CLASS_WEIGHTS,
        record=Recorded(off="none", resolved=True, once_left_out=True, named=_weights_named),
    )
    test_store: str | None = option(
        None,
        "Cross-corpus: train on all of --store and test on this store's utterances of the "
        "emotions both corpora have, matched by name; it must hold the same feature sets "
        "(docs/cross-corpus.md).",
        metavar="PATH",
        record=Recorded(
            once_left_out=True, compared=False, changes="testing", named=False, shown=False
        ),
    )
    allow_overlap: bool = option(
        False,
        "Cross-corpus: run though most test audio is --store's.",
        unrecorded="it lets a run start, and changes nothing the run does",
    )
    test_classes: str | None = option(
        None,
        "Cross-corpus: the test store's class set [default: the training set's name "
        "where the test corpus has it, else its all].",
        choices=class_set_names,
        record=Recorded(
            key="test",
            resolved=True,
            once_left_out=True,
            changes="testing",
            named=_test_classes_named,
            shown=False,
        ),
    )
    finetune: tuple[str, ...] = field(
        default=(),
        metadata={
            "kind": "finetune",
            "metavar": "SET:top=K[,lora=R]",
            "help": "Train the top K encoder layers above a cached --features set, whole or "
            "with LoRA (hubert.L9:top=3,lora=8); keys alpha, targets, lr, warmup, norms: "
            'docs/train.md, "Fine-tuning from the cache". Repeatable.',
            "record": Recorded(
                off=(), spell=_spelled, once_left_out=True, named=_finetune_named, shown=False
            ),
        },
    )
    target: str = option(
        "emotion",
        "What the model predicts: emotion (the category); attributes (arousal, valence, "
        "dominance: a linear head each on the corpus's scale, validation on their mean CCC; "
        "utterances without them left out, counted), or one of them; emotion+attributes "
        "(one body, both heads); a further head joined with + (emotion+sentiment: MELD's, "
        "CMU-MOSI/MOSEI's [-3, 3] score; sentiment+emotions: MOSEI's six; "
        'docs/train.md, "Heads"). Recorded, as the store\'s corpus means it.',
        metavar="emotion|attributes|arousal|...|emotion+sentiment",
        record=Recorded(
            resolved=True, of_targets=True, once_left_out=True, named=_target_named, shown=False
        ),
    )
    attribute_loss: str = option(
        "ccc",
        "Attribute loss: ccc (1 - CCC per attribute, averaged) or mse.",
        choices=ATTRIBUTE_LOSSES,
        record=Recorded(
            resolved=True,
            of_targets=True,
            once_left_out=True,
            named=_attribute_loss_named,
            shown=False,
        ),
    )
    attribute_weight: float | None = option(
        None,
        f"With --target emotion+...: the attribute loss's weight beside the category's "
        f"[default: {ATTRIBUTE_WEIGHT}, measured in benchmarks/README.md].",
        least=0.0,
        record=Recorded(
            resolved=True,
            of_targets=True,
            once_left_out=True,
            named=_attribute_weight_named,
            shown=False,
        ),
    )
    emotions_as: str = option(
        "presence",
        "--target emotions (CMU-MOSEI's six) trains presence (a sigmoid each, BCE) "
        "or intensity (L1 on [0, 3]); both score presence (docs/train.md).",
        choices=EMOTIONS_AS,
        record=Recorded(resolved=True, of_targets=True, named=_emotions_as_named, shown=False),
    )
    labels: str = option(
        "hard",
        "Class targets: hard (the consensus label) or soft (the distribution of the "
        "annotators' votes, re-read from the store's corpus); scores stay on the consensus.",
        choices=LABELS,
        record=Recorded(
            resolved=True, of_targets=True, once_left_out=True, named=_labels_named, shown=False
        ),
    )
    calibrate: str = option(
        "none",
        "Class probabilities: none (the softmax's own) or temperature (one T per member "
        "fitted on its validation side, applied in predictions.csv, predict and export).",
        choices=CALIBRATIONS,
        record=Recorded(off="none", once_left_out=True, changes="testing"),
    )
    sampler: str = option(
        "shuffle",
        "Training batches: shuffle (each utterance once an epoch) or balanced (a class "
        "drawn uniformly, then one of its utterances). Recorded.",
        choices=("shuffle", "balanced"),
        record=Recorded(off="shuffle", once_left_out=True),
    )
    augment: str = option(
        "none",
        "Training batches only: mask (SpecAugment-like time and feature bands zeroed in "
        "sequence inputs: --mask-time, --mask-features). Recorded.",
        choices=("none", "mask"),
        record=Recorded(off="none", once_left_out=True),
    )
    mask_time: tuple[int, ...] | None = option(
        None,
        "--augment mask: N time masks, each up to W % of the utterance's frames "
        f"[default: {MASK_DEFAULT[0]},{MASK_DEFAULT[1]}; 0,0: none].",
        metavar="N,W",
        record=Recorded(resolved=True, once_left_out=True, named=_mask_named("mask_time")),
    )
    mask_features: tuple[int, ...] | None = option(
        None,
        "--augment mask: N feature masks, each up to W % of the columns "
        f"[default: {MASK_DEFAULT[0]},{MASK_DEFAULT[1]}; 0,0: none].",
        metavar="N,W",
        record=Recorded(resolved=True, once_left_out=True, named=_mask_named("mask_features")),
    )
    mixup: float | None = option(
        None,
        "Mixup of utterance vectors and their class targets, lam ~ Beta(ALPHA, ALPHA) "
        "(0.2 is usual) [default: off]. Recorded.",
        above=0.0,
        metavar="ALPHA",
        record=Recorded(once_left_out=True),
    )
    views: str | None = option(
        None,
        "Training batches only: each utterance read from its clean set or one of its views "
        "(`ser extract --augment`: all, or speed0.9,noise20db), drawn each epoch. Recorded.",
        metavar="all|NAMES",
        record=Recorded(once_left_out=True, named=_views_named),
    )
    corpus_root: str | None = option(
        None,
        "Where the store's corpus is now, if it moved (--labels soft re-reads its votes there).",
        metavar="PATH",
        unrecorded="where the corpus is now: the votes read there are the record's",
    )
    device: str = option(
        "auto",
        f"Training device. {DEVICE_HELP}",
        metavar="auto|cpu|cuda[:N]",
        record=Recorded(resolved=True, compared=False, named=False, shown=False),
    )
    precision: str = option(
        "auto",
        f"{auto_help('train')} bf16 autocast on a CPU is ~20% faster but scored ~0.5 UA "
        "points lower on average in our tests. Recorded.",
        choices=PRECISIONS,
        record=Recorded(resolved=True, named=False, shown=False),
    )
    # torch CPU threads; None: from the CPU budget; its help: ser/runtime/threads.py
    threads: int | None = field(
        default=None,
        metadata={"kind": "threads", "metavar": "N", "unrecorded": "how fast it runs"},
    )
    members_at_once: int | None = option(
        None,
        "(seed, fold) runs trained together as one ensemble [as ser/runtime/execution.py "
        "decides]; lower it to bound memory (1: one after another; the same results up to "
        "float rounding without dropout or RMM). Recorded.",
        unrecorded="the record's execution says it: results alike up to rounding",
    )
    step: str | None = option(
        None,
        "Training steps: eager; graphed (each whole step replayed as one CUDA graph per "
        "padded batch shape on a GPU; fp32 or bf16); or compiled (torch.compile on padded "
        "shapes) [default: graphed where measured faster on a GPU (MSMSER), else eager].",
        choices=(None, "eager", "graphed", "compiled"),
        unrecorded="how each step runs: results alike up to float rounding",
    )
    processes: int | None = option(
        None,
        "Processes training the (seed, fold) runs side by side on the CPU, each with cores "
        "// N torch threads unless --threads; 1 trains in this process [default: as "
        "ser/runtime/execution.py decides: one 1-thread process per core for a run big "
        "enough to pay for their start-up, else 1]. Recorded.",
        metavar="N",
        unrecorded="the record's execution says it: results alike up to rounding",
    )
    out: str = option(
        "runs",
        "Folder of the runs.",
        record=Recorded(compared=False, changes="nothing", named=False, shown=False),
    )
    name: str | None = option(
        None,
        "Run name [derived from the config].",
        record=Recorded(resolved=True, compared=False, changes="nothing", named=False, shown=False),
    )
    memory_budget: str | None = option(
        None,
        "Memory the inputs' rows may take (384MB, 2GiB): each input's rows on the device "
        "when they fit, in host memory (pinned) on a GPU when they fit there, else streamed "
        "from the store [default: half the device's free memory on a GPU, half the "
        "available RAM on a CPU]. Said in the execution line and recorded there.",
        metavar="SIZE",
        record=Recorded(
            key="streamed", resolved=True, once_left_out=True, named=False, shown=False
        ),
    )
    host_memory: str | None = option(
        None,
        "On a GPU, with --memory-budget: the pinned host memory that may hold the inputs "
        "the device's budget does not; an input that fits neither streams [default: half "
        "the machine's memory, never what is free now].",
        metavar="SIZE",
        unrecorded="where rows live: the inputs that streamed are recorded (streamed)",
    )
    overwrite: bool = option(
        False,
        "Discard an existing run of the same name.",
        unrecorded="what happens to an earlier run, not what this one does",
    )
    final: bool = option(
        False,
        "Also train one model on every session for the folds' median selected epoch "
        "(checkpoint 'final', for `ser predict --checkpoint final`).",
        unrecorded="the record says it beside its config (`RunRecord.final`)",
    )
    # Where the run is watched, not what it is: never in its record (`ser.track.tracking`).
    track: str | None = option(
        None,
        "Also log curves, options and scores to TensorBoard (<out>/<name>/tensorboard/) "
        "or MLflow; needs pip install 'ser[track]' (docs/report.md, \"Tracking\").",
        choices=TRACKERS,
        unrecorded="where the run is watched, not what it is (`ser.track.tracking`)",
    )
    track_uri: str | None = option(
        None,
        "--track mlflow: the tracking server (http://host:5000) or folder [default: <out>/mlruns].",
        metavar="URI",
        unrecorded="where the run is watched, not what it is",
    )


def _resolved(name: str) -> Any:
    """`ResolvedConfig`'s field `name`: `TrainConfig`'s declaration, with no default
    (resolution always gives it)."""
    return field(metadata=TrainConfig.__dataclass_fields__[name].metadata)


@dataclass(frozen=True, kw_only=True)
class ResolvedConfig(TrainConfig):
    """A `TrainConfig` resolved (`ser.train.plan.resolve`): what a run trains with, every
    default filled in from its model family, its store's corpus kind and its device; the
    options left None are off. What trains, records, names and tests a run reads this."""

    classes: str = _resolved("classes")
    protocol: str = _resolved("protocol")
    epochs: int = _resolved("epochs")
    batch_size: int = _resolved("batch_size")
    lr: float = _resolved("lr")
    weight_decay: float = _resolved("weight_decay")
    seeds: int = _resolved("seeds")
    class_weights: str = _resolved("class_weights")
    attribute_weight: float = _resolved("attribute_weight")
    mask_time: tuple[int, int] | None = _resolved("mask_time")  # None: --augment mask off
    mask_features: tuple[int, int] | None = _resolved("mask_features")
    name: str = _resolved("name")


def recorded_fields(config: type[TrainConfig]) -> list[tuple[str, Recorded]]:
    """The options a run record's config holds, each as (name, how: `Recorded`), in the
    order of their declaration, which is the record's (a subclass's own options after)."""
    fields = dataclasses.fields(config)
    return [(f.name, f.metadata["record"]) for f in fields if "record" in f.metadata]


def resolved_type(asked: type[TrainConfig]) -> type[ResolvedConfig]:
    """The resolved config of an asked config's type: `ResolvedConfig`, or for a subclass
    of `TrainConfig` that declares options of its own, the `ResolvedConfig` subclass that
    derives from it too."""
    if issubclass(asked, ResolvedConfig):
        return asked
    if issubclass(ResolvedConfig, asked):  # TrainConfig itself
        return ResolvedConfig
    for resolved in ResolvedConfig.__subclasses__():
        if issubclass(resolved, asked):
            return resolved
    raise TypeError(
        f"{asked.__name__} has no resolved type: declare one deriving from it and ResolvedConfig"
    )


def shown_defaults(family: Family) -> dict[str, Any]:
    """The record keys `ser report`'s settings column shows (`Recorded.shown`), in the
    record's order, each with the value a run of `family` holds when it is off: the
    family's own default (its model options; epochs, batch size, ... of its paper), else
    null. The values as JSON holds them (tuples as lists)."""
    paper = {f.name for f in dataclasses.fields(TrainDefaults)}
    defaults: dict[str, Any] = {}
    for name, how in recorded_fields(TrainConfig):
        if not how.shown:
            continue
        if how.flat:  # the model's options, beside its family's name
            defaults |= field_defaults(family.config)
        else:
            defaults[how.key or name] = getattr(family.train, name) if name in paper else None
    return json.loads(json.dumps(defaults))
