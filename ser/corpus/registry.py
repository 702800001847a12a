"""The registered corpus kinds (`KINDS`, `ser.corpus.kind`): every module under
`ser/corpus/kinds/` is imported here, and each kind's module registers its kind with one
`register(...)` line, so this module names none of them. Also `--corpus` guessed from a
layout (`guess`). A store records its kind (`CorpusKind.attrs`); `store_kind` reads it
back for `ser.cache.FeatureStore.corpus`, the one place that does.

>>> all(KINDS[name].name == name for name in KINDS)
True
>>> KINDS["crema-d"].label_set("4").classes
('neu', 'hap', 'sad', 'ang')
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ser.corpus.kinds
from ser.corpus.kind import (
    CLASS_WEIGHTS,
    CORPUS_ATTR,
    EVERY_KIND,
    KINDS,
    LAYOUT_ATTR,
    CorpusKind,
    Optioned,
    register,
)
from ser.corpus.options import NO_OPTIONS, ReadOptions
from ser.corpus.progress import ReadHook, reporting
from ser.corpus.records import CorpusReading
from ser.errors import ConfigError, CorpusError

__all__ = [
    "CLASS_WEIGHTS",
    "CORPUS_ATTR",
    "KINDS",
    "LAYOUT_ATTR",
    "CorpusKind",
    "Optioned",
    "class_set_names",
    "corpus_kind",
    "guess",
    "kind_of",
    "read_corpus",
    "register",
    "store_kind",
]


def _discover() -> None:
    """Import every module of `ser.corpus.kinds` (a kind's registers it), then order the
    kinds whatever imported one first: the papers' corpus (the fallback) first, the others
    by name."""
    for module in pkgutil.iter_modules(ser.corpus.kinds.__path__, "ser.corpus.kinds."):
        importlib.import_module(module.name)
    found = sorted(KINDS.values(), key=lambda kind: (not kind.papers, kind.name))
    KINDS.clear()
    KINDS.update((kind.name, kind) for kind in found)


_discover()


def fallback() -> CorpusKind:
    """The kind of stores made before kinds were recorded and of roots no kind claims:
    the papers' corpus (IEMOCAP)."""
    return next(kind for kind in KINDS.values() if kind.papers)


def corpus_kind(name: str) -> CorpusKind:
    if name not in KINDS:
        raise ConfigError(f"unknown corpus kind {name!r}: use one of {', '.join(KINDS)}")
    return KINDS[name]


def class_set_names() -> tuple[str, ...]:
    """Every class set name some kind has (`--classes`' choices), in registry order."""
    return tuple(dict.fromkeys(name for kind in KINDS.values() for name in kind.class_sets))


def classes_help() -> str:
    """`ser train --classes`' help: each kind's class sets and default."""
    sets = "; ".join(f"{k.name} {', '.join(k.class_sets)}" for k in KINDS.values())
    defaults = ", ".join(f"{k.name} {k.classes}" for k in KINDS.values())
    return f"Label set, one the store's corpus has: {sets} [default: the corpus's: {defaults}]."


def protocols_help() -> str:
    """`ser train --protocol`'s help: each kind's own protocols, every kind's, defaults."""
    every = ", ".join(p.usage for p in EVERY_KIND)
    own = "; ".join(
        f"{k.name} {', '.join(p.usage for p in (*k.own, *k.after))}"
        for k in KINDS.values()
        if k.own or k.after
    )
    defaults = ", ".join(f"{k.name} {k.protocol}" for k in KINDS.values())
    return (
        f"Evaluation protocol, one the store's corpus offers: every corpus's {every}; "
        f"{own} [default: the corpus's: {defaults}]."
    )


def class_weights_help() -> str:
    """`ser train --class-weights`' help, with the kinds whose default is not none."""
    weighted = ", ".join(
        f"{k.name} {k.class_weights}" for k in KINDS.values() if k.class_weights != "none"
    )
    return (
        "Cross-entropy weights per class: balanced (n / (classes x n_class), from each "
        "fold's own training side; every loss of the family, never validation), none "
        f"[default: the corpus's: none; {weighted}]. Recorded per fold."
    )


def guess(root: str | Path) -> CorpusKind:
    """The one kind whose layout `root` has; when none has, `CorpusError` saying what a
    kind whose layout it has in part lacks (`CorpusKind.near`), else the fallback kind
    (its reader says what is missing); `CorpusError` listing the candidates when several
    have."""
    path = Path(root).expanduser()
    found = [kind for kind in KINDS.values() if kind.detect(path)]
    if len(found) > 1:
        names = ", ".join(f"{k.name} ({k.layout})" for k in found)
        raise CorpusError(
            f"{path} has the layout of several corpora: {names}; say which with --corpus"
        )
    if found:
        return found[0]
    near = dict.fromkeys(said for kind in KINDS.values() if kind.near and (said := kind.near(path)))
    if near:  # kinds sharing a layout say the same: each line once
        raise CorpusError("; ".join(near))
    return fallback()


def kind_of(root: str | Path, corpus: str | None = None) -> CorpusKind:
    """The kind `corpus` names (`--corpus`), else the one `guess` finds at `root`."""
    return corpus_kind(corpus) if corpus else guess(root)


def read_corpus(
    root: str | Path,
    corpus: str | None = None,
    classes: str = "all",
    options: ReadOptions = NO_OPTIONS,
    progress: ReadHook | None = None,
) -> tuple[CorpusKind, CorpusReading]:
    """The kind (`corpus`, else guessed) and what it reads of `root` (with `options`),
    telling `progress` how far it is (`ser.corpus.progress`)."""
    kind = kind_of(root, corpus)
    path = Path(root).expanduser()
    with reporting(progress):
        return kind, kind.reading(
            path.resolve() if path.exists() else path.absolute(), classes, options
        )


def store_kind(attrs: Mapping[str, Any]) -> CorpusKind:
    """The kind a store's attrs record (the fallback kind for stores made before they
    did): for `ser.cache.FeatureStore.corpus`, which hands it out."""
    name = attrs.get(CORPUS_ATTR)
    return fallback() if name is None else corpus_kind(str(name))
