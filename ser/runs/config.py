"""A run's config as its record keeps it (`RunRecord.config`, written by
`ser.train.record.config_record`, defaults resolved): the keys every run has, its
targets' (`ser.heads.targets.Targets.record_keys`) and its model family's options
(`options`: the family's own, so a mapping of JSON values by option name; the record
holds them flattened beside the others).

As run.json holds it, and as readers that look a key up by name see it (settings, the
family's options: it is a read-only mapping of that JSON): the keys in the order the
trainer writes them.

>>> c = RunConfig.from_json({"features": "is13", "family": "unimodal", "d_model": 64,
...                          "epochs": 3, "seeds": [0, 1]})
>>> c.features, c.epochs, c.seeds, c.options, c["d_model"], list(c)
('is13', 3, (0, 1), {'d_model': 64}, 64, ['features', 'family', 'd_model', 'epochs', 'seeds'])
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ser.errors import ReportError
from ser.runs.codec import Json, encode, read_value

# The keys before the family's options, and after them, in the trainer's order.
_BEFORE = ("store", "features", "finetune", "family")
_AFTER = (
    "classes",
    "protocol",
    "val",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "seed",
    "seeds",
    "patience",
    "class_weights",
    "sampler",
    "augment",
    "mask_time",
    "mask_features",
    "mixup",
    "views",
    "test_store",
    "test",
    "target",
    "attribute_loss",
    "attribute_weight",
    "labels",
    "calibrate",
    "streamed",
    "device",
    "precision",
    "out",
    "name",
)


@dataclass(frozen=True, kw_only=True)
class CrossTestStore:
    """What a cross-corpus run's test store holds: its corpus kind, manifest digest
    (`StoreCorpus.digest`) and the class set tested."""

    corpus: str
    manifest: str
    classes: str
    extra: Mapping[str, Json] = field(default_factory=dict)


# The mapping's values are Any: looked up by name, a family's option is whichever JSON
# value that family gives it (a count, a flag, a list); the named keys are typed fields.
@dataclass(frozen=True, kw_only=True)
class RunConfig(Mapping[str, Any]):
    """Where its features came from (`store`, `features`: joined by '+'; `finetune`:
    the inputs whose encoder's top layers trained, as `--finetune` spells them), its model
    `family` and that family's `options`, what it trained on (`classes`, `protocol`,
    `val`), how (`epochs` ... `patience`, `class_weights` when weighted; `sampler`,
    `augment` with `mask_time` and `mask_features`, `mixup`, `views`), a cross-corpus run's
    `test_store` and what it holds (`test`), its targets (`target` where not the category
    alone, `attribute_loss` and `attribute_weight` where attributes trained, `labels`
    "soft"), `calibrate`, where it ran (`device`, `precision`, `out`, `name`). The trainer
    writes every key, null where the option is off; None: null or not in the record
    (records written before every option was recorded leave out the ones that were off)."""

    store: str | None = None
    features: str | None = None
    finetune: tuple[str, ...] | None = None  # `--finetune` values (none: frozen inputs)
    family: str | None = None
    options: Mapping[str, Json] = field(default_factory=dict)
    classes: str | None = None
    protocol: str | None = None
    val: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    seed: int | None = None
    seeds: tuple[int, ...] | int | None = None  # an int in some older records
    patience: int | None = None
    class_weights: str | None = None
    sampler: str | None = None  # these six: the training side's, only where not default
    augment: str | None = None
    mask_time: tuple[int, ...] | None = None
    mask_features: tuple[int, ...] | None = None
    mixup: float | None = None
    views: str | None = None  # `--views`: "all" or the view names asked for
    test_store: str | None = None
    test: CrossTestStore | None = None
    target: str | None = None
    attribute_loss: str | None = None
    attribute_weight: float | None = None
    labels: str | None = None
    calibrate: str | None = None  # "temperature" (`--calibrate`); None: not calibrated
    streamed: tuple[str, ...] | None = None  # inputs read from the store under --memory-budget
    device: str | None = None
    precision: str | None = None
    out: str | None = None
    name: str | None = None
    # The keys as read, in their order (None: made here, the trainer's order).
    order: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: object, where: str = "config") -> RunConfig:
        """The config in the JSON object `obj`; `ReportError` naming `where` and the key
        for a value of another type."""
        if not isinstance(obj, dict):
            raise ReportError(f"{where}: 'config' must be a JSON object")
        hints = _hints()
        values = {
            k: read_value(hints[k], v, f"{where}, {k!r}")
            for k, v in obj.items()
            if k in hints and v is not None
        }
        options = {k: v for k, v in obj.items() if k not in hints}
        return cls(**values, options=options, order=tuple(obj))

    @staticmethod
    def named_keys() -> tuple[str, ...]:
        """The keys every record may hold beside its family's options, in the trainer's
        order."""
        return (*_BEFORE, *_AFTER)

    def to_json(self) -> dict[str, Json]:
        return {k: encode(v) for k, v in self.items()}

    def _flat(self) -> dict[str, Any]:
        named = {k: getattr(self, k) for k in (*_BEFORE, *_AFTER)}
        made = {k: v for k, v in named.items() if v is not None}
        flat = {**{k: made[k] for k in _BEFORE if k in made}, **self.options}
        flat |= {k: made[k] for k in _AFTER if k in made}
        if self.order is None:
            return flat
        # a named key read as null is written back as null
        kept = {k: flat.get(k) for k in self.order if k in flat or k in _hints()}
        return {**kept, **flat}

    def __getitem__(self, key: str) -> Any:
        return encode(self._flat()[key])  # as run.json holds it

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat())

    def __len__(self) -> int:
        return len(self._flat())


@cache
def _hints() -> dict[str, Any]:
    """The named keys' types."""
    hints = typing.get_type_hints(RunConfig)
    return {k: v for k, v in hints.items() if k not in ("options", "order")}
