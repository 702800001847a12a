"""The corpus a store holds, as opening the store hands it out (`FeatureStore.corpus`):
its kind (`ser.corpus.registry`, from the store's attrs: stores made before kinds were
recorded are IEMOCAP's) and its utterances' groups, read once from the manifest.

Everything that asks which corpus a store holds asks this: its label sets, protocols,
defaults and whether the papers' published numbers apply are the kind's; its groups
(stored columns, and the kind's derived ones such as IEMOCAP's `script`) are here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ser.cache.manifest import Manifest
from ser.corpus.kinds.emobox_corpora import emobox_corpus
from ser.corpus.labels import LabelSet
from ser.corpus.protocols.folds import Protocol
from ser.corpus.registry import CorpusKind


@dataclass(frozen=True, eq=False)
class StoreCorpus:
    """A store's corpus kind and its manifest's groups."""

    kind: CorpusKind
    manifest: Manifest = field(repr=False)

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def title(self) -> str:
        """The kind's title; a store of one corpus of a collection (EmoBox's: a `dataset`
        group of one value) names that corpus too: ``savee (EmoBox)``, so that stores of
        several such corpora are told apart in reports."""
        datasets = self.columns.get("dataset")
        if datasets is not None and len(np.unique(datasets)) == 1:
            return f"{datasets[0]} ({self.kind.title})"
        return self.kind.title

    @property
    def emobox(self) -> str | None:
        """EmoBox's name of the corpus: its kind's, else its `dataset` group's one value
        (an `emobox` store holds one of EmoBox's corpora); None: not one of EmoBox's."""
        found = emobox_corpus(self.name)
        datasets = self.columns.get("dataset")
        if found is None and datasets is not None:
            values = np.unique(datasets.astype(str))
            found = emobox_corpus(str(values[0])) if len(values) == 1 else None
        return found

    @property
    def papers(self) -> bool:
        """Whether the papers' published numbers are on this corpus (IEMOCAP)."""
        return self.kind.papers

    @cached_property
    def digest(self) -> str:
        """sha256 of the manifest's identity columns (`CorpusKind.identity_columns`: the
        record columns that say which utterances a store holds and their targets, and its
        groups; those it has), 16 hex digits: two stores of one kind with one digest hold
        the same utterances (`ser sweep`'s cell keys, a cross-corpus run's test store)."""
        digest = hashlib.sha256()
        for name in self.kind.identity_columns(self.manifest.groups):
            if name in self.manifest.names:
                digest.update(f"\0{name}\0".encode())
                values = np.asarray(self.manifest.column(name))
                digest.update("\x1f".join(map(str, values)).encode())
        return digest.hexdigest()[:16]

    @cached_property
    def columns(self) -> Mapping[str, np.ndarray]:
        """`speaker` and every group, one value per manifest row: the stored group columns
        and the kind's derived ones (from the dialog's name)."""
        found = {"speaker": self.manifest.column("speaker")}
        found.update({name: self.manifest.column(name) for name in self.manifest.groups})
        dialogs = self.manifest.column("dialog").astype(str)
        for name, derive in self.kind.derived.items():
            found.setdefault(name, np.array([derive(d) for d in dialogs.tolist()], dtype=np.str_))
        return found

    def groups(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Every group (not `speaker`) at manifest `rows`."""
        return {name: values[rows] for name, values in self.columns.items() if name != "speaker"}

    def label_set(self, classes: str) -> LabelSet:
        """The class set a run on the store trains on; `ConfigError` for one the corpus
        lacks or never trains on."""
        return self.kind.trained_set(classes, self.manifest.column("label").tolist())

    def protocol(self, spec: str) -> Protocol:
        return self.kind.parse_protocol(spec)

    def fold_count(self, spec: str) -> int:
        """How many folds protocol `spec` makes of the store's utterances."""
        return self.protocol(spec).fold_count(self.columns)
