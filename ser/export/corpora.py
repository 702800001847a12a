"""What a model card must say of the corpus a model learnt from: its language, whether
its speech is acted or natural, its licence, and what the store recorded of it (root,
class set, the longest utterance, each utterance's gender).

The facts are the corpora's published ones; a manifest or EmoBox corpus is any corpus,
so its card says what ser cannot know. A corpus ser wrote itself (`ser demo-corpus`) is
named as such: a model of it has learnt nothing about emotion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SerError


@dataclass(frozen=True)
class CorpusFacts:
    name: str
    dataset: str  # the Hugging Face metadata's dataset id, as the community names it
    language: str | None  # ISO 639-1; None: not known
    speech: str  # acted, natural, ...
    licence: str


UNKNOWN = CorpusFacts(
    "a corpus given as a manifest",
    "custom",
    None,
    "not recorded (ser reads any corpus listed in a manifest)",
    "the corpus's own licence (not recorded by ser): check it before sharing this model",
)
FACTS = {
    "iemocap": CorpusFacts(
        "IEMOCAP",
        "iemocap",
        "en",
        "acted: ten actors in dyadic sessions, scripted and improvised (not natural speech)",
        "USC SAIL's IEMOCAP release licence: research use, by request "
        "(sail.usc.edu/iemocap); check that it lets you share models trained on it",
    ),
    "crema-d": CorpusFacts(
        "CREMA-D",
        "crema-d",
        "en",
        "acted: 91 actors reading 12 sentences with six emotions at set intensities",
        "Open Database License (ODbL) 1.0, contents under the Database Contents License",
    ),
    "ravdess": CorpusFacts(
        "RAVDESS",
        "ravdess",
        "en",
        "acted: 24 professional actors, two statements spoken and sung, North American accent",
        "CC BY-NC-SA 4.0 (non-commercial)",
    ),
    "msp-podcast": CorpusFacts(
        "MSP-Podcast",
        "msp-podcast",
        "en",
        "natural: podcast speech, emotion rated by crowd annotators",
        "UT Dallas MSP-Podcast academic licence, by request; check it before sharing models",
    ),
    "meld": CorpusFacts(
        "MELD",
        "meld",
        "en",
        "acted for television: dialogue of the TV series Friends, with music and laughter",
        "GPL-3.0 (the MELD release); the clips belong to their rights holders",
    ),
    "emobox": UNKNOWN,
    "manifest": UNKNOWN,
}


@dataclass(frozen=True)
class StoreFacts:
    """What the run's store says of its corpus (all None / empty when it is gone)."""

    kind: str | None = None
    root: str | None = None
    classes: str | None = None
    synthetic: bool = False
    longest: float | None = None
    gender: dict[int, str] = field(default_factory=dict)  # manifest row -> "F", "M", ...
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def facts(self) -> CorpusFacts:
        return FACTS.get(self.kind or "", UNKNOWN)


def store_facts(store: str | None) -> StoreFacts:
    """The facts of the store at `store` (empty `StoreFacts` when it is not there)."""
    if not store or not Path(store).exists():
        return StoreFacts()
    from ser.cache import FeatureStore

    try:
        opened = FeatureStore.open(store)
        manifest = opened.manifest
        durations = np.asarray(manifest.column("duration"), float)
        genders = np.asarray(manifest.column("gender")).astype(str)
    except (SerError, OSError, KeyError, ValueError):
        return StoreFacts()
    attrs = dict(opened.attrs)
    root = attrs.get("corpus_root")
    return StoreFacts(
        kind=None if attrs.get("corpus") is None else str(attrs["corpus"]),
        root=None if root is None else str(root),
        classes=None if attrs.get("classes") is None else str(attrs["classes"]),
        synthetic=_written_by_ser(root),
        longest=float(np.nanmax(durations)) if durations.size else None,
        gender={i: g for i, g in enumerate(genders.tolist()) if g},
        attrs=attrs,
    )


def _written_by_ser(root: object) -> bool:
    """Whether the corpus at `root` is one `ser demo-corpus` wrote (its README says so)."""
    if root is None:
        return False
    try:
        text = (Path(str(root)) / "README.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return text.startswith("A synthetic corpus") and "written by ser" in text
