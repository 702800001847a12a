"""One (seed, fold) of a run record: `FoldEntry`, and `Stage`, an earlier stage of it.

An entry is made once, when its (seed, fold) has trained, and never changed: frozen.
Its JSON keys are its fields' names; a key this version does not know is kept in
`extra` and written back, so a newer ser's key survives a resume by an older one.
Optional keys are written only when they hold something, as the trainer always has.

Older entries are made today's by `ser.runs.migrate` before they are read.

>>> scores = {"wa": 70.0, "ua": 70.0, "f1": 41.2, "per_class_recall": {"neu": 70.0, "ang": None},
...           "confusion": [[7, 3], [0, 0]], "n": 10}
>>> entry = FoldEntry.from_json({"seed": 0, "fold": "session5", "metrics": scores,
...                              "test_groups": [5], "val_groups": [1], "group": "session"})
>>> entry.test_groups, entry.val_groups, entry.group, entry.stacked, entry.metrics.ua
((5,), (1,), 'session', 1, 70.0)
>>> entry.to_json()["test_groups"], entry.attributes, FoldEntry(0, "f1").to_json()["metrics"]
([5], None, {})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ser.errors import ReportError
from ser.heads.attribute_metrics import AttributeMetrics
from ser.heads.metrics import Metrics
from ser.runs.codec import Json, decode, encode, read_value
from ser.runs.curves import Curves

# What a number's key holds when it is right; the JSON of a damaged record is refused
# where int() or float() cannot read it.
Scalar = str | int | float
# Written even when empty: a side with no group (no validation) says so.
ALWAYS = frozenset(
    {"seed", "fold", "metrics", "seconds", "stacked", "curves", "test_groups", "val_groups"}
)


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """The utterances on each side of a fold."""

    train: int
    val: int
    test: int
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """An earlier stage of a staged model (Zhou et al.'s branches alone): its selected
    epoch, its seconds and its curves."""

    best_epoch: int | None
    seconds: float
    curves: Curves = field(default_factory=Curves)
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: object, where: str) -> Stage:
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: a stage must be a JSON object")
        known = {"best_epoch", "seconds", "curves"}
        return cls(
            _int_or_none(obj.get("best_epoch"), where),
            _float(obj.get("seconds"), where),
            Curves.from_json(obj.get("curves"), f"{where}, curves"),
            {k: v for k, v in obj.items() if k not in known},
        )

    def to_json(self) -> dict[str, Json]:
        return {
            "best_epoch": self.best_epoch,
            "seconds": self.seconds,
            "curves": encode(self.curves),
            **self.extra,
        }


@dataclass(frozen=True)
class FoldEntry:
    """What training one (seed, fold) produced: its test `metrics` (the category's
    `ser.heads.metrics.Metrics`; None: no category trained, written as ``{}``), the selected
    epoch, its seconds (a stacked member's: its share), `stacked` members trained
    together (1: alone), its curves and earlier `stages`, each layered input's
    learnt `layer_weights` (layer order), its side sizes, what each side held of the
    protocol's `group` (sessions, speakers, values; None: not recorded), the groups
    `left_out`, speakers in train and test (`shared_speakers`), its `class_weights` and
    its test `attributes` (`ser.heads.attribute_metrics.AttributeMetrics`; None: none
    trained) and further `heads`' test metrics by head name (`ser.heads.base.Head.metrics`;
    empty: none trained).

    `heads` stays each head's JSON object: heads are pluggable, and each owns its keys
    (it reads them itself: `Reported.recorded`, `flat`), so the record cannot know them;
    `layer_weights` (by layered input) and `class_weights` (by class) are keyed by what
    the run trained on."""

    seed: int
    fold: str
    metrics: Metrics | None = None
    best_epoch: int | None = None
    seconds: float = 0.0
    stacked: int = 1
    curves: Curves = field(default_factory=Curves)
    stages: Mapping[str, Stage] = field(default_factory=dict)
    layer_weights: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    sizes: Sizes | None = None
    test_groups: tuple[Json, ...] | None = None
    val_groups: tuple[Json, ...] | None = None
    group: str | None = None
    left_out: tuple[Json, ...] = ()
    shared_speakers: tuple[Json, ...] = ()
    class_weights: Mapping[str, float] = field(default_factory=dict)
    attributes: AttributeMetrics | None = None
    heads: Mapping[str, Mapping[str, Json]] = field(default_factory=dict)
    # `--calibrate temperature`'s T, fitted on the validation side (None: not calibrated)
    temperature: float | None = None
    # The test side's mean JSD to the annotators' votes (`model`, `majority`, `n`:
    # `ser.train.calibration.votes_jsd`); empty: no votes, or a run without --calibrate.
    votes: Mapping[str, float] = field(default_factory=dict)
    # The device it trained on where the record's config names another (its run resumed
    # on another device since); None: the config's.
    device: str | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str]:
        """(seed, fold): the entry's place in predictions.csv and among checkpoints."""
        return self.seed, self.fold

    @classmethod
    def from_json(cls, obj: object, where: str = "fold entry") -> FoldEntry:
        """An entry as today's format holds it (`ser.runs.migrate` makes older ones so);
        `ReportError` (naming `where`) for what is not one."""
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: a fold entry must be a JSON object")
        if lacking := [k for k in ("seed", "fold") if k not in obj]:
            raise ReportError(f"{where}: the fold entry lacks {', '.join(lacking)}")
        for key, value in (
            ("metrics", obj.get("metrics", {})),
            ("attributes", obj.get("attributes") or {}),
            ("heads", obj.get("heads") or {}),
        ):
            if not isinstance(value, dict):
                raise ReportError(f"{where}: the fold entry's {key!r} must be a JSON object")
        rest = dict(obj)
        tested, held = _groups(rest.pop("test_groups", None)), _groups(rest.pop("val_groups", None))
        group = rest.pop("group", None)
        stages = rest.pop("stages", None) or {}
        return cls(
            seed=_int(rest.pop("seed"), where, "seed"),
            fold=str(rest.pop("fold")),
            metrics=_metrics(rest.pop("metrics", None), where),
            best_epoch=_int_or_none(rest.pop("best_epoch", None), where),
            seconds=_float(rest.pop("seconds", None), where),
            stacked=_int(rest.pop("stacked", None) or 1, where, "stacked"),
            curves=Curves.from_json(rest.pop("curves", None), f"{where}, curves"),
            stages={str(k): Stage.from_json(v, f"{where}, stage {k}") for k, v in stages.items()},
            layer_weights=_weights(rest.pop("layer_weights", None), where),
            sizes=_sizes(rest.pop("sizes", None), where),
            test_groups=tested,
            val_groups=held,
            group=None if group is None else str(group),
            left_out=tuple(rest.pop("left_out", None) or ()),
            shared_speakers=tuple(rest.pop("shared_speakers", None) or ()),
            class_weights=_class_weights(rest.pop("class_weights", None), where),
            attributes=_attributes(rest.pop("attributes", None), where),
            heads=_heads(rest.pop("heads", None), where),
            temperature=_float_or_none(rest.pop("temperature", None), where, "temperature"),
            votes=read_value(Mapping[str, float], rest.pop("votes", None) or {}, f"{where}, votes"),
            device=read_value(str | None, rest.pop("device", None), f"{where}, device"),
            extra=rest,
        )

    def to_json(self) -> dict[str, Json]:
        """The entry as run.json holds it, keys in the order the trainer writes them."""
        pairs = [
            ("seed", self.seed),
            ("fold", self.fold),
            ("metrics", {} if self.metrics is None else self.metrics),
            ("attributes", self.attributes),
            ("heads", self.heads),
            ("best_epoch", self.best_epoch),
            ("seconds", self.seconds),
            ("stacked", self.stacked),
            ("curves", self.curves),
            ("stages", {name: s.to_json() for name, s in self.stages.items()}),
            ("layer_weights", self.layer_weights),
            ("sizes", self.sizes),
            ("test_groups", _list(self.test_groups)),
            ("val_groups", _list(self.val_groups)),
            ("group", self.group),
            ("left_out", list(self.left_out)),
            ("shared_speakers", list(self.shared_speakers)),
            ("class_weights", self.class_weights),
            ("temperature", self.temperature),
            ("votes", self.votes),
            ("device", self.device),
        ]
        return {**{k: encode(v) for k, v in pairs if _written(k, v)}, **self.extra}


def _groups(value: Iterable[Json] | None) -> tuple[Json, ...] | None:
    return None if value is None else tuple(value)


def _metrics(value: Json, where: str) -> Metrics | None:
    """The category's scores; None for none (``{}``: a run without the category)."""
    return Metrics.from_json(value, f"{where}, metrics") if value else None


def _attributes(value: Json, where: str) -> AttributeMetrics | None:
    return AttributeMetrics.from_json(value, f"{where}, attributes") if value else None


def _heads(value: Json, where: str) -> dict[str, Mapping[str, Json]]:
    kind = Mapping[str, Mapping[str, Json]]
    return read_value(kind, value or {}, f"{where}, 'heads'")


def _weights(value: Json, where: str) -> dict[str, tuple[float, ...]]:
    kind = Mapping[str, tuple[float, ...]]
    return read_value(kind, value or {}, f"{where}, 'layer_weights'")


def _class_weights(value: Json, where: str) -> dict[str, float]:
    return read_value(Mapping[str, float], value or {}, f"{where}, 'class_weights'")


def _sizes(value: Json, where: str) -> Sizes | None:
    return None if value is None else decode(Sizes, value, f"{where}, sizes")


def _written(key: str, value: object) -> bool:
    """Whether the key goes into run.json: None never (not recorded), an empty container
    only for `ALWAYS`' keys, as the trainer leaves out what a fold does not have."""
    if value is None:
        return False
    return key in ALWAYS or not isinstance(value, Mapping | list) or bool(value)


def _list(values: tuple[Json, ...] | None) -> list[Json] | None:
    return None if values is None else list(values)


def _int(value: Scalar, where: str, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as e:
        raise ReportError(f"{where}: the fold entry's {key!r} is not a number ({e})") from e


def _float(value: Scalar | None, where: str) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError) as e:
        raise ReportError(f"{where}: 'seconds' is not a number ({e})") from e


def _float_or_none(value: Scalar | None, where: str, key: str) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError) as e:
        raise ReportError(f"{where}: the fold entry's {key!r} is not a number ({e})") from e


def _int_or_none(value: Scalar | None, where: str) -> int | None:
    return None if value is None else _int(value, where, "best_epoch")
