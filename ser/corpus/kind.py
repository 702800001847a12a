"""What a corpus kind is (`CorpusKind`) and how it joins the registry: one `register(...)`
line at the bottom of its own module under `ser/corpus/kinds/`, which
`ser.corpus.registry` imports (every module there, found by `pkgutil`). Nothing else
names the kinds: commands, help strings and docs checks read `KINDS`.

A kind's synthetic writer (`Synthetic`) lives in its module too; the audio and text it
writes come from a `Toolkit` that `ser.synth` passes in, since `ser.corpus` sits below
`ser.synth` and may not import it (docs/dev/add-corpus.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as Interface

import numpy as np

from ser import Registry
from ser.corpus.kinds.flat import column_of, pick, summarize_by
from ser.corpus.labels import LabelSet
from ser.corpus.options import NO_OPTIONS, ReadOptions
from ser.corpus.protocols.folds import Protocol, parse_protocol
from ser.corpus.protocols.groups import LeaveOneGroupOut, SpeakerKFold
from ser.corpus.protocols.random_split import RandomSplit
from ser.corpus.records import CorpusReading
from ser.errors import ConfigError

#: The store attrs that name the corpus kind and the version of its layout.
CORPUS_ATTR, LAYOUT_ATTR = "corpus", "corpus_layout"
#: `ser train --class-weights`: none, or balanced (n / (C n_c) of each fold's training side).
CLASS_WEIGHTS = ("none", "balanced")
#: The protocols every kind offers after its own (`CorpusKind.after` follow them).
EVERY_KIND: tuple[type[Protocol], ...] = (SpeakerKFold, LeaveOneGroupOut, RandomSplit)
#: The manifest's record columns that say which utterances a store holds and their targets
#: (not where the wavs were: a moved corpus is the same corpus); its groups follow them.
RECORD_IDENTITY = ("utt_id", "label", "speaker", "dialog", "order")


class Maker(Interface):
    """What a kind's synthetic writer makes audio with (`ser.synth.acted.MAKER`): speech
    whose prosody follows an emotion code, in voices drawn by seed, into a new root."""

    @property
    def sample_rate(self) -> int: ...

    def new_root(self, out: Path) -> Path: ...

    # Any: the voice is ser.synth's (`ser.synth.audio.Voice`), which ser.corpus sits below;
    # a writer only hands it back to `write_wav`.
    def voice(self, seed: int, speaker: int, gender: str) -> Any: ...

    def write_wav(
        self,
        path: Path,
        rng: np.random.Generator,
        voice: Any,  # `voice`'s
        code: str,
        seconds: tuple[float, float],
    ) -> None: ...


@dataclass(frozen=True)
class ActedConfig:
    """An acted corpus's synthetic writer's (CREMA-D's, RAVDESS's): how many actors,
    sentences (statements) and seconds; the seed of every draw."""

    actors: int = 6
    sentences: int = 2
    seed: int = 0
    seconds: tuple[float, float] = (0.8, 1.4)


class Toolkit(Maker, Interface):
    """`Maker`, and the layouts `ser.synth` writes at length (IEMOCAP's dialogs, the
    naturalistic corpora's panels of annotators, EmoBox's checkout), which a kind's
    writer calls by its name (`ser.synth.toolkit.TOOLKIT`)."""

    def layout(self, name: str) -> Callable[[Path, int, Mapping[str, Any]], Written]: ...


@dataclass(frozen=True)
class Written:
    """What a synthetic writer wrote: its root, how many utterances of how many speakers;
    `detail`, what `ser demo-corpus` says beside them (hours, dialogs); `reads`, where
    ser reads the corpus when not at `root` (EmoBox's checkout: one corpus of its
    `data/`)."""

    root: Path
    utterances: int
    speakers: int
    detail: str = ""
    reads: Path | None = None

    @property
    def corpus(self) -> Path:
        """The path `ser corpus summary`, `ser extract` and `read_corpus` take."""
        return self.reads or self.root

    @classmethod
    def of(cls, root: Path, files: Mapping[str, tuple[str, str]]) -> Written:
        """From utterance id -> (label, speaker)."""
        return cls(root, len(files), len({speaker for _, speaker in files.values()}))


@dataclass(frozen=True)
class Synthetic:
    """A kind's synthetic corpus (`ser demo-corpus --layout <kind>`): `write(out, seed,
    toolkit, options)`, `options` the `ser demo-corpus` options only it takes (the
    command refuses them for another layout); `small`, the options of a smaller corpus
    of the same layout, the one the test suite reads of every registered kind (none:
    the writer's default is small enough, a second or so)."""

    write: Callable[[Path, int, Toolkit, Mapping[str, Any]], Written]
    options: tuple[str, ...] = ()
    small: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def in_toolkit(
        cls, name: str, options: tuple[str, ...] = (), small: Mapping[str, Any] | None = None
    ) -> Synthetic:
        """A writer that is the toolkit's layout `name` (`Toolkit.layout`)."""

        def write(out: Path, seed: int, kit: Toolkit, given: Mapping[str, Any]) -> Written:
            return kit.layout(name)(out, seed, given)

        return cls(write, options, small or {})


@dataclass(frozen=True)
class Origin:
    """Which group an input file is recognisably from (`of_file`: IEMOCAP's session, by
    its utterance id or folder) and which group a fold tests (`of_fold`, by its name), for
    `ser predict`'s note that an input was in a fold's training data."""

    group: str
    of_file: Callable[[Path], str | None]
    of_fold: Callable[[str], str | None]


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
    before every kind's and `after` ones after them, `protocol` the one `ser train` uses
    without --protocol, `classes` its class set without --classes; `by` the columns its
    summary groups by (the first with a value); `class_weights` what `ser train` uses
    without --class-weights (balanced for a corpus as skewed as MELD, recorded and said
    when a run starts); `papers`: the papers' published numbers are on this corpus
    (reports set ours beside them, and its sweep cells keep the keys they had before
    sweeps took several stores); `optioned`: how it reads with `ReadOptions` (None: it
    takes none); `identity` the manifest columns whose values identify a store (None:
    `RECORD_IDENTITY` and the manifest's groups); `synthetic` its synthetic writer;
    `origin` what `ser predict` recognises of its files; `near` why a root with part of
    its layout is not one (a line naming what is missing or damaged, "" for a root
    without that part), said when no kind claims a root; `spelled` the `--target` heads
    that mean another registered head on it (CMU-MOSI's and CMU-MOSEI's `sentiment` is
    their score, `sentiment-score`; elsewhere it is MELD's three classes)."""

    name: str
    title: str
    layout: str
    read: Callable[[Path, str], CorpusReading]
    detect: Callable[[Path], bool]
    signature: Callable[[Path], list[Path]]
    sets: Callable[[Sequence[str]], Mapping[str, LabelSet]]
    protocol: str
    classes: str = "4"
    groups: tuple[str, ...] = ()
    derived: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    own: tuple[type[Protocol], ...] = ()
    after: tuple[type[Protocol], ...] = ()
    by: tuple[str, ...] = ("speaker",)
    version: int = 1
    not_trained: tuple[str, ...] = ()  # class sets a model never trains on
    summary: Callable[[CorpusReading, str], dict[str, Any]] | None = field(default=None)
    class_weights: str = "none"
    papers: bool = False
    optioned: Optioned | None = None
    votes: bool = False
    identity: tuple[str, ...] | None = None
    synthetic: Synthetic | None = None
    origin: Origin | None = None
    spelled: Mapping[str, str] = field(default_factory=dict)
    near: Callable[[Path], str] | None = None

    def __post_init__(self) -> None:
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(f"class_weights {self.class_weights!r} is not one of {CLASS_WEIGHTS}")

    @property
    def class_sets(self) -> tuple[str, ...]:
        return tuple(self.sets(()))

    @property
    def protocols(self) -> tuple[type[Protocol], ...]:
        """Every protocol it offers: its own, every kind's, then `after`."""
        return (*self.own, *EVERY_KIND, *self.after)

    def parse_protocol(self, spec: str) -> Protocol:
        """The protocol `spec` names; `ConfigError` naming the ones it offers for another."""
        return parse_protocol(spec, self.protocols, self.title)

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

    def target(self, spelled: str) -> str:
        """A `--target` value with every head named as this kind means it (`spelled`)."""
        return "+".join(self.spelled.get(part, part) for part in spelled.split("+"))

    def identity_columns(self, groups: Sequence[str]) -> tuple[str, ...]:
        """The manifest columns a store's digest hashes, given the manifest's `groups`."""
        return self.identity or (*RECORD_IDENTITY, *groups)

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


#: Every registered kind by name, in the order `ser.corpus.registry` found them.
KINDS: Registry[CorpusKind] = Registry("corpus kind")
#: Add a kind to `KINDS` (the one line a kind's module ends with).
register = KINDS.add


def fixed(sets: Mapping[str, LabelSet]) -> Callable[[Sequence[str]], Mapping[str, LabelSet]]:
    """`CorpusKind.sets` of a kind whose class sets do not depend on the labels found."""
    return lambda labels: sets
