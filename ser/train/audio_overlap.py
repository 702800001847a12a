"""Test audio seen in training: how many of a run's test utterances have audio identical
to an utterance on the training side of their fold, by the audio prints `ser extract`
keeps in each store's manifest (`ser.extract.audio_prints`: a hash of the decoded
samples), so no audio is read here.

Within a store it finds a recording listed twice and split across a fold; across corpora
(`--test-store`) it finds a test store holding the training store's recordings: EmoBox's
IEMOCAP folder beside an IEMOCAP store is the same audio, which the manifests' digests
(`ser.train.cross.check_pair`) cannot tell. Every run says the count when it starts, in
its record (`data.audio_seen`) and in `ser report`; a cross-corpus run whose test
utterances are mostly (over `REFUSE_ABOVE`) training audio is refused unless
--allow-overlap. A store made before prints has none: the count is not known, said and
recorded so (`ser extract` on the store adds them). Utterances whose audio could not be
printed are left out of the comparison and counted.

>>> fold = Fold("f", np.array([0, 1]), np.array([2]), np.array([3, 4, 5]), True)
>>> seen = fold_seen(["a", "b", "c", "b", "x", ""], fold)
>>> seen.seen, seen.tested
(1, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ser.cache import FeatureStore
from ser.cache.manifest import AUDIO_PRINT
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import Fold
from ser.errors import ConfigError
from ser.runs.data import AudioSeen, FoldSeen
from ser.train.text_overlap import share, summed

#: The share of a cross-corpus run's test utterances, of those printed, above which the
#: run is refused without --allow-overlap: "mostly" the training store's audio.
REFUSE_ABOVE = 0.5


def prints(store: FeatureStore) -> list[str] | None:
    """The store's audio print per manifest row; None for a store without them."""
    if AUDIO_PRINT not in store.manifest.names:
        return None
    return [str(p) for p in store.manifest.column(AUDIO_PRINT).tolist()]


def unknown(store: FeatureStore) -> str:
    """Why a store's test audio cannot be compared."""
    return (
        f"{store.path} has no audio prints (it predates audio fingerprints); "
        "`ser extract` on it adds them"
    )


def fold_seen(printed: Sequence[str], fold: Fold) -> FoldSeen:
    """How many of `fold`'s printed test utterances have a print on its training side
    (training and validation); `printed`: a print per row the fold indexes ("" for
    none)."""
    trained = {printed[int(r)] for r in np.concatenate([fold.train, fold.val])} - {""}
    tested = [printed[int(r)] for r in fold.test if printed[int(r)]]
    return FoldSeen(seen=sum(p in trained for p in tested), tested=len(tested))


def audio_seen(
    stores: Sequence[FeatureStore],
    rows: np.ndarray,
    test_from: int | None,
    folds: Sequence[Fold],
    allowed: bool = False,
) -> AudioSeen:
    """The record's `data.audio_seen`: `stores` the training store, then a cross-corpus
    run's test store; `rows` the run's manifest rows, those from `test_from` on the test
    store's. `seen` None where a store has no prints (`unknown` says which); `allowed`
    (a cross-corpus run's --allow-overlap) recorded where the share would refuse it."""
    read = [prints(store) for store in stores]
    tested = sum(len(fold.test) for fold in folds)
    missing = [store for store, found in zip(stores, read, strict=True) if found is None]
    if missing:
        return AudioSeen(seen=None, tested=tested, unknown=unknown(missing[0]))
    ours, theirs = (found or [] for found in (read[0], read[-1]))
    cut = len(rows) if test_from is None or len(stores) == 1 else test_from
    printed = [ours[int(r)] for r in rows[:cut]] + [theirs[int(r)] for r in rows[cut:]]
    each = {fold.name: fold_seen(printed, fold) for fold in folds}
    total = summed(each.values())
    over = allowed and share(total) > REFUSE_ABOVE
    return AudioSeen(
        seen=total.seen,
        tested=total.tested,
        share=round(share(total), 4),
        unprinted=tested - total.tested,
        folds=each,
        allowed=True if over else None,
    )


def audio_line(seen: AudioSeen) -> str:
    """The line a run prints when it starts, e.g. ``test audio seen in training: 3 of 120
    test utterances (2.5 %) have audio identical to an utterance on their fold's training
    side``."""
    if seen.seen is None:
        return f"test audio seen in training: not known: {seen.unknown or ''}"
    line = (
        f"test audio seen in training: {seen.seen} of {seen.tested} test utterances "
        f"({100 * (seen.share or 0.0):.1f} %) have audio identical to an utterance on "
        "their fold's training side"
    )
    if seen.unprinted:
        line += f"; {seen.unprinted} without a print (audio unreadable) not compared"
    if seen.allowed:
        line += "; run anyway: --allow-overlap"
    return line


def check_cross(
    train: FeatureStore,
    test: FeatureStore,
    classes: tuple[LabelSet, LabelSet],
    allowed: bool,
) -> float | None:
    """A cross-corpus pair's share of test utterances (of `classes`' second set) whose
    audio the training store holds (of the first's utterances); `ConfigError` above
    `REFUSE_ABOVE` unless `allowed`. None where a store has no prints."""
    ours, theirs = prints(train), prints(test)
    if ours is None or theirs is None:
        return None
    trained = {p for p, keep in zip(ours, _kept(train, classes[0]), strict=True) if keep} - {""}
    tested = [p for p, keep in zip(theirs, _kept(test, classes[1]), strict=True) if keep and p]
    seen = sum(p in trained for p in tested)
    part = seen / len(tested) if tested else 0.0
    if part > REFUSE_ABOVE and not allowed:
        raise ConfigError(
            f"--test-store {test.path}: {seen} of its {len(tested)} test utterances "
            f"({100 * part:.1f} %) have audio identical to utterances of --store "
            f"{train.path}: the run would test on recordings it trains on; pass "
            "--allow-overlap to run it anyway (its record says the share)"
        )
    return part


def _kept(store: FeatureStore, label_set: LabelSet) -> list[bool]:
    """Whether each manifest row's label is in `label_set` (the rows a run reads)."""
    return [label_set.index_of(str(c)) is not None for c in store.manifest.column("label")]
