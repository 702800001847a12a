"""Sweep cells resolved against a store: checked, content-addressed, grouped into tasks.

A cell's run directory is ``<out>/cells/<key>``, the key a hash of its resolved config
and its feature sets' fingerprints (not of where it runs): a sweep run again finds its
finished cells, sweeps that share a cell train it once, and a re-extracted feature set
makes a new cell instead of mixing with the old one. A store of another corpus than
IEMOCAP adds its identity to the key (`ser.sweep.stores`): one cell on two corpora is
two cells. Every cell is checked before anything trains, all problems reported at once,
each with its cell.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ser.cache import FeatureStore
from ser.errors import ConfigError, ReportError, SerError
from ser.models import plan_inputs
from ser.runs.record import RECORD, RunRecord, read
from ser.sweep.spec import Cell
from ser.sweep.stores import StoreIdentity, check_stores, corpus_options, identify
from ser.track.tracking import Tracking
from ser.train.features import resolve_features
from ser.train.options import ResolvedConfig, TrainConfig
from ser.train.plan import protocol_of, resolve, seeds_of
from ser.train.record import NOT_COMPARED, cell_config, config_record

CELLS = "cells"  # <out>/cells/<key>/run.json
KEY_LENGTH = 16  # hex digits: 64 bits, no collision among any realistic set of cells


@dataclass(frozen=True)
class ResolvedCell:
    """A cell ready to train: ``config`` writes ``<out>/cells/<key>/run.json``."""

    cell: Cell
    key: str
    config: TrainConfig
    resolved: dict[str, Any]  # the hashed config (what the cell *is*)
    task_key: tuple[Hashable, ...]  # cells with one task_key can train as one stacked model
    members: int  # (seed, fold) runs
    settings: ResolvedConfig  # `config` resolved (`ser.train.plan.resolve`): its defaults filled in
    inputs: tuple[Any, ...]  # the model's input specs (`ser.models.plan_inputs`)
    features: tuple[str, ...]  # the stored feature sets it reads (a layered input's all)
    store: StoreIdentity  # the store it trains on
    test_features: tuple[str, ...] = ()  # cross-corpus: the sets it reads of its test store


def resolve_cells(
    cells: Sequence[Cell], store: str | Sequence[str], out: Path
) -> list[ResolvedCell]:
    """Check and key every cell on `store` (several: every cell on each, store by store;
    a cell whose row names its store (`Row.store`) on that one alone); ConfigError listing
    every cell that cannot train, or for stores that would share keys."""
    stores = [store] if isinstance(store, str) else list(store)
    if not stores:
        raise ConfigError("no store: give --store")
    handles = [FeatureStore.open(s) for s in stores]  # StoreError: missing or unreadable
    idents = [identify(h) for h in handles]
    check_stores(idents)
    several = len(stores) > 1
    resolved: list[ResolvedCell] = []
    problems: dict[str, list[str]] = {}  # problem -> the cells that have it
    opened = {ident.path: handle for handle, ident in zip(handles, idents, strict=True)}
    for handle, ident in zip(handles, idents, strict=True):
        on = f" on {ident.title} ({ident.path})" if several else ""
        for cell in cells:
            if cell.row.store not in (None, ident.path):
                continue
            try:
                cell = corpus_options(cell, ident)
                resolved.append(_resolve(cell, handle, ident, out, opened))
            except SerError as e:
                problems.setdefault(str(e), []).append(f"{cell.table} '{cell.label}'{on}")
    if problems:
        failed = sum(len(names) for names in problems.values())
        lines = [f"{_names(names)}: {problem}" for problem, names in problems.items()]
        raise ConfigError(f"{failed} cell(s) cannot train:\n  " + "\n  ".join(lines))
    return resolved


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more"


def _resolve(
    cell: Cell,
    handle: FeatureStore,
    ident: StoreIdentity,
    out: Path,
    opened: dict[str, FeatureStore],
) -> ResolvedCell:
    from ser.train.cross import check_features
    from ser.train.identity import run_key
    from ser.train.option_table import train_config

    # Resolved: a cell's run.json names its store and folder wherever it is read from.
    options = {
        **cell.options,
        "store": str(handle.path.resolve()),
        "out": str(Path(out).resolve() / CELLS),
        "name": "cell",
        "overwrite": False,
    }
    config = train_config(options)
    test = _test_store(config, handle, opened)  # cross-corpus: its identity keys the cell
    tested = test.corpus if test else None
    settings = resolve(config, handle.corpus.kind, tested)
    features = resolve_features(handle, config.features)
    test_features: tuple[str, ...] = ()
    if test is not None:  # the same sets there, computed alike
        theirs = resolve_features(test, config.features)
        check_features(handle, test, features, theirs)
        test_features = tuple(name for f in theirs for name in f.stored)
    infos = [f.info() for f in features]  # a layered input: one, with its layer count
    _, inputs = plan_inputs(config.model, infos)  # ConfigError: the model cannot take these
    recorded = cell_config(config_record(settings, tested))
    what = {k: v for k, v in recorded.items() if k not in NOT_COMPARED}
    what["features"] = "+".join(f.name for f in features)
    fingerprints = {f.name: f.fingerprint for f in features}
    hashed: dict[str, Any] = {"config": what, "fingerprints": fingerprints}
    if (part := ident.key_part()) is not None:  # IEMOCAP's keys stay as they were
        hashed["store"] = part
    blob = json.dumps(hashed, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]
    task_key = run_key(settings)  # the key `ser train` stacks members by
    protocol = protocol_of(settings, handle.corpus.kind, tested)
    members = len(seeds_of(settings)) * protocol.fold_count(handle.corpus.columns)
    names = tuple(name for f in features for name in f.stored)  # a layered input: its sets
    return ResolvedCell(
        cell,
        key,
        replace(config, name=key),
        what,
        task_key,
        members,
        settings,
        tuple(inputs),
        names,
        ident,
        test_features,
    )


def _test_store(
    config: TrainConfig, handle: FeatureStore, opened: dict[str, FeatureStore]
) -> FeatureStore | None:
    """A cross-corpus cell's test store, opened (one of the sweep's, or its own), and
    checked to be another corpus than `handle`'s; None for another cell."""
    from ser.train.cross import check_pair

    if config.test_store is None:
        return None
    path = str(Path(config.test_store).resolve())
    test = opened[path] if path in opened else FeatureStore.open(path)
    check_pair(handle, test)
    return test


def unique(cells: Sequence[ResolvedCell]) -> list[ResolvedCell]:
    """One cell per key (tables that share a cell train it once), each where it first comes."""
    first: dict[str, ResolvedCell] = {}
    for c in cells:
        first.setdefault(c.key, c)
    return list(first.values())


def tasks(cells: Sequence[ResolvedCell]) -> list[list[ResolvedCell]]:
    """Cells that can train as one stacked model, together: the sweep's units of work."""
    by_key: dict[tuple[Hashable, ...], list[ResolvedCell]] = {}
    for cell in unique(cells):
        by_key.setdefault(cell.task_key, []).append(cell)
    return list(by_key.values())


def cell_dir(out: Path, key: str) -> Path:
    return Path(out) / CELLS / key


def record_of(out: Path, key: str) -> RunRecord | None:
    """The cell's record, finished or not (None: none, or unreadable)."""
    return cell_record(out, key)[0]


def cell_record(out: Path, key: str) -> tuple[RunRecord | None, str]:
    """The cell's record, finished or not (None: none yet), or None and why it cannot be
    read, with what mends it: a damaged record is not a cell that never ran."""
    path = cell_dir(out, key) / RECORD
    if not path.exists():
        return None, ""
    try:
        return read(path), ""
    except ReportError as err:
        return None, f"{err}; delete {path.parent} and run the sweep again to train it anew"


def tracked(cells: Sequence[ResolvedCell], tracking: Tracking | None) -> list[ResolvedCell]:
    """The cells, each logged as a run where `tracking` says (`ser sweep --track`); their
    keys stay: where a run is watched is not what it is."""
    if tracking is None:
        return list(cells)
    kind, uri = tracking.kind, tracking.uri
    return [replace(c, config=replace(c.config, track=kind, track_uri=uri)) for c in cells]
