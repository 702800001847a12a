"""Test text seen in training: how many of a run's test utterances have a transcript that
appears word for word on the training side of their fold.

IEMOCAP's scripted dialogs are three scripts performed in every session, so under `loso`
and `session5` a text model reads, in training, the very lines it is tested on (by other
actors); Pepino et al. (ICASSP 2020) called text results on such folds "highly
optimistic". A run with a text input says how much of this there is when it starts, in
its record (`data.text_seen`) and in `ser report`; IEMOCAP's `loso-script` and
`session5-script` protocols avoid it. Transcripts are compared normalised (lower case,
punctuation removed, whitespace collapsed), and only those of `MIN_WORDS` words or more
count: "yeah." is said everywhere and tells nothing.

>>> normalise("Oh, I DON'T know...  ")
'oh i dont know'
>>> fold = Fold("f", np.array([0, 1]), np.array([2]), np.array([3, 4]), True)
>>> texts = ["I don't know why.", "yes", "a b c", "i dont know why", "yes"]
>>> seen = fold_overlap(texts, fold)
>>> seen.seen, seen.tested
(1, 2)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from ser.cache import FeatureStore
from ser.corpus.protocols.folds import Fold
from ser.errors import StoreError
from ser.runs.data import FoldSeen, TextSeen
from ser.train.features import ResolvedFeature, is_asr_text

#: The fewest words a transcript needs to count as seen (shorter ones recur by chance).
MIN_WORDS = 3
_NOT_WORD = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, punctuation removed (apostrophes too), whitespace collapsed."""
    return " ".join(_NOT_WORD.sub("", text.lower()).split())


def share(seen: FoldSeen) -> float:
    """The share of the tested utterances seen (0 with none tested)."""
    return seen.seen / seen.tested if seen.tested else 0.0


def summed(each: Iterable[FoldSeen]) -> FoldSeen:
    """The folds' counts added up."""
    folds = list(each)
    return FoldSeen(seen=sum(f.seen for f in folds), tested=sum(f.tested for f in folds))


def _counted(texts: Sequence[str], rows: np.ndarray) -> list[str]:
    """The normalised transcripts of `rows` long enough to count ("" for the others)."""
    out = [normalise(texts[int(r)]) for r in rows]
    return [t if len(t.split()) >= MIN_WORDS else "" for t in out]


def fold_overlap(texts: Sequence[str], fold: Fold) -> FoldSeen:
    """How many of `fold`'s test utterances have a transcript (of `MIN_WORDS`+ words) seen
    on its training side, training and validation (`texts`: a transcript per row of the
    data the fold indexes)."""
    trained = set(_counted(texts, np.concatenate([fold.train, fold.val]))) - {""}
    tested = _counted(texts, fold.test)
    return FoldSeen(seen=sum(t in trained for t in tested if t), tested=len(tested))


def run_overlap(texts: Sequence[str], folds: Sequence[Fold], source: str) -> TextSeen:
    """The record's `data.text_seen`: the total over the folds, each fold's, and which
    transcripts were compared (`source`)."""
    each = {fold.name: fold_overlap(texts, fold) for fold in folds}
    total = summed(each.values())
    return TextSeen(
        seen=total.seen,
        tested=total.tested,
        share=round(share(total), 4),
        min_words=MIN_WORDS,
        source=source,
        folds=each,
    )


def overlap_line(seen: TextSeen) -> str:
    """The line a run prints when it starts, e.g. ``text seen in training: 106 of 1241 test
    utterances (8.5 %) ...``."""
    return (
        f"text seen in training: {seen.seen} of {seen.tested} test utterances "
        f"({100 * seen.share:.1f} %) have a transcript of {seen.min_words}+ words ({seen.source}) "
        "that appears word for word on their fold's training side"
    )


def text_seen(
    sides: Sequence[tuple[FeatureStore, Sequence[ResolvedFeature]]],
    rows: np.ndarray,
    test_from: int | None,
    folds: Sequence[Fold],
) -> TextSeen | None:
    """The record's `data.text_seen` of a run with a text input (None without one):
    `sides` the training store and its sets, then a cross-corpus run's test store and its
    own; `rows` the run's manifest rows, those from `test_from` on the test store's."""
    if not any(f.modality == "text" for f in sides[0][1]):
        return None
    read = [transcripts(store, features) for store, features in sides]
    cut = len(rows) if test_from is None or len(read) == 1 else test_from
    texts = [read[0][0][int(r)] for r in rows[:cut]]
    texts += [read[-1][0][int(r)] for r in rows[cut:]]
    return run_overlap(texts, folds, "; ".join(dict.fromkeys(source for _, source in read)))


def transcripts(store: FeatureStore, features: Sequence[ResolvedFeature]) -> tuple[list[str], str]:
    """The transcripts a run's text features on `store` were made of, one per manifest
    row, and which: an ASR set's, else the corpus's own."""
    gold = store.manifest.column("transcript").tolist()
    text = next(f for f in features if f.modality == "text")
    attrs = store.info(text.stored[0]).attrs
    if not is_asr_text(attrs):
        return gold, "gold transcripts"
    try:
        asr = list(store.read_transcripts(str(attrs["transcripts"])).texts)
    except StoreError:  # the run's WER line says the set is gone
        return gold, "gold transcripts (the ASR set is gone)"
    return asr, f"ASR transcripts {attrs['transcripts']}"
