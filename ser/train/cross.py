"""A cross-corpus run, `ser train --store A --test-store B`: trained on all of A, tested
on B's utterances of the emotions both corpora have.

- The pair: two corpora (one store twice, or two stores of one kind holding the same
  utterances (`StoreCorpus.digest`), is refused: a corpus is tested on itself by a
  protocol of its own), holding the same feature sets (each requested set's fingerprint
  equal on both; else a `ConfigError` naming each provenance key that differs).
- The classes: the training set and B's (the resolved config's `test_classes`) paired by emotion
  name (`ser.corpus.emotions`); the run trains and tests on the shared ones, in the
  training set's order and codes, and says what either side dropped.
- The data: A's kept utterances, then B's, as one `TrainData` (`join`; `test_from` its
  first of B's), so every model family, stacking and the processes train it as any run.
  The fold (`ser.corpus.protocols.cross`) trains on A's positions and tests on B's; its
  z-scores (`ser.train.data.fit_zscore`) are fitted on the fold's training side: A's
  statistics, never B's. Under a `--memory-budget` an input does not fit, each store's
  rows stream from it (`load_joined`: B's stream a part of the table after A's).
  Speakers and dialogs are told apart by corpus (two corpora's "Ses01F" are not one
  person) for the fold's leakage check.
- The record: `RunRecord.cross`, both stores (path, kind, manifest digest, class set,
  per class counts), the emotions, what was dropped, B's sets and their fingerprints (A's
  are the record's own `fingerprints`) and the encoders read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.cache.fingerprint import differences, identity
from ser.corpus.emotions import ClassMatch, match_classes
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.cross import GROUP, TEST, TRAIN
from ser.corpus.protocols.folds import FoldData
from ser.errors import ConfigError
from ser.runs.cross import Cross, CrossSide, Sides
from ser.train.data import FeatureTable, TrainData, load_data
from ser.train.features import ResolvedFeature, resolve_features
from ser.train.placement import Copies, Placement, least_cache, shares


@dataclass(frozen=True)
class TestSide:
    """What a cross-corpus run reads of its test store: its sets (in the order of the
    training store's) and the classes matched."""

    store: FeatureStore
    features: list[ResolvedFeature]
    match: ClassMatch


def open_test(
    train: FeatureStore,
    test: FeatureStore,
    features: list[ResolvedFeature],
    classes: LabelSet,
    test_classes: str,
) -> TestSide:
    """The test store's side of a run on `train`'s `features` and `classes`; refusals
    for the same corpus twice, other feature sets, or too few shared emotions."""
    check_pair(train, test)
    theirs = resolve_features(test, [f.request for f in features])
    check_features(train, test, features, theirs)
    labels = test.manifest.column("label").tolist()
    test_set = test.corpus.kind.label_set(test_classes, labels)
    return TestSide(test, theirs, match_classes(classes, test_set))


def check_pair(train: FeatureStore, test: FeatureStore) -> None:
    """`ConfigError` when `test` holds the utterances `train` does."""
    a, b = train.corpus, test.corpus
    if a.name != b.name or a.digest != b.digest:
        return
    same = train.path.resolve() == test.path.resolve()
    what = "is --store" if same else f"holds what --store {train.path} does"
    raise ConfigError(
        f"--test-store {test.path} {what} (the same {a.title} utterances): a corpus is "
        f"tested on itself by a protocol ({', '.join(p.usage for p in a.kind.protocols)}); "
        "leave --test-store out"
    )


def check_features(
    train: FeatureStore,
    test: FeatureStore,
    ours: list[ResolvedFeature],
    theirs: list[ResolvedFeature],
) -> None:
    """`ConfigError` unless each requested set was computed alike in both stores (equal
    fingerprints: extractor, model weights, layer, dim ...), naming what differs."""
    for a, b in zip(ours, theirs, strict=True):
        if a.fingerprint == b.fingerprint:
            continue
        found = [
            f"{x} / {y}: " + "; ".join(_differ(train, test, x, y))
            for x, y in zip(a.stored, b.stored, strict=False)
        ]
        if len(a.stored) != len(b.stored):
            found.append(f"layers {list(a.layers)} / {list(b.layers)}")
        raise ConfigError(
            f"--features {a.request}: {train.path} and {test.path} hold it computed "
            f"differently ({'; '.join(found)}); extract it on both stores with the same "
            "options and model"
        )


def _differ(train: FeatureStore, test: FeatureStore, a: str, b: str) -> list[str]:
    old, new = (identity(s.info(n).attrs) for s, n in ((train, a), (test, b)))
    return differences(old, new) or ["fingerprints differ"]


def test_copies(features: list[ResolvedFeature], test: TestSide | None) -> Copies:
    """Each input's set in the test store, for the memory budget to place with it
    (`ser.train.placement`: the joined table holds both stores' rows)."""
    if test is None:
        return {}
    return {a.name: [(test.store, b)] for a, b in zip(features, test.features, strict=True)}


def load_joined(
    train: FeatureStore,
    features: list[ResolvedFeature],
    test: TestSide,
    device: torch.device,
    placement: Placement | None = None,
) -> TrainData:
    """The training store's utterances of the shared classes, then the test store's,
    as one `TrainData`; an input `placement` streams reads each store's rows from it
    (its cache shared between the two by their chunks' bytes)."""
    mine, theirs = _split(train, features, test, placement)
    ours = load_data(train, features, test.match.train_set(), device, placement=mine)
    other = load_data(test.store, test.features, test.match.test_set(), device, placement=theirs)
    return join(ours, other, placement)


def _split(
    train: FeatureStore,
    features: list[ResolvedFeature],
    test: TestSide,
    placement: Placement | None,
) -> tuple[Placement | None, Placement | None]:
    """`placement` as each store's load reads it: the test store's sets placed as the
    training store's, each streamed input's cache shared between the two stores."""
    if placement is None:
        return None, None
    mine, theirs = dict(placement.cache), {}
    for a, b in zip(features, test.features, strict=True):
        if a.name in placement.cache:
            sizes = [least_cache(train, a), least_cache(test.store, b)]
            mine[a.name], theirs[b.name] = shares(placement.cache[a.name], sizes)
    places = {
        b.name: placement.places[a.name] for a, b in zip(features, test.features, strict=True)
    }
    return replace(placement, cache=mine), replace(placement, places=places, cache=theirs)


def join(a: TrainData, b: TrainData, placement: Placement | None = None) -> TrainData:
    """`a`'s utterances then `b`'s (same classes, same sets in the same order), `b`'s
    from position `test_from` on; their manifest rows are each its own store's
    (`placement`: where the run's rows live, the whole run's)."""
    if a.classes != b.classes:
        raise ValueError(f"joined data must share classes: {a.classes} / {b.classes}")
    tables = {
        name: _joined_table(ta, tb)
        for (name, ta), tb in zip(a.features.items(), b.features.values(), strict=True)
    }
    sides = ((TRAIN, a.dropped), (TEST, b.dropped))
    dropped = {f"{side}: {why}": n for side, reasons in sides for why, n in reasons.items()}
    return TrainData(
        classes=a.classes,
        manifest_rows=np.concatenate([a.manifest_rows, b.manifest_rows]),
        utt_ids=np.concatenate([a.utt_ids, b.utt_ids]),
        speakers=np.concatenate([a.speakers, b.speakers]),
        dialogs=np.concatenate([a.dialogs, b.dialogs]),
        orders=np.concatenate([a.orders, b.orders]),
        labels=np.concatenate([a.labels, b.labels]),
        features=tables,
        device=a.device,
        dropped=dropped,
        test_from=len(a),
        placement=placement,
    )


def _joined_table(a: FeatureTable, b: FeatureTable) -> FeatureTable:
    """`a`'s rows then `b`'s: in one buffer where they are held (pinned again where they
    are held in host memory beside a GPU), else each store's stream, `b`'s a part after
    `a`'s (`FeatureTable.parts`)."""
    lengths = np.concatenate([a.lengths_np, b.lengths_np])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    device = a.lengths.device
    flat = a.flat if a.stream is not None else torch.cat([a.flat, b.flat.to(a.flat.dtype)])
    if flat.device != device and torch.cuda.is_available():
        flat = flat.pin_memory()
    return FeatureTable(
        feature=a.feature,
        flat=flat,
        starts=torch.from_numpy(starts).to(device),
        lengths=torch.from_numpy(lengths).to(device),
        lengths_np=lengths,
        stream=a.stream,
        parts=() if b.stream is None else (b.stream,),
    )


def fold_data(data: TrainData, dialog_model: bool) -> FoldData:
    """What the cross protocol cuts: each position's side (`GROUP`), its speaker and
    dialog named with its side (the leakage check compares them across sides)."""
    if data.test_from is None:
        raise ValueError("fold_data takes a cross-corpus run's joined data")
    side = np.where(np.arange(len(data)) < data.test_from, TRAIN, TEST)
    speakers = np.char.add(np.char.add(side, ":"), data.speakers.astype(str))
    dialogs = np.char.add(np.char.add(side, ":"), data.dialogs.astype(str))
    return FoldData(data.labels, speakers, {GROUP: side}, dialogs if dialog_model else None)


def cross_record(
    train: FeatureStore, features: list[ResolvedFeature], test: TestSide, data: TrainData
) -> Cross:
    """What the run record keeps of a cross-corpus run (the module doc)."""
    match, cut = test.match, data.test_from or 0
    counts = [
        np.bincount(part, minlength=len(data.classes)) for part in np.split(data.labels, [cut])
    ]
    pairs = list(zip(features, test.features, strict=True))
    return Cross(
        train=_side(
            train,
            match.train.name,
            cut,
            dict(zip(data.classes, counts[0].tolist(), strict=True)),
            encoders={f.name: _encoder(train, f) for f in features},
        ),
        test=_side(
            test.store,
            match.test.name,
            len(data) - cut,
            dict(zip(data.classes, counts[1].tolist(), strict=True)),
            sets={a.name: tuple(b.stored) for a, b in pairs},
            fingerprints={a.name: b.fingerprint for a, b in pairs},
        ),
        train_set=match.train.name,
        test_set=match.test.name,
        shared=tuple(match.shared),
        emotions=dict(match.emotions),
        train_only=tuple(match.train_only),
        test_only=tuple(match.test_only),
        # each side's utterances of its classes the other corpus lacks, by class, and
        # those of labels outside its class set, by label
        unmatched=Sides(
            train=_of_classes(train, match.train, match.train_only),
            test=_of_classes(test.store, match.test, match.test_only),
        ),
        outside=Sides(train=_outside(train, match.train), test=_outside(test.store, match.test)),
    )


def _side(
    store: FeatureStore,
    classes: str,
    utterances: int,
    per_class: dict[str, int],
    encoders: Mapping[str, str | None] | None = None,
    sets: Mapping[str, tuple[str, ...]] | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> CrossSide:
    corpus = store.corpus
    return CrossSide(
        store=str(Path(store.path).resolve()),
        corpus=corpus.name,
        title=corpus.title,
        manifest=corpus.digest,
        classes=classes,
        emobox=corpus.emobox,  # EmoBox's name of the corpus (None: not one of its)
        utterances=utterances,
        per_class=per_class,
        encoders=encoders,
        sets=sets,
        fingerprints=fingerprints,
    )


def _encoder(store: FeatureStore, feature: ResolvedFeature) -> str | None:
    """The model a set was computed with (a hub id or folder), None for one without
    (openSMILE, log-mel): what published numbers are matched by."""
    model = store.info(feature.stored[0]).attrs.get("model")
    return None if model is None else str(model)


def _of_classes(
    store: FeatureStore, label_set: LabelSet, classes: tuple[str, ...]
) -> dict[str, int]:
    """How many utterances of `store` each of `classes` (of `label_set`) holds: what the
    run drops of a side (its classes the other corpus lacks)."""
    codes = store.manifest.column("label").astype(str).tolist()
    found = Counter(label_set.class_of(code) for code in codes)
    return {c: int(found[c]) for c in classes}


def _outside(store: FeatureStore, label_set: LabelSet) -> dict[str, int]:
    """How many utterances of `store` have each label `label_set` has no class for."""
    codes = Counter(store.manifest.column("label").astype(str).tolist())
    return {c: n for c, n in sorted(codes.items()) if label_set.class_of(c) is None}


def describe(record: Cross) -> list[str]:
    """The lines a cross-corpus run says when it starts."""
    a, b = record.train, record.test
    shown = ", ".join(f"{c}={n}" for c, n in record.emotions.items())
    lines = [
        f"cross-corpus: train {a.title} ({a.store}, class set {a.classes}) -> test "
        f"{b.title} ({b.store}, class set {b.classes}); classes by emotion: {shown}",
        f"training on {a.utterances} {a.title} utterances: {_counts(a.per_class)}",
        f"testing on {b.utterances} {b.title} utterances: {_counts(b.per_class)}",
    ]
    for unmatched, outside, side, other in (
        (record.unmatched.train, record.outside.train, a, b),
        (record.unmatched.test, record.outside.test, b, a),
    ):
        if unmatched:
            lines.append(
                f"dropped from {side.title}, classes {other.title} lacks: "
                f"{_counts(unmatched)} utterances"
            )
        if outside:
            lines.append(
                f"dropped from {side.title}, labels outside class set {side.classes}: "
                f"{_counts(outside)} utterances"
            )
    return lines


def _counts(per_class: Mapping[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in per_class.items()) or "none"
