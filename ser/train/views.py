"""`ser train --views`: the views `ser extract --augment` writes beside each clean feature
set (`<set>.speed0.9`, `<set>.noise20db`: the clean set's attrs plus `view_of: <set>` and
`view: "speed=0.9"`; the same manifest rows, other row counts for a speed view), which a
training side reads each utterance from, one drawn per epoch (`ser.train.augment.Draws`).

Which views a request means (`resolve_views`: refusals before any folder is made), and
their rows loaded into the run's tables (`with_views`): each view's rows follow the clean
ones in the table's one buffer (where the clean rows stream, each view's set streams
beside them: `FeatureTable.parts`), `ViewRows` saying where each (view, utterance) is. A
layered input has a view where each of its layer sets has it; an input without a view
(text: mpnet), and an utterance with no rows in it, read the clean rows for it.

A view made from a clean set since extracted again with other settings (stale: another
encoder's rows) is refused, named with the command that makes it again; a view whose
every utterance failed is refused where it is named, left out of `--views all` with a
word (`Views.describe`, the run's line on what it draws).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.cache.verify import stale_view
from ser.errors import ConfigError, StoreError
from ser.extract.remake import rebuild_command, view_command
from ser.train.data import (
    FeatureTable,
    TrainData,
    ViewRows,
    kept_rows,
    read_rows,
    stored_layout,
    stored_stream,
)
from ser.train.features import ResolvedFeature, is_view
from ser.train.placement import Copies, least_cache, shares
from ser.train.stream import RowStream

#: `--views all`: every view some input has.
ALL = "all"
#: What makes views, as refusals say it.
MAKE = "ser extract ... --augment speed=0.9,1.1"


@dataclass(frozen=True)
class Views:
    """A run's views: their `labels` in draw order (after the clean set, view 0), per
    input the stored sets of each view it has (a layered input's: one per layer set) and
    those sets' fingerprints (the run's record keeps them beside its inputs', so a resume
    after the views were extracted again is refused as one after its inputs were)."""

    labels: tuple[str, ...]
    sets: Mapping[str, Mapping[str, tuple[str, ...]]]  # input name -> label -> sets
    prints: Mapping[str, str]  # view set -> fingerprint
    left_out: Mapping[str, str] = field(default_factory=dict)  # `all`: label -> why

    def describe(self) -> str:
        """The run's line on its views, e.g. "views drawn each epoch beside the clean
        sets: noise20db, speed0.9 (left out: speed1.1: every utterance failed in it)"."""
        line = f"views drawn each epoch beside the clean sets: {', '.join(self.labels)}"
        if self.left_out:
            said = "; ".join(f"{label}: {why}" for label, why in self.left_out.items())
            line += f" (left out: {said})"
        return line


def parse_views(text: str) -> tuple[str, ...]:
    """``"speed0.9, noise20db"`` -> ``("speed0.9", "noise20db")``; ``all`` alone."""
    labels = tuple(p.strip() for p in text.split(","))
    if any(not p for p in labels) or len(set(labels)) != len(labels):
        raise ConfigError(f"--views {text!r}: give all, or view names joined by ',' once each")
    return labels


def stored_views(store: FeatureStore) -> dict[str, dict[str, str]]:
    """Clean set -> view label -> view set, of every readable view set in `store` (the
    label: the view set's name after its clean set's, `speed0.9`)."""
    out: dict[str, dict[str, str]] = {}
    for name in sorted(store.feature_sets()):
        try:
            info = store.info(name)
        except StoreError:  # damaged: named where it is asked for by name
            continue
        if is_view(info.attrs):
            clean = str(info.attrs["view_of"])
            label = name.removeprefix(f"{clean}.")
            if not info.complete:
                raise StoreError(
                    f"view set {name!r} in {store.path} is incomplete (extraction did not "
                    "finish); run the same `ser extract --augment` command again to complete it"
                )
            out.setdefault(clean, {})[label] = name
    return out


def resolve_views(
    store: FeatureStore, features: Sequence[ResolvedFeature], asked: str | None
) -> Views | None:
    """The views `asked` (`--views`; None: none) names among the inputs' (`ConfigError`
    naming those the store holds where it names another, or where it holds none)."""
    if asked is None:
        return None
    held = stored_views(store)
    per_input: dict[str, dict[str, tuple[str, ...]]] = {}
    for feature in features:
        own = [held.get(name, {}) for name in feature.stored]
        common = sorted(set.intersection(*(set(views) for views in own)))
        per_input[feature.name] = {label: tuple(v[label] for v in own) for label in common}
    offered = sorted({label for views in per_input.values() for label in views})
    inputs = "+".join(f.name for f in features)
    if not offered:
        raise ConfigError(
            f"--views {asked}: the store {store.path} holds no views of {inputs}; make them "
            f"with `{MAKE}` (docs/extract.md)"
        )
    labels = tuple(offered) if asked.strip() == ALL else parse_views(asked)
    unknown = [label for label in labels if label not in offered]
    if unknown:
        raise ConfigError(
            f"--views {asked}: no input of {inputs} has the view(s) {', '.join(unknown)} in "
            f"{store.path}; they have {', '.join(offered)} (or give --views all)"
        )
    left_out = _unusable(store, asked, per_input, labels)
    labels = tuple(label for label in labels if label not in left_out)
    if not labels:
        raise ConfigError(
            f"--views {asked}: no view of {inputs} in {store.path} holds rows ("
            + "; ".join(f"{k}: {why}" for k, why in left_out.items())
            + f"); extract them again with `{MAKE} --overwrite`, or leave --views out"
        )
    chosen = {n: {k: v for k, v in views.items() if k in labels} for n, views in per_input.items()}
    names = sorted(name for views in chosen.values() for sets in views.values() for name in sets)
    prints = {name: str(store.info(name).fingerprint) for name in names}
    return Views(labels, chosen, prints, left_out)


def _unusable(
    store: FeatureStore,
    asked: str,
    per_input: Mapping[str, Mapping[str, tuple[str, ...]]],
    labels: tuple[str, ...],
) -> dict[str, str]:
    """Of the views `labels`, those `--views all` leaves out, with why: a set of theirs
    that holds no rows (every utterance failed). Named, such a view is refused, and a stale
    one (`stale_view`) always is: one line naming it and the command that makes it again."""
    found: dict[str, str] = {}
    for label in labels:
        for name in sorted({n for views in per_input.values() for n in views.get(label, ())}):
            info = store.info(name)
            clean = str(info.attrs["view_of"])
            stale = stale_view(name, info.attrs, store.info(clean).attrs)
            if stale is not None:
                raise ConfigError(
                    f"--views {asked}: {stale} (in {store.path}), so its rows are another "
                    f"encoder's; make it again: {view_command(store, name)}"
                )
            if info.rows == 0 and label not in found:
                found[label] = f"every utterance failed in {name}"
                if asked.strip() != ALL:
                    raise ConfigError(_empty(store, asked, name, label))
    return found


def _empty(store: FeatureStore, asked: str, name: str, label: str) -> str:
    """The refusal of a view set named in --views that holds no rows."""
    failures = store.failures(name)
    first = f" (the first: {failures[0][0]}: {failures[0][1]})" if failures else ""
    again = rebuild_command(store, name) or f"{MAKE} --overwrite"
    return (
        f"--views {asked}: view set {name} in {store.path} holds no rows: every utterance "
        f"failed in its extraction{first}; extract it again with `{again}` once that is "
        f"mended, or leave {label} out of --views"
    )


def view_copies(
    store: FeatureStore, features: Sequence[ResolvedFeature], views: Views | None
) -> Copies:
    """Each input's views as inputs of their own (`_as_input`), for the memory budget to
    place with it (`ser.train.placement`: their rows are in its table)."""
    if views is None:
        return {}
    return {
        f.name: [(store, _as_input(f, sets)) for sets in views.sets.get(f.name, {}).values()]
        for f in features
    }


def with_views(data: TrainData, store: FeatureStore, views: Views | None) -> TrainData:
    """`data` (loaded from `store`) with each input's views beside its clean rows: in its
    table's buffer, or, where its clean rows stream, each view streamed beside them."""
    if views is None:
        return data
    keep = np.zeros(len(store.manifest), dtype=bool)
    keep[data.manifest_rows] = True
    cache = data.placement.cache if data.placement else {}
    tables = {
        name: _table(table, store, views, keep, cache.get(name, 0))
        if views.sets.get(name)
        else table
        for name, table in data.features.items()
    }
    return replace(data, features=tables, views=views.labels)


def _table(
    table: FeatureTable, store: FeatureStore, views: Views, keep: np.ndarray, cache: int
) -> FeatureTable:
    """`table` with the rows of each of the run's views its input has after its own
    (streamed where its own stream, the input's `cache` shared among the streams)."""
    n, own = len(table.lengths_np), views.sets[table.feature.name]
    labels = [label for label in views.labels if label in own]  # others read clean there
    caches = iter(_caches(store, table, [own[label] for label in labels], cache))
    parts, streams, segments = [table.flat], [], [table.lengths_np]
    if table.stream is not None:
        streams.append(table.stream.with_cache(next(caches)))
    slots = np.tile(np.arange(n, dtype=np.int64), (len(views.labels) + 1, 1))  # [V, n]
    for label in labels:
        if table.stream is None:
            rows, layout, usable = _view_rows(store, table, own[label], keep)
            shape = rows.shape[1:]
            parts.append(torch.from_numpy(rows).to(table.flat.device, table.flat.dtype))
        else:
            view = _as_input(table.feature, own[label])
            stream, layout, usable = _view_stream(store, view, keep, next(caches))
            shape = stream.shape
            streams.append(stream)
        _check_view(store, table, own[label][0], label, usable, shape)
        v = views.labels.index(label) + 1
        slots[v] = np.where(usable, len(segments) * n + np.arange(n), slots[v])
        segments.append(layout)
    where = _view_rows_at(segments, slots, table.lengths.device)
    if table.stream is None:
        return replace(table, flat=torch.cat(parts), views=where)
    return replace(table, stream=streams[0], parts=tuple(streams[1:]), views=where)


def _view_rows_at(segments: list[np.ndarray], slots: np.ndarray, device: torch.device) -> ViewRows:
    """Where each (view, utterance) is among the table's `segments` back to back."""
    lengths = np.concatenate(segments)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return ViewRows(
        starts=torch.from_numpy(starts[slots]).to(device),
        lengths=torch.from_numpy(lengths[slots]).to(device),
        lengths_np=lengths[slots],
        segments=torch.from_numpy(lengths).to(device),
        slots=torch.from_numpy(slots).to(device),
    )


def _check_view(
    store: FeatureStore,
    table: FeatureTable,
    name: str,
    label: str,
    usable: np.ndarray,
    shape: tuple[int, ...],
) -> None:
    """`ConfigError` for a view without rows of the run's utterances, or of other rows."""
    if not usable.any():  # no rows for this run's utterances (gathered means nothing)
        raise ConfigError(
            f"--views: view set {name} of {store.path} holds no rows of the "
            f"utterances this run reads (they failed in it); leave {label} out of --views"
        )
    if tuple(shape) != tuple(table.flat.shape[1:]):
        raise ConfigError(
            f"view set {name} of {store.path}: rows {tuple(shape)} where its "
            f"clean set {table.feature.name} has {tuple(table.flat.shape[1:])}; extract "
            "the views again with `ser extract --augment ... --overwrite`"
        )


def _as_input(feature: ResolvedFeature, sets: tuple[str, ...]) -> ResolvedFeature:
    """A view's sets (one per layer set of a layered input) read as the input itself."""
    return replace(feature, sets=sets) if feature.sets else replace(feature, name=sets[0])


def _caches(
    store: FeatureStore, table: FeatureTable, views: list[tuple[str, ...]], cache: int
) -> list[int]:
    """The streamed input's `cache` shared among its clean set's stream and its views'
    (none: its rows are held)."""
    if table.stream is None:
        return []
    sets = [table.feature, *(_as_input(table.feature, v) for v in views)]
    return shares(cache, [least_cache(store, f) for f in sets])


def _view_stream(
    store: FeatureStore, view: ResolvedFeature, keep: np.ndarray, cache: int
) -> tuple[RowStream, np.ndarray, np.ndarray]:
    """A view's stream of the kept utterances (its sets: one per layer set of a layered
    input, read by the same row numbers, refused where two hold different rows as in
    memory), the rows each has in it ([n]) and whether it has them all ([n]); its rows
    left in the store."""
    offsets, layout, lengths = stored_layout(store, view, keep)
    stream = stored_stream(store, view, offsets, layout, keep, cache)
    return stream, stream.lengths, lengths[keep] > 0


def _view_rows(
    store: FeatureStore, table: FeatureTable, sets: tuple[str, ...], keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A view's rows of the kept utterances, back to back ([rows, D] or [rows, L, D]), the
    rows each kept utterance has of them ([n]) and whether it has them all ([n])."""
    data, layout, lengths = read_rows(store, _as_input(table.feature, sets), keep)
    rows = kept_rows(sets[0], data, layout, keep)
    return np.ascontiguousarray(rows), layout[keep].astype(np.int64), lengths[keep] > 0
