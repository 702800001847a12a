"""What a sweep trains: a preset or a TOML file, expanded into cells of `ser train` options.

A SPEC file names its options the way ``ser train`` does (``d-model`` or ``d_model``)::

    name = "queries-small"          # the sweep's name in reports
    preset = "msmser-queries"       # optional: start from a preset's rows
    [params]                        # the feature sets behind {audio} and {text}
    audio = "hubert"
    [fixed]                         # options every cell shares
    epochs = 20
    d-model = 64
    [grid]                          # axes: every combination is a cell
    lr = [1e-4, 5e-4]
    [[cells]]                       # optional explicit rows (label + options)
    label = "Full"

Every cell's options are checked with the types and choices of ``ser train``'s own
options (`ser.train.options`, the table the command is made from); a problem is a
`ConfigError` naming the file (or preset), the key and the value.

>>> spec = load_spec("msmser-table2", fixed={"epochs": "3"}, grid={"seeds": "1,2"})
>>> len(spec.cells), spec.cells[0].label, spec.cells[0].options["epochs"]
(12, 'Text [seeds=1]', 3)
"""

from __future__ import annotations

import difflib
import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ser.errors import ConfigError
from ser.sweep.presets import (
    ALL,
    CHALLENGE,
    CROSS,
    FINETUNE,
    FINETUNE_PARAMS,
    PRESETS,
    SENTIMENT,
    Preset,
    Row,
)
from ser.sweep.probe import PARAMS as PROBE_PARAMS
from ser.sweep.probe import PROBE, probe_table

# `ser train` options a sweep decides itself (where cells live, where they are logged:
# `ser sweep --track`) or that make no sense per cell.
NOT_SWEPT = frozenset({"store", "out", "name", "overwrite", "track", "track_uri"})
_SPEC_KEYS = frozenset({"name", "title", "preset", "params", "fixed", "grid", "cells"})
# A preset's own fixes of these describe its paper's IEMOCAP setup (LOSO by session,
# session 5 held out, IEMOCAP's 4 or 5 classes): on a store of another corpus a cell takes
# that corpus's default instead (`ser.sweep.stores`). Given by --fix, --grid, a row or a
# SPEC file's [fixed], they apply to every store.
CORPUS_BOUND = ("protocol", "classes")
# What ``--set`` and ``[params]`` fill in: the feature sets behind {audio} and {text}.
PARAM_KEYS = MappingProxyType({"audio": "audio=SET", "text": "text=SET"})  # as messages say


@dataclass(frozen=True)
class Cell:
    """One `ser train` run of a sweep: its table, row and axis values, and its options
    (every ``ser train`` option, typed as `ser train` types it; None: the default)."""

    table: str  # the preset (or spec) it belongs to
    row: Row
    grid: Mapping[str, Any]  # this cell's value of each swept axis
    options: Mapping[str, Any]
    # `CORPUS_BOUND` options whose value is the preset's IEMOCAP fix (nobody else's)
    corpus_bound: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        axes = ", ".join(f"{k}={v}" for k, v in self.grid.items())
        column = f" / {self.row.column}" if self.row.column else ""
        return self.row.label + column + (f" [{axes}]" if axes else "")


@dataclass(frozen=True)
class SweepSpec:
    name: str
    source: str  # the preset name or the SPEC file, for messages
    tables: tuple[Preset, ...]
    cells: tuple[Cell, ...]


def load_spec(
    spec: str,
    *,
    params: Mapping[str, str] | None = None,
    fixed: Mapping[str, Any] | None = None,
    grid: Mapping[str, Any] | None = None,
    store: str | Sequence[str] | None = None,
    made: Preset | None = None,
) -> SweepSpec:
    """The cells of a preset name (or ``all``) or a TOML file, with command-line
    `params` (``--set``), `fixed` options (``--fix``) and axes (``--grid``, comma lists);
    the `probe` preset reads its rows from `store` (several: each one's from it,
    `ser.sweep.probe`); `cross-corpus`'s (and the other presets made from stores:
    `finetune`'s ...) are `made` by the caller from its stores
    (`ser.sweep.cross.cross_table`, `ser.sweep.finetune.finetune_table`)."""
    cli = {"params": dict(params or {}), "fixed": dict(fixed or {}), "grid": dict(grid or {})}
    if spec in (CROSS, CHALLENGE, SENTIMENT, FINETUNE):
        if made is None or made.name != spec:
            what = "are pairs of stores; give --store twice or more"
            what = what if spec == CROSS else "are made from its store; give --store"
            raise ConfigError(f"{spec}: its rows {what}")
        keys = PARAM_KEYS if spec == SENTIMENT else {"audio": "audio=SET"}
        keys = FINETUNE_PARAMS if spec == FINETUNE else keys
        _check_params(cli["params"], "--set", "--fix", keys)
        return _expand(spec, spec, (made,), cli)
    if spec == PROBE:
        _check_params(cli["params"], "--set", "--fix", PROBE_PARAMS)
        if not store:
            raise ConfigError(f"{PROBE}: its rows are the layers a store holds; give --store")
        table = probe_table(store, cli.pop("params"))
        return _expand(spec, spec, (table,), {**cli, "params": {}})
    _check_params(cli["params"], "--set", "--fix")
    if spec in PRESETS or spec == ALL:
        tables = tuple(PRESETS.values()) if spec == ALL else (PRESETS[spec],)
        return _expand(spec, spec, tables, cli)
    path = Path(spec)
    if not path.is_file():
        known = ", ".join([*PRESETS, PROBE, CROSS, CHALLENGE, SENTIMENT, FINETUNE, ALL])
        raise ConfigError(f"{spec}: neither a preset ({known}) nor a SPEC file")
    return _from_file(path, cli)


def _from_file(path: Path, cli: dict[str, dict[str, Any]]) -> SweepSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not a readable TOML sweep spec ({e})") from e
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} (a spec has {', '.join(sorted(_SPEC_KEYS))})"
        )
    for key in ("params", "fixed", "grid"):
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: [{key}] must be a table of key = value")
    _check_params(data.get("params", {}), f"{path}: [params]", "[fixed]")
    name = str(data.get("name") or path.stem)
    base = data.get("preset")
    if base is not None and base not in PRESETS:
        raise ConfigError(f"{path}: preset {base!r} is not one of {', '.join(PRESETS)}")
    table = _file_table(path, name, data, PRESETS[base] if base else None)
    given = {k: {**data.get(k, {}), **cli[k]} for k in cli}  # the command line's win
    return _expand(name, str(path), (table,), given)


def _check_params(
    params: Mapping[str, Any],
    where: str,
    fix: str,
    known: Mapping[str, str] = PARAM_KEYS,
) -> None:
    """ConfigError for a key that is not one of the table's `known` (key -> usage): an
    option given there would otherwise be ignored (every cell trained with its default)."""
    for key, value in params.items():
        if key not in known:
            raise ConfigError(
                f"{where} {key}={value}: takes {', '.join(known.values())} only; "
                f"a ser train option goes to {fix} {key}={value}"
            )


def _file_table(path: Path, name: str, data: dict[str, Any], base: Preset | None) -> Preset:
    """A spec file as one table: the preset's rows and numbers, or its own cells."""
    rows = base.rows if base else (Row("run"),)
    if "cells" in data:
        cells = data["cells"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ConfigError(f"{path}: [[cells]] must be a list of tables")
        rows = tuple(_file_row(n, c) for n, c in enumerate(cells, 1))
    title = str(data.get("title") or (base.title if base else name))
    if base is None:
        return Preset(name, title, rows, reference=rows[0].label)
    return replace(base, name=name, title=title, rows=rows)


def _file_row(n: int, cell: dict[str, Any]) -> Row:
    options = {k: v for k, v in cell.items() if k != "label"}
    return Row(str(cell.get("label", f"cell {n}")), MappingProxyType(options))


def _expand(
    name: str, source: str, tables: Sequence[Preset], given: Mapping[str, dict[str, Any]]
) -> SweepSpec:
    options = TrainOptions()
    fixed = {options.key(k, source, "fixed"): v for k, v in given["fixed"].items()}
    axes = {
        key: [options.cast(key, v, f"{source}: [grid]") for v in _values(v, source, k)]
        for k, v in given["grid"].items()
        for key in [options.key(k, source, "grid")]
    }
    cells = []
    for table in tables:
        params = {**table.params, **given["params"]}
        for row in table.rows:
            for values in itertools.product(*axes.values()):
                point = dict(zip(axes, values, strict=True))
                raw = {**table.fixed, **row.options, **fixed, **point}
                where = f"{table.name} '{row.label}'"
                where = where if source == table.name else f"{source}: {where}"
                resolved = options.resolve(raw, params, where)
                chosen = {**row.options, **fixed, **point}  # not the preset's own fixes
                bound = frozenset(k for k in CORPUS_BOUND if k in table.fixed and k not in chosen)
                cells.append(Cell(table.name, row, MappingProxyType(point), resolved, bound))
    return SweepSpec(name, source, tuple(tables), tuple(cells))


def _values(value: object, source: str, key: str) -> list[Any]:
    """An axis: a TOML list or a comma-separated command-line string."""
    values = value.split(",") if isinstance(value, str) else value
    if not isinstance(values, list) or not values or any(v == "" for v in values):
        raise ConfigError(f"{source}: grid axis {key!r} needs a non-empty list of values")
    return [v.strip() if isinstance(v, str) else v for v in values]


class TrainOptions:
    """`ser train`'s options: their names, defaults and types (`ser.train.options`)."""

    def __init__(self) -> None:
        from ser.train.option_table import train_options

        self.table = {k: o for k, o in train_options().items() if k not in NOT_SWEPT}

    def key(self, name: str, source: str, section: str) -> str:
        """The option's name (dashes as underscores); unknown → ConfigError."""
        key = name.replace("-", "_")
        if key not in self.table:
            close = difflib.get_close_matches(key, list(self.table), n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise ConfigError(f"{source}: [{section}] {name!r} is not a ser train option{hint}")
        return key

    def resolve(
        self, raw: Mapping[str, Any], params: Mapping[str, str], where: str
    ) -> Mapping[str, Any]:
        """Every option, typed: defaults, then `raw`; ``{audio}`` / ``{text}`` filled."""
        out: dict[str, Any] = {k: o.default for k, o in self.table.items()}
        for name, value in raw.items():
            key = self.key(name, where, "options")
            out[key] = self.cast(key, value, where)
        if out.get("features") is None:
            raise ConfigError(f"{where}: no feature sets (fix features = 'a+b')")
        try:
            out["features"] = str(out["features"]).format_map(dict(params))
        except KeyError as e:
            name = e.args[0]
            raise ConfigError(f"{where}: features name {{{name}}}: give --set {name}=SET") from None
        return MappingProxyType(out)

    # Any: an option's value, of the type its option says (`ser.train.options`).
    def cast(self, key: str, value: Any, where: str) -> Any:
        """`value` as `ser train` types option `key`; ConfigError naming `where`."""
        try:
            return self.table[key].parse(value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {key.replace('_', '-')} = {value!r}: {e}") from None
