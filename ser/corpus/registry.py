"""The corpus kinds, one `CorpusKind` line each (`register`): how a layout is read into
`Utterance` records, its class sets, its groups, the protocols it offers and its
defaults; and `--corpus` guessed from a layout (`guess`). A store records its kind
(`CorpusKind.attrs`); `store_kind` reads it back for `ser.cache.FeatureStore.corpus`,
the one place that does.

>>> [kind.name for kind in KINDS.values()]
['iemocap', 'crema-d', 'ravdess', 'msp-podcast', 'meld', 'manifest', 'emobox', 'cmu-mosei',
 'cmu-mosi']
>>> KINDS["crema-d"].label_set("4").classes
('neu', 'hap', 'sad', 'ang')
>>> [p.name for p in KINDS["iemocap"].protocols]
['loso', 'session5', 'loso-script', 'session5-script', 'speaker-kfold', 'logo', 'random']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser.corpus.kinds import (
    cmu_mosei,
    crema_d,
    emobox,
    emobox_summary,
    iemocap,
    manifest,
    meld,
    msp_podcast,
    ravdess,
)
from ser.corpus.kinds.flat import column_of, pick, summarize_by
from ser.corpus.labels import LabelSet
from ser.corpus.options import NO_OPTIONS, ReadOptions
from ser.corpus.protocols.emobox import EmoBoxFolds
from ser.corpus.protocols.folds import Protocol, parse_protocol
from ser.corpus.protocols.groups import LeaveOneGroupOut, Official, SpeakerKFold
from ser.corpus.protocols.random_split import RandomSplit
from ser.corpus.protocols.sessions import (
    LeaveOneSessionOut,
    ScriptFreeLoso,
    ScriptFreeSession5,
    SessionHeldOut,
)
from ser.corpus.records import CorpusReading
from ser.errors import ConfigError, CorpusError

#: The store attrs that name the corpus kind and the version of its layout.
CORPUS_ATTR, LAYOUT_ATTR = "corpus", "corpus_layout"
# Stores made before kinds were recorded, and roots no kind claims, are IEMOCAP's.
_FALLBACK = "iemocap"
#: `ser train --class-weights`: none, or balanced (n / (C n_c) of each fold's training side).
CLASS_WEIGHTS = ("none", "balanced")
#: The protocols every kind offers after its own; `official` where it has a split group.
EVERY_KIND: tuple[type[Protocol], ...] = (SpeakerKFold, LeaveOneGroupOut, RandomSplit)


@dataclass(frozen=True)
class Optioned:
    """How a kind that takes `ReadOptions` (`--audio-root`) reads a root with them, and
    which files' stats say its copy changed (`ser extract`'s receipts)."""

    read: Callable[[Path, str, ReadOptions], CorpusReading]
    files: Callable[[Path, ReadOptions], list[Path]]


@dataclass(frozen=True)
class CorpusKind:
    """A corpus layout: `read(root, classes)`, whether `root` looks like it (`detect`),
    the files whose stats say a copy changed (`signature`), its class sets given the
    labels found (`sets`; fixed for most); `groups`, what it groups utterances by (each a
    manifest column; `derived` ones computed from the dialog's name), `own` protocols
    beside every kind's, `protocol` the one `ser train` uses without --protocol (None:
    the model family's paper protocol), `by` the columns its summary groups by (the first
    with a value); `class_weights` what `ser train` uses without --class-weights
    (balanced for a corpus as skewed as MELD, recorded and said when a run starts);
    `papers`: the papers' published numbers are on this corpus (reports set ours beside
    them); `optioned`: how it reads with `ReadOptions` (None: it takes none); `classes`
    `ser train`'s class set without --classes (None: the model family's)."""

    name: str
    title: str
    layout: str
    read: Callable[[Path, str], CorpusReading]
    detect: Callable[[Path], bool]
    signature: Callable[[Path], list[Path]]
    sets: Callable[[Sequence[str]], Mapping[str, LabelSet]]
    protocol: str | None
    groups: tuple[str, ...] = ()
    derived: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    own: tuple[type[Protocol], ...] = ()
    by: tuple[str, ...] = ("speaker",)
    version: int = 1
    not_trained: tuple[str, ...] = ()  # class sets a model never trains on
    summary: Callable[[CorpusReading, str], dict[str, Any]] | None = field(default=None)
    class_weights: str = "none"
    papers: bool = False
    optioned: Optioned | None = None
    classes: str | None = None
    votes: bool = False

    def __post_init__(self) -> None:
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(f"class_weights {self.class_weights!r} is not one of {CLASS_WEIGHTS}")

    @property
    def class_sets(self) -> tuple[str, ...]:
        return tuple(self.sets(()))

    @property
    def protocols(self) -> tuple[type[Protocol], ...]:
        """Every protocol it offers: its own, every kind's, `official` with a split group."""
        splits = (Official,) if "split" in self.groups else ()
        return (*self.own, *EVERY_KIND, *splits)

    def parse_protocol(self, spec: str) -> Protocol:
        """The protocol `spec` names; `ConfigError` naming the ones it offers for another."""
        return parse_protocol(spec, self.protocols, self.title)

    def default_protocol(self, family: str) -> str:
        """`ser train`'s protocol without --protocol: the kind's, else the family's."""
        return self.protocol or family

    def label_set(self, name: str, labels: Sequence[str] = ()) -> LabelSet:
        """Class set `name` (`labels`: the corpus's, for a kind whose sets depend on them)."""
        return pick(self.sets(labels), name, self.name)

    def trained_set(self, name: str, labels: Sequence[str] = ()) -> LabelSet:
        """The class set a run trains on; `ConfigError` for one the kind lacks or never
        trains on."""
        if name in self.not_trained:
            trained = [n for n in self.class_sets if n not in self.not_trained]
            raise ConfigError(
                f"{self.title} does not train on class set {name!r}: choose {', '.join(trained)}"
            )
        return self.label_set(name, labels)

    def summarize(self, reading: CorpusReading, classes: str) -> dict[str, Any]:
        """`ser corpus summary`'s JSON: counts per group and class, speakers, hours, problems."""
        if self.summary is not None:
            return self.summary(reading, classes)
        label_set = self.label_set(classes, [u.label for u in reading.utterances])
        values = [(c, {column_of(u, c) for u in reading.utterances}) for c in self.by]
        by = next((c for c, found in values if found - {""}), self.by[-1])
        return summarize_by(reading, label_set, by)

    def reading(self, root: Path, classes: str, options: ReadOptions = NO_OPTIONS) -> CorpusReading:
        """What `read` makes of `root`, with `options` for a kind that takes them;
        `ConfigError` for options a kind does not take."""
        if self.optioned is not None:
            return self.optioned.read(root, classes, options)
        if options.given():
            takers = " or ".join(k.name for k in KINDS.values() if k.optioned is not None)
            given = ", ".join(options.given())
            raise ConfigError(f"{self.title} takes no {given} (it is for --corpus {takers})")
        return self.read(root, classes)

    def files(self, root: Path, options: ReadOptions = NO_OPTIONS) -> list[Path]:
        """The files whose stats key `ser extract`'s receipts (`signature`, or with options)."""
        return self.signature(root) if self.optioned is None else self.optioned.files(root, options)

    def attrs(self, reading: CorpusReading | None = None) -> dict[str, Any]:
        """What a store of this corpus records; given `reading`, also where it came from
        (`corpus_root`: what votes are read again from) and, of a kind that takes
        options, where its wavs are (`audio_root`)."""
        found = {CORPUS_ATTR: self.name, LAYOUT_ATTR: self.version}
        if reading is not None:
            found.update(corpus_root=str(reading.source or reading.root))
        if reading is not None and self.optioned is not None:
            found.update(audio_root=str(reading.root))
        return found


KINDS: dict[str, CorpusKind] = {}


def register(kind: CorpusKind) -> CorpusKind:
    if kind.name in KINDS:
        raise ValueError(f"corpus kind {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    return kind


def _fixed(sets: Mapping[str, LabelSet]) -> Callable[[Sequence[str]], Mapping[str, LabelSet]]:
    return lambda labels: sets


register(CorpusKind(
    "iemocap", "IEMOCAP", iemocap.LAYOUT, iemocap.read, iemocap.detect, iemocap.signature,
    _fixed(iemocap.LABEL_SETS), None, groups=("session", "kind", "script"),
    derived={"script": iemocap.script_of},
    own=(LeaveOneSessionOut, SessionHeldOut, ScriptFreeLoso, ScriptFreeSession5),
    by=("session",), not_trained=("all",), summary=iemocap.summarize, papers=True,
    votes=True,
))  # fmt: skip
register(CorpusKind(
    "crema-d", "CREMA-D", crema_d.LAYOUT, crema_d.read, crema_d.detect, crema_d.signature,
    _fixed(crema_d.LABEL_SETS), "speaker-kfold", groups=("sentence", "level"),
))  # fmt: skip
register(CorpusKind(
    "ravdess", "RAVDESS", ravdess.LAYOUT, ravdess.read, ravdess.detect, ravdess.signature,
    _fixed(ravdess.LABEL_SETS), "speaker-kfold",
    groups=("kind", "intensity", "statement", "repetition"),
))  # fmt: skip
register(CorpusKind(
    "msp-podcast", "MSP-Podcast", msp_podcast.LAYOUT, msp_podcast.read, msp_podcast.detect,
    msp_podcast.signature, _fixed(msp_podcast.LABEL_SETS), "official", groups=("split",),
    by=("split", "speaker"), not_trained=("all",), votes=True,
))  # fmt: skip
register(CorpusKind(
    "meld", "MELD", meld.LAYOUT, meld.read, meld.detect, meld.signature,
    _fixed(meld.LABEL_SETS), "official", groups=("split", "sentiment", "season", "episode"),
    by=("split", "speaker"), class_weights=meld.CLASS_WEIGHTS,
))  # fmt: skip
register(CorpusKind(
    "manifest", "a manifest", "a .csv or .jsonl file (utt_id, wav, label, speaker, ...)",
    manifest.read, manifest.detect, manifest.signature, manifest.label_sets, "speaker-kfold",
    groups=("split",), by=("split", "speaker"), votes=True,
))  # fmt: skip
register(CorpusKind(
    "emobox", "EmoBox", emobox.LAYOUT, emobox.read, emobox.detect, emobox.signature,
    emobox.label_sets, "emobox", groups=("dataset", "emo"), own=(EmoBoxFolds,),
    summary=emobox_summary.summarize, optioned=Optioned(emobox.read_with, emobox.files),
    classes="all",
))  # fmt: skip


def corpus_kind(name: str) -> CorpusKind:
    if name not in KINDS:
        raise ConfigError(f"unknown corpus kind {name!r}: use one of {', '.join(KINDS)}")
    return KINDS[name]


def class_set_names() -> tuple[str, ...]:
    """Every class set name some kind has (`--classes`' choices), in registry order."""
    return tuple(dict.fromkeys(name for kind in KINDS.values() for name in kind.class_sets))


def guess(root: str | Path) -> CorpusKind:
    """The one kind whose layout `root` has; IEMOCAP when none has (its reader says what
    is missing); `CorpusError` listing the candidates when several have."""
    path = Path(root).expanduser()
    found = [kind for kind in KINDS.values() if kind.detect(path)]
    if len(found) > 1:
        names = ", ".join(f"{k.name} ({k.layout})" for k in found)
        raise CorpusError(
            f"{path} has the layout of several corpora: {names}; say which with --corpus"
        )
    return found[0] if found else KINDS[_FALLBACK]


def kind_of(root: str | Path, corpus: str | None = None) -> CorpusKind:
    """The kind `corpus` names (`--corpus`), else the one `guess` finds at `root`."""
    return corpus_kind(corpus) if corpus else guess(root)


def read_corpus(
    root: str | Path,
    corpus: str | None = None,
    classes: str = "all",
    options: ReadOptions = NO_OPTIONS,
) -> tuple[CorpusKind, CorpusReading]:
    """The kind (`corpus`, else guessed) and what it reads of `root` (with `options`)."""
    kind = kind_of(root, corpus)
    path = Path(root).expanduser()
    return kind, kind.reading(
        path.resolve() if path.exists() else path.absolute(), classes, options
    )


def store_kind(attrs: Mapping[str, Any]) -> CorpusKind:
    """The kind a store's attrs record (IEMOCAP for stores made before they did): for
    `ser.cache.FeatureStore.corpus`, which hands it out."""
    return corpus_kind(str(attrs.get(CORPUS_ATTR, _FALLBACK)))


register(CorpusKind(
    "cmu-mosei", "CMU-MOSEI", cmu_mosei.LAYOUT, cmu_mosei.read_mosei, cmu_mosei.detect_mosei,
    cmu_mosei.signature, _fixed(cmu_mosei.LABEL_SETS), "standard", groups=("split",),
    own=(cmu_mosei.Standard,), by=("split", "speaker"), classes="sentiment",
))  # fmt: skip
register(CorpusKind(
    "cmu-mosi", "CMU-MOSI", cmu_mosei.LAYOUT, cmu_mosei.read_mosi, cmu_mosei.detect_mosi,
    cmu_mosei.signature, _fixed(cmu_mosei.LABEL_SETS), "standard", groups=("split",),
    own=(cmu_mosei.Standard,), by=("split", "speaker"), classes="sentiment",
))  # fmt: skip
