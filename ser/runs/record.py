"""A run's record, ``<out>/<name>/run.json``: the `RunRecord` type, and the one place
the file is read (`read`) and written (`write`, atomically).

`ser train` writes it after each group of (seed, fold)s; `ser report`, `ser sweep` and
`ser claims` read it; a resumed run reads it back and goes on. The record holds the
config (`ser.runs.config`: defaults resolved, the model family's options among them),
the feature sets' fingerprints, an entry per finished (seed, fold) (`FoldEntry`), the
summary (`ser.heads.metrics.summarize`) and the category's pooled scores
(`ser.heads.metrics.Metrics`).
How the run ran (`ser.runs.provenance`), what it read (`ser.runs.data`) and a
cross-corpus run's stores (`ser.runs.cross`) are frozen dataclasses of their own.

Frozen, as every part of it: the trainer makes a new record with
`dataclasses.replace` as the run goes (each group's entries added, the summary
refreshed, what it learns of data, execution, final), holds the newest in its run, and
writes it whole.

Formats: this version writes `FORMAT`; `read` takes every older one, made today's by
`ser.runs.migrate` (which refuses a newer one), and keeps a key it does not know in
`extra`, written back: a newer ser's key survives a resume.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from dataclasses import KW_ONLY, Field, dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from ser.cache.atomic import write_json
from ser.errors import ConfigError, ReportError
from ser.heads.metrics import Metrics
from ser.heads.recorded import run_heads
from ser.runs.codec import Json, encode, read_value
from ser.runs.config import RunConfig
from ser.runs.cross import Cross
from ser.runs.data import AsrSet, Data
from ser.runs.fold_entry import FoldEntry
from ser.runs.migrate import FORMAT, current
from ser.runs.provenance import ExecutionRecord, Final, Processes, Threads, Timings
from ser.runs.summary import Summary

RECORD = "run.json"
# What a record must hold for anything to read it.
REQUIRED = ("name", "config", "protocol", "classes")
# How a field of `RunRecord` is written, in its metadata (the rest follows from its type):
# WRITTEN: whatever it holds (a record without a summary yet says so with null); else
# only when it holds something. NULL: a null read is None, not the field's default.
WRITTEN = {"written": True}
NULL = {"written": True, "null": True}
# Read by `from_json` itself; every other field by its type.
_OWN = ("name", "config", "protocol", "classes", "folds")


@dataclass(frozen=True, kw_only=True)
class Layered:
    """A layered input's stored sets and their layers, in layer order."""

    sets: tuple[str, ...]
    layers: tuple[int, ...]
    extra: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """A training run: what it trained (`config`, `fingerprints`, `layers`: each layered
    input's stored sets and layers), on what (`protocol`, `validation`, `classes`,
    `store`, `data`: utterances and those dropped, `asr`: the WER of ASR-text inputs),
    what came out (`folds`, `summary`, `pooled`, `final`: the model on all data) and how
    (`seconds`, `timings`, `threads`, `execution`; `processes` in older records);
    `cross`: a run trained on one store and tested on another.
    `complete` is False while folds are left to train (None: a record without it);
    `speaker_independent` None: not recorded (see `independent`).

    The fields stand in run.json's order (the trainer's); the first four are positional."""

    name: str = field(metadata=WRITTEN)
    config: RunConfig = field(metadata=WRITTEN)
    protocol: str = field(metadata=WRITTEN)
    speaker_independent: bool | None = field(default=None, kw_only=True)
    validation: str | None = field(default=None, kw_only=True)
    classes: tuple[str, ...] = field(metadata=WRITTEN)
    _: KW_ONLY
    complete: bool | None = None
    summary: Summary | None = field(default=None, metadata=NULL)
    folds: tuple[FoldEntry, ...] = field(default=(), metadata=WRITTEN)
    pooled: Metrics | None = field(default=None, metadata=NULL)
    seconds: float = field(default=0.0, metadata=WRITTEN)
    timings: Timings = field(default_factory=Timings, metadata=WRITTEN)
    fingerprints: Mapping[str, str] = field(default_factory=dict, metadata=WRITTEN)
    layers: Mapping[str, Layered] = field(default_factory=dict)
    # The views (`ser train --views`) its training sides drew, e.g. ("noise20db",
    # "speed0.9"); their sets' fingerprints are in `fingerprints`. Written when any.
    views: tuple[str, ...] = ()
    version: str | None = None  # ser's, when the run started
    store: str | None = None
    threads: Threads | None = None
    data: Data | None = None
    asr: Mapping[str, AsrSet] = field(default_factory=dict)
    execution: ExecutionRecord | None = None
    final: Final | None = None
    processes: Processes | None = None  # before `execution`
    # A cross-corpus run's (`ser.train.cross`): both stores, the classes matched by
    # emotion, what either side dropped; None: a run on one store.
    cross: Cross | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)  # keys this version does not know

    def __post_init__(self) -> None:
        # A list given (as the JSON holds them) is kept as the tuple a read record has:
        # the record is frozen, and two equal records compare equal.
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "folds", tuple(self.folds))

    @property
    def independent(self) -> bool:
        """Whether the folds held speakers out; a record that does not say: all but the
        random protocol did."""
        if self.speaker_independent is None:
            return self.protocol != "random"
        return self.speaker_independent

    @classmethod
    def from_json(cls, obj: object, path: str | Path = "run record") -> RunRecord:
        """The record in the parsed JSON `obj`, of any format up to `FORMAT`;
        `ReportError` naming `path` for what is not a run record."""
        if not isinstance(obj, dict):
            raise ReportError(f"{path}: a run record must be a JSON object")
        obj = current(obj, path)
        missing = [key for key in REQUIRED if key not in obj]
        if missing:
            raise ReportError(f"{path}: run record lacks {', '.join(missing)}")
        _check_shape(obj, path)
        rest = dict(obj)
        rest.pop("format", None)
        folds = rest.pop("folds", None) or []
        taken = {f.name: rest.pop(f.name) for f in _persisted() if f.name in rest}
        return cls(
            name=str(taken.pop("name")),
            config=RunConfig.from_json(taken.pop("config"), f"{path}, config"),
            protocol=str(taken.pop("protocol")),
            classes=tuple(str(c) for c in taken.pop("classes")),
            folds=tuple(
                FoldEntry.from_json(e, f"{path}, fold entry {n}") for n, e in enumerate(folds, 1)
            ),
            **_values(taken, path),
            extra=rest,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as run.json holds it (format `FORMAT`), keys in the trainer's order."""
        body: dict[str, Any] = {}
        for f in _persisted():
            value = encode(getattr(self, f.name))
            if f.name == "folds":
                body["folds"] = [entry.to_json() for entry in self.folds]
            elif f.metadata.get("written") or _holds(value):
                body[f.name] = value
        return {"format": FORMAT, **body, **self.extra}


def read(path: Path) -> RunRecord:
    """The record in the file `path`; `ReportError` naming it when it cannot be read or
    is not a run record."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: not a readable JSON run record: {e}") from e
    return RunRecord.from_json(obj, path)


def write(path: Path, record: RunRecord) -> Path:
    """`record` as `path`, atomically (a reader never sees half a record)."""
    return write_json(path, record.to_json(), "the run record")


def _check_shape(obj: dict[str, Any], path: str | Path) -> None:
    """What readers index must have its JSON type: a refusal naming the key, not a
    TypeError in a report."""
    if not isinstance(obj["config"], dict):
        raise ReportError(f"{path}: 'config' must be a JSON object")
    if not isinstance(obj["classes"], list):
        raise ReportError(f"{path}: 'classes' must be a JSON list")
    if not isinstance(obj.get("folds", []), list | None):
        raise ReportError(f"{path}: 'folds' must be a JSON list")
    for key in _objects():
        if not isinstance(obj.get(key), dict | None):
            raise ReportError(f"{path}: {key!r} must be a JSON object")


def _values(taken: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The other fields' values as read, each by its type: null takes the field's default
    (seconds 0, no timings ...) but for a NULL field's."""
    nullable = {f.name for f in _persisted() if f.metadata.get("null")}
    out = {k: v for k, v in taken.items() if v is not None or k in nullable}
    hints = _hints()
    for name, value in out.items():
        if value is not None and name not in _OWN:
            out[name] = read_value(hints[name], value, f"{path}, {name!r}")
    return out


@cache
def _persisted() -> tuple[Field[Any], ...]:
    """run.json's fields, in its order (all but `extra`, which is written at the end)."""
    return tuple(f for f in fields(RunRecord) if f.name not in ("_", "extra"))


@cache
def _objects() -> tuple[str, ...]:
    """The fields readers index (a mapping or a part): another JSON type is refused."""
    hints = _hints()
    return tuple(f.name for f in _persisted() if f.name != "config" and _is_object(hints[f.name]))


def _is_object(kind: object) -> bool:
    args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    return all(typing.get_origin(a) in (Mapping, dict) or is_dataclass(a) for a in args)


@cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(RunRecord)


def _holds(value: object) -> bool:
    """Whether an optional key is written: not None, not an empty container."""
    return value is not None and (not isinstance(value, Mapping | list) or bool(value))


def run_scores(record: RunRecord) -> tuple[Summary | None, Metrics | None]:
    """The record's summary (each head's mean ± std over seeds, in the run's head order)
    and pooled metrics (the category's; None without it), made anew from its folds: the
    record's own summary and pooled are the last group's."""
    fresh = replace(record, summary=None, pooled=None)
    heads = run_heads(fresh)
    summary: dict[str, Any] = {}
    for head in heads:
        for key, value in head.summary(fresh, {}).items():
            summary.setdefault(key, value)
    pooled = next((h.pooled(fresh) for h in heads if h.category), None)
    return (Summary.from_json(summary) if summary else None), pooled


def json_summary(record: RunRecord) -> dict[str, Any]:
    """`ser train --json`: each of the run's heads' numbers over seeds and per fold
    (`Reported.json_summary`, `Reported.json_fold`: the category's WA, UA and F1 in
    percent, the attributes' mean CCC, ...), protocol, seconds."""
    if record.summary is None:
        raise ConfigError(f"{record.name}: no (seed, fold) trained, nothing to summarise")
    heads = run_heads(record)
    folds = [
        {
            "seed": e.seed,
            "fold": e.fold,
            **{k: v for head in heads for k, v in head.json_fold(e).items()},
            "best_epoch": e.best_epoch,
        }
        for e in record.folds
    ]
    protocol, seconds = record.protocol, record.seconds
    return {**head_summary(record), "folds": folds, "protocol": protocol, "seconds": seconds}


def head_summary(record: RunRecord) -> dict[str, Any]:
    """Each of the run's heads' numbers over seeds (`Reported.json_summary`: ua, wa, f1,
    their stds, the attributes' mean CCC, ...); empty before its first (seed, fold)."""
    if record.summary is None:
        return {}
    return {k: v for h in run_heads(record) for k, v in h.json_summary(record.summary).items()}
