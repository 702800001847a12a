"""One vocabulary of emotion names for every corpus's classes: what a model trained on
one corpus is tested on in another (`ser train --test-store`, `ser sweep cross-corpus`).

Class codes differ between corpus kinds: IEMOCAP, CREMA-D, RAVDESS, MSP-Podcast and MELD
write three letters (`neu hap sad ang fea dis sur ...`; MELD's label `hap.pos` is class
`hap` of its emotion sets), EmoBox's label maps write names (`Neutral`, `Happy`,
`Angry`, `Fear`, and in other releases `joy`, `Fearful`, `Surprised` ...). `emotion`
reads either into one name of `EMOTIONS`; a name it does not know is kept, lower-cased,
so two corpora's `Sarcastic` still meet; `xxx` (no agreement) is no emotion and meets
nothing. A class set names a class whose code would read as another's itself
(`LabelSet.names`: MELD's sentiment `neu` is no neutral emotion).

`match_classes(train, test)` pairs two class sets by these names: the classes both have
(in the training set's order and codes), those only one has, and the two sets a
cross-corpus run reads its stores with (`ClassMatch.train_set`, `test_set`).

>>> emotion("exc"), emotion("Happy"), emotion("joy"), emotion("Fearful"), emotion("xxx")
('excited', 'happy', 'happy', 'fear', None)
>>> from ser.corpus.kinds.crema_d import LABEL_SETS as CREMA_D
>>> from ser.corpus.labels import LABEL_SETS as IEMOCAP
>>> match = match_classes(IEMOCAP["4"], CREMA_D["6"])
>>> match.shared, match.train_only, match.test_only
(('neu', 'hap', 'sad', 'ang'), (), ('dis', 'fea'))
>>> match.test_set().class_of("fea") is None, match.train_set().class_of("exc")
(True, 'hap')
"""

from __future__ import annotations

from dataclasses import dataclass

from ser.corpus.labels import LabelSet
from ser.errors import ConfigError

#: The canonical names, in the order tables list them.
EMOTIONS = (
    "neutral", "happy", "sad", "angry", "fear", "disgust", "surprise", "calm", "contempt",
    "excited", "frustrated", "boredom", "other",
)  # fmt: skip
# Every spelling a corpus uses (lower case) -> its canonical name: ser's codes first, then
# the names of EmoBox's label maps and the releases they come from.
ALIASES = {
    "neu": "neutral", "neutrality": "neutral",
    "hap": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "ang": "angry", "anger": "angry",
    "fea": "fear", "fearful": "fear",
    "dis": "disgust", "disgusted": "disgust",
    "sur": "surprise", "surprised": "surprise",
    "cal": "calm",
    "con": "contempt",
    "exc": "excited",
    "fru": "frustrated", "frustration": "frustrated",
    "bor": "boredom", "bored": "boredom",
    "oth": "other",
}  # fmt: skip
#: Classes that say the annotators did not agree: never matched with another corpus's.
NO_EMOTION = frozenset({"xxx", "no-agreement", "unknown"})


def emotion(name: str) -> str | None:
    """The canonical emotion a class code or name stands for; None for no emotion."""
    key = str(name).strip().lower()
    if key in NO_EMOTION or not key:
        return None
    return ALIASES.get(key, key)


def class_emotions(label_set: LabelSet) -> dict[str, str | None]:
    """Each class of `label_set` -> its emotion (the set's own `names` first)."""
    return {c: label_set.names.get(c) or emotion(c) for c in label_set.classes}


@dataclass(frozen=True)
class ClassMatch:
    """Two class sets paired by emotion: `shared` the training set's classes the test
    set has too (its codes, its order), `emotions` their names, `train_only` and
    `test_only` the classes of one side alone (dropped)."""

    train: LabelSet
    test: LabelSet
    shared: tuple[str, ...]
    emotions: dict[str, str]
    train_only: tuple[str, ...]
    test_only: tuple[str, ...]

    def train_set(self) -> LabelSet:
        """The training set less its classes the test set lacks."""
        mapping = {code: c for code, c in self.train.mapping.items() if c in self.shared}
        return LabelSet(self.train.name, self.shared, mapping, dict(self.train.names))

    def test_set(self) -> LabelSet:
        """The test set's codes -> the training set's shared classes (by emotion)."""
        by_emotion = {name: c for c, name in self.emotions.items()}
        theirs = class_emotions(self.test)
        mapping = {
            code: by_emotion[name]
            for code, c in self.test.mapping.items()
            if (name := theirs.get(c)) is not None and name in by_emotion
        }
        return LabelSet(self.test.name, self.shared, mapping)

    def record(self) -> dict[str, object]:
        """What a run record holds of the match."""
        return {
            "train_set": self.train.name,
            "test_set": self.test.name,
            "shared": list(self.shared),
            "emotions": dict(self.emotions),
            "train_only": list(self.train_only),
            "test_only": list(self.test_only),
        }


def match_classes(train: LabelSet, test: LabelSet) -> ClassMatch:
    """`train` and `test` paired by emotion name; `ConfigError` when two training classes
    read as one emotion, or fewer than two emotions are shared."""
    ours, theirs = class_emotions(train), class_emotions(test)
    seen: dict[str, str] = {}
    for c, name in ours.items():
        if name is None:
            continue
        if name in seen:
            raise ConfigError(
                f"class set {train.name}: classes {seen[name]} and {c} both read as {name}; "
                "a cross-corpus run cannot tell which the other corpus's means"
            )
        seen[name] = c
    found = {name for name in theirs.values() if name is not None}
    shared = tuple(c for c, name in ours.items() if name is not None and name in found)
    if len(shared) < 2:
        raise ConfigError(
            f"class sets {train.name} ({_named(ours)}) and {test.name} ({_named(theirs)}) "
            f"share {len(shared)} emotion(s); a cross-corpus run needs two or more"
        )
    emotions = {c: str(ours[c]) for c in shared}
    wanted = set(emotions.values())
    return ClassMatch(
        train,
        test,
        shared,
        emotions,
        tuple(c for c in train.classes if c not in shared),
        tuple(c for c, name in theirs.items() if name not in wanted),
    )


def _named(emotions: dict[str, str | None]) -> str:
    return ", ".join(f"{c}={name or 'none'}" for c, name in emotions.items())
