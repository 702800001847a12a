"""The annotators' votes as a distribution over a class set: the targets of soft labels.

An utterance's `votes` are (annotator, code) pairs (`ser.corpus.records.Utterance`):
IEMOCAP's evaluators' categories (`C-E1:` lines, several a line), MSP-Podcast's primary
emotion per annotator (`Labels/labels_detailed.csv`), a manifest's `votes` column (each
code its own annotator). `vote_distribution` turns them into a distribution over a
`LabelSet`'s classes by these rules:

1. Each annotator weighs 1 in total, shared equally among the distinct codes they chose
   (an evaluator who wrote `Anger; Frustration` gives each 1/2).
2. Codes map to classes as the label set maps them: merges count (IEMOCAP's `exc` is
   `hap` in class set 4), and codes the set lacks (`fru` in set 4, `oth`, `xxx`) are
   dropped, their share with them; the rest is renormalised to sum to 1.
3. An utterance with no vote inside the set (no votes at all, or only outside codes) gets
   the one-hot of its consensus class instead: a *fallback*, which `soft_targets` counts
   so that a trainer can say how many utterances had no usable votes.

`store_votes` reads every utterance's votes for a feature store from the corpus the
store was extracted from (stores keep no votes, so no store is extracted again for them):
where the store records its root (`corpus_root`, `ser extract` records it), else where
the caller says (`root`, the command line's `--corpus-root`). Corpus kinds that ship no
votes (`CorpusKind.votes` False) give {} without opening the corpus; so does a corpus
whose files hold none (an MSP-Podcast without `labels_detailed.csv`).

>>> from ser.corpus.labels import LABEL_SETS
>>> four = LABEL_SETS["4"]
>>> vote_distribution([("E1", "ang"), ("E1", "fru"), ("E2", "ang"), ("E3", "sad")], four, 3)
array([0. , 0. , 0.4, 0.6])
>>> vote_distribution([("E1", "fru")], four, 3)  # nothing inside set 4: the consensus
array([0., 0., 0., 1.])
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ser.corpus.labels import LabelSet
from ser.corpus.options import NO_OPTIONS, ReadOptions
from ser.corpus.registry import CorpusKind, store_kind
from ser.errors import ConfigError, CorpusError

Votes = tuple[tuple[str, str], ...]
#: The command-line option that points to a store's corpus where it moved (`root`).
ROOT_OPTION = "--corpus-root"
#: The class set a store's corpus is read with: every labelled utterance.
_EVERY = "all"
_SHOWN = 3


class Columns(Protocol):
    """A store's manifest, as far as votes need it."""

    def column(self, name: str) -> np.ndarray: ...


class Store(Protocol):
    """What the votes read of a feature store (`ser.cache.FeatureStore` is one)."""

    @property
    def path(self) -> Path: ...

    @property
    def attrs(self) -> Mapping[str, Any]: ...

    @property
    def manifest(self) -> Columns: ...


def inside(votes: Iterable[tuple[str, str]], label_set: LabelSet) -> dict[int, float]:
    """Class index -> weight of `votes` inside `label_set` (rules 1 and 2, before the
    renormalisation); {} when none is inside."""
    chosen: dict[str, set[str]] = defaultdict(set)
    for annotator, code in votes:
        chosen[annotator].add(code)
    weights: dict[int, float] = defaultdict(float)
    for codes in chosen.values():
        for code in codes:
            index = label_set.index_of(code)
            if index is not None:
                weights[index] += 1.0 / len(codes)
    return dict(weights)


def vote_distribution(
    votes: Iterable[tuple[str, str]], label_set: LabelSet, consensus: int
) -> np.ndarray:
    """The distribution `[C]` (float64, sums to 1) of `votes` over `label_set`'s classes
    by the module's rules; the one-hot of class index `consensus` when no vote is inside."""
    size = len(label_set.classes)
    if not 0 <= consensus < size:
        raise ValueError(f"consensus class {consensus} is not an index of {label_set.classes}")
    found = np.zeros(size)
    for index, weight in inside(votes, label_set).items():
        found[index] = weight
    total = found.sum()
    if total <= 0:
        found[consensus] = 1.0
        return found
    return np.asarray(found / total)


def store_votes(store: Store, root: Path | None = None) -> dict[str, Votes]:
    """Every utterance's votes by utt_id, re-read from the corpus `store` was extracted
    from (`root`: where it is now, over the recorded root); {} for a corpus without votes.

    `ConfigError` when the store records no root and none is given; `CorpusError` naming
    the path when the corpus is not there or lacks some of the store's utterances."""
    kind = store_kind(store.attrs)
    if not kind.votes:
        return {}
    where = _corpus_root(store, kind, root)
    votes = _read_votes(store, kind, where)
    ids = [str(u) for u in store.manifest.column("utt_id").tolist()]
    missing = [u for u in ids if u not in votes]
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (" ..." if len(missing) > _SHOWN else "")
        raise CorpusError(
            f"{where} lacks {len(missing)} of the {len(ids)} utterances of {store.path} "
            f"({shown}): is it the corpus the store was extracted from? Point to that one "
            f"with {ROOT_OPTION}"
        )
    if not any(votes[u] for u in ids):
        return {}
    return {u: votes[u] for u in ids}


def soft_targets(
    store: Store,
    utt_ids: Sequence[str],
    label_set: LabelSet,
    root: Path | None = None,
) -> tuple[np.ndarray, int]:
    """The vote distributions `[n, C]` (float32) of `utt_ids` (in that order) over the
    run's class set, and how many of them fell back to their consensus class (rule 3).

    `ConfigError` when the store's corpus has no votes (soft labels need them) or an
    utterance's consensus label is outside the set; `ValueError` for an utterance the
    store lacks."""
    votes = store_votes(store, root)
    if not votes:
        title = store_kind(store.attrs).title
        raise ConfigError(
            f"soft labels need the annotators' votes: the {title} corpus of {store.path} "
            "has none (IEMOCAP, MSP-Podcast with labels_detailed.csv and a manifest with "
            "a votes column have them)"
        )
    labels = _labels(store)
    targets = np.zeros((len(utt_ids), len(label_set.classes)), np.float32)  # [n, C]
    fallbacks = 0
    for row, utt_id in enumerate(utt_ids):
        if utt_id not in labels:
            raise ValueError(f"{store.path} holds no utterance {utt_id!r}")
        consensus = label_set.index_of(labels[utt_id])
        if consensus is None:
            raise ConfigError(
                f"{utt_id}'s label {labels[utt_id]!r} is outside class set {label_set.name} "
                f"({', '.join(label_set.classes)})"
            )
        fallbacks += not inside(votes[utt_id], label_set)
        targets[row] = vote_distribution(votes[utt_id], label_set, consensus)
    return targets, fallbacks


def voted_distributions(
    store: Store, utt_ids: Sequence[str], label_set: LabelSet, root: Path | None = None
) -> dict[str, np.ndarray]:
    """utt_id -> the vote distribution `[C]` of each of `utt_ids` with a vote inside
    `label_set` (rule 3's fallbacks left out: they hold no annotator's view); {} for a
    corpus without votes. Errors as `store_votes`'."""
    votes = store_votes(store, root)
    labels = _labels(store) if votes else {}
    out = {}
    for utt_id in utt_ids:
        consensus = label_set.index_of(labels.get(utt_id, ""))
        if consensus is not None and inside(votes.get(utt_id, ()), label_set):
            out[utt_id] = vote_distribution(votes[utt_id], label_set, consensus)
    return out


def _labels(store: Store) -> dict[str, str]:
    ids = store.manifest.column("utt_id").tolist()
    codes = store.manifest.column("label").tolist()
    return {str(u): str(c) for u, c in zip(ids, codes, strict=True)}


def _corpus_root(store: Store, kind: CorpusKind, root: Path | None) -> Path:
    """`root`, else the root the store records; `ConfigError` when it records none and
    `CorpusError` when the corpus is not there."""
    recorded = store.attrs.get("corpus_root")
    if root is None and not recorded:
        raise ConfigError(
            f"{store.path} does not record where its {kind.title} corpus is (extracted by an "
            f"older ser): give its root with {ROOT_OPTION}"
        )
    where = Path(root if root is not None else str(recorded)).expanduser()
    if not where.exists():
        said = "given" if root is not None else f"where {store.path} was extracted from"
        raise CorpusError(
            f"the {kind.title} corpus of {store.path} is not at {where} ({said}): point to "
            f"where it is now with {ROOT_OPTION}"
        )
    return where.resolve()


def _read_votes(store: Store, kind: CorpusKind, where: Path) -> dict[str, Votes]:
    """utt_id -> votes of the corpus at `where`, read as the store's kind reads it."""
    audio = store.attrs.get("audio_root")
    options = ReadOptions(Path(str(audio))) if audio and kind.optioned else NO_OPTIONS
    try:
        reading = kind.reading(where, _EVERY, options)
    except CorpusError as error:
        raise CorpusError(
            f"cannot read the {kind.title} corpus of {store.path} at {where}: {error} "
            f"(point to it with {ROOT_OPTION})"
        ) from None
    return {u.utt_id: u.votes for u in reading.utterances}
