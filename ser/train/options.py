"""What a training run is asked for: `TrainConfig` (the `ser train` options; None: the
model family's paper default), `ser train`'s options as one table derived from it and the
registered families' configs (never written out), and `train_config`, the library call
that turns option values into a `TrainConfig`: what `ser train` and every sweep cell call.

>>> config = train_config({"store": "f.zarr", "features": "hubert+mpnet", "queries": "10"})
>>> config.features, type(config.model).__name__, config.model.queries, config.val
(('hubert', 'mpnet'), 'MsmserConfig', 10, 'next-group')
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ser.corpus.protocols.folds import RECORDED_VAL, VAL_ALIASES, VAL_MODES
from ser.corpus.registry import (
    CLASS_WEIGHTS,
    class_set_names,
    class_weights_help,
    classes_help,
    protocols_help,
)
from ser.errors import ConfigError
from ser.finetune.tuning import FineTune, parse_all
from ser.heads.emotion_intensities import EMOTIONS_AS
from ser.models import FAMILIES, Family, FamilyConfig, ModelConfig, TrainDefaults
from ser.models.config import field_defaults, option
from ser.models.registry import config_record as model_record
from ser.models.registry import fusions
from ser.models.targets import ATTRIBUTE_LOSSES, LABELS
from ser.runtime.device import DEVICE_HELP
from ser.runtime.precision import PRECISIONS, auto_help
from ser.runtime.threads import parse_threads
from ser.track.tracking import TRACKERS
from ser.train.features import parse_feature_list

#: --calibrate's choices: the softmax's own probabilities, or temperature scaling.
CALIBRATIONS = ("none", "temperature")
#: --attribute-weight's default: the attribute loss beside the category's (measured).
ATTRIBUTE_WEIGHT = 1.0
MASK_DEFAULT = (2, 10)  # --mask-time's, --mask-features': why, in ser/train/augment.py


@dataclass(frozen=True)
class Recorded:
    """How a run record's config holds an option (`ser.train.record.config_record` walks
    `TrainConfig`'s fields): under `key` (None: the option's name), as the JSON `spell`
    makes of its value (None: tuples as lists, a parsed value as its text), null when the
    value is `off`. `resolved`: the value the run's resolved config holds (a default
    filled in), looked up by `key`; one left out is not recorded. `of_targets`: an option
    of the run's targets, recorded as they say (`Targets.record_keys`: a head's options
    only where that head trains). `flat`: the spelled value is a mapping whose keys join
    the config's (the model's options beside its family's name). `once_left_out`: records
    written before every option was recorded leave it out when off (a sweep cell's key
    hashes the config without it then: `ser.train.record.cell_config`). `compared`: False
    where it says where a run executes, not what it trains (a resume may change it). An
    option that cannot change a result is declared `unrecorded` instead, saying why."""

    key: str | None = None
    off: object = None
    spell: Callable[[Any], Any] | None = None
    resolved: bool = False
    of_targets: bool = False
    flat: bool = False
    once_left_out: bool = False
    compared: bool = True


def _recorded_val(mode: str) -> str:
    return RECORDED_VAL.get(mode, mode)  # under its old name (`RECORDED_VAL`)


def _spelled(tuned: tuple[str, ...]) -> list[str]:
    return [FineTune.parse(text).spelled for text in tuned]  # as --finetune spells them


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything `ser train` is asked to do (its options: `train_options`); None means
    the model family's paper default."""

    store: str = field(
        metadata={
            "help": "Feature store (.zarr or .h5).",
            "envvar": "SER_STORE",
            "record": Recorded(compared=False),
        }
    )
    features: tuple[str, ...] = field(
        metadata={
            "kind": "features",
            "metavar": "A+B",
            "help": "Feature sets joined by '+', by name or extractor (hubert+mpnet, is13+bert).",
            "record": Recorded(spell="+".join),
        }
    )
    finetune: tuple[str, ...] = field(
        default=(),
        metadata={
            "kind": "finetune",
            "metavar": "SET:top=K[,lora=R]",
            "help": "Train the top K encoder layers above a cached --features set, whole or "
            "with LoRA (hubert.L9:top=3,lora=8); keys alpha, targets, lr, warmup, norms: "
            'docs/train.md, "Fine-tuning from the cache". Repeatable.',
            "record": Recorded(off=(), spell=_spelled, once_left_out=True),
        },
    )
    # its options: the registered families' config fields, recorded beside its family's name
    model: FamilyConfig = field(metadata={"record": Recorded(spell=model_record, flat=True)})
    # Help and choices from the registered kinds, read when `ser train` is run.
    classes: str | None = option(
        None, classes_help, choices=class_set_names, record=Recorded(resolved=True)
    )
    protocol: str | None = option(None, protocols_help, record=Recorded(resolved=True))
    val: str = option(
        "next-group",
        "Validation carved from the training side: next-group (the next session, speaker "
        "group or the dev partition held out); random10; none: train on every training "
        "group for the fixed epochs and test the last. `session` still works.",
        choices=VAL_MODES,
        aliases=VAL_ALIASES,
        record=Recorded(spell=_recorded_val),
    )
    epochs: int | None = option(None, "Training epochs.", record=Recorded(resolved=True))
    batch_size: int | None = option(
        None, "Utterances, or dialogs for dialog-context models.", record=Recorded(resolved=True)
    )
    lr: float | None = option(
        None, "Learning rate (Adam).", above=0.0, record=Recorded(resolved=True)
    )
    weight_decay: float | None = option(
        None, "Adam's L2 weight decay.", least=0.0, record=Recorded(resolved=True)
    )
    seed: int = option(0, "The first seed.", record=Recorded())
    seeds: int | None = option(
        None, "Repeats with seeds seed, seed+1, ...", record=Recorded(resolved=True)
    )
    patience: int | None = option(
        None, "Early stopping patience (off by default).", record=Recorded()
    )
    class_weights: str | None = option(
        None,
        class_weights_help,
        choices=CLASS_WEIGHTS,
        record=Recorded(off="none", resolved=True, once_left_out=True),
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
        record=Recorded(resolved=True, once_left_out=True),
    )
    mask_features: tuple[int, ...] | None = option(
        None,
        "--augment mask: N feature masks, each up to W % of the columns "
        f"[default: {MASK_DEFAULT[0]},{MASK_DEFAULT[1]}; 0,0: none].",
        metavar="N,W",
        record=Recorded(resolved=True, once_left_out=True),
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
        record=Recorded(once_left_out=True),
    )
    test_store: str | None = option(
        None,
        "Cross-corpus: train on all of --store and test on this store's utterances of the "
        "emotions both corpora have, matched by name; it must hold the same feature sets "
        "(docs/cross-corpus.md).",
        metavar="PATH",
        record=Recorded(once_left_out=True, compared=False),
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
        record=Recorded(key="test", resolved=True, once_left_out=True),
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
        record=Recorded(resolved=True, of_targets=True, once_left_out=True),
    )
    attribute_loss: str = option(
        "ccc",
        "Attribute loss: ccc (1 - CCC per attribute, averaged) or mse.",
        choices=ATTRIBUTE_LOSSES,
        record=Recorded(resolved=True, of_targets=True, once_left_out=True),
    )
    attribute_weight: float | None = option(
        None,
        f"With --target emotion+...: the attribute loss's weight beside the category's "
        f"[default: {ATTRIBUTE_WEIGHT}, measured in benchmarks/README.md].",
        least=0.0,
        record=Recorded(resolved=True, of_targets=True, once_left_out=True),
    )
    emotions_as: str = option(
        "presence",
        "--target emotions (CMU-MOSEI's six) trains presence (a sigmoid each, BCE) "
        "or intensity (L1 on [0, 3]); both score presence (docs/train.md).",
        choices=EMOTIONS_AS,
        record=Recorded(resolved=True, of_targets=True),
    )
    labels: str = option(
        "hard",
        "Class targets: hard (the consensus label) or soft (the distribution of the "
        "annotators' votes, re-read from the store's corpus); scores stay on the consensus.",
        choices=LABELS,
        record=Recorded(resolved=True, of_targets=True, once_left_out=True),
    )
    calibrate: str = option(
        "none",
        "Class probabilities: none (the softmax's own) or temperature (one T per member "
        "fitted on its validation side, applied in predictions.csv, predict and export).",
        choices=CALIBRATIONS,
        record=Recorded(off="none", once_left_out=True),
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
        record=Recorded(resolved=True, compared=False),
    )
    precision: str = option(
        "auto",
        f"{auto_help('train')} bf16 autocast on a CPU is ~20% faster but scored ~0.5 UA "
        "points lower on average in our tests. Recorded.",
        choices=PRECISIONS,
        record=Recorded(resolved=True),
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
    out: str = option("runs", "Folder of the runs.", record=Recorded(compared=False))
    name: str | None = option(
        None, "Run name [derived from the config].", record=Recorded(resolved=True, compared=False)
    )
    memory_budget: str | None = option(
        None,
        "Memory the inputs' rows may take (384MB, 2GiB): each input's rows on the device "
        "when they fit, in host memory (pinned) on a GPU when they fit there, else streamed "
        "from the store [default: half the device's free memory on a GPU, half the "
        "available RAM on a CPU]. Said in the execution line and recorded there.",
        metavar="SIZE",
        record=Recorded(key="streamed", resolved=True, once_left_out=True),
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


RUN, MODEL = "run", "model"  # sections; a model option of one family has its family's name
FLAGS = {"true": True, "1": True, "yes": True, "on": True}
FLAGS |= {"false": False, "0": False, "no": False, "off": False}
# A field's bounds (`ser.models.config.option`'s metadata): (fails, says) per kind.
RANGES = {
    "least": (lambda v, b: v < b, "at least"),
    "above": (lambda v, b: v <= b, "above"),
    "below": (lambda v, b: v >= b, "below"),
}
#: What an option's value is: bool, int, float, str, tuple (of ints), "features" or "threads".
Kind = type | str
WHAT: dict[Kind, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a text",
    tuple: "integers joined by commas",
    "features": "feature sets joined by '+'",
    "finetune": "SET:top=K[,lora=R,...]",
}


@dataclass(frozen=True)
class Option:
    """One `ser train` option."""

    name: str
    # Kind's value; Any as callers look it up in tables keyed by type alone (ser train's click
    # metavars)
    kind: Any
    help: str
    default: object = None
    choices: tuple[object, ...] = ()
    section: str = RUN  # RUN, MODEL (an option of several families) or a family's name
    defaults: Mapping[str, object] = field(default_factory=dict)  # family -> its own default
    required: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)  # metavar, envvar, bounds

    def parse(self, value: object) -> object:
        """`value` (a string, a TOML value or a typed one) typed; ConfigError if it is not."""
        try:
            typed = None if value is None else _parse(self.kind, value)
        except (TypeError, ValueError, KeyError):
            raise ConfigError(f"{value!r} is not {WHAT[self.kind]}") from None
        typed = self.meta.get("aliases", {}).get(typed, typed)
        if typed is not None and self.choices and typed not in self.choices:
            shown = ", ".join(str(c) for c in self.choices if c is not None)
            raise ConfigError(f"{value!r} is not one of {shown}")
        if isinstance(typed, int | float) and not isinstance(typed, bool):
            _check_range(typed, self.meta)
        return typed


def train_options() -> dict[str, Option]:
    """The table (module docstring), from the registry as it is now."""
    hints, table = typing.get_type_hints(TrainConfig), {}
    paper = {f.name for f in dataclasses.fields(TrainDefaults)}  # a family's own default
    for f in dataclasses.fields(TrainConfig):
        if f.name == "model":
            table.update(model_options())
            continue
        own = {n: getattr(fam.train, f.name) for n, fam in FAMILIES.items() if f.name in paper}
        table[f.name] = _option(f, hints[f.name], RUN, own, f.default is dataclasses.MISSING)
    return table


def model_options() -> dict[str, Option]:
    """`fusion`, then the families' config fields in registry order."""
    which = "; ".join(f"{'|'.join(f.config.FUSIONS)}: {f.name}" for f in FAMILIES.values())
    fusion = Option("fusion", str, f"Picks the model family ({which}).", "mit", fusions(), MODEL)
    table, owners = {"fusion": fusion}, dict[str, list[Family]]()
    for family in FAMILIES.values():
        for f in dataclasses.fields(family.config):
            owners.setdefault(f.name, []).append(family)
    for name, families in list(owners.items())[1:]:  # after fusion, every config's first
        config = families[0].config
        f = next(g for g in dataclasses.fields(config) if g.name == name)
        own = {family.name: field_defaults(family.config)[name] for family in families}
        section = MODEL if len(families) > 1 else families[0].name
        option = _option(f, typing.get_type_hints(config)[name], section, own)
        table[name] = dataclasses.replace(option, default=None)
    return table


def train_config(values: Mapping[str, object]) -> TrainConfig:
    """A `TrainConfig` from option values (typed, or strings as a command line gives
    them; None or left out: the default); ConfigError naming a bad one."""
    table = train_options()
    typed: dict[str, Any] = {}  # each option's own type: TrainConfig's fields check them
    for name, value in values.items():
        if name not in table:
            raise ConfigError(f"{name!r} is not a ser train option")
        try:
            typed[name] = table[name].parse(value)
        except ConfigError as e:  # a --finetune message begins with the value it names
            joint = " " if table[name].kind == "finetune" else ": "
            raise ConfigError(f"--{name.replace('_', '-')}{joint}{e}") from None
    model = {k: typed.get(k, o.default) for k, o in table.items() if o.section != RUN}
    run = {k: v for k, v in typed.items() if table[k].section == RUN and v is not None}
    for name in (k for k, o in table.items() if o.required and k not in run):
        raise ConfigError(f"--{name} is required")
    run["features"] = parse_feature_list(run["features"])
    return TrainConfig(model=ModelConfig(**model), **run)


def _option(
    f: dataclasses.Field[Any],
    hint: object,
    section: str,
    own: Mapping[str, object],
    required: bool = False,
) -> Option:
    meta = f.metadata
    if "kind" not in meta and typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [h for h in typing.get_args(hint) if h is not type(None)]  # X | None: X
    # tuple[int, ...]: tuple; a type hint, or the field's own word ("features", "threads")
    kind = cast(Kind, meta.get("kind") or typing.get_origin(hint) or hint)
    help, choices = meta.get("help", ""), meta.get("choices", ())
    return Option(
        f.name,
        kind,
        help() if callable(help) else help,
        None if required else f.default,
        tuple(choices() if callable(choices) else choices),
        section,
        own,
        required,
        {k: meta[k] for k in ("metavar", "envvar", "aliases", *RANGES) if k in meta},
    )


def _parse(kind: Kind, value: object) -> object:
    if kind == "threads":
        return parse_threads(cast("str | int | None", value))  # else its own error
    if kind is tuple:  # of ints: "32,64" or a list
        items = value.split(",") if isinstance(value, str) else cast("Iterable[object]", value)
        return tuple(_parse(int, v) for v in items)
    if kind is bool:
        return value if isinstance(value, bool) else FLAGS[str(value).lower()]
    if isinstance(value, bool):  # true is no number and no name
        raise TypeError(value)
    if kind == "finetune":  # one value or several (a repeated option, a TOML list)
        texts = [value] if isinstance(value, str) else cast("Iterable[str]", value)
        return tuple(t.spelled for t in parse_all(list(texts)))
    if kind in (str, "features"):
        return "+".join(value) if isinstance(value, tuple) else str(value)  # TOML's 4: "4"
    number = cast("Callable[[object], float]", kind)(value)  # int or float
    if kind is float and not math.isfinite(number):  # NaN passes every range check
        raise ValueError(value)
    return number


def _check_range(value: float, meta: Mapping[str, Any]) -> None:
    """`value` within the option's bounds (`RANGES`), else `ConfigError`."""
    for key, (fails, says) in RANGES.items():
        if key in meta and fails(value, meta[key]):
            raise ConfigError(f"must be {says} {meta[key]}, got {value}")
