"""Emotion label codes of IEMOCAP and the standard class sets built from them.

>>> LABEL_SETS["4"].classes
('neu', 'hap', 'sad', 'ang')
>>> LABEL_SETS["4"].class_of("exc")
'hap'
>>> LABEL_SETS["4"].class_of("fru") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ser.errors import ConfigError

#: Every consensus code that appears in EmoEvaluation files (`xxx`: no agreement).
LABEL_CODES: tuple[str, ...] = (
    "neu",
    "hap",
    "exc",
    "sad",
    "ang",
    "fru",
    "sur",
    "fea",
    "dis",
    "oth",
    "xxx",
)


@dataclass(frozen=True)
class LabelSet:
    """A named class set: which codes count, and the class each maps to; `names`: the
    emotion name (`ser.corpus.emotions`) of a class whose code would read as another's
    (MELD's sentiment `neu` is no neutral emotion)."""

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str] = field(hash=False)
    names: dict[str, str] = field(default_factory=dict, hash=False)

    def class_of(self, code: str) -> str | None:
        """The class of a label code, or None when the code is outside this set."""
        return self.mapping.get(code)

    def index_of(self, code: str) -> int | None:
        """The class index (into `classes`) of a label code, or None."""
        cls = self.mapping.get(code)
        return None if cls is None else self.classes.index(cls)


def _identity(*codes: str) -> dict[str, str]:
    return {c: c for c in codes}


_FOUR = ("neu", "hap", "sad", "ang")
_SIX = ("hap", "sad", "neu", "ang", "exc", "fru")

LABEL_SETS: dict[str, LabelSet] = {
    # Most papers' 4-class set: excited merged into happy (5531 utterances).
    "4": LabelSet("4", _FOUR, {**_identity(*_FOUR), "exc": "hap"}),
    # Zhou et al.: the 4 classes plus frustration (7380 utterances).
    "5": LabelSet("5", (*_FOUR, "fru"), {**_identity(*_FOUR, "fru"), "exc": "hap"}),
    # Conversation papers keep happy and excited apart.
    "6": LabelSet("6", _SIX, _identity(*_SIX)),
    "all": LabelSet("all", LABEL_CODES, _identity(*LABEL_CODES)),
}


def get_label_set(name: str) -> LabelSet:
    """The label set called `name` (`4`, `5`, `6` or `all`)."""
    try:
        return LABEL_SETS[str(name)]
    except KeyError:
        raise ConfigError(
            f"unknown class set {name!r}: choose one of {', '.join(LABEL_SETS)}"
        ) from None
