"""A sweep over several stores: each store's identity in its cells' keys, and each cell
adapted to its store's corpus.

``ser sweep PRESET --store A --store B`` resolves every cell once per store. A cell's key
(`ser.sweep.cells`) hashes its config and its feature sets' fingerprints; a fingerprint
says how features were computed, not of which utterances, so the same cell on two
corpora would have one key. A store of any corpus but the papers' (`CorpusKind.papers`:
IEMOCAP) therefore adds its `StoreIdentity` (corpus kind and a digest of the manifest's
utterances, labels and groups) to the key: the same cell on two stores is two cells, and
one store's results are never reused for another. A store of the papers' corpus adds
nothing, so its cells keep the keys they had before sweeps took several stores (finished
cells are found again); two such stores with different utterances in one sweep are
refused instead of sharing keys.

A preset's own fixes of `ser.sweep.spec.CORPUS_BOUND` options (protocol, classes) are its
paper's setup on the papers' corpus; on a store of another corpus the cell drops them
(`corpus_options`): its protocol and class set are the corpus's defaults, as `ser train`
takes them on that store (`CorpusKind.protocol`, `CorpusKind.classes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.sweep.spec import Cell


@dataclass(frozen=True)
class StoreIdentity:
    """What a store holds, as its cells' keys and the report name it."""

    path: str  # resolved
    corpus: str  # its kind's name (`ser.corpus.registry`)
    title: str  # its kind's title: the report's column for it
    digest: str  # `StoreCorpus.digest`: which utterances, labels and groups, 16 hex digits
    # The papers' corpus (`CorpusKind.papers`): the presets' own setup applies, the
    # published numbers stand beside ours, and its cells keep the keys of sweeps before
    # stores entered them.
    papers: bool = False

    def key_part(self) -> dict[str, str] | None:
        """What a cell's key hashes of its store (None: nothing, a store of the papers'
        corpus)."""
        return None if self.papers else {"corpus": self.corpus, "manifest": self.digest}

    def record(self, column: str) -> dict[str, Any]:
        """What a sweep manifest's cell says of its store (`column`: the report's)."""
        return {"path": self.path, "corpus": self.corpus, "column": column, "papers": self.papers}


def identify(handle: FeatureStore) -> StoreIdentity:
    """The identity of an opened store."""
    corpus = handle.corpus
    path = str(handle.path.resolve())
    return StoreIdentity(path, corpus.name, corpus.title, corpus.digest, corpus.papers)


def check_stores(identities: Sequence[StoreIdentity]) -> None:
    """ConfigError for a store given twice, or two stores whose cells would share keys."""
    seen: dict[tuple[str, str], StoreIdentity] = {}
    papers: StoreIdentity | None = None  # a store of the papers' corpus
    for ident in identities:
        other = seen.get((ident.corpus, ident.digest))
        if other is not None:
            same = "is given twice" if other.path == ident.path else f"holds what {other.path} does"
            raise ConfigError(f"--store {ident.path} {same} (the same {ident.title} utterances)")
        seen[(ident.corpus, ident.digest)] = ident
        if ident.papers and papers is not None:
            raise ConfigError(
                f"--store {papers.path} and {ident.path} are both {ident.title} stores with "
                f"other utterances: their cells would share keys (an {ident.title} store's "
                "keep the keys of single-store sweeps); sweep them into separate --out folders"
            )
        papers = ident if ident.papers else papers


def columns(identities: Sequence[StoreIdentity]) -> list[str]:
    """The report's column per store: its corpus's title, the store's name beside it
    where two stores hold one corpus kind (and its place where they share a name too)."""
    titles = [i.title for i in identities]
    names = [
        i.title if titles.count(i.title) == 1 else f"{i.title} ({Path(i.path).stem})"
        for i in identities
    ]
    return [n if names.count(n) == 1 else f"{n} #{k}" for k, n in enumerate(names, 1)]


def corpus_options(cell: Cell, ident: StoreIdentity) -> Cell:
    """`cell` as it trains on the store `ident`: on a store of another corpus than the
    papers', the preset's own protocol and class set give way to the corpus's (the
    module doc)."""
    if ident.papers or not cell.corpus_bound:
        return cell
    options: dict[str, Any] = dict(cell.options)
    for name in cell.corpus_bound:
        options[name] = None  # ser train's: the kind's
    return replace(cell, options=MappingProxyType(options))
